//! Pausing on headers. By default Envoy turns `StopIteration` from headers into
//! `StopAllIterationAndWatermark`: no body callback until the filter continues,
//! then the body that arrived is delivered at once. With
//! `allow_on_headers_stop_iteration` the body callbacks keep coming.

mod common;

use pat_testbed::{Action, Callback, Request, Response};

fn paused_upload() -> Request {
    Request::post("/upload")
        .header("x-fixture-op", "http-call")
        .body_chunks(["ab", "cd"])
}

#[test]
fn paused_headers_hold_the_body_until_continue() {
    let tb = common::fixture().cluster("auth").build().unwrap();
    let ex = tb.vm(0).send(paused_upload());

    assert!(ex.is_paused());
    assert!(tb.logs_containing("body size=").is_empty());

    let token = tb.pending_http_calls()[0].token;
    tb.respond_http_call(token, Response::new(200).body("ok"))
        .unwrap();

    assert_eq!(
        tb.logs_containing("body size="),
        vec!["body size=4 eos=true"]
    );
    let forwarded = ex.forwarded().unwrap();
    assert_eq!(forwarded.body, b"abcd");
    assert_eq!(forwarded.header("x-fixture-call-body"), Some("ok"));
}

#[test]
fn allow_on_headers_stop_iteration_keeps_delivering_the_body() {
    let tb = common::fixture()
        .cluster("auth")
        .allow_on_headers_stop_iteration(true)
        .build()
        .unwrap();
    let ex = tb.vm(0).send(paused_upload());

    assert!(ex.is_paused());
    assert_eq!(
        tb.logs_containing("body size="),
        vec!["body size=2 eos=false", "body size=4 eos=true"]
    );
    assert_eq!(
        ex.actions_of(Callback::RequestBody),
        vec![
            Action::StopIterationAndBuffer,
            Action::StopIterationAndBuffer
        ]
    );

    let token = tb.pending_http_calls()[0].token;
    tb.respond_http_call(token, Response::new(200).body("ok"))
        .unwrap();

    let forwarded = ex.forwarded().unwrap();
    assert_eq!(forwarded.body, b"abcd");
    assert_eq!(forwarded.header("x-fixture-call-body"), Some("ok"));
}
