//! Usage reports: sent when due, signed with the edge's key, one at a time; a refused or
//! undeliverable report is dropped and the next one carries the later uses.

use pat_core::keys::TrustedKeys;
use pat_core::report;

use super::*;

const USAGE: &str = r#""usage":{"cluster":"pat_origin","interval_ms":10000,"timeout_ms":3000}"#;

/// A serving VM with reports on, signed by the returned key.
fn reporting() -> (Vm, SigningKey) {
    let (vm, _) = vm();
    (vm, SigningKey::generate().expect("rng"))
}

fn uses_in(body: &[u8], key: &SigningKey) -> Vec<u64> {
    let opened =
        report::open(body, &TrustedKeys::new([key.public_key()])).expect("a signed report");
    opened.uses.iter().map(|u| u.token_id).collect()
}

#[test]
fn a_report_is_sent_when_due_signed_and_one_at_a_time() {
    let (vm, key) = reporting();
    let host = FakeRoot::new(&vm);
    let config = configure(&host, USAGE, &key);
    let mut root = Root::default();
    let now = vm.now_ms.get() / 1000;
    vm.usage.borrow_mut().record(5, now);
    vm.usage.borrow_mut().record(9, now);
    root.on_tick(&host, &config);
    assert_eq!(
        host.call_count(),
        0,
        "due an interval after the window's first use"
    );
    advance(&vm, Duration::from_secs(10));
    root.on_tick(&host, &config);
    let call = host.last_call();
    assert_eq!(
        call.request_line(),
        ("POST".into(), wire::USAGE_PATH.into())
    );
    assert_eq!(call.cluster, "pat_origin");
    assert_eq!(
        call.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(call.timeout, Duration::from_secs(3));
    assert_eq!(uses_in(call.body.as_deref().expect("a body"), &key), [5, 9]);
    // Another window fills while the report is in flight: not sent until it is answered.
    vm.usage.borrow_mut().record(11, vm.now_ms.get() / 1000);
    advance(&vm, Duration::from_secs(10));
    root.on_tick(&host, &config);
    assert_eq!(host.call_count(), 1);
    host.answer_last(
        &mut root,
        &config,
        Some(Response::new(200, br#"{"result":0}"#.to_vec())),
    );
    assert_eq!(vm.take_root_events(), [Event::Report { delivered: true }]);
    root.on_tick(&host, &config);
    assert_eq!(host.call_count(), 2);
    assert_eq!(
        uses_in(host.last_call().body.as_deref().expect("a body"), &key),
        [11]
    );
}

#[test]
fn a_refused_report_is_dropped_and_the_next_carries_later_uses() {
    let (vm, key) = reporting();
    let host = FakeRoot::new(&vm);
    let config = configure(&host, USAGE, &key);
    let mut root = Root::default();
    vm.usage.borrow_mut().record(5, vm.now_ms.get() / 1000);
    advance(&vm, Duration::from_secs(10));
    root.on_tick(&host, &config);
    // The origin does not know this edge's key.
    host.answer_last(
        &mut root,
        &config,
        Some(Response::new(403, br#"{"result":403}"#.to_vec())),
    );
    assert_eq!(vm.take_root_events(), [Event::Report { delivered: false }]);
    assert!(vm.logged(
        Level::Warn,
        "a usage report was not accepted (HTTP 403); it is dropped"
    ));
    // Nothing is resent; the next report carries only what came after.
    root.on_tick(&host, &config);
    assert_eq!(host.call_count(), 1);
    vm.usage.borrow_mut().record(7, vm.now_ms.get() / 1000);
    advance(&vm, Duration::from_secs(10));
    root.on_tick(&host, &config);
    assert_eq!(
        uses_in(host.last_call().body.as_deref().expect("a body"), &key),
        [7]
    );
    // No answer at all (the origin is down) is not delivered either.
    host.answer_last(&mut root, &config, None);
    assert_eq!(vm.take_root_events(), [Event::Report { delivered: false }]);
    assert!(vm.logged(Level::Warn, "(no response)"));
}

#[test]
fn a_report_that_cannot_be_sent_is_dropped() {
    let (vm, key) = reporting();
    let host = FakeRoot::new(&vm);
    let config = configure(&host, USAGE, &key);
    let mut root = Root::default();
    vm.usage.borrow_mut().record(5, vm.now_ms.get() / 1000);
    advance(&vm, Duration::from_secs(10));
    host.refuse_calls.set(true);
    root.on_tick(&host, &config);
    assert_eq!(vm.take_root_events(), [Event::Report { delivered: false }]);
    assert!(vm.logged(
        Level::Warn,
        "cannot send a usage report to cluster pat_origin"
    ));
    // Not stuck "in flight": the next window goes out.
    host.refuse_calls.set(false);
    vm.usage.borrow_mut().record(6, vm.now_ms.get() / 1000);
    advance(&vm, Duration::from_secs(10));
    root.on_tick(&host, &config);
    assert_eq!(
        uses_in(host.last_call().body.as_deref().expect("a body"), &key),
        [6]
    );
}

#[test]
fn a_vm_that_serves_nothing_reports_nothing() {
    let (vm, key) = reporting();
    vm.active.set(false);
    let host = FakeRoot::new(&vm);
    let config = configure(&host, USAGE, &key);
    vm.usage.borrow_mut().record(5, vm.now_ms.get() / 1000);
    advance(&vm, Duration::from_secs(10));
    Root::default().on_tick(&host, &config);
    assert_eq!(host.call_count(), 0);
}
