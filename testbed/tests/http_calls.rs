//! HTTP calls: recorded as pending, answered by the test, timing out with
//! Envoy's 504, reset, or refused up front.

mod common;

use pat_testbed::{Error, Request, Response, StreamStatus};
use std::time::Duration;

fn call_request() -> Request {
    Request::get("/orders").header("x-fixture-op", "http-call")
}

#[test]
fn an_answered_call_resumes_the_request() {
    let tb = common::fixture().cluster("auth").build().unwrap();
    let ex = tb.vm(0).send(call_request());

    assert_eq!(ex.status(), StreamStatus::Paused);
    assert!(!ex.is_forwarded());
    let calls = tb.pending_http_calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.cluster, "auth");
    assert_eq!(call.vm, 0);
    assert_eq!(call.context_id, ex.context_id());
    assert_eq!(call.headers.get(":path"), Some("/check"));
    assert_eq!(call.headers.get("x-original-path"), Some("/orders"));
    assert_eq!(call.headers.get("content-length"), Some("4"));
    assert_eq!(call.body, b"ping");
    assert_eq!(call.timeout, Some(Duration::from_millis(1000)));

    tb.respond_http_call(call.token, Response::new(200).body("granted"))
        .unwrap();

    assert_eq!(ex.status(), StreamStatus::Forwarded);
    assert_eq!(
        ex.forwarded().unwrap().header("x-fixture-call-body"),
        Some("granted")
    );
    assert!(tb.pending_http_calls().is_empty());
}

#[test]
fn a_call_that_times_out_gets_envoys_504() {
    let tb = common::fixture().cluster("auth").build().unwrap();
    let ex = tb
        .vm(0)
        .send(call_request().header("x-fixture-timeout-ms", "50"));

    tb.advance(Duration::from_millis(49));
    assert!(ex.is_paused());
    tb.advance(Duration::from_millis(1));

    let local = ex.local_response().unwrap();
    assert_eq!(local.status, 502);
    assert_eq!(
        local.body_text(),
        "call failed: status=504 body=upstream request timeout host_status=0 "
    );
    assert!(tb.pending_http_calls().is_empty());
}

#[test]
fn a_reset_call_reports_broken_connection() {
    let tb = common::fixture().cluster("auth").build().unwrap();
    let ex = tb.vm(0).send(call_request());
    let token = tb.pending_http_calls()[0].token;

    tb.fail_http_call(token).unwrap();

    assert_eq!(
        ex.local_response().unwrap().body_text(),
        "call failed: status=none body= host_status=11 reset"
    );
}

#[test]
fn an_unknown_cluster_is_refused() {
    let tb = common::fixture().build().unwrap();
    let ex = tb.vm(0).send(call_request());

    let local = ex.local_response().unwrap();
    assert_eq!(local.status, 500);
    assert_eq!(local.body_text(), "dispatch failed: BadArgument");
    assert!(tb.pending_http_calls().is_empty());
}

#[test]
fn answering_an_unknown_token_is_an_error() {
    let tb = common::fixture().cluster("auth").build().unwrap();
    assert!(matches!(
        tb.respond_http_call(42, Response::new(200)),
        Err(Error::UnknownHttpCall(42))
    ));
}

#[test]
fn calls_from_two_vms_are_answered_independently() {
    let tb = common::fixture()
        .workers(2)
        .cluster("auth")
        .build()
        .unwrap();
    let first = tb.vm(0).send(call_request());
    let second = tb.vm(1).send(call_request());
    let calls = tb.pending_http_calls();
    assert_eq!(calls.iter().map(|c| c.vm).collect::<Vec<_>>(), vec![0, 1]);

    tb.respond_http_call(calls[1].token, Response::new(200).body("two"))
        .unwrap();
    assert!(first.is_paused());
    assert_eq!(
        second.forwarded().unwrap().header("x-fixture-call-body"),
        Some("two")
    );
}
