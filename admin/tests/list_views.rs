//! `list` across every account, and `list --expiring-within` for cron and monitoring (exit 8
//! when any active token expires within the window), with an `EXPIRES IN` column.

mod support;
use support::*;

#[test]
fn list_without_an_account_shows_every_account() {
    let admin = Admin::new();
    admin.user("alice");
    admin.user("bob");
    admin.token("alice", &["--api", "marketplace"]);
    admin.token(
        "bob",
        &["--api", "marketplace", "--expires-at", &date_in(3)],
    );
    let json = admin.run(&["--json", "list"]).json();
    let users: Vec<&str> = json
        .as_array()
        .expect("array")
        .iter()
        .map(|t| t["user"].as_str().expect("user"))
        .collect();
    assert_eq!(users, ["alice", "bob"]);
    let human = admin.run(&["list"]).ok().to_string();
    let header: Vec<&str> = human
        .lines()
        .next()
        .expect("header")
        .split_whitespace()
        .collect();
    assert_eq!(header[..2], ["ID", "USER"], "{human}");
    assert!(human.contains("EXPIRES IN"), "{human}");
    let bob = human
        .lines()
        .find(|l| l.contains("bob"))
        .expect("bob's line");
    assert!(bob.contains("3d ") || bob.contains("2d "), "{bob}");
}

#[test]
fn expiring_within_finds_tokens_and_exits_8() {
    let admin = Admin::new();
    admin.user("alice");
    admin.user("bob");
    let (soon, _) = admin.token(
        "alice",
        &["--api", "marketplace", "--expires-at", &date_in(10)],
    );
    admin.token(
        "alice",
        &["--api", "marketplace", "--expires-at", &date_in(60)],
    );
    admin.token("bob", &["--api", "marketplace"]);
    let (gone, _) = admin.token(
        "bob",
        &["--api", "marketplace", "--expires-at", &date_in(2)],
    );
    admin.expire(gone);

    let run = admin.run(&["--json", "list", "--expiring-within", "14d"]);
    run.fails(8);
    let json = run.json();
    let ids: Vec<i64> = json
        .as_array()
        .expect("array")
        .iter()
        .map(|t| t["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(ids, [soon], "active and within 14 days only");
    let error: serde_json::Value = serde_json::from_str(run.stderr.trim()).expect("JSON");
    assert_eq!(error["exit_code"], 8);

    let run = admin.run(&["list", "--expiring-within", "14d", "--user", "bob"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("No active token expires within 14d"),
        "{}",
        run.stdout
    );
    admin.run(&["list", "--expiring-within", "2w"]).fails(2);
}
