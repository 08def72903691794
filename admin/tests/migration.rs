//! A store written by the previous pat-admin (schema 1: format-1 snapshots, no state serial)
//! is migrated in place: accounts, keys, tokens and the version counter survive, the
//! format-1 snapshots no edge accepts any more are dropped, and the next snapshot is signed
//! at once with a version above every one handed out before.

mod support;

use pat_admin::store::schema;
use pat_core::token::{Token, TokenHash};
use rusqlite::params;
use support::*;

/// Writes a schema-1 store as the previous release left it; returns (public key, the two
/// token values).
fn v1_store(admin: &Admin, with_tokens: bool) -> (String, Vec<String>) {
    let (dir, conn) = old_store::create(admin);
    conn.execute_batch(schema::V1).expect("schema 1");
    conn.pragma_update(None, "user_version", 1)
        .expect("version 1");

    let secret = old_store::add_key_and_alice(&conn, &dir);
    let public = secret.public_key();
    let id = public.id().to_string();
    let mut values = Vec::new();
    if with_tokens {
        for i in 0..2 {
            let value = Token::generate().expect("rng").expose().to_string();
            conn.execute(
                "INSERT INTO tokens (user, description, hash, scope_set, scope_methods, created_at)
                 VALUES ('alice', ?1, ?2, NULL, 'environment.control.stopenv', 1)",
                params![format!("old token {i}"), TokenHash::of(&value).0.as_slice()],
            )
            .expect("token");
            values.push(value);
        }
        // Format-1 snapshots, as the previous release stored them; version 7 was the last.
        for version in [6i64, 7] {
            conn.execute(
                "INSERT INTO snapshots (version, issued_at, key_id, tokens, bytes) VALUES (?1, 1, ?2, 2, ?3)",
                params![version, id, b"PATSNAP1\x01\x00 a format-1 snapshot".to_vec()],
            )
            .expect("old snapshot");
        }
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('last_version', '7')",
            [],
        )
        .expect("counter");
    }
    (public.to_string(), values)
}

fn meta(admin: &Admin, key: &str) -> Option<String> {
    admin
        .sqlite_db()
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| {
            row.get(0)
        })
        .ok()
}

#[test]
fn a_schema_1_store_is_migrated_and_signed_anew() {
    let admin = Admin::sqlite();
    let (key, values) = v1_store(&admin, true);

    // Any command migrates it.
    let shown = admin.run(&["--json", "config", "show"]);
    shown.ok();
    assert_eq!(shown.json()["last_version"], 7, "the counter survives");
    let db = admin.sqlite_db();
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .expect("user_version");
    assert_eq!(version, schema::VERSION);
    assert_eq!(schema::VERSION, 10);
    let stored: i64 = db
        .query_row("SELECT count(*) FROM snapshots", [], |row| row.get(0))
        .expect("count");
    assert_eq!(stored, 0, "format-1 snapshots are dropped");
    assert_eq!(
        meta(&admin, "state_serial").as_deref(),
        Some("1"),
        "the state has no format-2 snapshot yet"
    );
    assert_eq!(admin.tokens("alice").len(), 2, "tokens survive");

    // serve signs the migrated state by itself, above every old version.
    let serve = admin.serve();
    let snapshot = {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if serve.get("/snapshot", None).status == 200 {
                break serve.snapshot(&key);
            }
            assert!(
                std::time::Instant::now() < deadline,
                "not signed: {}",
                serve.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    assert_eq!(snapshot.version(), 8);
    for value in &values {
        assert!(snapshot.find(&TokenHash::of(value)).is_some());
    }
    // The account and key work as before: a removal is signed in its transaction.
    let id = admin.tokens("alice")[0]["id"].as_i64().expect("id");
    admin
        .confirmed(&["remove", "--user", "alice", &id.to_string()])
        .ok();
    let snapshot = serve.snapshot(&key);
    assert_eq!((snapshot.version(), snapshot.token_count()), (9, 1));
    assert_eq!(meta(&admin, "state_serial").as_deref(), Some("2"));
}

#[test]
fn a_schema_1_store_without_tokens_has_nothing_to_sign() {
    let admin = Admin::sqlite();
    v1_store(&admin, false);
    admin.run(&["config", "show"]).ok();
    assert_eq!(meta(&admin, "state_serial"), None);
    let run = admin.run(&["--json", "publish"]);
    run.ok();
    assert_eq!(
        (&run.json()["version"], &run.json()["tokens"]),
        (&1.into(), &0.into())
    );
}
