//! Origin rounds as they go when the origin answers: the signed head, then the state only
//! when it is newer: the whole of it for an edge that holds nothing, the deltas since the
//! version held otherwise.

use super::*;

#[test]
fn a_round_is_the_head_then_the_state_only_when_newer() {
    let (vm, p) = vm();
    let host = FakeRoot::new(&vm);
    let (mut root, config) = with_origin(&host);
    let v1 = p.snapshot(1, &["a", "b"]);

    root.on_tick(&host, &config);
    let call = host.last_call();
    assert_eq!(call.cluster, "pat_origin");
    assert_eq!(call.header(":authority"), Some("pat-origin"));
    assert_eq!(call.header("accept"), Some("application/octet-stream"));
    assert_eq!(call.timeout, Duration::from_secs(5));
    host.answer_last(&mut root, &config, Some(head_of(&v1)));
    assert_eq!(floor::read(&vm.store), Ok(Floor::Known(1)));
    assert_eq!(vm.take_root_events(), [Event::Head, Event::Floor(1)]);
    assert!(vm.logged(Level::Info, "the origin holds snapshot version 1"));

    // Newer than nothing: fetched in full (this edge holds nothing), by a serving VM once
    // the main-thread VM is late with it.
    root.on_tick(&host, &config);
    assert_eq!(host.call_count(), 1, "left to the main-thread VM");
    overdue(&vm);
    root.on_tick(&host, &config);
    let call = host.last_call();
    assert_eq!(
        call.request_line(),
        ("GET".into(), wire::SNAPSHOT_PATH.into())
    );
    assert_eq!(call.header(wire::IF_NONE_MATCH), None);
    host.answer_last(
        &mut root,
        &config,
        Some(state(v1.clone(), "\"full-1-1-x\"")),
    );
    assert_eq!(vm.version(), Some(1));
    assert!(matches!(
        vm.take_root_events()[..],
        [
            Event::Fetched,
            Event::Serving {
                version: 1,
                tokens: 2,
                ..
            }
        ]
    ));

    // Nothing is due before the interval.
    let calls = host.call_count();
    advance(&vm, Duration::from_secs(9));
    root.on_tick(&host, &config);
    assert_eq!(host.call_count(), calls);
    advance(&vm, Duration::from_secs(1));
    root.on_tick(&host, &config);
    assert_eq!(host.last_call().request_line().1, wire::HEAD_PATH);
    host.answer_last(&mut root, &config, Some(head_of(&v1)));
    assert!(vm.logged(
        Level::Debug,
        "the origin holds snapshot version 1; version floor 1"
    ));
    // The head named nothing newer: no fetch.
    root.on_tick(&host, &config);
    assert_eq!(host.call_count(), calls + 1);
}

#[test]
fn an_edge_that_holds_a_version_asks_for_the_deltas_since() {
    let (vm, p) = vm();
    vm.publish_elsewhere(p.snapshot(1, &["a"]));
    let host = FakeRoot::new(&vm);
    let (mut root, config) = with_origin(&host);
    vm.replica
        .borrow_mut()
        .refresh(&vm.store, &vm.keys, NOW.now_ms)
        .expect("store");
    let d2 = p.delta(2, &["b"], &[]);
    let d3 = p.delta(3, &[], &["a"]);
    root.on_tick(&host, &config);
    host.answer_last(&mut root, &config, Some(head_of(&d3)));
    overdue(&vm);
    root.on_tick(&host, &config);
    let call = host.last_call();
    assert_eq!(call.request_line().1, "/snapshot?since=1");
    assert_eq!(
        call.header(wire::IF_NONE_MATCH),
        None,
        "a catch-up's URL names the version held: never conditional"
    );
    let catch_up = bundle::encode([d2.as_slice(), d3.as_slice()]);
    host.answer_last(&mut root, &config, Some(state(catch_up, "\"since-1-3-x\"")));
    assert_eq!(vm.version(), Some(3));
    assert!(vm.logged(
        Level::Info,
        "caught up with the origin: version 3 (1 tokens, the last document a delta)"
    ));
}

#[test]
fn an_empty_catch_up_and_a_not_modified_are_nothing_new() {
    let (vm, p) = vm();
    let host = FakeRoot::new(&vm);
    let (mut root, config) = with_origin(&host);
    let v1 = p.snapshot(1, &["a"]);
    root.on_tick(&host, &config);
    host.answer_last(&mut root, &config, Some(head_of(&v1)));
    overdue(&vm);
    root.on_tick(&host, &config);
    // The origin moved on to nothing newer than what was asked about (an empty bundle).
    host.answer_last(
        &mut root,
        &config,
        Some(state(
            bundle::encode(std::iter::empty::<&[u8]>()),
            "\"since-1-1-x\"",
        )),
    );
    assert_eq!(vm.version(), None);
    assert_eq!(
        vm.take_root_events(),
        [Event::Head, Event::Floor(1), Event::NotModified]
    );
    // The next round is after the interval, a head again.
    advance(&vm, Duration::from_secs(10));
    root.on_tick(&host, &config);
    assert_eq!(host.last_call().request_line().1, wire::HEAD_PATH);
}

#[test]
fn deltas_that_do_not_apply_ask_for_the_whole_state_conditionally() {
    let (vm, p) = vm();
    // Envoy's main-thread VM: it fetches and publishes, and keeps no copy.
    vm.active.set(false);
    let host = FakeRoot::new(&vm);
    let (mut root, config) = with_origin(&host);
    let v1 = p.snapshot(1, &["a"]);
    root.on_tick(&host, &config);
    host.answer_last(&mut root, &config, Some(head_of(&v1)));
    root.on_tick(&host, &config);
    host.answer_last(&mut root, &config, Some(state(v1, "\"full-1-1-x\"")));
    assert_eq!(vm.version(), None, "a VM that serves nothing keeps no copy");
    assert_eq!(
        crate::shared::read_pointer(&vm.store).map(|(ptr, _)| ptr.version),
        Ok(1),
        "but published it"
    );
    // The origin was rebuilt with another chain (same key): its deltas since 1 do not
    // apply to this edge's version 1.
    let other = p.same_key();
    other.snapshot(2, &["x"]);
    let d3 = other.delta(3, &["y"], &[]);
    advance(&vm, Duration::from_secs(10));
    root.on_tick(&host, &config);
    host.answer_last(&mut root, &config, Some(head_of(&d3)));
    root.on_tick(&host, &config);
    assert_eq!(host.last_call().request_line().1, "/snapshot?since=1");
    host.answer_last(
        &mut root,
        &config,
        Some(state(bundle::encode([d3.as_slice()]), "\"since-1-3-x\"")),
    );
    assert!(vm.logged(Level::Warn, "do not apply here"));
    assert_eq!(vm.take_root_events().last(), Some(&Event::OriginFailed));
    // At once, the whole state, conditionally on the full answer seen last.
    root.on_tick(&host, &config);
    let call = host.last_call();
    assert_eq!(call.request_line().1, wire::SNAPSHOT_PATH);
    assert_eq!(call.header(wire::IF_NONE_MATCH), Some("\"full-1-1-x\""));
    host.answer_last(&mut root, &config, Some(Response::new(304, Vec::new())));
    assert_eq!(vm.take_root_events(), [Event::NotModified]);
}

#[test]
fn nothing_published_yet_lets_pushes_proceed() {
    let (vm, _) = vm();
    let host = FakeRoot::new(&vm);
    let (mut root, config) = with_origin(&host);
    root.on_tick(&host, &config);
    host.answer_last(&mut root, &config, Some(Response::new(404, b"{}".to_vec())));
    assert_eq!(floor::read(&vm.store), Ok(Floor::Known(0)));
    assert!(vm.logged(Level::Info, "no snapshot published yet"));
    assert_eq!(vm.take_root_events(), [Event::Head, Event::Floor(0)]);
}

#[test]
fn one_vm_fetches_at_a_time() {
    let (vm, p) = vm();
    let host = FakeRoot::new(&vm);
    let (mut root, config) = with_origin(&host);
    // Another VM of the same Envoy (its own root, the same shared data).
    let other_root = &mut Root::default();
    root.on_tick(&host, &config);
    other_root.on_tick(&host, &config);
    assert_eq!(host.call_count(), 1, "the slot is taken");
    // Its answer is not the other root's to take.
    let token = host.last_call().token;
    host.answer(
        other_root,
        &config,
        token,
        Some(head_of(&p.snapshot(1, &[]))),
    );
    assert_eq!(floor::read(&vm.store), Ok(Floor::Pending));
    host.answer(
        &mut root,
        &config,
        token,
        Some(head_of(&p.snapshot(1, &[]))),
    );
    assert_eq!(floor::read(&vm.store), Ok(Floor::Known(1)));
}

#[test]
fn serving_vms_leave_the_state_to_the_main_thread_vm_unless_it_is_late() {
    let (vm, p) = vm();
    let host = FakeRoot::new(&vm);
    let (mut serving, config) = with_origin(&host);
    let v1 = p.snapshot(1, &["a"]);
    serving.on_tick(&host, &config);
    host.answer_last(&mut serving, &config, Some(head_of(&v1)));
    serving.on_tick(&host, &config);
    assert_eq!(
        host.call_count(),
        1,
        "the serving VM does not take the state fetch"
    );
    // Envoy's main-thread VM (its own root; shared data is the Envoy's) serves nothing.
    vm.active.set(false);
    let mut idle = Root::default();
    idle.on_tick(&host, &config);
    assert_eq!(
        host.last_call().request_line().1,
        wire::SNAPSHOT_PATH,
        "a VM that serves nothing takes it at once"
    );
}
