//! When the origin fails: down (the call refused or unanswered), slow (an answer that comes
//! after the claim ran out), an error status, garbage, a signature from a key this edge does
//! not trust, and an origin that went backwards. Requests are never touched; the edge keeps
//! what it holds and tries again.

use super::*;

#[test]
fn an_origin_that_is_down_is_retried_soon() {
    let (vm, p) = vm();
    let host = FakeRoot::new(&vm);
    let (mut root, config) = with_origin(&host);
    // The cluster refuses the call (Envoy: no such cluster, or no healthy host to try).
    host.refuse_calls.set(true);
    root.on_tick(&host, &config);
    assert_eq!(host.call_count(), 0);
    assert_eq!(vm.take_root_events(), [Event::OriginFailed]);
    assert!(vm.logged(
        Level::Warn,
        "cannot fetch from the origin cluster pat_origin"
    ));
    host.refuse_calls.set(false);
    advance(&vm, Duration::from_millis(1_999));
    root.on_tick(&host, &config);
    assert_eq!(host.call_count(), 0, "retried after retry_ms, not before");
    advance(&vm, Duration::from_millis(1));
    root.on_tick(&host, &config);
    assert_eq!(host.call_count(), 1);
    // The connection fails: the call ends with no answer at all.
    host.answer_last(&mut root, &config, None);
    assert_eq!(vm.take_root_events(), [Event::OriginFailed]);
    assert!(vm.logged(
        Level::Warn,
        "snapshot head fetch from cluster pat_origin failed (no response); retrying in 2000 ms"
    ));
    assert_eq!(
        floor::read(&vm.store),
        Ok(Floor::Pending),
        "pushes still wait"
    );
    // An error status is a failure too.
    advance(&vm, Duration::from_secs(2));
    root.on_tick(&host, &config);
    host.answer_last(&mut root, &config, Some(Response::new(503, b"{}".to_vec())));
    assert!(vm.logged(Level::Warn, "failed (HTTP 503)"));
    // And then it answers.
    advance(&vm, Duration::from_secs(2));
    root.on_tick(&host, &config);
    host.answer_last(&mut root, &config, Some(head_of(&p.snapshot(1, &[]))));
    assert_eq!(floor::read(&vm.store), Ok(Floor::Known(1)));
}

#[test]
fn a_slow_origins_claim_runs_out_and_its_late_answer_is_ignored() {
    let (vm, p) = vm();
    let host = FakeRoot::new(&vm);
    let (mut root, config) = with_origin(&host);
    root.on_tick(&host, &config);
    let slow = host.last_call().token;
    // No answer: the fetch counts as in flight for the call's timeout and a second.
    advance(&vm, Duration::from_millis(5_999));
    root.on_tick(&host, &config);
    assert_eq!(host.call_count(), 1);
    advance(&vm, Duration::from_millis(1));
    root.on_tick(&host, &config);
    assert_eq!(host.call_count(), 2, "the claim ran out: asked again");
    let again = host.last_call().token;
    // The first answer arrives after all: this root no longer waits for it.
    host.answer(&mut root, &config, slow, Some(head_of(&p.snapshot(7, &[]))));
    assert_eq!(floor::read(&vm.store), Ok(Floor::Pending));
    assert!(vm.take_root_events().is_empty());
    host.answer(
        &mut root,
        &config,
        again,
        Some(head_of(&p.snapshot(8, &[]))),
    );
    assert_eq!(floor::read(&vm.store), Ok(Floor::Known(8)));
}

#[test]
fn garbage_from_the_origin_is_refused_and_changes_nothing() {
    let (vm, p) = vm();
    let host = FakeRoot::new(&vm);
    let (mut root, config) = with_origin(&host);
    root.on_tick(&host, &config);
    host.answer_last(
        &mut root,
        &config,
        Some(Response::new(200, b"<html>hello</html>".to_vec())),
    );
    assert!(vm.logged(Level::Error, "the origin's snapshot head was refused"));
    assert_eq!(vm.take_root_events(), [Event::OriginFailed]);
    assert_eq!(floor::read(&vm.store), Ok(Floor::Pending));
    // A head signed by a key this edge does not trust.
    advance(&vm, Duration::from_secs(2));
    root.on_tick(&host, &config);
    let stranger = Publisher::new().snapshot(9, &["x"]);
    host.answer_last(&mut root, &config, Some(head_of(&stranger)));
    assert!(vm.logged(Level::Error, "which is not among the trusted public keys"));
    assert_eq!(floor::read(&vm.store), Ok(Floor::Pending));
    // A head with a flipped byte.
    advance(&vm, Duration::from_secs(2));
    root.on_tick(&host, &config);
    let mut forged = p.snapshot(9, &["x"])[..BODY_OFFSET].to_vec();
    forged[16] ^= 1;
    host.answer_last(&mut root, &config, Some(Response::new(200, forged)));
    assert_eq!(floor::read(&vm.store), Ok(Floor::Pending));
    // A real head, then a state that is garbage: refused, fetched again soon.
    let v1 = p.snapshot(1, &["a"]);
    advance(&vm, Duration::from_secs(2));
    root.on_tick(&host, &config);
    host.answer_last(&mut root, &config, Some(head_of(&v1)));
    overdue(&vm);
    root.on_tick(&host, &config);
    host.answer_last(
        &mut root,
        &config,
        Some(state(b"PATBNDL1 not really".to_vec(), "\"x\"")),
    );
    assert!(vm.logged(Level::Error, "the snapshot from the origin was refused"));
    assert_eq!(vm.version(), None);
    let calls = host.call_count();
    advance(&vm, Duration::from_secs(2));
    overdue(&vm);
    root.on_tick(&host, &config);
    assert_eq!(host.call_count(), calls + 1);
    assert_eq!(
        host.last_call().request_line().1,
        wire::SNAPSHOT_PATH,
        "still the state, after retry_ms"
    );
    host.answer_last(&mut root, &config, Some(state(v1, "\"full-1-1-x\"")));
    assert_eq!(vm.version(), Some(1));
}

#[test]
fn an_origin_that_went_backwards_is_not_followed() {
    let (vm, p) = vm();
    let host = FakeRoot::new(&vm);
    let (mut root, config) = with_origin(&host);
    let v4 = p.snapshot(4, &["revoked"]);
    let v5 = p.snapshot(5, &["kept"]);
    root.on_tick(&host, &config);
    host.answer_last(&mut root, &config, Some(head_of(&v5)));
    overdue(&vm);
    root.on_tick(&host, &config);
    // Restored from an old copy between the head and the fetch.
    host.answer_last(&mut root, &config, Some(state(v4, "\"full-4-4-x\"")));
    assert!(vm.logged(Level::Error, "older than version 5, which the origin holds"));
    assert_eq!(vm.version(), None, "the replayed state is not served");
    // Not retried before the next round: a head after the interval.
    advance(&vm, Duration::from_secs(9));
    root.on_tick(&host, &config);
    let calls = host.call_count();
    advance(&vm, Duration::from_secs(1));
    root.on_tick(&host, &config);
    assert_eq!(host.call_count(), calls + 1);
    assert_eq!(host.last_call().request_line().1, wire::HEAD_PATH);
    // A head below the floor does not lower it.
    host.answer_last(&mut root, &config, Some(head_of(&p.snapshot(3, &[]))));
    assert_eq!(floor::read(&vm.store), Ok(Floor::Known(5)));
}

#[test]
fn a_stale_head_raises_the_floor_but_is_not_fetched() {
    let (vm, p) = vm();
    let host = FakeRoot::new(&vm);
    let (mut root, config) = with_origin(&host);
    // Issued two days before the edge's clock: expired.
    let old = p.snapshot_at(6, NOW.now_ms / 1000 - 2 * 86_400, &["a"]);
    root.on_tick(&host, &config);
    host.answer_last(&mut root, &config, Some(head_of(&old)));
    assert_eq!(floor::read(&vm.store), Ok(Floor::Known(6)));
    root.on_tick(&host, &config);
    assert_eq!(host.call_count(), 1, "nothing fresh to fetch");
}
