//! `list`, `show`, `edit`, `regenerate`, `copy`, `remove`.

mod support;
use serde_json::{Value, json};
use support::*;

/// The token with this id in `list --json`.
fn listed(admin: &Admin, user: &str, id: i64) -> Value {
    admin
        .tokens(user)
        .into_iter()
        .find(|t| t["id"] == id)
        .unwrap_or_else(|| panic!("token {id} is listed"))
}

#[test]
fn list_shows_every_token_with_its_columns() {
    let admin = Admin::new();
    admin.user("alice");
    let day = date_in(5);
    let (first, _) = admin.token("alice", &["--api", "marketplace", "--expires-at", &day]);
    let (second, _) = admin.token("alice", &["--method", "env.control.stopenv"]);
    admin.expire(second);

    let human = admin.run(&["list", "--user", "alice"]).ok().to_string();
    let lines: Vec<&str> = human.lines().collect();
    assert_eq!(lines.len(), 3, "{human}");
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        [
            "ID",
            "DESCRIPTION",
            "SCOPE",
            "ALLOWED",
            "IPS",
            "ENVIRONMENTS",
            "RATE",
            "LIMIT",
            "EXPIRES",
            "EXPIRES",
            "IN",
            "CREATED",
            "LAST",
            "USED",
            "STATUS"
        ]
    );
    assert!(lines[1].starts_with(&format!("{first} ")), "{human}");
    for cell in ["test token", "Marketplace", day.as_str(), "never", "active"] {
        assert!(lines[1].contains(cell), "{cell} in {human}");
    }
    assert!(lines[2].starts_with(&format!("{second} ")), "{human}");
    for cell in ["environment.Control.StopEnv", "expired"] {
        assert!(lines[2].contains(cell), "{cell} in {human}");
    }

    let json = admin.tokens("alice");
    assert_eq!(json.len(), 2);
    assert_eq!(json[0]["id"], first);
    assert_eq!(json[0]["valid_through"], day.as_str());
    assert_eq!(json[0]["status"], "active");
    assert_eq!(json[0]["last_used_at"], Value::Null, "never used");
    assert_eq!(json[0]["last_used_ip"], Value::Null);
    assert_eq!(json[1]["id"], second);
    assert_eq!(json[1]["status"], "expired");
    assert_eq!(
        json[1]["scope"]["methods"],
        json!(["environment.Control.StopEnv"])
    );

    let err = admin.run(&["list", "--user", "ghost"]).fails(4).to_string();
    assert!(err.contains("no account named ghost"), "{err}");
}

#[test]
fn show_lists_every_method_in_catalogue_spelling() {
    let admin = Admin::new();
    admin.user("alice");
    admin.user("bob");
    let (id, _) = admin.token(
        "alice",
        &["--method", "env.control.stopenv,STORAGE.UPLOADER.UPLOAD"],
    );
    let id_text = id.to_string();

    let human = admin
        .run(&["show", "--user", "alice", &id_text])
        .ok()
        .to_string();
    assert!(human.contains("2 methods"), "{human}");
    assert!(human.contains("never"), "no expiry: {human}");
    let methods = human.split("Methods:\n").nth(1).expect("a Methods section");
    assert_eq!(
        methods,
        "  environment.Control.StopEnv\n  storage.Uploader.Upload\n"
    );

    let json = admin
        .run(&["--json", "show", "--user", "alice", &id_text])
        .json();
    assert_eq!(json["id"], id);
    assert_eq!(json["user"], "alice");
    assert_eq!(
        json["scope"]["methods"],
        json!(["environment.Control.StopEnv", "storage.Uploader.Upload"])
    );

    let err = admin
        .run(&["show", "--user", "alice", "99"])
        .fails(4)
        .to_string();
    assert!(err.contains("alice has no token 99"), "{err}");
    // Another account's token is not found either.
    let err = admin
        .run(&["show", "--user", "bob", &id_text])
        .fails(4)
        .to_string();
    assert!(err.contains(&format!("bob has no token {id}")), "{err}");
}

#[test]
fn edit_changes_parameters_but_not_the_value() {
    let admin = Admin::new();
    admin.user("alice");
    let (id, _) = admin.token("alice", &["--api", "marketplace"]);
    let id_text = id.to_string();
    let hash = admin.stored_hash(id);
    let edit = |extra: &[&str]| {
        let mut args = vec!["--json", "edit", "--user", "alice", id_text.as_str()];
        args.extend_from_slice(extra);
        admin.confirmed(&args)
    };

    let day = date_in(7);
    let run = edit(&[
        "--description",
        "renamed",
        "--expires-at",
        &day,
        "--method",
        "env.control.stopenv",
    ]);
    run.ok();
    let json = run.json();
    assert_eq!(json["id"], id);
    assert_eq!(json["description"], "renamed");
    assert_eq!(json["valid_through"], day.as_str());
    assert_eq!(json["scope"]["set"], Value::Null);
    assert_eq!(
        json["scope"]["methods"],
        json!(["environment.Control.StopEnv"])
    );
    assert!(json.get("token").is_none(), "edit never shows a value");

    edit(&["--no-expiry", "--api", "ide-plugins"]).ok();
    let token = listed(&admin, "alice", id);
    assert_eq!(token["expires_at"], Value::Null);
    assert_eq!(token["scope"]["set"], "ide-plugins");
    assert_eq!(token["description"], "renamed", "untouched fields are kept");
    assert_eq!(admin.stored_hash(id), hash, "the value stays the same");

    let actions: Vec<_> = admin.audit().iter().map(|e| e["action"].clone()).collect();
    assert_eq!(actions[..2], ["token.edit", "token.edit"]);
}

#[test]
fn edit_refuses_nothing_conflicts_bad_input_and_wrong_passwords() {
    let admin = Admin::new();
    admin.user("alice");
    let (id, _) = admin.token("alice", &["--api", "marketplace"]);
    let id_text = id.to_string();
    let before = admin.tokens("alice");
    let edit = |extra: &[&str]| {
        let mut args = vec!["edit", "--user", "alice", id_text.as_str()];
        args.extend_from_slice(extra);
        admin.confirmed(&args)
    };

    let err = edit(&[]).fails(2).to_string();
    assert!(err.contains("nothing to change"), "{err}");

    let err = edit(&["--expires-at", &date_in(3), "--no-expiry"])
        .fails(2)
        .to_string();
    assert!(err.contains("cannot be used with"), "usage error: {err}");

    let err = edit(&["--expires-at", &date_in(-1)]).fails(2).to_string();
    assert!(err.contains("in the past"), "{err}");

    let err = edit(&["--method", "users.Authentication.Signin"])
        .fails(2)
        .to_string();
    assert!(err.contains("cannot be granted"), "{err}");

    let err = admin
        .confirmed(&["edit", "--user", "alice", "99", "--description", "x"])
        .fails(4)
        .to_string();
    assert!(err.contains("alice has no token 99"), "{err}");

    let err = admin
        .confirmed_with(
            &[
                "edit",
                "--user",
                "alice",
                &id_text,
                "--description",
                "hijacked",
            ],
            "not the password",
        )
        .fails(3)
        .to_string();
    assert!(err.contains("wrong password"), "{err}");

    assert_eq!(admin.tokens("alice"), before, "unchanged");
}

#[test]
fn regenerate_gives_a_new_value_and_keeps_everything_else() {
    let admin = Admin::new();
    admin.user("alice");
    let day = date_in(20);
    let (id, old) = admin.token("alice", &["--api", "maven-plugin", "--expires-at", &day]);
    let id_text = id.to_string();
    let before = listed(&admin, "alice", id);
    assert_eq!(before["regenerated_at"], Value::Null);

    let run = admin.confirmed(&["--json", "regenerate", "--user", "alice", &id_text]);
    run.ok();
    let json = run.json();
    let new = json["token"].as_str().expect("the new value");
    assert_token_shape(new);
    assert_ne!(new, old);
    assert_eq!(admin.stored_hash(id), pat_core::token::TokenHash::of(new).0);
    for field in ["id", "description", "scope", "expires_at", "created_at"] {
        assert_eq!(json[field], before[field], "{field} is kept");
    }
    assert!(json["regenerated_at"].is_string(), "{json}");
    assert_eq!(admin.tokens("alice").len(), 1, "no new token");

    let err = admin
        .confirmed(&["regenerate", "--user", "alice", "99"])
        .fails(4)
        .to_string();
    assert!(err.contains("alice has no token 99"), "{err}");

    // An existing --output file is refused before anything changes.
    let file = admin.dir.path().join("taken");
    std::fs::write(&file, "mine").expect("write");
    let hash = admin.stored_hash(id);
    let path = file.to_str().expect("utf-8 path");
    admin
        .confirmed(&["regenerate", "--user", "alice", &id_text, "--output", path])
        .fails(5);
    assert_eq!(std::fs::read_to_string(&file).expect("file"), "mine");
    assert_eq!(admin.stored_hash(id), hash, "the current value still works");
}

#[test]
fn regenerating_an_expired_token_needs_a_new_date() {
    let admin = Admin::new();
    admin.user("alice");
    let (id, _) = admin.token(
        "alice",
        &["--api", "marketplace", "--expires-at", &date_in(1)],
    );
    let id_text = id.to_string();
    admin.expire(id);
    let hash = admin.stored_hash(id);

    let err = admin
        .confirmed(&["regenerate", "--user", "alice", &id_text])
        .fails(2)
        .to_string();
    assert!(err.contains("expired on"), "{err}");
    assert!(err.contains("--expires-at"), "{err}");
    assert_eq!(admin.stored_hash(id), hash);

    let day = date_in(3);
    let run = admin.confirmed(&[
        "--json",
        "regenerate",
        "--user",
        "alice",
        &id_text,
        "--expires-at",
        &day,
    ]);
    run.ok();
    let json = run.json();
    assert_eq!(json["valid_through"], day.as_str());
    assert_eq!(json["status"], "active");
    assert_ne!(admin.stored_hash(id), hash);
}

#[test]
fn copy_creates_a_new_token_with_the_same_parameters() {
    let admin = Admin::new();
    admin.user("alice");
    let day = date_in(20);
    let (id, original) = admin.token(
        "alice",
        &[
            "--method",
            "env.control.stopenv,env.control.startenv",
            "--expires-at",
            &day,
        ],
    );
    let id_text = id.to_string();
    let source = listed(&admin, "alice", id);

    let run = admin.confirmed(&[
        "--json",
        "copy",
        "--user",
        "alice",
        &id_text,
        "--description",
        "the copy",
    ]);
    run.ok();
    let copy = run.json();
    assert_ne!(copy["id"], id);
    assert_eq!(copy["description"], "the copy");
    assert_eq!(copy["scope"], source["scope"]);
    assert_eq!(copy["valid_through"], day.as_str());
    let value = copy["token"].as_str().expect("a value");
    assert_token_shape(value);
    assert_ne!(value, original);
    assert_eq!(
        listed(&admin, "alice", id),
        source,
        "the original is unchanged"
    );

    // An expired original: the copy needs a date, and keeps the description by default.
    admin.expire(id);
    let err = admin
        .confirmed(&["copy", "--user", "alice", &id_text])
        .fails(2)
        .to_string();
    assert!(err.contains("expired on"), "{err}");
    let later = date_in(2);
    let run = admin.confirmed(&[
        "--json",
        "copy",
        "--user",
        "alice",
        &id_text,
        "--expires-at",
        &later,
    ]);
    run.ok();
    let copy = run.json();
    assert_eq!(copy["description"], source["description"]);
    assert_eq!(copy["valid_through"], later.as_str());
    assert_eq!(copy["status"], "active");
    assert_eq!(admin.tokens("alice").len(), 3);
}

#[test]
fn remove_takes_several_ids_all_or_nothing() {
    let admin = Admin::new();
    admin.user("alice");
    let ids: Vec<String> = (0..3)
        .map(|_| {
            admin
                .token("alice", &["--api", "marketplace"])
                .0
                .to_string()
        })
        .collect();
    let remaining = |admin: &Admin| -> Vec<i64> {
        admin
            .tokens("alice")
            .iter()
            .map(|t| t["id"].as_i64().expect("id"))
            .collect()
    };

    let err = admin
        .confirmed(&["remove", "--user", "alice", &ids[0], "99"])
        .fails(4)
        .to_string();
    assert!(err.contains("alice has no token 99"), "{err}");
    assert_eq!(remaining(&admin).len(), 3, "nothing removed");

    let err = admin
        .confirmed_with(&["remove", "--user", "alice", &ids[0]], "not the password")
        .fails(3)
        .to_string();
    assert!(err.contains("wrong password"), "{err}");
    assert_eq!(remaining(&admin).len(), 3, "nothing removed");

    let run = admin.confirmed(&[
        "--json", "remove", "--user", "alice", &ids[1], &ids[0], &ids[1],
    ]);
    run.ok();
    let removed: Vec<i64> = vec![ids[0].parse().expect("id"), ids[1].parse().expect("id")];
    assert_eq!(
        run.json(),
        json!({"user": "alice", "removed": removed,
            "publish": {"state": "unsigned", "version": null, "edges": []}})
    );
    assert_eq!(remaining(&admin), [ids[2].parse::<i64>().expect("id")]);

    let audit = admin.audit();
    assert_eq!(audit[0]["action"], "token.remove");
    assert_eq!(audit[1]["action"], "token.remove");

    admin.run(&["remove", "--user", "alice"]).fails(2);
}

#[test]
fn a_copy_respects_the_maximum_lifetime() {
    let admin = Admin::new();
    admin.user("alice");
    let (id, _) = admin.token("alice", &["--api", "marketplace"]);
    let id_text = id.to_string();
    admin
        .run(&["config", "set", "max-lifetime-days", "30"])
        .ok();

    // The original has no expiry; a copy is a new token and must have one.
    let err = admin
        .confirmed(&["copy", "--user", "alice", &id_text])
        .fails(5)
        .to_string();
    assert!(err.contains("need an expiry"), "{err}");
    assert_eq!(admin.tokens("alice").len(), 1);

    let day = date_in(30);
    let run = admin.confirmed(&[
        "--json",
        "copy",
        "--user",
        "alice",
        &id_text,
        "--expires-at",
        &day,
    ]);
    run.ok();
    assert_eq!(run.json()["valid_through"], day.as_str());
}
