//! A removed token stays removed across an Envoy restart: an older signed snapshot (captured
//! earlier, still within its lifetime) replayed to the control listener from the first
//! instant the restarted Envoy listens is refused, and not one request with the removed
//! token reaches the platform meanwhile.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use pat_e2e::{Client, PASSWORD, Stack, within};

const STOPENV: &str = "/1.0/environment/control/rest/stopenv";

/// The signed bytes of the latest snapshot in the store (what an attacker could have captured
/// from the origin or a push).
fn latest_snapshot(stack: &Stack) -> (u64, Vec<u8>) {
    stack
        .db()
        .query_row(
            "SELECT version, bytes FROM snapshots ORDER BY version DESC LIMIT 1",
            [],
            |row| Ok((row.get::<_, i64>(0)? as u64, row.get(1)?)),
        )
        .expect("a stored snapshot")
}

#[test]
fn a_replayed_snapshot_after_a_restart_never_brings_a_removed_token_back() {
    let mut stack = Stack::start();
    let (_, kept) = stack.token(&["--api", "ide-plugins"]);
    let (removed_id, removed) = stack.token(&["--api", "ide-plugins"]);
    let (old_version, old) = latest_snapshot(&stack);
    stack.admin_ok(
        &[
            "remove",
            "--user",
            "alice",
            &removed_id.to_string(),
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    let (new_version, _) = latest_snapshot(&stack);
    assert!(new_version > old_version);
    let client = Client::new();
    let removed_url = stack.url(&format!("{STOPENV}?session={removed}"));
    assert!(client.get(&removed_url, &[]).denied_with(701));

    // Restart. From before the new Envoy listens until well after, one thread replays the
    // old snapshot as fast as it can and another uses the removed token.
    stack.kill_envoy();
    let stop = Arc::new(AtomicBool::new(false));
    let accepted_pushes = Arc::new(AtomicUsize::new(0));
    let answered_pushes = Arc::new(AtomicUsize::new(0));
    let allowed = Arc::new(AtomicUsize::new(0));
    let tried = Arc::new(AtomicUsize::new(0));
    let control = format!("{}/_pat/snapshot", stack.control_url());
    let replayed = old.clone();
    let replayer = {
        let (stop, accepted, answered) = (
            stop.clone(),
            accepted_pushes.clone(),
            answered_pushes.clone(),
        );
        std::thread::spawn(move || {
            let http = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(5))
                .no_proxy()
                .build()
                .expect("client");
            while !stop.load(Ordering::Relaxed) {
                if let Ok(r) = http.put(&control).body(old.clone()).send() {
                    answered.fetch_add(1, Ordering::Relaxed);
                    if r.status().is_success() {
                        accepted.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };
    let user = {
        let (stop, allowed, tried, url) = (
            stop.clone(),
            allowed.clone(),
            tried.clone(),
            removed_url.clone(),
        );
        std::thread::spawn(move || {
            let http = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(5))
                .pool_max_idle_per_host(0)
                .no_proxy()
                .build()
                .expect("client");
            while !stop.load(Ordering::Relaxed) {
                if let Ok(r) = http.get(&url).send() {
                    tried.fetch_add(1, Ordering::Relaxed);
                    let json: serde_json::Value = r
                        .bytes()
                        .ok()
                        .and_then(|b| serde_json::from_slice(&b).ok())
                        .unwrap_or_default();
                    if json["result"] == 0 {
                        allowed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };
    stack.start_envoy_unsettled();
    // Keep replaying for a while after the origin has answered and the edge is serving.
    within(Duration::from_secs(20), || {
        stack.edge_status()["version"] == new_version
    })
    .expect("the edge serves the current snapshot from the origin");
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    replayer.join().expect("replayer");
    user.join().expect("user");

    let answered = answered_pushes.load(Ordering::Relaxed);
    let tried = tried.load(Ordering::Relaxed);
    println!("{answered} replayed pushes answered, {tried} requests with the removed token");
    assert!(
        answered > 10 && tried > 10,
        "{answered} pushes, {tried} requests"
    );
    assert_eq!(
        accepted_pushes.load(Ordering::Relaxed),
        0,
        "a replay was accepted"
    );
    assert_eq!(
        allowed.load(Ordering::Relaxed),
        0,
        "the removed token reached the platform"
    );
    for _ in 0..24 {
        assert!(client.get(&removed_url, &[]).denied_with(701));
        assert!(
            client
                .get(&stack.url(&format!("{STOPENV}?session={kept}")), &[])
                .is_ok()
        );
    }
    let replay = client.put(&format!("{}/_pat/snapshot", stack.control_url()), replayed);
    assert_eq!(replay.status, 409, "{:?}", replay.json);
    assert!(
        replay.json["error"]
            .as_str()
            .is_some_and(|e| e.contains("not newer") || e.contains("older than")),
        "{:?}",
        replay.json
    );
}
