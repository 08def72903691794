//! A valid token in the query string is allowed for the methods of its scope, and the
//! platform receives the identity — never a client-forged one.

mod filter_support;

use filter_support::*;
use pat_testbed::Request;

#[test]
fn allowed_with_identity_headers_for_any_spelling_of_the_method() {
    let edge = edge().build();
    let alice = Minted::new(41, "alice@example.com", &["environment.Control.StopEnv"]);
    edge.publish(0, 1, &[&alice]);

    for path in [
        "/1.0/environment/control/rest/stopenv",
        "/1.0/Environment/Control/REST/StopEnv",
        "/1.0/env/control/rest/stopenv",
        "/1.0/environment/control/rest/stopenv?envName=my-project",
    ] {
        let ex = edge.get(0, path, alice.value());
        let up = forwarded(&ex);
        assert_eq!(up.header("x-pat-token-id"), Some("41"), "{path}");
        assert_eq!(up.header("x-pat-user"), Some("alice@example.com"), "{path}");
        // Without strip_token the platform still sees the session parameter.
        assert!(up.path().expect(":path").contains("session="), "{path}");
    }
    assert_eq!(edge.tb.counter("pat_edge.requests.allowed"), Some(4));
    edge.assert_clean(&[alice.value()]);
}

#[test]
fn percent_encoded_session_values_and_names_are_decoded() {
    let edge = edge().build();
    let t = Minted::new(1, "alice", &["environment.Control.StopEnv"]);
    edge.publish(0, 1, &[&t]);
    let encoded = t.value().replacen('_', "%5F", 1);
    let ex = edge
        .tb
        .vm(0)
        .send(Request::get(format!("{STOPENV}?sess%69on={encoded}")));
    assert_eq!(forwarded(&ex).header("x-pat-token-id"), Some("1"));
}

#[test]
fn client_sent_identity_headers_are_removed_from_every_request() {
    let edge = edge().build();
    let t = Minted::new(7, "alice", &["environment.Control.StopEnv"]);
    edge.publish(0, 1, &[&t]);
    let forged = |r: Request| {
        r.header("x-pat-user", "root")
            .header("X-Pat-Token-Id", "1")
            .header("x-pat-user", "admin")
    };

    // Allowed: replaced by the real identity, one value each.
    let ex = edge.tb.vm(1).send(forged(Request::get(format!(
        "{STOPENV}?session={}",
        t.value()
    ))));
    let up = forwarded(&ex);
    assert_eq!(up.headers.get_all("x-pat-user"), vec!["alice"]);
    assert_eq!(up.headers.get_all("x-pat-token-id"), vec!["7"]);

    // Passed through (ordinary session, and no session at all): removed.
    for request in [
        Request::get(format!("{STOPENV}?session=legacy-session")),
        Request::get(STOPENV),
    ] {
        let up = forwarded(&edge.tb.vm(1).send(forged(request)));
        assert!(!up.headers.contains("x-pat-user"));
        assert!(!up.headers.contains("x-pat-token-id"));
    }
}

#[test]
fn every_identity_header_name_is_removed_whatever_the_configuration() {
    let t = Minted::new(7, "alice", &["environment.Control.StopEnv"]);
    let forged = |r: Request| {
        r.header("x-pat-identity", "id=1, user=\"root\"")
            .header("x-pat-user", "root")
            .header("X-Pat-Token-Id", "1")
            .header("x-id", "1")
            .header("x-who", "root")
    };
    // (configuration, what an allowed request carries, client headers let through)
    for (fields, identity, kept) in [
        // The default: the combined header is off, and a client's is still removed.
        (
            "",
            &[("x-pat-token-id", "7"), ("x-pat-user", "alice")][..],
            &["x-id", "x-who"][..],
        ),
        (
            r#""identity_headers":{"combined":"x-pat-identity"}"#,
            &[("x-pat-identity", "id=7, user=\"alice\"")],
            &["x-id", "x-who"],
        ),
        // Other names: the documented ones of both forms are removed as well.
        (
            r#""identity_headers":{"token_id":"x-id","user":"x-who"}"#,
            &[("x-id", "7"), ("x-who", "alice")],
            &[],
        ),
    ] {
        let edge = edge().public(fields).build();
        edge.publish(0, 1, &[&t]);
        let allowed = Request::get(format!("{STOPENV}?session={}", t.value()));
        for (request, allowed) in [
            (allowed, true),
            (Request::get(format!("{STOPENV}?session=legacy")), false),
        ] {
            let up = forwarded(&edge.tb.vm(1).send(forged(request)));
            for name in [
                "x-pat-identity",
                "x-pat-user",
                "x-pat-token-id",
                "x-id",
                "x-who",
            ] {
                let expected: Vec<&str> = match identity.iter().find(|(n, _)| *n == name) {
                    Some((_, value)) if allowed => vec![value],
                    _ if kept.contains(&name) => vec![if name == "x-id" { "1" } else { "root" }],
                    _ => vec![],
                };
                assert_eq!(
                    up.headers.get_all(name),
                    expected,
                    "{fields}: allowed {allowed}: {name}"
                );
            }
        }
        edge.assert_clean(&[t.value()]);
    }
}

#[test]
fn strip_token_removes_the_session_from_the_forwarded_query() {
    let edge = edge().public(r#""strip_token":true"#).build();
    let t = Minted::new(3, "alice", &["environment.Control.StopEnv"]);
    edge.publish(0, 1, &[&t]);

    let ex = edge.get(0, &format!("{STOPENV}?envName=a%2Fb"), t.value());
    assert_eq!(
        forwarded(&ex).path(),
        Some("/1.0/environment/control/rest/stopenv?envName=a%2Fb")
    );
    let ex = edge.get(0, STOPENV, t.value());
    assert_eq!(forwarded(&ex).path(), Some(STOPENV));
    // Ordinary sessions are never touched.
    let ex = edge.get(0, STOPENV, "legacy");
    assert_eq!(
        forwarded(&ex).path(),
        Some("/1.0/environment/control/rest/stopenv?session=legacy")
    );
}

#[test]
fn repeated_identical_sessions_are_one_session() {
    let edge = edge().build();
    let t = Minted::new(3, "alice", &["environment.Control.StopEnv"]);
    edge.publish(0, 1, &[&t]);
    let ex = edge.tb.vm(0).send(Request::get(format!(
        "{STOPENV}?session={0}&envName=x&session={0}",
        t.value()
    )));
    assert_eq!(forwarded(&ex).header("x-pat-token-id"), Some("3"));
}
