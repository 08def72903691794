//! Every tick a serving VM catches up with the published state, and counts what it serves.

use super::*;

#[test]
fn a_tick_catches_up_and_counts_what_the_vm_serves() {
    let (vm, p) = vm();
    let host = FakeRoot::new(&vm);
    let config = configure(&host, "", &SigningKey::generate().expect("rng"));
    let mut root = Root::default();
    root.on_tick(&host, &config);
    assert!(vm.take_root_events().is_empty(), "nothing published");
    vm.publish_elsewhere(p.snapshot(1, &["a", "b"]));
    root.on_tick(&host, &config);
    assert!(matches!(
        vm.take_root_events()[..],
        [Event::Serving {
            version: 1,
            tokens: 2,
            apply_ms: Some(_)
        }]
    ));
    assert!(vm.logged(
        Level::Info,
        "serving version 1 (2 tokens), applied the full snapshot"
    ));
    vm.publish_elsewhere(p.delta(2, &[], &["a"]));
    root.on_tick(&host, &config);
    assert!(vm.logged(
        Level::Info,
        "serving version 2 (1 tokens), applied 1 delta(s)"
    ));
    root.on_tick(&host, &config);
    assert_eq!(
        vm.take_root_events().len(),
        1,
        "unchanged: nothing more counted"
    );
}

#[test]
fn a_state_this_vm_cannot_use_fails_closed_once() {
    let (vm, _) = vm();
    let host = FakeRoot::new(&vm);
    let config = configure(&host, "", &SigningKey::generate().expect("rng"));
    // Published by a VM that trusts another key.
    let stranger = Publisher::new();
    crate::replica::Replica::default()
        .accept(
            &vm.store,
            &stranger.keys(),
            stranger.snapshot(1, &["a"]),
            NOW,
            false,
        )
        .expect("published");
    let mut root = Root::default();
    root.on_tick(&host, &config);
    assert_eq!(
        vm.take_root_events(),
        [
            Event::LoadFailed,
            Event::Serving {
                version: 0,
                tokens: 0,
                apply_ms: None
            }
        ]
    );
    assert!(vm.logged(
        Level::Error,
        "token requests are denied until a valid one arrives"
    ));
    root.on_tick(&host, &config);
    assert!(vm.take_root_events().is_empty(), "reported once");
}
