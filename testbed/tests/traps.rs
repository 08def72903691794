//! Traps and failure policies: the trapping stream gets Envoy's 503; later
//! requests depend on `failure_policy`.

mod common;

use pat_testbed::{FailurePolicy, Plugin, Request, StreamStatus};
use std::time::Duration;

fn trap() -> Request {
    Request::get("/boom").header("x-fixture-op", "trap")
}

fn healthy() -> Request {
    Request::get("/fine").header("x-fixture-op", "add-header")
}

#[test]
fn fail_closed_answers_503_without_running_the_guest() {
    let tb = common::fixture().build().unwrap();

    let ex = tb.vm(0).send(trap());
    assert_eq!(ex.status(), StreamStatus::LocalResponse);
    let local = ex.local_response().unwrap();
    assert_eq!(
        (local.status, local.details.as_str()),
        (503, "wasm_fail_stream")
    );
    let traps = tb.traps();
    assert_eq!(traps.len(), 1);
    assert_eq!(traps[0].callback, "proxy_on_request_headers");
    assert!(
        traps[0].message.contains("unreachable"),
        "{}",
        traps[0].message
    );
    // The SDK's panic hook logged the panic before the abort.
    assert!(
        !tb.logs_containing("fixture trap in on_http_request_headers")
            .is_empty()
    );
    assert!(tb.vm(0).is_crashed());

    let later = tb.vm(0).send(healthy());
    assert_eq!(later.local_response().unwrap().status, 503);
    assert!(!later.is_forwarded());
    assert!(later.actions().is_empty(), "the guest must not run");
    assert_eq!(tb.traps().len(), 1);
}

#[test]
fn a_crash_only_affects_its_own_vm() {
    let tb = common::fixture().workers(2).build().unwrap();
    tb.vm(0).send(trap());

    let other = tb.vm(1).send(healthy());
    assert_eq!(
        other.forwarded().unwrap().header("x-fixture-added"),
        Some("yes")
    );
}

#[test]
fn fail_reload_recreates_the_vm_for_the_next_request() {
    let tb = common::fixture()
        .failure_policy(FailurePolicy::FailReload)
        .build()
        .unwrap();

    assert_eq!(tb.vm(0).send(trap()).local_response().unwrap().status, 503);
    assert!(tb.vm(0).is_crashed());

    let next = tb.vm(0).send(healthy());
    assert_eq!(
        next.forwarded().unwrap().header("x-fixture-added"),
        Some("yes")
    );
    assert!(!tb.vm(0).is_crashed());
    // A fresh instance ran the whole start sequence again.
    assert_eq!(tb.logs_containing("configured").len(), 2);
    assert_eq!(tb.traps().len(), 1);
}

#[test]
fn fail_open_bypasses_the_filter() {
    let tb = common::fixture()
        .failure_policy(FailurePolicy::FailOpen)
        .build()
        .unwrap();
    tb.vm(0).send(trap());

    let next = tb.vm(0).send(healthy());
    assert_eq!(next.status(), StreamStatus::Forwarded);
    assert_eq!(next.forwarded().unwrap().header("x-fixture-added"), None);
}

#[test]
fn a_trap_in_a_body_callback_fails_the_stream() {
    let tb = common::fixture().build().unwrap();
    let ex = tb.vm(0).send(
        Request::post("/")
            .header("x-fixture-op", "trap-body")
            .body("x"),
    );

    assert_eq!(ex.local_response().unwrap().status, 503);
    assert_eq!(tb.traps()[0].callback, "proxy_on_request_body");
}

#[test]
fn a_trap_in_on_tick_stops_that_vms_timers() {
    let tb = common::fixture()
        .plugin(Plugin::new("t").configuration("tick_ms=10 trap_on_tick=1"))
        .build()
        .unwrap();

    tb.advance(Duration::from_millis(100));

    let traps = tb.traps();
    assert_eq!(traps.len(), 1);
    assert_eq!(traps[0].callback, "proxy_on_tick");
    assert!(tb.vm(0).is_crashed());
}
