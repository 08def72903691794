//! `lookup` and `revoke-leaked`: a leaked value read on stdin, never argv; checked before any
//! lookup; found by its hash; removed and published in one command, audited with the reason.

mod support;
use support::*;

#[test]
fn lookup_finds_the_token_of_a_value_and_stores_nothing() {
    let admin = Admin::new();
    admin.user("alice");
    let (id, value) = admin.token("alice", &["--api", "marketplace"]);
    let audit_before = admin.audit().len();

    // A scanner's webhook: the value with a trailing newline (and CRLF, blank lines).
    let run = admin.run_with(&["--json", "lookup"], &format!("{value}\r\n\n"));
    run.ok();
    let json = run.json();
    assert_eq!(json[0]["found"], true);
    assert_eq!(json[0]["id"], id);
    assert_eq!(json[0]["user"], "alice");
    assert_eq!(json[0]["description"], "test token");
    assert_eq!(json[0]["status"], "active");
    assert!(!run.stdout.contains(&value), "the value is never printed");
    assert_eq!(json[0]["value"], pat_core::token::mask(&value));
    assert_eq!(admin.audit().len(), audit_before, "nothing recorded");
    for (path, bytes) in admin.store_files() {
        assert_eq!(
            occurrences(&bytes, value.as_bytes()),
            0,
            "the value is in {}",
            path.display()
        );
    }

    let human = admin
        .run_with(&["lookup"], &format!("{value}\n"))
        .ok()
        .to_string();
    assert!(
        human.contains("alice") && human.contains("test token"),
        "{human}"
    );

    // Several values, one unknown (well formed): exit 4, both reported.
    let unknown = pat_core::token::Token::generate().expect("rng");
    let run = admin.run_with(
        &["--json", "lookup"],
        &format!("{value}\n{}\n", unknown.expose()),
    );
    run.fails(4);
    let json = run.json();
    assert_eq!(json.as_array().expect("array").len(), 2);
    assert_eq!(json[1]["found"], false);
    assert_eq!(json[1]["id"], serde_json::Value::Null);
}

#[test]
fn a_line_that_is_not_a_token_is_refused_before_any_lookup() {
    let admin = Admin::new();
    admin.user("alice");
    let (_, value) = admin.token("alice", &["--api", "marketplace"]);
    let mut typo = value.clone();
    typo.replace_range(10..11, if &value[10..11] == "a" { "b" } else { "a" });
    for (input, says) in [
        (format!("{value}\nhello\n"), "line 2"),
        (format!("{typo}\n"), "checksum"),
        ("\n\n".to_string(), "no token value on standard input"),
    ] {
        let err = admin.run_with(&["lookup"], &input).fails(2).to_string();
        assert!(err.contains(says), "{input:?}: {err}");
        assert!(
            !err.contains(&typo) && !err.contains(&value),
            "never echoed: {err}"
        );
        admin
            .run_with(&["revoke-leaked", "--reason", "test"], &input)
            .fails(2);
    }
    assert_eq!(admin.tokens("alice").len(), 1, "nothing removed");
    // The value is never taken from the command line.
    admin.run(&["lookup", &value]).fails(2);
}

#[test]
fn revoke_leaked_removes_publishes_and_audits_without_a_password() {
    let admin = Admin::new();
    admin.user("alice");
    admin.user("bob");
    admin.key();
    let (keep, _) = admin.token("alice", &["--api", "marketplace"]);
    let (a, value_a) = admin.token("alice", &["--api", "marketplace"]);
    let (b, value_b) = admin.token("bob", &["--api", "marketplace"]);
    let version =
        |admin: &Admin| admin.run(&["--json", "config", "show"]).json()["last_version"].clone();
    let before = version(&admin);

    let run = admin.run_with(
        &[
            "--json",
            "revoke-leaked",
            "--reason",
            "found in a public repo",
        ],
        &format!("{value_a}\n{value_b}\n"),
    );
    run.ok();
    let json = run.json();
    let ids: Vec<i64> = json["revoked"]
        .as_array()
        .expect("revoked")
        .iter()
        .map(|r| r["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(ids, [a, b]);
    assert_eq!(json["publish"]["state"], "no_edges");
    assert_ne!(
        json["publish"]["version"], before,
        "a new snapshot without them"
    );
    assert_eq!(
        admin
            .tokens("alice")
            .iter()
            .map(|t| t["id"].as_i64().expect("id"))
            .collect::<Vec<_>>(),
        [keep]
    );
    assert!(admin.tokens("bob").is_empty());
    let audit = admin.audit();
    let entries: Vec<_> = audit
        .iter()
        .filter(|e| e["action"] == "token.revoke-leaked")
        .collect();
    assert_eq!(entries.len(), 2);
    for e in &entries {
        let detail = e["detail"].as_str().expect("detail");
        assert!(
            detail.contains("reason: found in a public repo"),
            "{detail}"
        );
        assert!(
            !detail.contains(&value_a) && !detail.contains(&value_b),
            "{detail}"
        );
        assert!(!e["actor"].as_str().expect("actor").is_empty());
    }

    // Again: nothing matches any more.
    let err = admin
        .run_with(
            &["revoke-leaked", "--reason", "again"],
            &format!("{value_a}\n"),
        )
        .fails(4)
        .to_string();
    assert!(err.contains("nothing was changed"), "{err}");

    // With an edge: it is pushed, and the result printed.
    let (_, value) = admin.token("alice", &["--api", "marketplace", "--no-publish"]);
    let down = format!("http://127.0.0.1:{}", free_port());
    admin.run(&["edge", "add", &down]).ok();
    let run = admin.run_with(
        &[
            "revoke-leaked",
            "--reason",
            "scanner",
            "--timeout",
            "1",
            "--deadline",
            "1",
        ],
        &format!("{value}\n"),
    );
    run.fails(6);
    assert!(run.stdout.contains("Removed token"), "{}", run.stdout);
    assert!(
        run.stderr.contains(&down) && run.stderr.contains("unreachable"),
        "{}",
        run.stderr
    );
    admin
        .run_with(&["revoke-leaked", "--reason", ""], &format!("{value}\n"))
        .fails(2);
}
