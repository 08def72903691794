//! A process killed in the middle of a change leaves the store as it was before or after the
//! change, never in between, and the next process uses it normally.

mod support;

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::time::{Duration, Instant};

use pat_admin::store::{Store, audit, tokens};
use support::*;

fn spawn_generate(admin: &Admin, failpoint: bool) -> Child {
    let env: &[(&str, &str)] = if failpoint {
        &[("PAT_ADMIN_FAILPOINT", "sleep-before-commit")]
    } else {
        &[]
    };
    admin.spawn_confirmed(
        &[
            "generate",
            "--user",
            "alice",
            "--description",
            "crash test",
            "--api",
            "ide-plugins",
        ],
        env,
    )
}

/// Tokens and their `token.generate` audit entries are written in one transaction: they
/// must always agree.
fn assert_consistent(admin: &Admin) -> usize {
    let store = Store::open_as(admin.location(), pat_admin::store::Open::Existing)
        .expect("the store opens after a crash");
    store.check_integrity().expect("intact");
    let count = tokens::list(store.conn(), "alice").expect("list").len();
    let audited = audit::list(store.conn(), Some("alice"), 10_000)
        .expect("audit")
        .iter()
        .filter(|e| e.action == "token.generate")
        .count();
    assert_eq!(
        count, audited,
        "every token has its audit entry and vice versa"
    );
    count
}

#[test]
fn killed_inside_the_transaction_leaves_nothing_behind() {
    let admin = Admin::new();
    admin.user("alice");
    let mut child = spawn_generate(&admin, true);
    // Wait until it is inside its write transaction, then kill it.
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !line.contains("sleeping before commit") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).expect("read") > 0,
            "the process ended early"
        );
        assert!(Instant::now() < deadline, "the failpoint was never reached");
    }
    child.kill().expect("kill");
    child.wait().expect("reaped");

    assert_eq!(assert_consistent(&admin), 0, "the change did not happen");
    // The store is usable at once: no stale lock.
    admin.token("alice", &["--api", "ide-plugins"]);
    assert_eq!(assert_consistent(&admin), 1);
}

#[test]
fn killed_at_random_moments_the_store_stays_consistent() {
    let admin = Admin::new();
    admin.user("alice");
    let mut finished = 0;
    for i in 0..12u64 {
        let mut child = spawn_generate(&admin, false);
        // Spread the kills over the whole run of a generate (argon2 included).
        std::thread::sleep(Duration::from_millis(20 + (i * 37) % 260));
        let _ = child.kill();
        let status = child.wait().expect("reaped");
        if status.success() {
            finished += 1;
        }
        let count = assert_consistent(&admin);
        assert!(
            count >= finished,
            "a finished change is never lost ({count} < {finished})"
        );
    }
}
