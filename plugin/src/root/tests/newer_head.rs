//! A newer state appearing while a fetch is under way: a push lands first, or the origin has
//! moved on since the head it sent.

use super::*;

#[test]
fn a_push_that_lands_during_the_fetch_makes_the_answer_not_newer() {
    let (vm, p) = vm();
    let host = FakeRoot::new(&vm);
    let (mut root, config) = with_origin(&host);
    let v2 = p.snapshot(2, &["a"]);
    let v3 = p.delta(3, &["b"], &[]);
    root.on_tick(&host, &config);
    host.answer_last(&mut root, &config, Some(head_of(&v2)));
    overdue(&vm);
    root.on_tick(&host, &config);
    assert_eq!(host.last_call().request_line().1, wire::SNAPSHOT_PATH);
    // While the fetch is in flight the control listener's VM accepts pushes of 2 and 3.
    vm.publish_elsewhere(v2.clone());
    vm.publish_elsewhere(v3);
    host.answer_last(&mut root, &config, Some(state(v2, "\"full-2-2-x\"")));
    assert!(vm.logged(Level::Debug, "not newer than version 3"));
    assert_eq!(vm.take_root_events().last(), Some(&Event::NotModified));
    // The next tick serves what was pushed; the next round is a head after the interval.
    root.on_tick(&host, &config);
    assert_eq!(vm.version(), Some(3));
    let calls = host.call_count();
    root.on_tick(&host, &config);
    assert_eq!(host.call_count(), calls);
}

#[test]
fn an_origin_that_moved_on_since_its_head_is_followed() {
    let (vm, p) = vm();
    vm.publish_elsewhere(p.snapshot(1, &["a"]));
    let host = FakeRoot::new(&vm);
    let (mut root, config) = with_origin(&host);
    root.on_tick(&host, &config); // serves 1
    let d2 = p.delta(2, &["b"], &[]);
    let d3 = p.delta(3, &["c"], &[]);
    host.answer_last(&mut root, &config, Some(head_of(&d2)));
    overdue(&vm);
    root.on_tick(&host, &config);
    assert_eq!(host.last_call().request_line().1, "/snapshot?since=1");
    // The answer ends at 3: newer than the head, and as verified as any.
    let catch_up = bundle::encode([d2.as_slice(), d3.as_slice()]);
    host.answer_last(&mut root, &config, Some(state(catch_up, "\"since-1-3-x\"")));
    assert_eq!(vm.version(), Some(3));
    assert_eq!(floor::read(&vm.store), Ok(Floor::Known(2)));
    // The next head names 3: current.
    advance(&vm, Duration::from_secs(10));
    root.on_tick(&host, &config);
    host.answer_last(&mut root, &config, Some(head_of(&d3)));
    assert_eq!(floor::read(&vm.store), Ok(Floor::Known(3)));
    let calls = host.call_count();
    root.on_tick(&host, &config);
    assert_eq!(host.call_count(), calls);
}
