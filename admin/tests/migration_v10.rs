//! A store written by the previous pat-admin (schema 9: documents in snapshot format 3) is
//! migrated in place to schema 10: tokens get no environment list and no rate limit of their
//! own, accounts, keys, tokens and the version counter survive; the stored documents, which
//! no edge accepts any more (format 4 now), are dropped and the state serial moves on, so
//! `publish` (and `serve`) sign a full snapshot at once, above every version handed out
//! before; later changes are deltas on it.

mod support;

use pat_admin::store::schema;
use pat_core::snapshot::Kind;
use pat_core::token::{Token, TokenHash};
use rusqlite::params;
use serde_json::{Value, json};
use support::*;

/// The last version the schema-9 store handed out.
const VERSION: u64 = 41;

/// Writes a schema-9 store as the previous release left it: two tokens (one limited to a
/// client network) and a stored document at [`VERSION`] built from state serial 2; returns
/// (public key, token values).
fn v9_store(admin: &Admin) -> (String, Vec<String>) {
    let (dir, mut conn) = old_store::create(admin);
    let tx = conn.transaction().expect("tx");
    schema::migrate_sqlite_to(&tx, 9).expect("schema 9");
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(version, 9);
    let secret = old_store::add_key_and_alice(&tx, &dir);
    let public = secret.public_key();
    let mut values = Vec::new();
    for (i, networks) in ["", "127.0.0.2/32"].into_iter().enumerate() {
        let value = Token::generate().expect("rng").expose().to_string();
        tx.execute(
            "INSERT INTO tokens (user, description, hash, scope_set, scope_methods, created_at, in_state, networks)
             VALUES ('alice', ?1, ?2, NULL, 'environment.control.stopenv', 1, 1, ?3)",
            params![
                format!("old token {i}"),
                TokenHash::of(&value).0.as_slice(),
                networks
            ],
        )
        .expect("token");
        values.push(value);
    }
    // A format-3 document, as schema 9 stored it (its bytes no longer matter).
    let bytes = b"PATSNAP1\x03\x00 a format-3 snapshot".to_vec();
    tx.execute(
        "INSERT INTO snapshots (version, kind, base_version, chain, state_id, issued_at, expires_at, key_id, state_serial, tokens, len, head, bytes)
         VALUES (?1, 'full', NULL, ?1, ?2, 1, 4102444800, ?3, 2, 2, ?4, ?5, ?5)",
        params![
            VERSION as i64,
            [0u8; 32].as_slice(),
            public.id().to_string(),
            bytes.len() as i64,
            bytes,
        ],
    )
    .expect("document");
    tx.execute(
        "INSERT INTO token_changes (token_id, old_hash) VALUES (1, NULL)",
        [],
    )
    .expect("a pending change");
    for (key, value) in [
        ("last_version", VERSION.to_string()),
        ("state_serial", "2".into()),
    ] {
        tx.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)",
            params![key, value],
        )
        .expect("meta");
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
fn a_schema_9_store_is_migrated_and_the_next_publish_is_a_full_snapshot() {
    let admin = Admin::sqlite();
    let (key, values) = v9_store(&admin);

    // Any command migrates it.
    let tokens = admin.tokens("alice");
    assert_eq!(count(&admin, "PRAGMA user_version"), schema::VERSION);
    assert_eq!(schema::VERSION, 10);
    assert_eq!(tokens.len(), 2, "tokens survive");
    for t in &tokens {
        assert_eq!(
            (&t["envs"], &t["rate_limit"], &t["effective_rate_limit"]),
            (&Value::Null, &Value::Null, &Value::Null),
            "no environment list, no rate limit"
        );
    }
    assert_eq!(tokens[1]["allowed_ips"], json!(["127.0.0.2/32"]));
    assert_eq!(
        count(
            &admin,
            "SELECT count(*) FROM tokens WHERE envs = '' AND rate_limit IS NULL"
        ),
        2
    );
    assert_eq!(
        count(&admin, "SELECT count(*) FROM snapshots"),
        0,
        "format-3 documents are dropped"
    );
    assert_eq!(count(&admin, "SELECT count(*) FROM token_changes"), 0);
    assert_eq!(admin.state_serial(), 3, "the state moved on");
    let shown = admin.run(&["--json", "config", "show"]).json();
    assert_eq!(shown["last_version"], VERSION, "the counter survives");

    // publish signs a full snapshot at once, above every version handed out before.
    let run = admin.run(&["--json", "publish"]);
    run.ok();
    let published = run.json();
    assert_eq!(published["version"], VERSION + 1, "{published}");
    assert_eq!(published["built"], true);
    let served = admin.served(&key);
    assert_eq!(served.documents, [(VERSION + 1, Kind::Full)]);
    assert_eq!(served.token_count(), 2);
    let limited = served.find(&TokenHash::of(&values[1])).expect("published");
    assert!(limited.allows_address("127.0.0.2".parse().expect("ip")));
    assert!(limited.envs().is_unrestricted());
    assert_eq!(limited.rate_limit(), None);

    // The next change is a delta on it, carrying the new fields.
    let (_, value) = admin.token(
        "alice",
        &[
            "--method",
            "environment.Control.StopEnv",
            "--env",
            "my-app",
            "--rate-limit",
            "3/s",
        ],
    );
    let served = admin.served(&key);
    assert_eq!(
        served.documents,
        [(VERSION + 1, Kind::Full), (VERSION + 2, Kind::Delta)]
    );
    let new = served.find(&TokenHash::of(&value)).expect("the new token");
    assert_eq!(new.envs().names().collect::<Vec<_>>(), ["my-app"]);
    assert_eq!(new.rate_limit(), Some("3/s".parse().expect("limit")));
    assert!(new.method_acts_on_env("environment.control.stopenv"));
}
