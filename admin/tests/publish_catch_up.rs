//! Pushing a delta to an edge it does not apply to: an edge that answers 409 with a
//! `current_version` below the delta's base (it missed documents, holds nothing, or holds
//! another chain) gets the catch-up in a further attempt — the deltas since its version
//! when the store has them, else the full snapshot and the deltas after it — and ends up
//! with exactly the origin's state. The outcome says how it was caught up.

mod support;

use pat_core::keys::TrustedKeys;
use pat_core::snapshot::Kind;
use pat_core::token::TokenHash;
use support::edge::FakeEdge;
use support::*;

const SCOPE: &[&str] = &["--api", "ide-plugins"];

/// A change pushed to the configured edges; its JSON.
fn change(admin: &Admin, publish: bool) -> (serde_json::Value, String) {
    let mut args = vec![
        "--json",
        "generate",
        "--user",
        "alice",
        "--description",
        "catch-up",
    ];
    args.extend_from_slice(SCOPE);
    if !publish {
        args.push("--no-publish");
    }
    let run = admin.confirmed(&args);
    run.ok();
    let json = run.json();
    let value = json["token"].as_str().expect("token").to_string();
    (json, value)
}

/// The edge holds exactly these values, and nothing else.
fn assert_holds(edge: &FakeEdge, values: &[String]) {
    assert_eq!(edge.token_count(), values.len() as u64);
    edge.with_state(|s| {
        let s = s.expect("a state");
        for value in values {
            assert!(s.find(&TokenHash::of(value)).is_some(), "{value}");
        }
    });
}

fn stored(admin: &Admin, version: i64, kind: &str) -> Vec<u8> {
    admin
        .db()
        .query_row(
            "SELECT bytes FROM snapshots WHERE version = ?1 AND kind = ?2",
            pat_admin::params![version, kind],
            |r| r.get(0),
        )
        .expect("stored")
}

#[test]
fn an_edge_that_lags_holds_nothing_or_another_chain_is_caught_up() {
    let admin = Admin::new();
    admin.user("alice");
    let key = admin.key();
    // Another store, with a chain of its own, signed by a key the edge also trusts.
    let other = Admin::new();
    other.user("alice");
    let other_key = other.key();
    let edge = FakeEdge::trusting(TrustedKeys::new([
        key.parse().expect("key"),
        other_key.parse().expect("key"),
    ]));
    admin.run(&["edge", "add", &edge.url()]).ok();

    let mut values = Vec::new();
    let (first, value) = change(&admin, true);
    values.push(value);
    assert_eq!(first["publish"]["edges"][0]["outcome"], "accepted");
    assert_eq!(edge.version(), 1);

    // Two changes it never got.
    for _ in 0..2 {
        values.push(change(&admin, false).1);
    }
    assert_eq!(edge.version(), 1);

    // The next change's delta (on 3) does not apply at 1: the deltas since 1 do.
    let (json, value) = change(&admin, true);
    values.push(value);
    let outcome = &json["publish"]["edges"][0];
    assert_eq!(
        (
            &outcome["outcome"],
            &outcome["version"],
            &outcome["caught_up"]
        ),
        (&"accepted".into(), &4.into(), &"deltas".into()),
        "{json}"
    );
    assert_eq!(json["publish"]["state"], "published");
    let pushes = edge.pushes();
    let last_two: Vec<_> = pushes[pushes.len() - 2..]
        .iter()
        .map(|p| (p.bundle, p.documents.clone(), p.status))
        .collect();
    assert_eq!(
        last_two,
        [
            (false, vec![(4, Kind::Delta)], 409),
            (
                true,
                vec![(2, Kind::Delta), (3, Kind::Delta), (4, Kind::Delta)],
                200
            ),
        ]
    );
    assert_holds(&edge, &values);

    // An edge that restarted with nothing: the full snapshot and every delta after it.
    edge.forget();
    let (json, value) = change(&admin, true);
    values.push(value);
    let outcome = &json["publish"]["edges"][0];
    assert_eq!(
        (
            &outcome["outcome"],
            &outcome["version"],
            &outcome["caught_up"]
        ),
        (&"accepted".into(), &5.into(), &"full".into()),
        "{json}"
    );
    let last = edge.pushes().last().expect("push").clone();
    assert_eq!(last.documents.first(), Some(&(1, Kind::Full)));
    assert_eq!(last.documents.len(), 5);
    assert_holds(&edge, &values);

    // An edge on another chain, at a version the store has deltas since: they do not apply
    // either, so it gets the full answer last.
    for _ in 0..4 {
        other.token("alice", SCOPE);
    }
    edge.hold(&other.stored_bundle());
    assert_eq!(edge.version(), 4, "the other chain's version 4");
    let before = edge.pushes().len();
    let (json, value) = change(&admin, true);
    values.push(value);
    let outcome = &json["publish"]["edges"][0];
    assert_eq!(
        (
            &outcome["outcome"],
            &outcome["version"],
            &outcome["caught_up"]
        ),
        (&"accepted".into(), &6.into(), &"full".into()),
        "{json}"
    );
    let tried: Vec<_> = edge.pushes()[before..]
        .iter()
        .map(|p| (p.documents.first().copied(), p.documents.len(), p.status))
        .collect();
    assert_eq!(
        tried,
        [
            (Some((6, Kind::Delta)), 1, 409),
            (Some((5, Kind::Delta)), 2, 409),
            (Some((1, Kind::Full)), 6, 200),
        ],
        "the delta, the deltas since 4, then the full answer"
    );
    assert_holds(&edge, &values);
    // A delta on the edge's own version that does not apply (another chain at 6): the full
    // answer at once.
    let mut forked = Vec::new();
    for _ in 0..2 {
        forked.push(other.token("alice", SCOPE));
    }
    edge.hold(&other.stored_bundle());
    assert_eq!(edge.version(), 6);
    let before = edge.pushes().len();
    let (json, value) = change(&admin, true);
    values.push(value);
    assert_eq!(json["publish"]["edges"][0]["caught_up"], "full", "{json}");
    let tried: Vec<_> = edge.pushes()[before..]
        .iter()
        .map(|p| (p.documents.first().copied(), p.status))
        .collect();
    assert_eq!(
        tried,
        [(Some((7, Kind::Delta)), 409), (Some((1, Kind::Full)), 200)]
    );
    assert_holds(&edge, &values);
}

#[test]
fn publish_catches_up_an_edge_that_holds_an_older_version() {
    let admin = Admin::new();
    admin.user("alice");
    let key = admin.key();
    let mut values = Vec::new();
    for _ in 0..3 {
        values.push(admin.token("alice", SCOPE).1);
    }
    let edge = FakeEdge::start(&key);
    edge.hold(&stored(&admin, 1, "full"));
    let run = admin.run(&["publish", "--edge", &edge.url()]);
    let stdout = run.ok().to_string();
    let line = stdout
        .lines()
        .find(|l| l.contains(&edge.url()))
        .unwrap_or_else(|| panic!("a line for the edge: {stdout}"));
    assert!(
        line.contains("accepted")
            && line.contains("serving version 3")
            && line.contains("caught up with the deltas since its version"),
        "{line}"
    );
    assert!(stdout.contains("a delta"), "{stdout}");
    assert_holds(&edge, &values);
    // Pushed again, it is current: no catch-up.
    let run = admin.run(&["--json", "publish", "--resend", "--edge", &edge.url()]);
    run.ok();
    assert_eq!(run.json()["edges"][0]["outcome"], "already_current");
    assert_eq!(run.json()["edges"][0].get("caught_up"), None);
}
