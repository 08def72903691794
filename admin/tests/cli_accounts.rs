//! `user add`, `user passwd`, `user list` on the real binary.

mod support;
use serde_json::json;
use support::*;

#[test]
fn user_add_creates_an_account_once() {
    let admin = Admin::new();
    let run = admin.run_with(
        &["--json", "user", "add", "alice", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    run.ok();
    let json = run.json();
    assert_eq!(json["user"], "alice");
    assert!(
        time::OffsetDateTime::parse(
            json["created_at"].as_str().expect("created_at"),
            &time::format_description::well_known::Rfc3339
        )
        .is_ok(),
        "{json}"
    );
    assert_eq!(json.as_object().expect("object").len(), 2, "{json}");

    // A duplicate is refused before any password is read.
    let err = admin
        .run_with(
            &["user", "add", "alice", "--password-stdin"],
            "another password\n",
        )
        .fails(5)
        .to_string();
    assert!(
        err.contains("an account named alice already exists"),
        "{err}"
    );

    let actions: Vec<_> = admin.audit().iter().map(|e| e["action"].clone()).collect();
    assert_eq!(actions, ["user.add"], "one account created, once");
}

#[test]
fn bad_account_names_are_invalid_input() {
    let admin = Admin::new();
    for bad in ["a b", "", "é", "a,b", "a:b", &"x".repeat(129)] {
        let err = admin
            .run_with(
                &["user", "add", bad, "--password-stdin"],
                &format!("{PASSWORD}\n"),
            )
            .fails(2)
            .to_string();
        assert!(err.contains("account name"), "{bad:?}: {err}");
    }
    let run = admin.run(&["--json", "user", "list"]);
    assert_eq!(run.json(), serde_json::json!([]), "nothing was created");
}

#[test]
fn short_password_is_invalid_input() {
    let admin = Admin::new();
    let err = admin
        .run_with(&["user", "add", "alice", "--password-stdin"], "short\n")
        .fails(2)
        .to_string();
    assert!(err.contains("at least 8 characters"), "{err}");
    assert_eq!(
        admin.run(&["--json", "user", "list"]).json(),
        serde_json::json!([])
    );
}

#[test]
fn without_a_terminal_the_password_must_come_from_stdin() {
    let admin = Admin::new();
    // assert_cmd gives the process a pipe, not a terminal.
    let err = admin.run(&["user", "add", "alice"]).fails(2).to_string();
    assert!(err.contains("--password-stdin"), "{err}");

    admin.user("alice");
    let err = admin
        .run(&[
            "generate",
            "--user",
            "alice",
            "--description",
            "ci",
            "--api",
            "ide-plugins",
        ])
        .fails(2)
        .to_string();
    assert!(err.contains("--password-stdin"), "{err}");

    // --password-stdin with nothing on stdin.
    let err = admin
        .run(&["user", "add", "bob", "--password-stdin"])
        .fails(2)
        .to_string();
    assert!(err.contains("no (more) lines"), "{err}");
    assert!(admin.tokens("alice").is_empty());
}

#[test]
fn passwd_needs_the_current_password_then_the_new_one_replaces_it() {
    let admin = Admin::new();
    admin.user("alice");
    let new = "a brand new password";
    let generate = [
        "generate",
        "--user",
        "alice",
        "--description",
        "ci",
        "--api",
        "marketplace",
    ];

    let err = admin
        .run_with(
            &["user", "passwd", "alice", "--password-stdin"],
            &format!("not the password\n{new}\n"),
        )
        .fails(3)
        .to_string();
    assert!(err.contains("wrong password for alice"), "{err}");

    // Unchanged: the old password still confirms (here, the next passwd).
    let run = admin.run_with(
        &["--json", "user", "passwd", "alice", "--password-stdin"],
        &format!("{PASSWORD}\n{new}\n"),
    );
    run.ok();
    assert_eq!(run.json()["password_changed"], true);

    admin.confirmed(&generate).fails(3);
    admin.confirmed_with(&generate, new).ok();
    assert_eq!(admin.tokens("alice").len(), 1);

    let actions: Vec<_> = admin.audit().iter().map(|e| e["action"].clone()).collect();
    assert_eq!(
        actions,
        [
            "token.generate",
            "auth.failed",
            "user.passwd",
            "auth.failed",
            "user.add"
        ]
    );
}

#[test]
fn passwd_refuses_unknown_accounts_and_short_new_passwords() {
    let admin = Admin::new();
    admin.init();
    let err = admin
        .run_with(
            &["user", "passwd", "ghost", "--password-stdin"],
            &format!("{PASSWORD}\nwhatever long\n"),
        )
        .fails(4)
        .to_string();
    assert!(err.contains("no account named ghost"), "{err}");

    admin.user("alice");
    let err = admin
        .run_with(
            &["user", "passwd", "alice", "--password-stdin"],
            &format!("{PASSWORD}\nshort\n"),
        )
        .fails(2)
        .to_string();
    assert!(err.contains("at least 8 characters"), "{err}");
}

#[test]
fn user_list_shows_accounts_with_token_counts() {
    let admin = Admin::new();
    admin.init();
    assert!(
        admin
            .run(&["user", "list"])
            .ok()
            .contains("No accounts yet"),
        "empty store"
    );
    // Every allowed punctuation character: . _ @ + -
    admin.user("bob_ci+x-1@example.com");
    admin.user("alice");
    admin.token("alice", &["--api", "ide-plugins"]);

    let human = admin.run(&["user", "list"]).ok().to_string();
    let lines: Vec<Vec<&str>> = human
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines.len(), 3, "{human}");
    assert_eq!(
        lines[0],
        ["USER", "EMAIL", "IDENTITY", "TOKENS", "CREATED", "STATUS"]
    );
    // A local account: no email; edges see its name.
    assert_eq!(
        lines[1][..4],
        ["alice", "-", "alice", "1"],
        "sorted by name: {human}"
    );
    assert_eq!(lines[1][5..], ["enabled"], "{human}");
    assert_eq!(
        lines[2][..4],
        ["bob_ci+x-1@example.com", "-", "bob_ci+x-1@example.com", "0"],
        "{human}"
    );

    let json = admin.run(&["--json", "user", "list"]).json();
    let rows = json.as_array().expect("array");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["name"], "alice");
    assert_eq!(rows[0]["tokens"], 1);
    assert!(rows[0]["created_at"].as_str().is_some_and(|t| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            .is_ok_and(|t| t.unix_timestamp() > 1_700_000_000)
    }));
    assert_eq!(rows[1]["name"], "bob_ci+x-1@example.com");
    assert_eq!(rows[1]["tokens"], 0);
    assert_eq!(
        (
            &rows[0]["platform_uid"],
            &rows[0]["email"],
            &rows[0]["disabled"]
        ),
        (&json!(null), &json!(null), &json!(null))
    );
    assert_eq!(rows[0]["identity"], "alice");
}
