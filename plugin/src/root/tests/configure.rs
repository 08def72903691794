//! Configuring a root: shared data set up before traffic, refusals.

use super::*;
use crate::shared::{POINTER_KEY, fetch_slot};

#[test]
fn a_configured_vm_with_an_origin_waits_for_it_before_accepting_pushes() {
    let (vm, _) = vm();
    let host = FakeRoot::new(&vm);
    let (mut root, config) = with_origin(&host);
    assert!(vm.store.value(POINTER_KEY).is_some(), "the pointer exists");
    assert_eq!(floor::read(&vm.store), Ok(Floor::Pending));
    assert_eq!(host.tick_period.get(), Some(config.refresh_interval));
    assert!(vm.logged(Level::Info, "configured: trusted keys"));
    assert!(vm.logged(Level::Info, "origin pat_origin"));
    // The first head fetch is due at once.
    root.on_tick(&host, &config);
    assert_eq!(
        host.last_call().request_line(),
        ("GET".to_string(), wire::HEAD_PATH.to_string())
    );
    assert!(vm.store.value(fetch_slot::SLOT_KEY).is_some());
}

#[test]
fn without_an_origin_pushes_are_limited_by_freshness_alone() {
    let (vm, _) = vm();
    let host = FakeRoot::new(&vm);
    let config = configure(&host, "", &SigningKey::generate().expect("rng"));
    assert_eq!(floor::read(&vm.store), Ok(Floor::Unset));
    Root::default().on_tick(&host, &config);
    assert_eq!(host.call_count(), 0, "nothing to fetch from");
}

#[test]
fn a_refused_configuration_or_tick_leaves_the_root_unconfigured() {
    let (vm, _) = vm();
    let host = FakeRoot::new(&vm);
    let key = SigningKey::generate().expect("rng");
    let env = |name: &str| vm.env(name, &key);
    assert!(Root::configure(&host, br#"{"strip_tokens":true}"#, env).is_none());
    assert!(vm.logged(Level::Error, "configuration rejected"));
    assert!(Root::configure(&host, b"{}", |_| None).is_none(), "no keys");
    host.refuse_tick.set(true);
    assert!(Root::configure(&host, b"{}", env).is_none());
    assert!(vm.logged(Level::Error, "cannot set the refresh tick"));
}

#[test]
fn the_control_listeners_requests_do_not_make_its_vm_a_serving_one() {
    let (vm, _) = vm();
    let key = SigningKey::generate().expect("rng");
    let host = FakeRoot::new(&vm);
    let control = configure(&host, r#""push":{}"#, &key);
    let public = configure(&host, "", &key);
    assert!(!Root::serves_requests(&control));
    assert!(Root::serves_requests(&public));
}

#[test]
fn configuring_a_serving_vm_loads_what_is_published() {
    let (vm, p) = vm();
    vm.publish_elsewhere(p.snapshot(4, &["a"]));
    let host = FakeRoot::new(&vm);
    configure(&host, "", &SigningKey::generate().expect("rng"));
    assert_eq!(vm.version(), Some(4));
    // One that serves nothing does not.
    let (idle, p) = super::vm();
    idle.active.set(false);
    idle.publish_elsewhere(p.snapshot(4, &["a"]));
    configure(
        &FakeRoot::new(&idle),
        "",
        &SigningKey::generate().expect("rng"),
    );
    assert_eq!(idle.version(), None);
}
