//! `key`, `edge`, `config`, `audit`, `completions`.

mod support;
use serde_json::json;
use support::*;

#[test]
fn key_generate_writes_a_private_file_and_prints_the_public_key() {
    let admin = Admin::sqlite();
    let run = admin.run(&["--json", "key", "generate"]);
    run.ok();
    let json = run.json();
    let id = json["id"].as_str().expect("id");
    let public = json["public_key"].as_str().expect("public_key");
    assert!(public.starts_with("ed25519:"), "{public}");
    assert_eq!(json["active"], true);
    assert!(
        json.get("file").is_none(),
        "the private key path stays private"
    );

    let store = admin.store();
    let key_file = store.join("keys").join(format!("{id}.key"));
    assert_eq!(mode(&key_file), 0o600);
    assert_eq!(mode(&store.join("keys")), 0o700);
    assert_eq!(mode(&store), 0o700);
    assert_eq!(mode(&store.join("pat-admin.db")), 0o600);
    let secret = std::fs::read_to_string(&key_file).expect("key file");
    assert!(
        !run.stdout.contains(secret.trim()),
        "the private key is never printed"
    );

    // Human mode prints the public key on its own line.
    let run = admin.run(&["key", "generate"]);
    let human = run.ok();
    assert!(human.contains("created and active"), "{human}");
    assert!(human.lines().any(|l| l.starts_with("ed25519:")), "{human}");
}

#[test]
fn key_list_and_activate_rotate_the_signing_key() {
    let admin = Admin::new();
    admin.init();
    assert!(
        admin
            .run(&["key", "list"])
            .ok()
            .contains("No signing keys yet")
    );
    let first = admin.key();
    let second = admin.key();
    assert_ne!(first, second);

    let list = admin.run(&["--json", "key", "list"]).json();
    let keys = list.as_array().expect("array");
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0]["public_key"], first.as_str());
    assert_eq!(keys[0]["active"], false);
    assert_eq!(keys[1]["public_key"], second.as_str());
    assert_eq!(keys[1]["active"], true, "the newest key is active");
    let first_id = keys[0]["id"].as_str().expect("id").to_string();

    let human = admin.run(&["key", "list"]).ok().to_string();
    assert_eq!(
        human
            .lines()
            .next()
            .map(|l| l.split_whitespace().collect::<Vec<_>>()),
        Some(vec!["ID", "PUBLIC", "KEY", "CREATED", "ACTIVE"])
    );

    let run = admin.run(&["--json", "key", "activate", &first_id]);
    run.ok();
    assert_eq!(run.json(), json!({"id": first_id, "active": true}));
    let list = admin.run(&["--json", "key", "list"]).json();
    let active: Vec<bool> = list
        .as_array()
        .expect("array")
        .iter()
        .map(|k| k["active"].as_bool().expect("bool"))
        .collect();
    assert_eq!(active, [true, false], "exactly one active key");

    let err = admin
        .run(&["key", "activate", "nosuchkey"])
        .fails(4)
        .to_string();
    assert!(err.contains("no signing key nosuchkey"), "{err}");
}

#[test]
fn edges_are_added_listed_and_removed() {
    let admin = Admin::new();
    admin.init();
    assert!(
        admin
            .run(&["edge", "list"])
            .ok()
            .contains("No edges configured")
    );

    let run = admin.run(&["--json", "edge", "add", "http://127.0.0.1:10001/"]);
    run.ok();
    assert_eq!(
        run.json(),
        json!(["http://127.0.0.1:10001"]),
        "trailing / dropped"
    );
    admin
        .run(&["edge", "add", "http://edge-2.internal:10001/pat"])
        .ok();
    assert_eq!(
        admin.run(&["edge", "list"]).ok(),
        "http://127.0.0.1:10001\nhttp://edge-2.internal:10001/pat\n"
    );

    let err = admin
        .run(&["edge", "add", "http://127.0.0.1:10001"])
        .fails(5)
        .to_string();
    assert!(err.contains("already configured"), "{err}");

    for bad in [
        "ftp://x",
        "127.0.0.1:1",
        "https://edge:443",
        "http://h:1/?q=1",
        "not a url",
        "",
    ] {
        let err = admin.run(&["edge", "add", bad]).fails(2).to_string();
        assert!(!err.is_empty(), "{bad:?}");
    }
    let err = admin.run(&["edge", "add", "ftp://x"]).fails(2).to_string();
    assert!(err.contains("only http://"), "{err}");

    let err = admin
        .run(&["edge", "remove", "http://127.0.0.1:9"])
        .fails(4)
        .to_string();
    assert!(err.contains("is not a configured edge"), "{err}");

    admin
        .run(&["edge", "remove", "http://127.0.0.1:10001"])
        .ok();
    assert_eq!(
        admin.run(&["--json", "edge", "list"]).json(),
        json!(["http://edge-2.internal:10001/pat"])
    );

    let actions: Vec<_> = admin.audit().iter().map(|e| e["action"].clone()).collect();
    assert_eq!(actions, ["edge.remove", "edge.add", "edge.add"]);
}

#[test]
fn config_show_and_set() {
    let admin = Admin::new();
    admin.init();
    assert_eq!(
        admin.run(&["--json", "config", "show"]).json(),
        json!({
            "max_tokens_per_account": 100,
            "max_lifetime_days": null,
            "snapshot_lifetime_secs": 86400,
            "push_timeout_secs": 10,
            "push_deadline_secs": 30,
            "last_version": null,
            "session_idle_secs": 1800,
            "session_lifetime_secs": 43200,
            "platform_url": null,
            "platform_session_cache_secs": 5,
            "platform_timeout_secs": 5,
            "platform_password_check": "signin",
            "platform_identity": "uid",
            "default_rate_limit": null,
            "max_grace_secs": 604800
        })
    );
    // The API's login session lifetimes: durations within their ranges.
    admin.run(&["config", "set", "session-idle", "10m"]).ok();
    admin.run(&["config", "set", "session-lifetime", "2d"]).ok();
    let shown = admin.run(&["--json", "config", "show"]).json();
    assert_eq!(
        (&shown["session_idle_secs"], &shown["session_lifetime_secs"]),
        (&json!(600), &json!(172800))
    );
    for (key, value) in [
        ("session-idle", "30s"),
        ("session-idle", "2d"),
        ("session-lifetime", "1m"),
        ("session-lifetime", "60d"),
        ("session-idle", "soon"),
    ] {
        admin.run(&["config", "set", key, value]).fails(2);
    }
    admin.run(&["config", "set", "session-idle", "30m"]).ok();
    admin
        .run(&["config", "set", "session-lifetime", "12h"])
        .ok();
    let human = admin.run(&["config", "show"]).ok().to_string();
    assert!(human.contains("max-tokens-per-account"), "{human}");
    assert!(
        human.contains("none (tokens may have no expiry)"),
        "{human}"
    );

    let run = admin.run(&["--json", "config", "set", "max-tokens-per-account", "7"]);
    run.ok();
    assert_eq!(run.json()["max_tokens_per_account"], 7);
    admin
        .run(&["config", "set", "max-lifetime-days", " 90 "])
        .ok();
    assert_eq!(
        admin.run(&["--json", "config", "show"]).json()["max_lifetime_days"],
        90
    );
    admin
        .run(&["config", "set", "max-lifetime-days", "none"])
        .ok();
    assert_eq!(
        admin.run(&["--json", "config", "show"]).json()["max_lifetime_days"],
        serde_json::Value::Null
    );

    for (key, bad) in [
        ("max-tokens-per-account", "0"),
        ("max-tokens-per-account", "-1"),
        ("max-tokens-per-account", "many"),
        ("max-tokens-per-account", "none"),
        ("max-lifetime-days", "0"),
        ("max-lifetime-days", "1.5"),
        ("max-lifetime-days", "99999999999"),
    ] {
        // `--`: "-1" is a value, not a flag.
        let err = admin
            .run(&["config", "set", key, "--", bad])
            .fails(2)
            .to_string();
        assert!(
            err.contains("not a whole number of at least 1"),
            "{key} {bad}: {err}"
        );
    }
    let err = admin
        .run(&["config", "set", "max-colour", "3"])
        .fails(2)
        .to_string();
    assert!(
        err.contains("max-tokens-per-account"),
        "lists the settings: {err}"
    );
    assert_eq!(
        admin.run(&["--json", "config", "show"]).json()["max_tokens_per_account"],
        7,
        "bad values changed nothing"
    );
}

#[test]
fn audit_lists_changes_newest_first_without_values() {
    let admin = Admin::new();
    admin.init();
    assert_eq!(admin.run(&["audit"]).ok(), "The audit log is empty.\n");
    admin.user("alice");
    let (id, token) = admin.token("alice", &["--api", "marketplace"]);
    admin
        .run(&["config", "set", "max-lifetime-days", "30"])
        .ok();
    admin.run(&["edge", "add", "http://127.0.0.1:10001"]).ok();

    let entries = admin.audit();
    let actions: Vec<_> = entries.iter().map(|e| e["action"].clone()).collect();
    assert_eq!(
        actions,
        ["edge.add", "config.set", "token.generate", "user.add"]
    );
    assert_eq!(entries[2]["account"], "alice");
    assert_eq!(entries[2]["token_id"], id);
    assert!(
        entries[2]["detail"]
            .as_str()
            .expect("detail")
            .contains("marketplace")
    );
    assert_eq!(entries[1]["detail"], "max-lifetime-days = 30");
    assert!(
        entries
            .iter()
            .all(|e| !e["actor"].as_str().unwrap_or("").is_empty())
    );

    let run = admin.run(&["--json", "audit", "--user", "alice"]);
    let mine: Vec<_> = run
        .json()
        .as_array()
        .expect("array")
        .iter()
        .map(|e| e["action"].clone())
        .collect();
    assert_eq!(mine, ["token.generate", "user.add"]);
    let run = admin.run(&["--json", "audit", "--limit", "1"]);
    assert_eq!(run.json().as_array().expect("array").len(), 1);

    let human = admin.run(&["audit"]).ok().to_string();
    assert_eq!(
        human
            .lines()
            .next()
            .map(|l| l.split_whitespace().collect::<Vec<_>>()),
        Some(vec!["AT", "ACTOR", "ACCOUNT", "ACTION", "TOKEN", "DETAIL"])
    );
    assert!(
        !human.contains(&token) && !human.contains("pate_"),
        "{human}"
    );
}

#[test]
fn completions_print_a_script() {
    let admin = Admin::new();
    let script = admin.run(&["completions", "bash"]).ok().to_string();
    assert!(script.contains("pat-admin"), "{script}");
    assert!(script.contains("regenerate") && script.contains("--password-stdin"));
    let zsh = admin.run(&["completions", "zsh"]).ok().to_string();
    assert!(zsh.contains("#compdef pat-admin"), "{zsh}");
    admin.run(&["completions", "tcsh"]).fails(2);
    assert!(!admin.store().exists(), "completions need no store");
}
