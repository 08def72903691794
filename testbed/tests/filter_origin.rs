//! An edge that (re)starts fetches the signed snapshot from the origin: one VM at a time,
//! conditionally, verified like a push, retried after failures, never replacing a newer one.

mod filter_support;

use std::time::Duration;

use filter_support::*;
use pat_core::keys::SigningKey;
use pat_testbed::{HttpCall, Response};

const ORIGIN: &str = r#""origin":{"cluster":"pat_origin","path":"/snapshot","authority":"pat-origin","interval_ms":30000,"retry_ms":2000,"timeout_ms":5000}"#;

/// Two serving workers (VMs 0 and 1) and VM 2, which never serves a request: Envoy's
/// main-thread VM, the one that normally fetches.
fn origin_edge() -> Edge {
    edge()
        .workers(3)
        .public(ORIGIN)
        .testbed(|b| b.cluster("pat_origin"))
        .build()
}

fn only_call(edge: &Edge) -> HttpCall {
    let calls = edge.tb.pending_http_calls();

    assert_eq!(calls.len(), 1, "exactly one VM fetches: {calls:?}");
    calls.into_iter().next().expect("one call")
}

fn header<'a>(call: &'a HttpCall, name: &str) -> Option<&'a str> {
    call.headers.get(name)
}

#[test]
fn a_fresh_edge_fetches_once_then_conditionally() {
    let edge = origin_edge();
    let t = Minted::new(1, "alice", &["environment.Control.StopEnv"]);
    assert_denied(&edge, &edge.get(0, STOPENV, t.value()), "no_snapshot", 701);

    edge.tick();
    let call = only_call(&edge);
    assert_eq!(call.cluster, "pat_origin");
    assert_eq!(header(&call, ":path"), Some("/snapshot"));
    assert_eq!(header(&call, ":authority"), Some("pat-origin"));
    assert_eq!(header(&call, "if-none-match"), None);
    let snapshot = snapshot(&edge.key, 4, &[&t]);
    edge.tb
        .respond_http_call(
            call.token,
            Response::new(200)
                .header("etag", "\"4-abc\"")
                .body(snapshot),
        )
        .expect("delivered");
    // Both workers serve it: one loads it at its tick, the other on its first request.
    assert!(edge.get(0, STOPENV, t.value()).is_forwarded());
    assert!(edge.get(1, STOPENV, t.value()).is_forwarded());
    assert_eq!(edge.tb.counter("pat_edge.origin.fetched"), Some(1));

    // Nothing more until the interval; then a conditional request.
    edge.tb.advance(Duration::from_secs(29));
    assert!(edge.tb.pending_http_calls().is_empty());
    edge.tb.advance(Duration::from_secs(1));
    let call = only_call(&edge);
    assert_eq!(header(&call, "if-none-match"), Some("\"4-abc\""));
    edge.tb
        .respond_http_call(call.token, Response::new(304))
        .expect("delivered");
    assert_eq!(edge.tb.counter("pat_edge.origin.not_modified"), Some(1));
    assert!(edge.get(0, STOPENV, t.value()).is_forwarded());
    edge.assert_clean(&[t.value()]);
}

#[test]
fn failures_keep_the_snapshot_and_retry_soon() {
    let edge = origin_edge();
    let t = Minted::new(1, "alice", &["environment.Control.StopEnv"]);
    edge.publish(0, 2, &[&t]);

    // The origin is down (connection reset): retried after retry_ms, not the interval.
    edge.tick();
    edge.tb
        .fail_http_call(only_call(&edge).token)
        .expect("delivered");
    assert!(
        edge.get(0, STOPENV, t.value()).is_forwarded(),
        "the pushed snapshot stays"
    );
    edge.tb.advance(Duration::from_millis(1900));
    assert!(edge.tb.pending_http_calls().is_empty());
    edge.tb.advance(Duration::from_millis(150));
    let call = only_call(&edge);

    // A 500 is a failure too.
    edge.tb
        .respond_http_call(call.token, Response::new(500).body("boom"))
        .expect("delivered");
    edge.tb.advance(Duration::from_millis(2050));
    let call = only_call(&edge);

    // A timeout (Envoy answers 504): failure, retried.
    let _ = call;
    edge.tb.advance(Duration::from_millis(5100));
    assert!(
        edge.tb.counter("pat_edge.origin.failed").unwrap_or(0) >= 3,
        "{:?}",
        edge.tb.metrics()
    );
    assert!(edge.get(1, STOPENV, t.value()).is_forwarded());
    edge.assert_clean(&[t.value()]);
}

#[test]
fn forged_or_older_snapshots_from_the_origin_change_nothing() {
    let edge = origin_edge();
    let t = Minted::new(1, "alice", &["environment.Control.StopEnv"]);
    let intruder = Minted::new(2, "mallory", &["environment.Control.StopEnv"]);
    edge.publish(0, 5, &[&t]);

    edge.tick();
    let forged = snapshot(&SigningKey::generate().expect("rng"), 9, &[&intruder]);
    edge.tb
        .respond_http_call(only_call(&edge).token, Response::new(200).body(forged))
        .expect("delivered");
    assert!(
        !edge
            .tb
            .logs_containing("snapshot from the origin was refused")
            .is_empty()
    );

    edge.tb.advance(Duration::from_millis(2100));
    let older = snapshot(&edge.key, 4, &[&intruder]);
    edge.tb
        .respond_http_call(
            only_call(&edge).token,
            Response::new(200).header("etag", "\"4-x\"").body(older),
        )
        .expect("delivered");

    for vm in 0..2 {
        assert!(edge.get(vm, STOPENV, t.value()).is_forwarded());
        assert_denied(
            &edge,
            &edge.get(vm, STOPENV, intruder.value()),
            "unknown_token",
            701,
        );
    }
    // An older snapshot is not an error: its ETag is remembered, so the origin is not
    // asked for it again and again.
    edge.tb.advance(Duration::from_secs(30));
    assert_eq!(header(&only_call(&edge), "if-none-match"), Some("\"4-x\""));
}

#[test]
fn serving_vms_step_in_when_no_idle_vm_fetches() {
    let edge = edge()
        .public(ORIGIN)
        .testbed(|b| b.cluster("pat_origin"))
        .build();
    for vm in 0..2 {
        assert!(edge.get(vm, STOPENV, "legacy").is_forwarded());
    }
    // With no idle VM, a serving one takes each fetch once it is 5 s overdue, the first too.
    edge.tick();
    assert!(edge.tb.pending_http_calls().is_empty());
    edge.tb.advance(Duration::from_secs(5));
    let t = Minted::new(1, "alice", &["environment.Control.StopEnv"]);
    edge.tb
        .respond_http_call(
            only_call(&edge).token,
            Response::new(200).body(snapshot(&edge.key, 1, &[&t])),
        )
        .expect("delivered");
    edge.tb.advance(Duration::from_secs(34));
    assert!(edge.tb.pending_http_calls().is_empty());
    edge.tb.advance(Duration::from_millis(1100));
    only_call(&edge);
}

#[test]
fn an_idle_vm_fetches_and_keeps_no_copy() {
    let edge = origin_edge();
    // VMs 0 and 1 serve traffic; VM 2 is idle, like Envoy's main-thread VM.
    for vm in 0..2 {
        assert!(edge.get(vm, STOPENV, "legacy").is_forwarded());
    }
    let idle_before = edge.tb.vm(2).memory_size();
    edge.tick();
    let call = only_call(&edge);
    assert_eq!(call.vm, 2, "the idle VM fetches");
    let many: Vec<Minted> = (1..=2000)
        .map(|i| Minted::new(i, "bulk", &["environment.Control.GetEnvs"]))
        .collect();
    let refs: Vec<&Minted> = many.iter().collect();
    edge.tb
        .respond_http_call(
            call.token,
            Response::new(200).body(snapshot(&edge.key, 1, &refs)),
        )
        .expect("delivered");
    // The serving VM picks it up from shared data.
    edge.tick();
    assert!(
        edge.get(0, "/1.0/environment/control/rest/getenvs", many[0].value())
            .is_forwarded()
    );
    // The idle VM published it and let it go (memory grew by the transient body only).
    let pointer = edge
        .tb
        .shared_data("pat_edge.v1.current")
        .expect("published")
        .value;
    assert_eq!(
        u64::from_le_bytes(pointer[..8].try_into().expect("8 bytes")),
        1
    );
    let grown = edge.tb.vm(2).memory_size().saturating_sub(idle_before);
    assert!(grown < 512 * 1024, "idle VM grew {grown} bytes");
    edge.assert_clean(&[many[0].value()]);
}
