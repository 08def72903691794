//! Requests without a token are the platform's business: forwarded untouched, unless the
//! filter is configured to require tokens.

mod filter_support;

use filter_support::*;
use pat_testbed::{Callback, Request};

#[test]
fn no_session_and_ordinary_sessions_pass_untouched() {
    let edge = edge().build();
    let ordinary = format!("{STOPENV}?envName=x&session=0123456789abcdef");
    let json_body = r#"{"session":"x"}"#;
    for (request, path, body) in [
        (Request::get(STOPENV), STOPENV, ""),
        (Request::get(ordinary.as_str()), ordinary.as_str(), ""),
        // Paths a token could never use are the platform's to judge for ordinary sessions.
        (
            Request::get("/1.0//whatever/../x?session=legacy"),
            "/1.0//whatever/../x?session=legacy",
            "",
        ),
        (
            Request::post(STOPENV)
                .header("content-type", "application/json")
                .body(json_body),
            STOPENV,
            json_body,
        ),
    ] {
        let up = forwarded(&edge.tb.vm(0).send(request));
        assert_eq!(up.path(), Some(path), "the path is forwarded as sent");
        assert_eq!(up.body_text(), body, "the body is forwarded as sent");
    }
    assert_eq!(edge.tb.counter("pat_edge.requests.passed_through"), Some(4));
}

#[test]
fn opaque_bodies_with_a_query_session_do_not_wait_for_the_body() {
    let edge = edge().build();
    let ex = edge.tb.vm(0).send(
        Request::post(format!("{STOPENV}?session=legacy"))
            .header("content-type", "application/json")
            .body(r#"{"envName":"x"}"#),
    );
    assert!(ex.is_forwarded());
    assert_eq!(
        ex.actions_of(Callback::RequestHeaders),
        vec![pat_testbed::Action::Continue]
    );
    // A form body can carry a second session: it is read even with one in the query.
    let ex = edge.tb.vm(0).send(
        Request::post(format!("{STOPENV}?session=legacy"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("envName=x"),
    );
    assert_eq!(forwarded(&ex).body_text(), "envName=x");
    assert_eq!(
        ex.actions_of(Callback::RequestHeaders),
        vec![pat_testbed::Action::StopIteration]
    );
}

#[test]
fn tokens_only_mode_denies_the_rest() {
    let edge = edge()
        .public(r#""missing_session":"deny","ordinary_sessions":"deny""#)
        .build();
    assert_denied(
        &edge,
        &edge.tb.vm(0).send(Request::get(STOPENV)),
        "missing_session",
        701,
    );
    assert_denied(
        &edge,
        &edge.get(0, STOPENV, "legacy"),
        "ordinary_session",
        701,
    );
    let t = Minted::new(1, "alice", &["environment.Control.StopEnv"]);
    edge.publish(0, 1, &[&t]);
    assert!(edge.get(0, STOPENV, t.value()).is_forwarded());
}
