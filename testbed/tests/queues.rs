//! Shared queues: an enqueue from any VM notifies the root context that
//! registered the queue, before the driving call returns.

mod common;

use pat_testbed::{Plugin, Request};

#[test]
fn enqueue_notifies_the_registering_root_context() {
    let tb = common::fixture()
        .workers(2)
        .plugin(Plugin::new("q").configuration("label=q queue=1"))
        .build()
        .unwrap();

    let ex = tb.vm(0).send(
        Request::get("/")
            .header("x-fixture-op", "enqueue")
            .header("x-fixture-value", "hello"),
    );

    assert_eq!(
        ex.forwarded().unwrap().header("x-fixture-result"),
        Some("ok")
    );
    // VM 1 registered last, so it owns the notifications (Envoy: last registration wins).
    let delivered: Vec<_> = tb
        .logs()
        .into_iter()
        .filter(|l| l.message == "queue item q: hello")
        .map(|l| l.vm)
        .collect();
    assert_eq!(delivered, vec![1]);
    assert_eq!(tb.counter("fixture.queue_items"), Some(1));
    assert_eq!(tb.queue_len("fixture"), Some(0));
}

#[test]
fn enqueue_to_an_unregistered_queue_is_not_found() {
    let tb = common::fixture().build().unwrap();
    let ex = tb.vm(0).send(
        Request::get("/")
            .header("x-fixture-op", "enqueue")
            .header("x-fixture-value", "lost"),
    );
    assert_eq!(
        ex.forwarded().unwrap().header("x-fixture-result"),
        Some("no-queue")
    );
}
