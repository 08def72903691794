//! A store written by an earlier pat-admin (schema 4: one full snapshot per version, in
//! snapshot format 2) is migrated in place to schema 5 and on to the current one: accounts,
//! keys, tokens, sessions and the version counter survive; the old snapshots, which no edge
//! accepts any more, are dropped; tokens get "last used" (none yet); and the next document
//! is a full snapshot above every version handed out before, after which changes are
//! deltas.

mod support;

use pat_admin::store::schema;
use pat_core::snapshot::Kind;
use pat_core::token::{Token, TokenHash};
use rusqlite::params;
use support::*;

/// Writes a schema-4 store as the previous release left it; returns (public key, token
/// values).
fn v4_store(admin: &Admin, with_snapshots: bool) -> (String, Vec<String>) {
    let (dir, mut conn) = old_store::create(admin);
    let tx = conn.transaction().expect("tx");
    schema::migrate_sqlite_to(&tx, 4).expect("schema 4");
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(version, 4);

    let secret = old_store::add_key_and_alice(&tx, &dir);
    let public = secret.public_key();
    let id = public.id().to_string();
    tx.execute(
        "INSERT INTO sessions (hash, user, created_at, last_used_at, client) VALUES (?1, 'alice', 1, 1, '192.0.2.1')",
        [vec![7u8; 32]],
    )
    .expect("session");
    let mut values = Vec::new();
    if with_snapshots {
        for i in 0..2 {
            let value = Token::generate().expect("rng").expose().to_string();
            tx.execute(
                "INSERT INTO tokens (user, description, hash, scope_set, scope_methods, created_at)
                 VALUES ('alice', ?1, ?2, NULL, 'environment.control.stopenv', 1)",
                params![format!("old token {i}"), TokenHash::of(&value).0.as_slice()],
            )
            .expect("token");
            values.push(value);
        }
        // Format-2 snapshots, as schema 4 stored them; version 7 was the last.
        for version in [6i64, 7] {
            tx.execute(
                "INSERT INTO snapshots (version, issued_at, expires_at, key_id, state_serial, tokens, head, bytes)
                 VALUES (?1, 1, 86401, ?2, 3, 2, ?3, ?3)",
                params![version, id, b"PATSNAP1\x02\x00 a format-2 snapshot".to_vec()],
            )
            .expect("old snapshot");
        }
        for (key, value) in [("last_version", "7"), ("state_serial", "3")] {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                params![key, value],
            )
            .expect("meta");
        }
    }
    tx.commit().expect("commit");
    (public.to_string(), values)
}

fn count(admin: &Admin, sql: &str) -> i64 {
    admin
        .sqlite_db()
        .query_row(sql, [], |r| r.get(0))
        .expect(sql)
}

#[test]
fn a_schema_4_store_is_migrated_and_signed_anew_then_changes_are_deltas() {
    let admin = Admin::sqlite();
    let (key, values) = v4_store(&admin, true);

    let shown = admin.run(&["--json", "config", "show"]);
    shown.ok();
    assert_eq!(shown.json()["last_version"], 7, "the counter survives");
    assert_eq!(count(&admin, "PRAGMA user_version"), schema::VERSION);
    assert_eq!(
        count(&admin, "SELECT count(*) FROM snapshots"),
        0,
        "format 2 is dropped"
    );
    assert_eq!(
        count(&admin, "SELECT count(*) FROM sessions"),
        1,
        "sessions survive"
    );
    assert_eq!(count(&admin, "SELECT count(*) FROM token_changes"), 0);
    assert_eq!(count(&admin, "SELECT count(*) FROM edge_keys"), 0);
    let tokens = admin.tokens("alice");
    assert_eq!(tokens.len(), 2, "tokens survive");
    assert!(tokens.iter().all(|t| t["last_used_at"].is_null()));

    // publish signs a full snapshot above every old version.
    let run = admin.run(&["--json", "publish"]);
    run.ok();
    assert_eq!(
        (
            &run.json()["version"],
            &run.json()["kind"],
            &run.json()["tokens"]
        ),
        (&8.into(), &"full".into(), &2.into())
    );
    let serve = admin.serve();
    let served = serve.snapshot(&key);
    assert_eq!(served.documents, [(8, Kind::Full)]);
    for value in &values {
        assert!(served.find(&TokenHash::of(value)).is_some());
    }
    // The account and key work as before; the next change is a delta on it.
    let id = tokens[0]["id"].as_i64().expect("id");
    admin
        .confirmed(&["remove", "--user", "alice", &id.to_string()])
        .ok();
    let served = serve.snapshot(&key);
    assert_eq!(served.documents, [(8, Kind::Full), (9, Kind::Delta)]);
    assert_eq!(served.token_count(), 1);
    // Edge keys can be registered now.
    admin.edge_key("edge-1");
}

#[test]
fn a_schema_4_store_that_published_nothing_waits_for_a_first_document() {
    let admin = Admin::sqlite();
    v4_store(&admin, false);
    admin.run(&["config", "show"]).ok();
    assert_eq!(count(&admin, "PRAGMA user_version"), schema::VERSION);
    assert_eq!(
        count(
            &admin,
            "SELECT count(*) FROM meta WHERE key = 'state_serial'"
        ),
        0,
        "nothing to sign"
    );
    let run = admin.run(&["--json", "publish"]);
    run.ok();
    assert_eq!(
        (
            &run.json()["version"],
            &run.json()["kind"],
            &run.json()["tokens"]
        ),
        (&1.into(), &"full".into(), &0.into())
    );
}

#[test]
fn a_newer_schema_is_refused() {
    let admin = Admin::sqlite();
    v4_store(&admin, false);
    admin
        .sqlite_db()
        .pragma_update(None, "user_version", schema::VERSION + 1)
        .expect("from the future");
    let err = admin.run(&["config", "show"]).fails(1).to_string();
    assert!(
        err.contains(&format!("schema version {}", schema::VERSION + 1)) && err.contains("newer"),
        "{err}"
    );
}
