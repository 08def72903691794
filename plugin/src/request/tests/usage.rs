//! The client address and usage: read only when needed, once per report window.

use super::*;

#[test]
fn the_client_address_is_read_only_for_address_limited_tokens() {
    let vm = Vm::new();
    let config = vm.config("");
    let open = Minted::new(5, "environment.Control.StopEnv");
    let limited = Minted::new(6, "environment.Control.StopEnv").limited_to("192.0.2.0/24");
    let elsewhere = Minted::new(7, "environment.Control.StopEnv").limited_to("10.0.0.0/8");
    vm.publish_elsewhere(vm.snapshot(1, &[&open, &limited, &elsewhere]));
    let reads = |t: &Minted| {
        let host = Fake::get(&vm, &with_session(STOPENV, t.value()));
        host.run(&mut Request::new(1), &config, &[]);
        host.property_reads.get()
    };
    assert_eq!(reads(&open), 0);
    assert_eq!(reads(&limited), 1);
    assert_eq!(reads(&elsewhere), 1);
    assert_eq!(
        vm.events(),
        [
            Event::Allowed,
            Event::Allowed,
            Event::Denied(Reason::AddressNotAllowed)
        ]
    );
}

#[test]
fn usage_is_recorded_with_the_address_once_per_window() {
    let vm = Vm::new();
    let config = vm.config(r#""usage":{}"#);
    assert!(config.usage.is_some());
    let t = Minted::new(5, "environment.Control.StopEnv");
    vm.publish_elsewhere(vm.snapshot(1, &[&t]));
    let mut reads = Vec::new();
    for i in 0..3 {
        let host = Fake::get(&vm, &with_session(STOPENV, t.value()));
        host.run(&mut Request::new(i), &config, &[]);
        reads.push(host.property_reads.get());
    }
    assert_eq!(reads, [1, 0, 0], "the address is read the first time only");
    let uses = vm
        .usage
        .borrow_mut()
        .take_due(u64::MAX, std::time::Duration::ZERO)
        .expect("a report is due");
    assert_eq!(uses.len(), 1);
    assert_eq!(uses[0].token_id, 5);
    assert_eq!(uses[0].address, "192.0.2.7".parse().ok());
}
