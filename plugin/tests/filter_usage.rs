//! Usage reports through the compiled filter: each worker remembers which tokens it let
//! through, when last and from which address, and every interval POSTs a signed report to the
//! origin; one report in flight at a time; a failed report is dropped and requests never
//! notice.

mod filter_support;

use std::time::Duration;

use filter_support::*;
use pat_core::keys::{SigningKey, TrustedKeys};
use pat_core::report;
use pat_testbed::{Request, Response};

fn usage_edge(edge_key: &SigningKey) -> Edge {
    let secret = edge_key.to_secret_text().to_string();
    edge()
        .public(r#""usage":{"cluster":"pat_origin","path":"/usage","interval_ms":10000,"timeout_ms":2000}"#)
        .testbed(move |b| b.cluster("pat_origin").env("PAT_EDGE_KEY", secret))
        .build()
}

#[test]
fn allowed_uses_are_reported_signed_with_their_addresses() {
    let edge_key = SigningKey::generate().expect("rng");
    let edge = usage_edge(&edge_key);
    let alice = Minted::new(1, "alice", &["environment.Control.StopEnv"]);
    let bob = Minted::new(2, "bob", &["environment.Control.StopEnv"]);
    edge.publish(0, 1, &[&alice, &bob]);
    let from = |vm: usize, token: &Minted, address: &str| {
        edge.tb.vm(vm).send(
            Request::get(format!("{STOPENV}?session={}", token.value())).source_address(address),
        )
    };
    assert!(from(0, &alice, "203.0.113.7:41000").is_forwarded());
    assert!(from(0, &alice, "203.0.113.8:41000").is_forwarded());
    assert!(from(1, &bob, "[2001:db8::5]:52000").is_forwarded());
    // A denial is not a use.
    assert!(
        !edge
            .get(0, "/1.0/environment/control/rest/deleteenv", bob.value())
            .is_forwarded()
    );
    assert!(
        edge.tb.pending_http_calls().is_empty(),
        "no host call per request"
    );

    edge.tb.advance(Duration::from_secs(10));
    let calls = edge.tb.pending_http_calls();
    assert_eq!(calls.len(), 2, "one report per worker: {calls:?}");
    let keys = TrustedKeys::new([edge_key.public_key()]);
    let mut seen = Vec::new();
    for call in &calls {
        assert_eq!(call.cluster, "pat_origin");
        assert_eq!(call.headers.get(":method"), Some("POST"));
        assert_eq!(call.headers.get(":path"), Some("/usage"));
        let r = report::open(&call.body, &keys).expect("a signed report");
        seen.extend(r.uses);
    }
    seen.sort_by_key(|u| u.token_id);
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].token_id, 1);
    assert_eq!(
        seen[0].address,
        Some("203.0.113.7".parse().expect("ip")),
        "the first address in the window"
    );
    assert_eq!(seen[1].address, Some("2001:db8::5".parse().expect("ip")));
    assert!(seen[0].last_used >= START);
    for call in calls {
        edge.tb
            .respond_http_call(call.token, Response::new(200))
            .expect("delivered");
    }
    assert_eq!(edge.tb.counter("pat_edge.usage.reports_sent"), Some(2));
    // Nothing new, nothing sent.
    edge.tb.advance(Duration::from_secs(10));
    assert!(edge.tb.pending_http_calls().is_empty());
    edge.assert_clean(&[alice.value(), bob.value()]);
}

#[test]
fn a_failed_report_is_dropped_and_requests_go_on() {
    let edge_key = SigningKey::generate().expect("rng");
    let edge = usage_edge(&edge_key);
    let alice = Minted::new(1, "alice", &["environment.Control.StopEnv"]);
    edge.publish(0, 1, &[&alice]);
    assert!(edge.get(0, STOPENV, alice.value()).is_forwarded());
    edge.tb.advance(Duration::from_secs(10));
    let call = edge.tb.pending_http_calls().pop().expect("a report");
    // While it is in flight (up to its 2 s timeout), uses go on and nothing else is sent.
    assert!(edge.get(0, STOPENV, alice.value()).is_forwarded());
    edge.tb.advance(Duration::from_secs(1));
    assert_eq!(edge.tb.pending_http_calls().len(), 1, "one in flight");
    edge.tb
        .respond_http_call(call.token, Response::new(503).body("origin down"))
        .expect("delivered");
    assert_eq!(edge.tb.counter("pat_edge.usage.reports_failed"), Some(1));
    assert!(edge.get(0, STOPENV, alice.value()).is_forwarded());
    // The next window is reported as usual.
    edge.tb.advance(Duration::from_secs(10));
    assert_eq!(edge.tb.pending_http_calls().len(), 1);
    assert!(edge.tb.traps().is_empty());
}

#[test]
fn without_an_edge_key_no_reports_are_sent() {
    let edge = edge()
        .public(r#""usage":{"cluster":"pat_origin"}"#)
        .testbed(|b| b.cluster("pat_origin"))
        .build();
    let alice = Minted::new(1, "alice", &["environment.Control.StopEnv"]);
    edge.publish(0, 1, &[&alice]);
    assert!(edge.get(0, STOPENV, alice.value()).is_forwarded());
    edge.tb.advance(Duration::from_secs(20));
    assert!(edge.tb.pending_http_calls().is_empty());
}
