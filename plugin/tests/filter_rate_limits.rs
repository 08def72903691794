//! Per-token rate limits, through the compiled filter: a burst of one second's worth, then
//! the steady rate; over it, `result` 705 with `Retry-After`, counted as `rate_limited`; the
//! budget shared by the edge's workers through shared data (or split per worker when so
//! configured); tokens without a limit unaffected; a limit raised and lifted by deltas.

mod filter_support;

use std::time::Duration;

use filter_support::*;
use pat_core::snapshot::Stamp;
use pat_testbed::Exchange;

const RATE_LIMITED: i64 = 705;
const STOP_PROD: &str = "/1.0/environment/control/rest/stopenv?envName=prod";

/// Sends `n` requests with `token`, alternating between the two workers; how many were
/// let through. Every refusal is checked: 705, `Retry-After`, nothing forwarded.
fn send(edge: &Edge, token: &Minted, n: usize, retry_after: &str) -> usize {
    (0..n)
        .filter(|i| {
            let ex = edge.get(i % 2, STOP_PROD, token.value());
            if ex.is_forwarded() {
                return true;
            }
            limited(edge, &ex, retry_after);
            false
        })
        .count()
}

fn limited(edge: &Edge, ex: &Exchange, retry_after: &str) {
    let body = assert_denied(edge, ex, "rate_limited", RATE_LIMITED);
    let error = body["error"].as_str().expect("error");
    assert!(error.contains("rate limit"), "{error}");
    let local = ex.local_response().expect("a denial");
    assert_eq!(local.header("retry-after"), Some(retry_after), "{local:?}");
    assert!(ex.forwarded().is_none());
}

fn rate_limited_count(edge: &Edge) -> u64 {
    edge.tb
        .counter("pat_edge.requests.denied.rate_limited")
        .unwrap_or(0)
}

#[test]
fn a_burst_shared_by_the_workers_then_705_with_retry_after_then_the_steady_rate() {
    let edge = edge().build();
    let token = Minted::new(1, "alice", &["environment.Control.StopEnv"]).rate_limited("5/s");
    edge.publish(0, 1, &[&token]);
    edge.tick();
    // The clock stands still: one second's worth (5), shared by both workers, then 705s.
    assert_eq!(
        send(&edge, &token, 12, "1"),
        5,
        "the burst, across 2 workers"
    );
    assert_eq!(rate_limited_count(&edge), 7);
    assert!(
        edge.tb.shared_data("pat_edge.v1.rate.1").is_some(),
        "the budget lives in shared data"
    );
    // One interval (200 ms) later, one more, on either worker; not two.
    edge.tb.advance(Duration::from_millis(200));
    assert_eq!(send(&edge, &token, 3, "1"), 1);
    edge.tb.advance(Duration::from_millis(200));
    let ex = edge.get(1, STOP_PROD, token.value());
    assert_eq!(
        forwarded(&ex).header("x-pat-token-id"),
        Some("1"),
        "worker 1 gets the refill too"
    );
    // A second idle refills the whole burst, and no more.
    edge.tb.advance(Duration::from_secs(2));
    assert_eq!(send(&edge, &token, 8, "1"), 5);
    // Over 3 s at the steady rate, 5 a second (allowing for the burst's edge).
    let mut admitted = 0;
    for _ in 0..30 {
        edge.tb.advance(Duration::from_millis(100));
        admitted += send(&edge, &token, 2, "1");
    }
    assert_eq!(admitted, 15, "5/s over 3 s");
    assert_eq!(
        edge.tb.counter("pat_edge.requests.allowed"),
        Some(5 + 1 + 1 + 5 + 15)
    );
    edge.assert_clean(&[token.value()]);
}

#[test]
fn tokens_without_a_limit_and_other_tokens_are_unaffected() {
    let edge = edge().build();
    let limited_token =
        Minted::new(1, "alice", &["environment.Control.StopEnv"]).rate_limited("3/s");
    let other = Minted::new(2, "alice", &["environment.Control.StopEnv"]).rate_limited("3/s");
    let open = Minted::new(3, "bob", &["environment.Control.StopEnv"]);
    edge.publish(0, 1, &[&limited_token, &other, &open]);
    edge.tick();
    assert_eq!(send(&edge, &limited_token, 6, "1"), 3);
    // Its budget spent, the other limited token still has its own.
    assert_eq!(send(&edge, &other, 6, "1"), 3);
    // A token without a limit: 200 requests in the same instant, all through, and it
    // writes no budget.
    assert_eq!(send(&edge, &open, 200, "-"), 200);
    assert!(edge.tb.shared_data("pat_edge.v1.rate.3").is_none());
    assert_eq!(rate_limited_count(&edge), 6);
    // Ordinary denials of a limited token are not rate-limit denials.
    assert_denied(
        &edge,
        &edge.get(0, "/1.0/environment/control/rest/startenv", other.value()),
        "out_of_scope",
        702,
    );
    assert_eq!(rate_limited_count(&edge), 6);
}

#[test]
fn per_minute_limits_allow_one_then_one_per_interval() {
    let edge = edge().build();
    let token = Minted::new(1, "alice", &["environment.Control.StopEnv"]).rate_limited("30/min");
    edge.publish(0, 1, &[&token]);
    edge.tick();
    // A burst of one (one second's worth of 30/min, at least one), then one every 2 s.
    assert_eq!(send(&edge, &token, 4, "2"), 1);
    edge.tb.advance(Duration::from_millis(1500));
    assert_eq!(send(&edge, &token, 2, "1"), 0, "half a second to go");
    edge.tb.advance(Duration::from_millis(500));
    assert_eq!(send(&edge, &token, 2, "2"), 1);
}

#[test]
fn the_status_of_a_rate_limit_denial_is_configurable() {
    let edge = edge()
        .public(r#""deny":{"rate_limited_http_status":429,"codes":{"rate_limited":7050}}"#)
        .build();
    let token = Minted::new(1, "alice", &["environment.Control.StopEnv"]).rate_limited("1/s");
    edge.publish(0, 1, &[&token]);
    edge.tick();
    forwarded(&edge.get(0, STOP_PROD, token.value()));
    let ex = edge.get(1, STOP_PROD, token.value());
    let local = ex.local_response().expect("over the limit");
    assert_eq!(local.status, 429);
    assert_eq!(local.header("retry-after"), Some("1"));
    let body = json(&ex);
    assert_eq!(body["result"], 7050, "{body}");
    // Other denials keep deny.http_status (200).
    let other = edge.get(0, "/1.0/environment/control/rest/startenv", token.value());
    assert_eq!(other.local_response().expect("denied").status, 200);
    assert_eq!(rate_limited_count(&edge), 1);
}

#[test]
fn per_worker_budgets_split_the_limit_between_the_workers() {
    let edge = edge()
        .public(r#""rate_limits":{"budget":"per_worker","workers":2}"#)
        .build();
    let token = Minted::new(1, "alice", &["environment.Control.StopEnv"]).rate_limited("4/s");
    edge.publish(0, 1, &[&token]);
    edge.tick();
    // All on worker 0: only its half of the burst.
    let on_0 = (0..4)
        .filter(|_| edge.get(0, STOP_PROD, token.value()).is_forwarded())
        .count();
    assert_eq!(on_0, 2);
    // Worker 1 has its own half.
    let on_1 = (0..4)
        .filter(|_| edge.get(1, STOP_PROD, token.value()).is_forwarded())
        .count();
    assert_eq!(on_1, 2);
    assert!(
        edge.tb.shared_data("pat_edge.v1.rate.1").is_none(),
        "nothing in shared data"
    );
    // Each worker refills at half the rate: one more per 500 ms each.
    edge.tb.advance(Duration::from_millis(500));
    assert_eq!(send(&edge, &token, 6, "1"), 2);
    assert_eq!(rate_limited_count(&edge), 4 + 4);
}

#[test]
fn a_limit_raised_then_lifted_by_deltas_takes_effect() {
    let edge = edge().build();
    let mut token = Minted::new(1, "alice", &["environment.Control.StopEnv"]).rate_limited("2/s");
    let v1 = snapshot_built(&edge.key, Stamp::lasting(1, START, LIFETIME), &[&token]);
    edge.push(0, v1.bytes.clone());
    edge.tick();
    assert_eq!(send(&edge, &token, 4, "1"), 2);
    // Raised to 10/s: after a second's rest, a burst of 10 where 2/s allowed 2.
    token.rate_limit = Some("10/s".parse().expect("limit"));
    let d2 = delta(&edge.key, (1, &v1), 2, &[&token], &[]);
    assert_eq!(
        edge.push(0, d2.bytes.clone())
            .local_response()
            .expect("answered")
            .status,
        200
    );
    edge.tb.advance(Duration::from_millis(1100));
    assert_eq!(send(&edge, &token, 14, "1"), 10);
    // Lifted.
    token.rate_limit = None;
    let d3 = delta(&edge.key, (2, &d2), 3, &[&token], &[]);
    edge.push(0, d3.bytes);
    edge.tick();
    assert_eq!(send(&edge, &token, 50, "-"), 50);
}
