//! `serve` keeps the origin fresh without an operator: it re-signs the latest snapshot a
//! quarter into its lifetime (same tokens, newer version, later expiry), signs changes that
//! were committed while no key existed, re-signs with a newly active key, waits out a
//! locked store without dying, and of two serve processes only one re-signs.
//!
//! Time passes by the test clock ([`Admin::advance`]), not by waiting: the serves see it on
//! their next check ([`SERVE_CHECK`]).

mod support;

use std::time::{Duration, Instant};

use pat_core::token::TokenHash;
use support::*;

const SCOPE: &[&str] = &["--api", "ide-plugins"];

/// Polls `check` every 100 ms for up to `limit`.
fn within<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The hash prefixes the served state holds (what it stores of each token's hash), sorted.
fn sorted_hashes(served: &Served) -> Vec<[u8; 16]> {
    served.hashes()
}

fn resign_lines(log: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("signed snapshot version") && l.contains("re-sign due"))
        .count()
}

/// A store with a 60 s snapshot lifetime and two tokens.
fn short_lived() -> (Admin, String) {
    let admin = Admin::new();
    admin.user("alice");
    let key = admin.key();
    admin
        .run(&["config", "set", "snapshot-lifetime", "60s"])
        .ok();
    admin.token("alice", SCOPE);
    admin.token("alice", SCOPE);
    (admin, key)
}

#[test]
fn serve_re_signs_a_quarter_into_the_lifetime_once_for_two_serves() {
    let (admin, key) = short_lived();
    let mut serve = admin.serve();
    let other = admin.serve();
    let (first, _) = serve.head(&key);
    assert_eq!(
        first.expires_at - first.issued_at,
        60,
        "the configured lifetime"
    );
    let tokens = sorted_hashes(&serve.snapshot(&key));
    assert_eq!(tokens.len(), 2);

    // Well before a quarter of the lifetime: the same snapshot, however often they look.
    admin.advance_to(first.issued_at + 10);
    serve.wait_checks(2);
    assert_eq!(serve.head(&key).0, first, "nothing to re-sign yet");
    assert_eq!(resign_lines(&serve.log()) + resign_lines(&other.log()), 0);

    // A quarter (15 s) in, serve re-signs within its check interval.
    admin.advance_to(first.issued_at + 15);
    let (second, _) = within(Duration::from_secs(10), || {
        let head = serve.head(&key);
        (head.0.version != first.version).then_some(head)
    })
    .unwrap_or_else(|| panic!("not re-signed 15 s in: {}", serve.log()));
    assert!(second.version > first.version);
    assert!(second.expires_at > first.expires_at, "a later expiry");
    assert_eq!(second.expires_at - second.issued_at, 60);
    let snapshot = serve.snapshot(&key);
    assert_eq!(snapshot.version(), second.version);
    assert_eq!(sorted_hashes(&snapshot), tokens, "the same tokens");

    // Both serves had a chance to re-sign (each checks every SERVE_CHECK): only one did, and
    // both hand out the same snapshot.
    serve.wait_checks(2);
    assert_eq!(other.head(&key).0, serve.head(&key).0);
    assert_eq!(serve.head(&key).0, second);
    assert_eq!(second.version, first.version + 1, "no version was skipped");
    serve.assert_running();
    let (log, other_log) = (serve.log(), other.log());
    assert_eq!(
        resign_lines(&log) + resign_lines(&other_log),
        1,
        "one re-sign, one line: {log}\n---\n{other_log}"
    );
    assert!(
        !log.contains("pate_") && !other_log.contains("pate_"),
        "no token in logs"
    );
}

#[test]
fn a_locked_store_delays_re_signing_but_serve_keeps_serving() {
    let (admin, key) = short_lived();
    let mut serve = admin.serve();
    let (first, _) = serve.head(&key);
    admin.advance_to(first.issued_at + 12);
    // Another process holds the write lock across the moment serve would re-sign.
    let lock = admin.db();
    lock.begin(pat_admin::store::db::Begin::Write)
        .expect("write lock");
    admin.advance_to(first.issued_at + 20);
    // Its re-signer looked (and waits for the lock) meanwhile.
    serve.wait_checks(2);
    assert_eq!(serve.head(&key).0, first, "still served while locked");
    assert_eq!(serve.snapshot(&key).version(), first.version);
    serve.assert_running();
    lock.execute_batch("ROLLBACK").expect("unlock");
    let (second, _) = within(Duration::from_secs(10), || {
        let head = serve.head(&key);
        (head.0.version != first.version).then_some(head)
    })
    .unwrap_or_else(|| panic!("not re-signed after the lock: {}", serve.log()));
    assert!(second.expires_at > first.expires_at);
    serve.assert_running();
}

#[test]
fn changes_made_without_a_key_are_signed_once_a_key_exists() {
    let admin = Admin::new();
    admin.user("alice");
    let mut serve = admin.serve();
    let (_, a) = admin.token("alice", SCOPE);
    let (_, b) = admin.token("alice", SCOPE);
    serve.wait_checks(2);
    assert_eq!(
        serve.get("/snapshot/head", None).status,
        404,
        "no key, nothing"
    );

    let key = admin.key();
    let snapshot = within(Duration::from_secs(6), || {
        (serve.get("/snapshot", None).status == 200).then(|| serve.snapshot(&key))
    })
    .unwrap_or_else(|| panic!("not signed: {}", serve.log()));
    let mut expected = vec![TokenHash::of(&a).prefix(), TokenHash::of(&b).prefix()];
    expected.sort();
    assert_eq!(sorted_hashes(&snapshot), expected);
    assert!(
        serve.log().contains("token changes without a snapshot"),
        "{}",
        serve.log()
    );
    serve.assert_running();
}

#[test]
fn a_newly_active_key_re_signs_at_once() {
    let admin = Admin::new();
    admin.user("alice");
    let old = admin.key();
    let (_, token) = admin.token("alice", SCOPE);
    let serve = admin.serve();
    let before = serve.head(&old).0;

    let new = admin.key();
    let (header, _) = within(Duration::from_secs(6), || {
        let reply = serve.get("/snapshot/head", None);
        pat_core::snapshot::verify_head(&reply.body, &trusted(&new))
            .ok()
            .map(|h| (h, reply.body))
    })
    .unwrap_or_else(|| panic!("not re-signed with the new key: {}", serve.log()));
    assert!(header.version > before.version);
    let snapshot = serve.snapshot(&new);
    assert!(snapshot.find(&TokenHash::of(&token)).is_some());

    // Back to the old key (key activate): re-signed with it.
    let old_id = admin.run(&["--json", "key", "list"]).json()[0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    admin.run(&["key", "activate", &old_id]).ok();
    within(Duration::from_secs(6), || {
        (serve.get("/snapshot/head", None).status == 200
            && pat_core::snapshot::verify_head(
                &serve.get("/snapshot/head", None).body,
                &trusted(&old),
            )
            .is_ok_and(|h| h.version > header.version))
        .then_some(())
    })
    .unwrap_or_else(|| panic!("not re-signed with the old key: {}", serve.log()));
}

#[test]
fn the_check_interval_is_a_documented_duration_of_a_second_or_more() {
    let admin = Admin::new();
    let help = admin.run(&["serve", "--help"]);
    let help = help.ok().split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        help.contains("--check-every <DURATION>") && help.contains("[default: 2s]"),
        "{help}"
    );
    for (bad, why) in [
        ("0s", "--check-every 0s: at least 1s"),
        ("2", "--check-every: `2` is not a duration"),
    ] {
        let run = admin.run(&["serve", "--listen", "127.0.0.1:0", "--check-every", bad]);
        let stderr = run.fails(2);
        assert!(stderr.contains(why), "{stderr}");
    }
    // The interval in use is in serve's first line (written once it listens).
    let serve = admin.serve();
    let line = format!("checked every {}s", SERVE_CHECK.as_secs());
    within(Duration::from_secs(10), || {
        serve.log().contains(&line).then_some(())
    })
    .unwrap_or_else(|| panic!("{}", serve.log()));
}
