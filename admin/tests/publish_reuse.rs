//! `publish` does not bump the version when nothing changed: it pushes the latest stored
//! snapshot while it reflects the committed tokens, was signed by the active key and is not
//! due for re-signing; a token change, a new key, an expired token or an old snapshot make it
//! sign a new one.

mod support;

use pat_core::keys::TrustedKeys;
use support::edge::FakeEdge;
use support::*;

/// An edge that behaves like the filter's control endpoint: verifies, accepts only newer
/// versions, answers 409 with `current_version` otherwise; records every version pushed.
type Edge = FakeEdge;

fn edge(keys: TrustedKeys) -> Edge {
    FakeEdge::trusting(keys)
}

fn publish(admin: &Admin, edge: &Edge) -> serde_json::Value {
    let run = admin.run(&["--json", "publish", "--edge", &edge.url()]);
    run.ok();
    run.json()
}

fn last_version(admin: &Admin) -> u64 {
    admin.run(&["--json", "config", "show"]).json()["last_version"]
        .as_u64()
        .expect("last_version")
}

#[test]
fn publish_twice_without_a_change_pushes_the_same_version() {
    let admin = Admin::new();
    admin.user("alice");
    let old_key = admin.key();
    admin.token("alice", &["--api", "ide-plugins", "--no-publish"]);
    // The change signed version 1 in its transaction.
    assert_eq!(last_version(&admin), 1);
    let e = edge(trusted(&old_key));

    let first = publish(&admin, &e);
    assert_eq!(
        (
            &first["version"],
            &first["built"],
            &first["edges"][0]["outcome"]
        ),
        (&1.into(), &false.into(), &"accepted".into()),
        "{first}"
    );
    let again = publish(&admin, &e);
    assert_eq!(again["version"], 1, "no change, no new version: {again}");
    assert_eq!(again["built"], false);
    assert_eq!(again["edges"][0]["outcome"], "already_current");
    assert_eq!(again["issued_at"], first["issued_at"], "the same snapshot");
    assert_eq!(last_version(&admin), 1, "no version used up");
    assert_eq!(e.pushed(), [1, 1]);

    // A change: a new version (signed by the change itself).
    admin.token("alice", &["--api", "marketplace", "--no-publish"]);
    let changed = publish(&admin, &e);
    assert_eq!(
        (
            &changed["version"],
            &changed["tokens"],
            &changed["edges"][0]["outcome"]
        ),
        (&2.into(), &2.into(), &"accepted".into()),
        "{changed}"
    );
    assert_eq!(publish(&admin, &e)["version"], 2);
    assert_eq!(e.pushed(), [1, 1, 2, 2]);
}

#[test]
fn publish_signs_anew_for_a_new_key_an_expired_token_or_an_old_snapshot() {
    let admin = Admin::new();
    admin.user("alice");
    let old_key = admin.key();
    admin.token("alice", &["--api", "ide-plugins", "--no-publish"]);
    let (expiring, _) = admin.token("alice", &["--api", "marketplace", "--no-publish"]);
    assert_eq!(last_version(&admin), 2);

    // Another key became active: signed again, by it.
    let new_key = admin.key();
    let keys = TrustedKeys::new([old_key.parse().expect("key"), new_key.parse().expect("key")]);
    let e = edge(keys);
    let rekeyed = publish(&admin, &e);
    assert_eq!(
        (&rekeyed["version"], &rekeyed["built"]),
        (&3.into(), &true.into())
    );
    let new_id = admin.run(&["--json", "key", "list"]).json()[1]["id"].clone();
    assert_eq!(rekeyed["key_id"], new_id);
    assert_eq!(publish(&admin, &e)["version"], 3, "then it is current");

    // A token in it expired since: signed again without it.
    admin.expire(expiring);
    let dropped = publish(&admin, &e);
    assert_eq!(
        (&dropped["version"], &dropped["tokens"]),
        (&4.into(), &1.into()),
        "{dropped}"
    );
    assert_eq!(publish(&admin, &e)["version"], 4);

    // A quarter of its lifetime has passed (the stored stamp made 7 hours older; the
    // default lifetime is 24 h): signed again.
    admin
        .db()
        .execute(
            "UPDATE snapshots SET issued_at = issued_at - 7 * 3600 WHERE version = 4",
            [],
        )
        .expect("age the stamp");
    let fresh = publish(&admin, &e);
    assert_eq!(
        (&fresh["version"], &fresh["built"]),
        (&5.into(), &true.into())
    );
    assert_eq!(publish(&admin, &e)["version"], 5);

    // --resend never builds, even when a new one would be due.
    admin
        .db()
        .execute(
            "UPDATE snapshots SET issued_at = issued_at - 7 * 3600 WHERE version = 5",
            [],
        )
        .expect("age the stamp");
    let run = admin.run(&["--json", "publish", "--resend", "--edge", &e.url()]);
    run.ok();
    assert_eq!(
        (&run.json()["version"], &run.json()["built"]),
        (&5.into(), &false.into())
    );
    assert_eq!(e.pushed(), [3, 3, 4, 4, 5, 5, 5]);
}

#[test]
fn resend_refuses_an_expired_snapshot() {
    let admin = Admin::new();
    admin.user("alice");
    admin.key();
    admin.token("alice", &["--api", "ide-plugins", "--no-publish"]);
    admin
        .db()
        .execute("UPDATE snapshots SET expires_at = 1000", [])
        .expect("expire the stamp");
    let err = admin.run(&["publish", "--resend"]).fails(5).to_string();
    assert!(
        err.contains("expired") && err.contains("pat-admin publish"),
        "{err}"
    );
}
