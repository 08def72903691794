//! `edge key generate|list|remove`: an edge's own Ed25519 key, whose secret goes once to a
//! new 0600 file (never overwritten, never printed, never stored) and whose public key is
//! registered (audited) so `serve` takes the usage reports it signs.

mod support;

use pat_core::keys::{PublicKey, SigningKey};
use support::*;

#[test]
fn a_key_is_generated_into_a_new_private_file_and_registered() {
    let admin = Admin::new();
    // It sets a store up, like `edge add`.
    let file = admin.dir.path().join("edge-1.key");
    let run = admin.run(&[
        "--json",
        "edge",
        "key",
        "generate",
        "--name",
        "edge-1",
        "--output",
        file.to_str().expect("utf-8"),
    ]);
    run.ok();
    let json = run.json();
    assert_eq!(mode(&file), 0o600);
    let text = std::fs::read_to_string(&file).expect("key file");
    let secret = SigningKey::from_secret_text(&text).expect("the secret text form");
    let public: PublicKey = json["public_key"]
        .as_str()
        .expect("public key")
        .parse()
        .expect("a public key");
    assert_eq!(
        secret.public_key(),
        public,
        "the file holds the registered key"
    );
    assert_eq!(json["id"], public.id().to_string());
    assert_eq!(json["name"], "edge-1");
    assert_eq!(json["last_report_at"], serde_json::Value::Null);
    assert_eq!(json["file"], file.to_str().expect("utf-8"));

    // The secret is nowhere else: not in the output, the audit log, or the store.
    let secret_part = text
        .trim()
        .trim_start_matches("ed25519-secret:")
        .to_string();
    assert!(!run.stdout.contains(&secret_part) && !run.stderr.contains(&secret_part));
    for (path, bytes) in admin.store_files() {
        assert_eq!(
            occurrences(&bytes, secret_part.as_bytes()),
            0,
            "{}",
            path.display()
        );
        assert_eq!(
            occurrences(&bytes, b"ed25519-secret"),
            0,
            "{}",
            path.display()
        );
    }
    let audit = admin.audit();
    assert_eq!(audit[0]["action"], "edge-key.generate");
    assert!(
        audit[0]["detail"]
            .as_str()
            .expect("detail")
            .contains("edge-1"),
        "{audit:?}"
    );

    // Human output names the file and the public key, never the secret.
    let other = admin.dir.path().join("edge-2.key");
    let human = admin.run(&[
        "edge",
        "key",
        "generate",
        "--name",
        "edge-2",
        "--output",
        other.to_str().expect("utf-8"),
    ]);
    let out = human.ok().to_string();
    assert!(
        out.contains("PAT_EDGE_KEY") && out.contains("ed25519:"),
        "{out}"
    );
    let other_secret = std::fs::read_to_string(&other).expect("file");
    assert!(!out.contains(other_secret.trim()));

    // Listed, oldest first.
    let list = admin.run(&["--json", "edge", "key", "list"]);
    list.ok();
    let names: Vec<_> = list
        .json()
        .as_array()
        .expect("array")
        .iter()
        .map(|k| k["name"].as_str().expect("name").to_string())
        .collect();
    assert_eq!(names, ["edge-1", "edge-2"]);
    let table = admin.run(&["edge", "key", "list"]).ok().to_string();
    assert!(
        table.contains("LAST REPORT") && table.contains("never"),
        "{table}"
    );
}

#[test]
fn files_names_and_ids_are_checked() {
    let admin = Admin::new();
    let file = admin.dir.path().join("edge.key");
    let generate = |name: &str, path: &std::path::Path| {
        admin.run(&[
            "edge",
            "key",
            "generate",
            "--name",
            name,
            "--output",
            path.to_str().expect("utf-8"),
        ])
    };
    generate("edge-1", &file).ok();
    let first = std::fs::read(&file).expect("file");

    // An existing file is never overwritten (and nothing is registered).
    let err = generate("edge-9", &file).fails(5).to_string();
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(std::fs::read(&file).expect("file"), first);
    // A name in use (any case) is refused before any file is written.
    let fresh = admin.dir.path().join("fresh.key");
    let err = generate("EDGE-1", &fresh).fails(5).to_string();
    assert!(err.contains("already registered"), "{err}");
    assert!(!fresh.exists());
    // Names are checked.
    for bad in ["", "has space", "ümlaut", &"x".repeat(65)] {
        generate(bad, &fresh).fails(2);
        assert!(!fresh.exists());
    }
    // A directory that does not exist: exit 1, nothing registered.
    generate("edge-2", &admin.dir.path().join("missing/dir/edge.key")).fails(1);
    let list = admin.run(&["--json", "edge", "key", "list"]);
    assert_eq!(list.json().as_array().expect("array").len(), 1);

    // Removal by id, audited; an unknown id is not found.
    let id = list.json()[0]["id"].as_str().expect("id").to_string();
    admin
        .run(&["edge", "key", "remove", "0000000000000000"])
        .fails(4);
    let removed = admin.run(&["--json", "edge", "key", "remove", &id]);
    removed.ok();
    assert_eq!(removed.json()["name"], "edge-1");
    assert_eq!(admin.audit()[0]["action"], "edge-key.remove");
    assert!(
        admin
            .run(&["--json", "edge", "key", "list"])
            .json()
            .as_array()
            .expect("array")
            .is_empty()
    );
    // The name is free again.
    generate("edge-1", &fresh).ok();
}
