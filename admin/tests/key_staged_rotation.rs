//! `key generate --inactive` stages a key (the current one keeps signing) for `key activate`.

mod support;
use support::*;

#[test]
fn an_inactive_key_signs_nothing_until_activated() {
    let admin = Admin::new();
    admin.user("alice");
    let first = admin.key();
    let run = admin.run(&["--json", "key", "generate", "--inactive"]);
    run.ok();
    let staged = run.json();
    assert_eq!(staged["active"], false);
    let staged_id = staged["id"].as_str().expect("id").to_string();
    let human = admin
        .run(&["key", "generate", "--inactive"])
        .ok()
        .to_string();
    assert!(
        human.contains("not active") && human.contains("key activate"),
        "{human}"
    );

    admin.token("alice", &["--api", "marketplace"]);
    let published = admin.run(&["--json", "publish"]).json();
    let first_id = admin.run(&["--json", "key", "list"]).json()[0]["id"].clone();
    assert_eq!(published["key_id"], first_id, "the first key still signs");
    assert_eq!(
        admin.run(&["--json", "key", "list"]).json()[0]["public_key"],
        first.as_str()
    );

    admin.run(&["key", "activate", &staged_id]).ok();
    let published = admin.run(&["--json", "publish"]).json();
    assert_eq!(
        published["key_id"],
        staged_id.as_str(),
        "re-signed by the new key"
    );
    assert_eq!(published["built"], true);
}
