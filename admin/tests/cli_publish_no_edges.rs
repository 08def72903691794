//! `publish` and `status` with no edge configured (pushing to real edges is tested elsewhere).

mod support;
use support::*;

#[test]
fn publish_without_a_signing_key_is_refused() {
    let admin = Admin::new();
    admin.init();
    let err = admin.run(&["publish"]).fails(5).to_string();
    assert!(err.contains("no signing key"), "{err}");
    assert!(err.contains("pat-admin key generate"), "{err}");
    assert_eq!(
        admin.run(&["--json", "config", "show"]).json()["last_version"],
        serde_json::Value::Null,
        "no version was used up"
    );
}

#[test]
fn publish_signs_a_new_snapshot_only_when_the_latest_is_not_current() {
    let admin = Admin::new();
    admin.key();
    let key_id = admin.run(&["--json", "key", "list"]).json()[0]["id"].clone();

    let run = admin.run(&["--json", "publish"]);
    run.ok();
    let first = run.json();
    assert_eq!(first["version"], 1);
    assert_eq!(first["built"], true, "nothing was stored yet");
    assert_eq!(first["tokens"], 0);
    assert_eq!(first["key_id"], key_id);
    assert_eq!(first["edges"], serde_json::json!([]));
    assert!(first["bytes"].as_u64().is_some_and(|b| b > 0));
    let instant = |field: &str| {
        time::OffsetDateTime::parse(
            first[field].as_str().expect("RFC 3339"),
            &time::format_description::well_known::Rfc3339,
        )
        .expect("RFC 3339")
        .unix_timestamp()
    };
    assert_eq!(
        instant("expires_at"),
        instant("issued_at") + 86_400,
        "the default lifetime is 24 h"
    );

    // Nothing changed: the same snapshot, not a new version.
    let human = admin.run(&["publish"]).ok().to_string();
    assert!(human.contains("Snapshot version 1 (0 tokens"), "{human}");
    assert!(human.contains("the latest, unchanged"), "{human}");
    assert!(human.contains("No edges to push to"), "{human}");
    assert_eq!(
        admin.run(&["--json", "config", "show"]).json()["last_version"],
        1
    );

    // --resend pushes the last snapshot again: same version.
    let run = admin.run(&["--json", "publish", "--resend"]);
    run.ok();
    assert_eq!(run.json()["version"], 1);
    assert_eq!(run.json()["built"], false);
    assert_eq!(
        admin.run(&["--json", "config", "show"]).json()["last_version"],
        1
    );
}

#[test]
fn publish_counts_only_active_tokens() {
    let admin = Admin::new();
    admin.key();
    admin.user("alice");
    admin.token("alice", &["--api", "marketplace"]);
    let (expired, _) = admin.token("alice", &["--api", "marketplace"]);
    admin.expire(expired);
    let run = admin.run(&["--json", "publish"]);
    run.ok();
    assert_eq!(run.json()["tokens"], 1);
}

#[test]
fn resend_with_nothing_published_is_refused() {
    let admin = Admin::new();
    admin.key();
    let err = admin.run(&["publish", "--resend"]).fails(5).to_string();
    assert!(err.contains("nothing has been published yet"), "{err}");
}

#[test]
fn publish_and_status_refuse_bad_edge_urls_and_status_needs_an_edge() {
    let admin = Admin::new();
    admin.init();
    admin.key();
    let err = admin
        .run(&["publish", "--edge", "ftp://x"])
        .fails(2)
        .to_string();
    assert!(err.contains("only http://"), "{err}");
    assert_eq!(
        admin.run(&["--json", "config", "show"]).json()["last_version"],
        serde_json::Value::Null,
        "checked before building"
    );
    let err = admin.run(&["status"]).fails(2).to_string();
    assert!(err.contains("no edge to ask"), "{err}");
}
