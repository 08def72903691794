//! Local replies and resets: nothing is forwarded, the client sees the filter's
//! answer, and the response callbacks still run for it.

mod common;

use pat_testbed::{Callback, Request, StreamStatus};

#[test]
fn local_reply_answers_without_forwarding() {
    let tb = common::fixture().build().unwrap();
    let ex = tb.vm(0).send(
        Request::get("/denied")
            .header("x-fixture-op", "local-reply")
            .header("x-fixture-status", "401")
            .header("x-fixture-body", "no"),
    );

    assert_eq!(ex.status(), StreamStatus::LocalResponse);
    assert!(!ex.is_forwarded());
    let local = ex.local_response().unwrap();
    assert_eq!(local.status, 401);
    assert_eq!(local.body_text(), "no");
    assert_eq!(local.header("x-fixture"), Some("local"));
    let response = ex.response().unwrap();
    assert_eq!(response.status(), Some(401));
    assert_eq!(response.header("x-fixture"), Some("local"));
    assert_eq!(response.header("content-type"), Some("text/plain"));
    assert_eq!(response.body_text(), "no");
}

#[test]
fn response_callbacks_run_on_a_local_reply() {
    let tb = common::fixture().build().unwrap();
    let ex = tb
        .vm(0)
        .send(Request::get("/").header("x-fixture-op", "local-reply,response-header"));

    assert_eq!(
        ex.response().unwrap().header("x-fixture-response"),
        Some("403")
    );
    assert_eq!(ex.actions_of(Callback::ResponseHeaders).len(), 1);
    assert_eq!(tb.counter("fixture.logged"), Some(1));
}

#[test]
fn upstream_response_goes_through_response_callbacks() {
    let tb = common::fixture().build().unwrap();
    let ex = tb.vm(0).send(
        Request::get("/")
            .header("x-fixture-op", "response-header")
            .upstream_response(pat_testbed::Response::new(201).body("made")),
    );

    let response = ex.response().unwrap();
    assert_eq!(response.status(), Some(201));
    assert_eq!(response.header("x-fixture-response"), Some("201"));
    assert_eq!(response.body, b"made");
    assert!(ex.local_response().is_none());
}

#[test]
fn reset_ends_the_stream_without_a_response() {
    let tb = common::fixture().build().unwrap();
    let ex = tb
        .vm(0)
        .send(Request::get("/").header("x-fixture-op", "reset"));

    assert_eq!(ex.status(), StreamStatus::Reset);
    assert!(!ex.is_forwarded());
    assert!(ex.response().is_none());
    // on_log / on_done / on_delete still run.
    assert_eq!(tb.counter("fixture.logged"), Some(1));
    assert_eq!(tb.vm(0).open_streams(), 0);
}
