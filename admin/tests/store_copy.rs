//! `pat-admin store copy --to`: a SQLite store with grace windows, allowlists and a long
//! delta chain moved into PostgreSQL (and into another directory) is the same store: the
//! same tokens, audit log, settings and signed chain, the old values still working in
//! their windows, no id reused, and the next change a delta on the chain it came with. A
//! target that holds anything is refused and left as it was.
//!
//! The PostgreSQL cases need a server (`PAT_TEST_POSTGRES`, which `scripts/test` starts
//! for both engines' runs); without one they say so and stop.

mod support;

use pat_core::snapshot::Kind;
use serde_json::Value;
use support::*;

const SCOPE: &[&str] = &["--method", "environment.control.stopenv"];

/// A store worth copying: two accounts, a key, tokens with an allowlist, one regenerated
/// with a grace window, one removed, and 25 edits (a chain of 25+ deltas).
fn busy_sqlite_store() -> (Admin, String, String) {
    let admin = Admin::sqlite();
    admin.user("alice");
    admin.user("bob");
    let key = admin.key();
    admin
        .run(&["config", "set", "max-tokens-per-account", "50"])
        .ok();
    let (limited, _) = admin.token("alice", SCOPE);
    admin
        .confirmed(&[
            "edit",
            "--user",
            "alice",
            &limited.to_string(),
            "--allow-ip",
            "10.0.0.0/8",
            "--allow-ip",
            "2001:db8::/32",
            "--env",
            "my-app",
            "--rate-limit",
            "10/s",
        ])
        .ok();
    admin
        .run(&["config", "set", "default-rate-limit", "600/min"])
        .ok();
    let (graced, old_value) = admin.token("alice", SCOPE);
    admin
        .confirmed(&[
            "--json",
            "regenerate",
            "--user",
            "alice",
            &graced.to_string(),
            "--grace",
            "1d",
        ])
        .ok();
    let (removed, _) = admin.token("bob", SCOPE);
    admin
        .confirmed(&["remove", "--user", "bob", &removed.to_string()])
        .ok();
    for i in 0..25 {
        admin
            .confirmed(&[
                "edit",
                "--user",
                "alice",
                &limited.to_string(),
                "--description",
                &format!("edit {i}"),
            ])
            .ok();
    }
    (admin, key, old_value)
}

/// Everything `list` and `audit` show, and the settings.
fn views(admin: &Admin) -> (Value, Vec<Value>, Value) {
    let list = admin.run(&["--json", "list"]);
    let config = admin.run(&["--json", "config", "show"]);
    let audit = admin.run(&["--json", "audit", "--limit", "100000"]);
    (
        list.json(),
        audit.json().as_array().expect("audit").clone(),
        config.json(),
    )
}

fn copy_into(source: &Admin, target: &Admin) -> Run {
    source.run(&["--json", "store", "copy", "--to", &target.store_arg()])
}

/// A PostgreSQL database of its own, or `None` (and a note) without a server.
fn postgres_target() -> Option<Admin> {
    if std::env::var_os("PAT_TEST_POSTGRES").is_none() {
        eprintln!("PAT_TEST_POSTGRES is not set: no PostgreSQL server to copy into");
        return None;
    }
    Some(Admin {
        dir: tempfile::TempDir::new().expect("temp dir"),
        pg: Some(PgDatabase::create()),
    })
}

fn assert_same_store(source: &Admin, target: &Admin, key: &str, old_value: &str) {
    let (list, audit, config) = views(source);
    let (list2, audit2, config2) = views(target);
    assert_eq!(list2, list, "the same tokens, ids, allowlists and windows");
    assert!(
        list.as_array()
            .expect("list")
            .iter()
            .any(|t| t["envs"] == serde_json::json!(["my-app"]) && t["rate_limit"] == "10/s"),
        "environment lists and rate limits are copied: {list}"
    );
    assert_eq!(config["default_rate_limit"], "600/min");
    assert_eq!(config2, config, "the same settings");
    assert_eq!(
        audit2.len(),
        audit.len() + 1,
        "every entry, and the copy's own"
    );
    assert_eq!(audit2[0]["action"], "store.copy");
    assert_eq!(&audit2[1..], &audit[..], "the same audit log");
    // The same signed chain: what an edge holds goes on from there.
    let served = source.served(key);
    let served2 = target.served(key);
    assert_eq!(served2.version(), served.version());
    assert_eq!(served2.hashes(), served.hashes());
    // The previous value still works in its window, on the copy too.
    let looked_up = target.run_with(&["--json", "lookup"], &format!("{old_value}\n"));
    looked_up.ok();
    let found = &looked_up.json()[0];
    assert!(
        found["found"] == true && found["old_value"] == true && found["status"] == "active",
        "the old value is found in its window: {found}"
    );
    // The next change is a delta on the copied chain, and no id is reused.
    let (id, _) = target.token("alice", SCOPE);
    let max_before = list
        .as_array()
        .expect("list")
        .iter()
        .map(|t| t["id"].as_i64().expect("id"))
        .max()
        .expect("tokens");
    assert!(
        id > max_before + 1,
        "id {id} is above every id ever handed out (one was removed)"
    );
    let latest = target.latest_document(key);
    assert_eq!(latest.header().version, served.version() + 1);
    assert_eq!(
        latest.header().kind,
        Kind::Delta,
        "a delta on the copied chain"
    );
}

#[test]
fn a_busy_sqlite_store_moves_to_postgres_whole() {
    let Some(target) = postgres_target() else {
        return;
    };
    let (source, key, old_value) = busy_sqlite_store();
    let before = views(&source);
    let run = copy_into(&source, &target);
    let json = run.json();
    assert_eq!(json["keys"], 1, "{}", run.stdout);
    assert!(
        !json["to"].as_str().expect("to").contains(KEY_SECRET),
        "no secret in the output"
    );
    assert!(views(&source) == before, "the source is not changed");
    // The private key is sealed in the target, not in the clear.
    let secret_file = std::fs::read_to_string(
        std::fs::read_dir(source.store().join("keys"))
            .expect("keys")
            .next()
            .expect("a key file")
            .expect("entry")
            .path(),
    )
    .expect("key text");
    for (table, bytes) in target.store_files() {
        assert!(
            !bytes
                .windows(secret_file.trim().len())
                .any(|w| w == secret_file.trim().as_bytes()),
            "the private key is in the clear in {}",
            table.display()
        );
    }
    assert_same_store(&source, &target, &key, &old_value);
}

#[test]
fn a_store_copied_into_a_directory_keeps_its_keys_in_private_files() {
    let (source, key, old_value) = busy_sqlite_store();
    let target = Admin::sqlite();
    copy_into(&source, &target).ok();
    let keys: Vec<_> = std::fs::read_dir(target.store().join("keys"))
        .expect("keys dir")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(keys.len(), 1);
    assert_eq!(mode(&keys[0]), 0o600);
    assert_same_store(&source, &target, &key, &old_value);
}

#[test]
fn a_target_that_holds_anything_is_refused_and_left_as_it_was() {
    let (source, _, _) = busy_sqlite_store();
    let target = postgres_target().unwrap_or_else(Admin::sqlite);
    target.user("carol");
    let before = views(&target);
    let err = copy_into(&source, &target).fails(5).to_string();
    assert!(err.contains("not empty") && err.contains("users"), "{err}");
    assert_eq!(views(&target), before, "nothing copied");
    let same = source.run(&["store", "copy", "--to", &source.store_arg()]);
    assert!(
        same.fails(2).contains("is the store being copied"),
        "{}",
        same.stderr
    );
}
