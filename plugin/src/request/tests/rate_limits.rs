//! Per-token rate limits: a burst, then the steady rate; over it, a platform-shaped denial
//! with its own code and a `Retry-After`; tokens without a limit touch no budget; budgets
//! shared by the edge's workers or split between them.

use super::*;

/// Sends `n` requests with `t` at the VM's current clock; how many were allowed.
fn send(vm: &Vm, config: &Config, t: &Minted, n: usize) -> usize {
    (0..n)
        .filter(|i| {
            let host = Fake::get(vm, &with_session(STOPENV, t.value()));
            host.run(&mut Request::new(*i as u32), config, &[]);
            host.reply().is_none()
        })
        .count()
}

#[test]
fn a_burst_then_the_steady_rate_then_a_denial_with_retry_after() {
    let vm = Vm::new();
    let config = vm.config("");
    let t = Minted::new(5, "environment.Control.StopEnv").rate_limited("3/s");
    vm.publish_elsewhere(vm.snapshot(1, &[&t]));
    assert_eq!(
        send(&vm, &config, &t, 3),
        3,
        "the burst: one second's worth"
    );
    vm.take_events();

    let host = Fake::get(&vm, &with_session(STOPENV, t.value()));
    host.run(&mut Request::new(9), &config, &[]);
    let reply = host.reply().expect("over the limit");
    assert_eq!(
        reply.status, 200,
        "the platform's clients read no result from a 429"
    );
    assert_eq!(reply.body["result"], 705);
    let error = reply.body["error"].as_str().expect("text");
    assert!(error.contains("rate limit of 3/s"), "{error}");
    assert!(!error.contains(t.value()), "{error}");
    assert!(
        reply
            .headers
            .iter()
            .any(|(n, v)| n == "retry-after" && v == "1"),
        "{:?}",
        reply.headers
    );
    assert_eq!(vm.take_events(), [Event::Denied(Reason::RateLimited)]);
    assert_eq!(
        host.header_count("x-pat-token-id"),
        0,
        "no identity on a denial"
    );

    // A third of a second later, one more.
    vm.now_ms.set(vm.now_ms.get() + 334);
    assert_eq!(send(&vm, &config, &t, 2), 1);
}

#[test]
fn tokens_without_a_limit_touch_no_budget() {
    let vm = Vm::new();
    let config = vm.config("");
    let free = Minted::new(5, "environment.Control.StopEnv");
    vm.publish_elsewhere(vm.snapshot(1, &[&free]));
    let keys_before = vm.store.live_keys();
    assert_eq!(send(&vm, &config, &free, 200), 200);
    assert_eq!(vm.store.live_keys(), keys_before, "no rate key written");
    assert!(vm.rate_budgets.borrow().is_empty());
}

#[test]
fn shared_budgets_are_one_per_token_for_every_worker() {
    let vm = Vm::new();
    let config = vm.config("");
    let t = Minted::new(5, "environment.Control.StopEnv").rate_limited("4/s");
    let other = Minted::new(6, "environment.Control.StopEnv").rate_limited("4/s");
    vm.publish_elsewhere(vm.snapshot(1, &[&t, &other]));
    assert_eq!(send(&vm, &config, &t, 2), 2);
    // Another worker of this Envoy spends from the same budget in shared data.
    let limit = t.rate_limit.expect("limited");
    let now_us = vm.now_ms.get() * 1000;
    assert_eq!(
        crate::rate_limit::admit_shared(&vm.store, 5, limit, now_us),
        Ok(crate::rate_limit::Admission::Admitted)
    );
    assert_eq!(send(&vm, &config, &t, 3), 1, "what the other worker left");
    assert_eq!(
        send(&vm, &config, &other, 4),
        4,
        "each token its own budget"
    );
    assert!(vm.rate_budgets.borrow().is_empty(), "nothing per worker");
}

#[test]
fn per_worker_budgets_split_the_limit() {
    let vm = Vm::new();
    let config = vm.config(r#""rate_limits":{"budget":"per_worker","workers":2}"#);
    let t = Minted::new(5, "environment.Control.StopEnv").rate_limited("4/s");
    vm.publish_elsewhere(vm.snapshot(1, &[&t]));
    assert_eq!(
        send(&vm, &config, &t, 4),
        2,
        "half the burst on this worker"
    );
    assert!(
        vm.store.value("pat_edge.v1.rate.5").is_none(),
        "nothing shared"
    );
    assert_eq!(vm.rate_budgets.borrow().len(), 1);
}
