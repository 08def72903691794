//! An edge that missed changes catches up from the origin, in real Envoy: an Envoy that
//! pat-admin does not push to (it only pulls from `pat-admin serve`) learns of changes made
//! after its first snapshot through `?since=` catch-ups, a chain of signed deltas, and
//! enforces them on every worker; a revocation it missed is enforced as soon as its next
//! poll has caught up.

use std::time::Duration;

use pat_e2e::{Client, Edge, PASSWORD, Stack, within};

const STOPENV: &str = "/1.0/environment/control/rest/stopenv?envName=x";

/// Every one of 12 fresh connections (both workers) to `edge` is allowed (`true`) or
/// denied with 701.
fn all(edge: &Edge, token: &str, works: bool) -> bool {
    (0..12).all(|_| {
        let answer = Client::new().get(&edge.url(&format!("{STOPENV}&session={token}")), &[]);
        if works {
            answer.is_ok()
        } else {
            answer.denied_with(701)
        }
    })
}

/// A counter of `edge`'s Envoy (0 when absent).
fn counter(edge: &Edge, name: &str) -> u64 {
    edge.stats()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("wasmcustom.pat_edge.{name}: ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn an_edge_that_only_pulls_catches_up_with_deltas_it_was_never_pushed() {
    let stack = Stack::start();
    let (first_id, first) = stack.token(&["--api", "ide-plugins"]);
    // Polls the origin every second (the shortest interval allowed); pat-admin never pushes
    // to it.
    let puller = stack.start_edge("puller", 2, false, |config| {
        config.replacen(
            "\"authority\": \"pat-origin\",\n                        \"interval_ms\": 10000",
            "\"authority\": \"pat-origin\",\n                        \"interval_ms\": 1000, \"retry_ms\": 500",
            1,
        )
    });
    assert!(
        within(Duration::from_secs(10), || all(&puller, &first, true)).is_some(),
        "the puller serves the origin's snapshot"
    );
    let full_fetches = counter(&puller, "origin.fetched");

    // Changes it is not told about: a new token, then the first one revoked.
    let (_, second) = stack.token(&["--api", "ide-plugins"]);
    stack.admin_ok(
        &[
            "remove",
            "--user",
            "alice",
            &first_id.to_string(),
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(
        within(Duration::from_secs(8), || all(&puller, &first, false)
            && all(&puller, &second, true))
        .is_some(),
        "the puller caught up: the revoked token is denied, the new one served"
    );
    assert!(
        counter(&puller, "origin.fetched") > full_fetches,
        "caught up by fetching from the origin"
    );
    let log = stack.edge_log("puller");
    assert!(
        log.lines().any(|l| l.contains("serving version")
            && l.contains("delta(s)")
            && !l.contains("full snapshot")),
        "caught up with deltas, not a whole snapshot: {}",
        log.lines()
            .filter(|l| l.contains("serving version"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
