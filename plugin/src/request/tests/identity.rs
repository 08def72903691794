//! Identity headers: what the filter adds, and every name it can set removed from what the client sent; the header map read once.

use super::*;

#[test]
fn an_allowed_get_carries_the_identity_and_nothing_the_client_claimed() {
    let vm = Vm::new();
    let config = vm.config("");
    let t = Minted::new(5, "environment.Control.StopEnv");
    vm.publish_elsewhere(vm.snapshot(1, &[&t]));
    let path = with_session(STOPENV, t.value());
    let host = Fake::new(
        &vm,
        "GET",
        &path,
        &[("x-pat-user", "mallory"), ("x-pat-token-id", "1")],
    );
    let run = host.run(&mut Request::new(1), &config, &[]);
    assert_eq!(run.headers, Some(Action::Continue));
    assert_eq!(host.header_text("x-pat-user").as_deref(), Some("alice"));
    assert_eq!(host.header_text("x-pat-token-id").as_deref(), Some("5"));
    assert_eq!(host.header_count("x-pat-user"), 1);
    assert_eq!(host.header_count("x-pat-token-id"), 1);
    // Without strip_token the query is forwarded as sent.
    assert_eq!(host.header_text(":path"), Some(path));
    assert!(host.reply().is_none());
    assert_eq!(vm.events(), [Event::Allowed]);
    // The first token request loaded the snapshot; the address was never read.
    assert_eq!(vm.refreshes.get(), 1);
    assert_eq!(host.property_reads.get(), 0);

    // The next one serves from what this VM holds.
    let host = Fake::get(&vm, &with_session(STOPENV, t.value()));
    host.run(&mut Request::new(2), &config, &[]);
    assert_eq!(vm.refreshes.get(), 1);
    assert_eq!(vm.events(), [Event::Allowed, Event::Allowed]);
}

#[test]
fn the_headers_are_read_once_and_only_claimed_identity_is_removed() {
    let vm = Vm::new();
    let config = vm.config("");
    let t = Minted::new(5, "environment.Control.StopEnv");
    vm.publish_elsewhere(vm.snapshot(1, &[&t]));
    let path = with_session(STOPENV, t.value());
    // No identity claimed: one read of the map, no removal.
    let host = Fake::get(&vm, &path);
    host.run(&mut Request::new(1), &config, &[]);
    assert_eq!(host.header_reads.get(), 1);
    assert!(host.removed.borrow().is_empty(), "{:?}", host.removed);
    // Both claimed, one of them twice: each name removed once, every value gone.
    let host = Fake::new(
        &vm,
        "GET",
        &path,
        &[
            ("x-pat-token-id", "1"),
            ("x-pat-user", "mallory"),
            ("x-pat-token-id", "2"),
        ],
    );
    host.run(&mut Request::new(2), &config, &[]);
    assert_eq!(host.header_reads.get(), 1);
    assert_eq!(*host.removed.borrow(), ["x-pat-token-id", "x-pat-user"]);
    assert_eq!(host.header_text("x-pat-token-id").as_deref(), Some("5"));
    assert_eq!(host.header_count("x-pat-token-id"), 1);
    // Configured names are looked for, and the documented ones still.
    let config = vm.config(r#""identity_headers":{"token_id":"x-id","user":"x-who"}"#);
    let host = Fake::new(
        &vm,
        "GET",
        &path,
        &[("x-who", "mallory"), ("x-pat-user", "a")],
    );
    host.run(&mut Request::new(3), &config, &[]);
    assert_eq!(*host.removed.borrow(), ["x-who", "x-pat-user"]);
    assert_eq!(host.header_text("x-who").as_deref(), Some("alice"));
    assert_eq!(host.header_count("x-pat-user"), 0);
}

#[test]
fn one_combined_identity_header_when_configured() {
    let vm = Vm::new();
    let config = vm.config(r#""identity_headers":{"combined":"x-pat-identity"}"#);
    let t = Minted::new(5, "environment.Control.StopEnv");
    vm.publish_elsewhere(vm.snapshot(1, &[&t]));
    let path = with_session(STOPENV, t.value());
    let host = Fake::new(
        &vm,
        "GET",
        &path,
        &[
            ("x-pat-identity", "id=1, user=\"mallory\""),
            ("x-pat-user", "mallory"),
        ],
    );
    let run = host.run(&mut Request::new(1), &config, &[]);
    assert_eq!(run.headers, Some(Action::Continue));
    assert_eq!(
        host.header_text("x-pat-identity").as_deref(),
        Some(r#"id=5, user="alice""#)
    );
    assert_eq!(host.header_count("x-pat-identity"), 1);
    // The two-header form is neither added nor let through from the client.
    assert_eq!(host.header_count("x-pat-user"), 0);
    assert_eq!(host.header_count("x-pat-token-id"), 0);
    // A passed-through request loses a claimed combined header too.
    let host = Fake::new(&vm, "GET", STOPENV, &[("x-pat-identity", "id=1")]);
    host.run(&mut Request::new(2), &config, &[]);
    assert!(host.reply().is_none());
    assert_eq!(host.header_count("x-pat-identity"), 0);
    assert_eq!(vm.events(), [Event::Allowed, Event::PassedThrough]);
}

#[test]
fn every_identity_header_the_filter_can_set_is_removed_whatever_the_configuration() {
    let vm = Vm::new();
    let t = Minted::new(5, "environment.Control.StopEnv");
    vm.publish_elsewhere(vm.snapshot(1, &[&t]));
    let claimed = [
        ("x-pat-identity", "id=1, user=\"mallory\""),
        ("X-Pat-Token-Id", "1"),
        ("x-pat-user", "mallory"),
        ("x-id", "1"),
        ("x-who", "mallory"),
        ("x-both", "id=1"),
    ];
    let all = [
        "x-pat-identity",
        "x-pat-token-id",
        "x-pat-user",
        "x-id",
        "x-who",
        "x-both",
    ];
    // The configuration; the headers an allowed request gets; the client's it keeps (names
    // the filter never sets with it).
    for (fields, added, kept) in [
        // The default: the combined header is off, and a client's still goes.
        (
            "",
            &["x-pat-token-id", "x-pat-user"][..],
            &["x-id", "x-who", "x-both"][..],
        ),
        (
            r#""identity_headers":{"combined":"x-pat-identity"}"#,
            &["x-pat-identity"],
            &["x-id", "x-who", "x-both"],
        ),
        // Other names configured: the documented names of both forms go too.
        (
            r#""identity_headers":{"token_id":"x-id","user":"x-who"}"#,
            &["x-id", "x-who"],
            &["x-both"],
        ),
        (
            r#""identity_headers":{"token_id":"x-id","user":"x-who","combined":"x-both"}"#,
            &["x-both"],
            &[],
        ),
    ] {
        let config = vm.config(fields);
        for path in [with_session(STOPENV, t.value()), STOPENV.to_string()] {
            let host = Fake::new(&vm, "GET", &path, &claimed);
            host.run(&mut Request::new(1), &config, &[]);
            assert!(host.reply().is_none(), "{fields}: {path}");
            let allowed = path.contains("session");
            for name in all {
                let expected =
                    usize::from(kept.contains(&name) || (allowed && added.contains(&name)));
                assert_eq!(
                    host.headers
                        .borrow()
                        .iter()
                        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                        .count(),
                    expected,
                    "{fields}: {path}: {name}"
                );
            }
            // Each claimed name removed once; one read of the map.
            assert_eq!(
                host.removed.borrow().len(),
                all.len() - kept.len(),
                "{fields}"
            );
            assert_eq!(host.header_reads.get(), 1);
        }
    }
    // Nothing claimed: no removal at all.
    let config = vm.config(r#""identity_headers":{"token_id":"x-id","user":"x-who"}"#);
    let host = Fake::get(&vm, &with_session(STOPENV, t.value()));
    host.run(&mut Request::new(2), &config, &[]);
    assert!(host.removed.borrow().is_empty(), "{:?}", host.removed);
}

#[test]
fn identity_is_found_whatever_its_case_and_two_content_types_are_refused() {
    let vm = Vm::new();
    let config = vm.config("");
    let t = Minted::new(5, "environment.Control.StopEnv");
    vm.publish_elsewhere(vm.snapshot(1, &[&t]));
    let host = Fake::new(&vm, "GET", STOPENV, &[("X-Pat-User", "mallory")]);
    host.run(&mut Request::new(1), &config, &[]);
    assert!(host.reply().is_none(), "passed through");
    assert_eq!(*host.removed.borrow(), ["x-pat-user"]);
    assert_eq!(host.header_count("X-Pat-User"), 0);

    // Which content type would the platform read? Neither is guessed.
    let body = format!("envName=x&session={}", t.value());
    let host = Fake::new(
        &vm,
        "POST",
        STOPENV,
        &[("content-type", "application/json"), ("content-type", FORM)],
    );
    let run = host.run(&mut Request::new(2), &config, &[body.as_bytes()]);
    assert_eq!(run.headers, Some(Action::Pause));
    let reply = host.reply().expect("a denial");
    assert!(
        reply.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("more than one content-type")),
        "{:?}",
        reply.body
    );
    assert!(run.forwarded.is_empty());
    assert_eq!(
        vm.events(),
        [Event::PassedThrough, Event::Denied(Reason::UnparseableBody)]
    );
}

#[test]
fn a_request_whose_headers_cannot_be_read_is_refused() {
    let vm = Vm::new();
    let config = vm.config("");
    let t = Minted::new(5, "environment.Control.StopEnv");
    vm.publish_elsewhere(vm.snapshot(1, &[&t]));
    let paths = [with_session(STOPENV, t.value()), STOPENV.to_string()];
    let cases = [Unreadable::Refused, Unreadable::Truncated];
    for (path, how) in paths.iter().flat_map(|p| cases.map(|c| (p, c))) {
        // The forged identity header comes last: a truncated map never shows it.
        let mut host = Fake::new(&vm, "GET", path, &[("x-pat-user", "mallory")]);
        host.unreadable_headers = Some(how);
        let run = host.run(&mut Request::new(1), &config, &[]);
        assert_eq!(run.headers, Some(Action::Pause), "{path} {how:?}");
        let reply = host.reply().expect("a denial");
        assert!(
            reply.body["error"]
                .as_str()
                .is_some_and(|e| e.contains("headers could not be read")),
            "{:?}",
            reply.body
        );
        assert!(
            host.added.borrow().is_empty(),
            "nothing forwarded, no identity added"
        );
    }
    assert_eq!(vm.events(), [Event::Denied(Reason::UnparseableBody); 4]);
}
