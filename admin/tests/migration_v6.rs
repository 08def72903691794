//! A store written by an earlier pat-admin (schema 5: full snapshots and deltas in
//! snapshot format 3) is migrated in place to schema 6 and on: tokens get no network limit
//! and no previous value, everything else survives. Schema 6 kept the documents (format 3
//! already carried networks); schema 10 drops them (snapshot format 4), so the next change
//! is a full snapshot above the stored version, with the new parameters in it.

mod support;

use pat_admin::store::schema;
use pat_core::method::MethodName;
use pat_core::snapshot::{Kind, SnapshotBuilder, Stamp, StateOf, TokenSpec};
use pat_core::token::{Token, TokenHash};
use rusqlite::params;
use serde_json::json;
use support::*;

/// The version of the full snapshot the schema-5 store holds.
const VERSION: u64 = 41;

/// Writes a schema-5 store as the previous release left it, with two tokens published in a
/// full snapshot at [`VERSION`]; returns (public key, token values).
fn v5_store(admin: &Admin) -> (String, Vec<String>) {
    let (dir, mut conn) = old_store::create(admin);
    let tx = conn.transaction().expect("tx");
    schema::migrate_sqlite_to(&tx, 5).expect("schema 5");
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(version, 5);

    let secret = old_store::add_key_and_alice(&tx, &dir);
    let public = secret.public_key();
    let key_id = public.id().to_string();

    let scope = [MethodName::parse("environment.control.stopenv").expect("method")];
    let mut builder = SnapshotBuilder::new();
    let mut values = Vec::new();
    for i in 0..2 {
        let value = Token::generate().expect("rng").expose().to_string();
        tx.execute(
            "INSERT INTO tokens (user, description, hash, scope_set, scope_methods, created_at, in_state)
             VALUES ('alice', ?1, ?2, NULL, 'environment.control.stopenv', 1, 1)",
            params![format!("old token {i}"), TokenHash::of(&value).0.as_slice()],
        )
        .expect("token");
        builder
            .add(TokenSpec {
                hash: TokenHash::of(&value),
                id: u64::try_from(tx.last_insert_rowid()).expect("id"),
                user: "alice",
                expires_at: None,
                scope: &scope,
                networks: &[],
                envs: None,
                rate_limit: None,
            })
            .expect("add");
        values.push(value);
    }
    // The full snapshot the previous release signed for them, as it stored it.
    let issued_at = now_ms() / 1000;
    let stamp = Stamp::lasting(VERSION, issued_at, 86_400);
    let built = builder
        .build(stamp, StateOf::Genesis, &secret)
        .expect("build");
    let head = &built.bytes[..pat_core::snapshot::BODY_OFFSET];
    tx.execute(
        "INSERT INTO snapshots (version, kind, base_version, chain, state_id, issued_at, expires_at, key_id, state_serial, tokens, len, head, bytes)
         VALUES (?1, 'full', NULL, ?1, ?2, ?3, ?4, ?5, 2, 2, ?6, ?7, ?8)",
        params![
            VERSION as i64,
            built.state_id.as_slice(),
            issued_at as i64,
            stamp.expires_at as i64,
            key_id,
            built.bytes.len() as i64,
            head,
            built.bytes,
        ],
    )
    .expect("document");
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
fn a_schema_5_store_is_migrated_in_place_and_its_chain_goes_on() {
    let admin = Admin::sqlite();
    let (key, values) = v5_store(&admin);
    // The edge's state before: the stored full snapshot.
    assert_eq!(admin.served(&key).documents, [(VERSION, Kind::Full)]);

    let tokens = admin.tokens("alice");
    assert_eq!(
        count(&admin, "PRAGMA user_version"),
        pat_admin::store::schema::VERSION
    );
    assert_eq!(tokens.len(), 2, "tokens survive");
    for t in &tokens {
        assert_eq!(t["allowed_ips"], json!([]), "no limit");
        assert!(t["old_value_expires_at"].is_null(), "no old value");
    }
    assert_eq!(
        count(&admin, "SELECT count(*) FROM snapshots"),
        0,
        "format-3 documents are dropped by schema 10"
    );
    assert_eq!(
        count(
            &admin,
            "SELECT count(*) FROM tokens WHERE networks = '' AND old_hash IS NULL AND old_in_state = 0 AND in_state = 1"
        ),
        2
    );

    // The next change is a full snapshot above the stored version, carrying the new list.
    let (id, value) = admin.token(
        "alice",
        &[
            "--method",
            "environment.Control.StopEnv",
            "--allow-ip",
            "127.0.0.2",
        ],
    );
    let served = admin.served(&key);
    assert_eq!(served.documents, [(VERSION + 1, Kind::Full)]);
    assert_eq!(served.token_count(), 3);
    let limited = served.find(&TokenHash::of(&value)).expect("the new token");
    assert!(limited.allows_address("127.0.0.2".parse().expect("ip")));
    assert!(!limited.allows_address("127.0.0.1".parse().expect("ip")));
    for old in &values {
        assert!(
            !served
                .find(&TokenHash::of(old))
                .expect("an old token")
                .is_address_limited()
        );
    }
    // A migrated token can be regenerated with a grace window.
    let old_id = tokens[0]["id"].as_i64().expect("id");
    let run = admin.confirmed(&[
        "--json",
        "regenerate",
        "--user",
        "alice",
        &old_id.to_string(),
        "--grace",
        "1h",
    ]);
    run.ok();
    let new = run.json()["token"].as_str().expect("value").to_string();
    let served = admin.served(&key);
    assert_eq!(served.token_count(), 4);
    assert_eq!(
        served
            .find(&TokenHash::of(&values[0]))
            .expect("old value")
            .id(),
        served.find(&TokenHash::of(&new)).expect("new value").id()
    );
    assert_ne!(id, old_id);
}
