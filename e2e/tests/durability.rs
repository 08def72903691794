//! Revocation is final, even when pat-admin dies mid-publish: a `remove` SIGKILLed while its
//! push to a hanging edge hangs, and one killed after its commit but before it pushed at
//! all, are both enforced by an Envoy that restarts and is fed only by the origin
//! (`pat-admin serve`): the removed tokens are denied on every worker, a surviving token
//! still works.

use std::net::TcpListener;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use pat_e2e::{Client, PASSWORD, Stack, full_pipe, within};

const STOPENV: &str = "/1.0/environment/control/rest/stopenv";
/// Fresh connections per check: with two workers, 24 connections all landing on one worker
/// is a 2^-23 chance.
const PROBES: usize = 24;

/// Waits until `listener` has a connection waiting (a push reached it), or panics.
fn wait_for_push(listener: &TcpListener) -> std::net::TcpStream {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok((stream, _)) = listener.accept() {
            return stream;
        }
        assert!(
            Instant::now() < deadline,
            "no push reached the hanging edge"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn kill(mut child: Child) {
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("reaped");
    assert_eq!(status.code(), None, "killed, not finished: {status}");
}

fn token_exists(stack: &Stack, id: i64) -> bool {
    stack
        .db()
        .query_row("SELECT count(*) FROM tokens WHERE id = ?1", [id], |row| {
            row.get::<_, i64>(0)
        })
        .expect("count")
        == 1
}

#[test]
fn removals_killed_mid_publish_are_enforced_after_an_edge_restart() {
    let mut stack = Stack::start();
    let scope = ["--api", "ide-plugins"];
    let (_, kept) = stack.token(&scope);
    let (during_push, killed_pushing) = stack.token(&scope);
    let (before_push, killed_before_pushing) = stack.token(&scope);
    let client = Client::new();
    let works = |stack: &Stack, token: &str| {
        client
            .get(&stack.url(&format!("{STOPENV}?session={token}")), &[])
            .is_ok()
    };
    assert!((0..PROBES).all(|_| works(&stack, &kept) && works(&stack, &killed_pushing)));

    // An edge that accepts TCP and never answers: every push to it hangs.
    let hanging = TcpListener::bind("127.0.0.1:0").expect("bind");
    hanging.set_nonblocking(true).expect("non-blocking");
    let hanging_url = format!("http://{}", hanging.local_addr().expect("addr"));
    stack.admin_ok(&["edge", "add", &hanging_url], "");
    let password = format!("{PASSWORD}\n");

    // 1. SIGKILLed while its push hangs (the real edge may or may not have it by then).
    let child = stack.spawn_admin(
        &[
            "remove",
            "--user",
            "alice",
            &during_push.to_string(),
            "--password-stdin",
        ],
        &password,
        Stdio::null(),
    );
    let _held = wait_for_push(&hanging);
    kill(child);

    // 2. Killed after its commit, before any push: its stdout is a full pipe, so it blocks
    //    printing its result (as with a terminal that went away).
    let (_reader, writer) = full_pipe();
    let child = stack.spawn_admin(
        &[
            "remove",
            "--user",
            "alice",
            &before_push.to_string(),
            "--password-stdin",
        ],
        &password,
        Stdio::from(writer),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while token_exists(&stack, before_push) {
        assert!(Instant::now() < deadline, "the removal never committed");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(hanging.accept().is_err(), "it never got to push");
    kill(child);

    // The edge restarts: shared data is gone, nobody publishes; only the origin feeds it.
    stack.kill_envoy();
    stack.start_envoy();
    let denied = |token: &str| {
        client
            .get(&stack.url(&format!("{STOPENV}?session={token}")), &[])
            .denied_with(701)
    };
    let took = within(Duration::from_secs(10), || works(&stack, &kept))
        .expect("the surviving token works again from the origin");
    println!("serving from the origin {took:?} after Envoy was ready");
    for _ in 0..PROBES {
        assert!(
            works(&stack, &kept),
            "the surviving token works on every worker"
        );
        assert!(
            denied(&killed_pushing),
            "removed while its push hung, yet allowed"
        );
        assert!(
            denied(&killed_before_pushing),
            "removed before any push, yet allowed"
        );
    }
}
