//! A committed change is what the origin serves: a token change signs and stores its snapshot
//! in its own transaction, so a process killed after the commit (while its push hangs, or
//! before it pushed at all) cannot leave a removed token in the snapshot `pat-admin serve`
//! hands to edges that restart. Every change path is covered, with and without pushing.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use pat_core::token::TokenHash;
use support::*;

const SCOPE: &[&str] = &["--api", "ide-plugins"];

/// A store with alice, a key, two tokens (kept, removed) and serve running.
struct Setup {
    admin: Admin,
    key: String,
    serve: Server,
    kept: (i64, String),
    removed: (i64, String),
}

fn setup() -> Setup {
    let admin = Admin::sqlite();
    admin.user("alice");
    let key = admin.key();
    let serve = admin.serve();
    let kept = admin.token("alice", SCOPE);
    let removed = admin.token("alice", SCOPE);
    // Both tokens are live at the origin before the removal.
    admin.run(&["publish"]).ok();
    Setup {
        admin,
        key,
        serve,
        kept,
        removed,
    }
}

fn token_exists(admin: &Admin, id: i64) -> bool {
    admin
        .db()
        .query_row("SELECT count(*) FROM tokens WHERE id = ?1", [id], |row| {
            row.get::<_, i64>(0)
        })
        .expect("count")
        == 1
}

/// What the origin serves, snapshot and head, after the removal: the removed token is gone,
/// the kept one is there, the head is the snapshot's own, and the version moved on.
fn assert_origin_has_the_removal(s: &Setup, version_before: u64) {
    let snapshot = s.serve.snapshot(&s.key);
    let served = snapshot.hashes();
    assert!(
        !served.contains(&TokenHash::of(&s.removed.1).prefix()),
        "the origin still serves the removed token (version {})",
        snapshot.version()
    );
    assert!(served.contains(&TokenHash::of(&s.kept.1).prefix()));
    assert!(snapshot.version() > version_before);
    let (header, head) = s.serve.head(&s.key);
    assert_eq!(header.version, snapshot.version());
    assert_eq!(head, snapshot.last_head, "the head of the latest document");
}

#[test]
fn killed_while_its_push_hangs_the_origin_serves_the_removal() {
    let s = setup();
    let before = s.serve.snapshot(&s.key).version();
    let mut edge = HangingEdge::new();
    s.admin.run(&["edge", "add", &edge.url()]).ok();

    let mut child = s.admin.spawn_confirmed(
        &["remove", "--user", "alice", &s.removed.0.to_string()],
        &[],
    );
    edge.wait_for_push(Duration::from_secs(30));
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("reaped");
    assert_eq!(status.code(), None, "killed, not finished: {status}");

    assert!(
        !token_exists(&s.admin, s.removed.0),
        "the removal committed"
    );
    assert_origin_has_the_removal(&s, before);
}

#[test]
fn killed_after_the_commit_before_any_push_the_origin_serves_the_removal() {
    let s = setup();
    let before = s.serve.snapshot(&s.key).version();
    let mut edge = HangingEdge::new();
    s.admin.run(&["edge", "add", &edge.url()]).ok();

    // Its stdout is a full pipe: the process blocks printing its result, after the commit
    // and before it pushes (a terminal that went away does the same).
    let (_reader, writer) = full_pipe();
    let mut child = s.admin.spawn_confirmed_to(
        &["remove", "--user", "alice", &s.removed.0.to_string()],
        &[],
        Stdio::from(writer),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while token_exists(&s.admin, s.removed.0) {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("remove ended before committing: {status}");
        }
        assert!(Instant::now() < deadline, "the removal never committed");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(edge.accept_pending(), 0, "it never got to push");
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("reaped");
    assert_eq!(status.code(), None, "killed, not finished: {status}");

    assert_origin_has_the_removal(&s, before);
}

#[test]
fn every_change_is_signed_as_it_commits_even_without_pushing() {
    let s = setup();
    let (kept_id, kept_value) = s.kept.clone();
    let served = || s.serve.snapshot(&s.key);
    let mut version = served().version();
    let mut next = |what: &str| {
        let snapshot = served();
        assert_eq!(
            snapshot.version(),
            version + 1,
            "{what}: one new snapshot, signed in the change's transaction"
        );
        version = snapshot.version();
        snapshot
    };

    // remove --no-publish: nothing is pushed, the origin has it anyway.
    s.admin
        .confirmed(&[
            "remove",
            "--user",
            "alice",
            &s.removed.0.to_string(),
            "--no-publish",
        ])
        .ok();
    let snapshot = next("remove");
    assert!(
        !snapshot
            .hashes()
            .contains(&TokenHash::of(&s.removed.1).prefix())
    );

    // edit: the new scope is served.
    s.admin
        .confirmed(&[
            "edit",
            "--user",
            "alice",
            &kept_id.to_string(),
            "--method",
            "environment.Control.StopEnv",
            "--no-publish",
        ])
        .ok();
    let snapshot = next("edit");
    let entry = snapshot
        .find(&TokenHash::of(&kept_value))
        .expect("the edited token");
    assert_eq!(entry.methods(), ["environment.control.stopenv"]);

    // regenerate: the old value is gone, the new one is served.
    let run = s.admin.confirmed(&[
        "--json",
        "regenerate",
        "--user",
        "alice",
        &kept_id.to_string(),
        "--no-publish",
    ]);
    run.ok();
    let new_value = run.json()["token"].as_str().expect("token").to_string();
    let snapshot = next("regenerate");
    assert!(snapshot.find(&TokenHash::of(&kept_value)).is_none());
    assert_eq!(
        snapshot.find(&TokenHash::of(&new_value)).map(|e| e.id()),
        Some(kept_id as u64)
    );

    // copy: the copy is served next to the original.
    let run = s.admin.confirmed(&[
        "--json",
        "copy",
        "--user",
        "alice",
        &kept_id.to_string(),
        "--no-publish",
    ]);
    run.ok();
    let copy = run.json()["token"].as_str().expect("token").to_string();
    let snapshot = next("copy");
    assert_eq!(snapshot.token_count(), 2);
    assert!(snapshot.find(&TokenHash::of(&copy)).is_some());

    // generate (no edges configured at all).
    let (_, generated) = s.admin.token("alice", SCOPE);
    let snapshot = next("generate");
    assert!(snapshot.find(&TokenHash::of(&generated)).is_some());

    // A refused change (wrong password) signs nothing.
    s.admin
        .confirmed_with(
            &["remove", "--user", "alice", &kept_id.to_string()],
            "wrong password",
        )
        .fails(3);
    assert_eq!(served().version(), version);

    // A password change changes nothing a snapshot holds: no new version.
    s.admin
        .run_with(
            &["user", "passwd", "alice", "--password-stdin"],
            &format!("{PASSWORD}\nanother long password\n"),
        )
        .ok();
    assert_eq!(served().version(), version);
}

#[test]
fn a_change_that_cannot_be_signed_is_not_made() {
    let s = setup();
    let before = s.serve.snapshot(&s.key).version();
    // The active key's file is gone: the removal cannot be signed, so it is not committed.
    let keys = s.admin.store().join("keys");
    for entry in std::fs::read_dir(&keys).expect("keys dir") {
        std::fs::remove_file(entry.expect("entry").path()).expect("remove key file");
    }
    let err = s
        .admin
        .confirmed(&["remove", "--user", "alice", &s.removed.0.to_string()])
        .fails(1)
        .to_string();
    assert!(
        err.contains("cannot sign a snapshot with key") && err.contains("pat-admin key activate"),
        "{err}"
    );
    assert!(!err.contains("ed25519-secret"), "no key material: {err}");
    assert!(token_exists(&s.admin, s.removed.0), "nothing was changed");
    assert_eq!(s.serve.snapshot(&s.key).version(), before);
}
