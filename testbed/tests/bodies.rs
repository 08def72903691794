//! Request bodies: streaming chunk by chunk, buffering with cumulative sizes,
//! rewriting the buffered body, and the 413 buffer limit.

mod common;

use pat_testbed::{Action, Callback, Request, StreamStatus};

#[test]
fn buffered_body_accumulates_and_can_be_rewritten() {
    let tb = common::fixture().build().unwrap();
    let ex = tb.vm(0).send(
        Request::post("/upload")
            .header("x-fixture-op", "buffer-body")
            .body_chunks(["ab", "cd", "ef"]),
    );

    assert_eq!(ex.status(), StreamStatus::Forwarded);
    assert_eq!(ex.forwarded().unwrap().body, b"ABCDEF");
    assert_eq!(
        tb.logs_containing("body size="),
        vec![
            "body size=2 eos=false",
            "body size=4 eos=false",
            "body size=6 eos=true"
        ]
    );
    assert_eq!(
        ex.actions_of(Callback::RequestBody),
        vec![
            Action::StopIterationAndBuffer,
            Action::StopIterationAndBuffer,
            Action::Continue
        ]
    );
}

#[test]
fn unbuffered_chunks_are_seen_one_at_a_time() {
    let tb = common::fixture().build().unwrap();
    let ex = tb
        .vm(0)
        .send(Request::post("/stream").body("abcdefg").chunk_size(3));

    assert_eq!(ex.forwarded().unwrap().body, b"abcdefg");
    assert_eq!(
        tb.logs_containing("body size="),
        vec![
            "body size=3 eos=false",
            "body size=3 eos=false",
            "body size=1 eos=true"
        ]
    );
}

#[test]
fn buffering_past_the_limit_answers_413() {
    let tb = common::fixture().buffer_limit(8).build().unwrap();
    let ex = tb.vm(0).send(
        Request::post("/big")
            .header("x-fixture-op", "buffer-body")
            .body_chunks(["12345", "67890"]),
    );

    assert_eq!(ex.status(), StreamStatus::LocalResponse);
    assert!(!ex.is_forwarded());
    let local = ex.local_response().unwrap();
    assert_eq!(local.status, 413);
    assert_eq!(local.details, "request_payload_too_large");
    assert_eq!(ex.response_status(), Some(413));
    assert_eq!(ex.response().unwrap().body_text(), "Payload Too Large");
    // The second chunk never reached the filter.
    assert_eq!(
        tb.logs_containing("body size="),
        vec!["body size=5 eos=false"]
    );
}

#[test]
fn a_body_within_the_limit_passes() {
    let tb = common::fixture().buffer_limit(10).build().unwrap();
    let ex = tb.vm(0).send(
        Request::post("/ok")
            .header("x-fixture-op", "buffer-body")
            .body_chunks(["12345", "67890"]),
    );

    assert_eq!(ex.forwarded().unwrap().body, b"1234567890");
}
