//! Denials in the platform's shape, failing closed without a snapshot, and requests without tokens passed through.

use super::*;

#[test]
fn a_denied_get_is_answered_in_the_platforms_shape() {
    let vm = Vm::new();
    let config = vm.config("");
    let t = Minted::new(5, "environment.Control.StopEnv");
    let unknown = Token::generate().expect("rng");
    vm.publish_elsewhere(vm.snapshot(1, &[&t]));
    let host = Fake::new(
        &vm,
        "GET",
        &with_session(STOPENV, unknown.expose()),
        &[("x-pat-user", "mallory")],
    );
    let run = host.run(&mut Request::new(1), &config, &[]);
    assert_eq!(run.headers, Some(Action::Pause));
    let reply = host.reply().expect("a denial");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["result"], 701);
    assert_eq!(reply.body["source"], "JEL");
    let error = reply.body["error"].as_str().expect("error text");
    assert!(!error.contains(unknown.expose()), "{error}");
    assert_eq!(vm.events(), [Event::Denied(Reason::UnknownToken)]);
    assert!(vm.logged(Level::Debug, "denied (unknown_token)"));
    // The client's identity header is gone all the same, and none was added.
    assert_eq!(host.header_count("x-pat-user"), 0);
    assert_eq!(host.header_count("x-pat-token-id"), 0);

    // Out of scope: forbidden.
    let host = Fake::get(
        &vm,
        &with_session("/1.0/environment/control/rest/startenv", t.value()),
    );
    host.run(&mut Request::new(2), &config, &[]);
    assert_eq!(host.reply().expect("a denial").body["result"], 702);
    assert_eq!(vm.take_events()[1], Event::Denied(Reason::OutOfScope));
}

#[test]
fn without_a_snapshot_token_requests_fail_closed() {
    let vm = Vm::new();
    let config = vm.config("");
    let t = Minted::new(5, "environment.Control.StopEnv");
    let host = Fake::get(&vm, &with_session(STOPENV, t.value()));
    host.run(&mut Request::new(1), &config, &[]);
    assert_eq!(vm.refreshes.get(), 1, "it tried to load one first");
    assert_eq!(host.reply().expect("a denial").body["result"], 701);
    assert_eq!(vm.events(), [Event::Denied(Reason::NoSnapshot)]);
}

#[test]
fn requests_without_tokens_pass_through_untouched() {
    let vm = Vm::new();
    let config = vm.config("");
    for path in [
        STOPENV.to_string(),
        with_session(STOPENV, "an-ordinary-login-session"),
    ] {
        let host = Fake::new(&vm, "GET", &path, &[("x-pat-user", "mallory")]);
        let run = host.run(&mut Request::new(1), &config, &[]);
        assert_eq!(run.headers, Some(Action::Continue), "{path}");
        assert!(host.reply().is_none());
        assert_eq!(host.header_text(":path"), Some(path));
        assert_eq!(host.header_count("x-pat-user"), 0, "identity stripped");
    }
    assert_eq!(vm.events(), [Event::PassedThrough, Event::PassedThrough]);
    assert_eq!(vm.refreshes.get(), 0, "no token, no snapshot needed");

    let strict = vm.config(r#""missing_session":"deny","ordinary_sessions":"deny""#);
    let host = Fake::get(&vm, STOPENV);
    host.run(&mut Request::new(2), &strict, &[]);
    assert_eq!(host.reply().expect("a denial").body["result"], 701);
    assert_eq!(
        vm.take_events().last(),
        Some(&Event::Denied(Reason::MissingSession))
    );
}
