//! A token change made while no signing key exists, with edges configured: the token is
//! saved and shown, the command says what did not happen, and exits 7 (not 5, "nothing
//! changed"), so scripts can tell the two apart.

mod support;
use support::*;

#[test]
fn a_saved_but_unsigned_change_exits_7_and_says_so() {
    let admin = Admin::new();
    admin.user("alice");
    admin.run(&["edge", "add", "http://127.0.0.1:9"]).ok();
    let run = admin.confirmed(&[
        "generate",
        "--user",
        "alice",
        "--description",
        "ci",
        "--api",
        "marketplace",
    ]);
    run.fails(7);
    assert_token_shape(run.stdout.trim());
    assert!(
        run.stderr.contains("the change is saved, but not signed"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("pat-admin key generate"),
        "{}",
        run.stderr
    );
    assert_eq!(admin.tokens("alice").len(), 1, "saved");

    let run = admin.confirmed(&[
        "--json",
        "generate",
        "--user",
        "alice",
        "--description",
        "ci",
        "--api",
        "marketplace",
    ]);
    run.fails(7);
    let json = run.json();
    assert_token_shape(json["token"].as_str().expect("token"));
    assert_eq!(json["publish"]["state"], "unsigned");
    assert_eq!(json["publish"]["version"], serde_json::Value::Null);
    let error: serde_json::Value = serde_json::from_str(run.stderr.trim()).expect("JSON");
    assert_eq!(error["exit_code"], 7);

    // Once a key exists, publish signs and pushes what was saved.
    admin.key();
    let run = admin.run(&["--json", "publish", "--timeout", "1", "--deadline", "1"]);
    run.fails(6);
    assert_eq!(run.json()["tokens"], 2);
}
