//! Header values and `:path` bytes that are not UTF-8, as Envoy's HTTP/1 codec delivers
//! them (obs-text, 0x80-0xFF). The SDK's string getters panic on such values; the filter
//! reads bytes only, so no client can crash a VM this way, and each request still gets a
//! sensible outcome: forwarded (bytes intact) or a JSON denial.

mod filter_support;

use filter_support::*;
use pat_testbed::Request;

const UNAUTHENTICATED: i64 = 701;
const INVALID: i64 = 703;

/// `STOPENV` followed by raw bytes (`?…` for a query).
fn stopenv(rest: &[u8]) -> Vec<u8> {
    [STOPENV.as_bytes(), rest].concat()
}

/// A GET whose `:path` is `STOPENV` followed by raw bytes.
fn get_stopenv(rest: &[u8]) -> Request {
    Request::get("").path_bytes(stopenv(rest))
}

fn with_session(prefix: &[u8], token: &Minted) -> Vec<u8> {
    [prefix, b"session=", token.value().as_bytes()].concat()
}

#[test]
fn non_utf8_content_type() {
    let edge = edge().build();
    let t = Minted::new(1, "alice", &["environment.Control.StopEnv"]);
    edge.publish(0, 1, &[&t]);
    let form_body = format!("envName=x&session={}", t.value());

    // A multipart boundary that is not ASCII cannot be parsed: the body cannot be checked.
    let ex = edge.tb.vm(0).send(
        Request::post(STOPENV)
            .header_bytes("content-type", b"multipart/form-data; boundary=\xff\xfe")
            .body(form_body.clone()),
    );
    assert_denied(&edge, &ex, "unparseable_body", INVALID);

    // Junk in a parameter of a form content type does not matter.
    let ex = edge.tb.vm(1).send(
        Request::post(STOPENV)
            .header_bytes(
                "content-type",
                b"application/x-www-form-urlencoded; charset=\xff",
            )
            .body(form_body),
    );
    assert_eq!(forwarded(&ex).header("x-pat-token-id"), Some("1"));

    // A token in the query does not exempt the body: a multipart body that cannot be parsed
    // could carry a second session, so it is refused all the same.
    let ex = edge.tb.vm(0).send(
        Request::post("")
            .path_bytes(with_session(&stopenv(b"?"), &t))
            .header_bytes("content-type", b"multipart/form-data; boundary=\xff\xfe")
            .body("opaque"),
    );
    assert_denied(&edge, &ex, "unparseable_body", INVALID);
    // An opaque content type (not form, not multipart) is not parsed: the query decides.
    let ex = edge.tb.vm(1).send(
        Request::post("")
            .path_bytes(with_session(&stopenv(b"?"), &t))
            .header_bytes("content-type", b"application/octet-stream; x=\xff")
            .body("opaque"),
    );
    assert_eq!(forwarded(&ex).header("x-pat-token-id"), Some("1"));
    edge.assert_clean(&[t.value()]);
}

#[test]
fn non_utf8_identity_headers_are_still_stripped() {
    let edge = edge().build();
    let t = Minted::new(7, "alice", &["environment.Control.StopEnv"]);
    edge.publish(0, 1, &[&t]);
    let forged = |r: Request| {
        r.header_bytes("x-pat-user", b"r\xf6\xf6t")
            .header_bytes("X-Pat-Token-Id", b"\xff")
    };

    // Allowed: replaced by the real identity, one value each.
    let ex = edge
        .tb
        .vm(0)
        .send(forged(get_stopenv(&with_session(b"?", &t))));
    let up = forwarded(&ex);
    assert_eq!(up.headers.get_all("x-pat-user"), vec!["alice"]);
    assert_eq!(up.header_bytes("x-pat-user"), Some(&b"alice"[..]));
    assert_eq!(up.headers.get_all("x-pat-token-id"), vec!["7"]);

    // Passed through (ordinary session, no session): removed.
    for request in [get_stopenv(b"?session=legacy"), Request::get(STOPENV)] {
        let up = forwarded(&edge.tb.vm(1).send(forged(request)));
        assert!(!up.headers.contains("x-pat-user"), "{:?}", up.headers);
        assert!(!up.headers.contains("x-pat-token-id"), "{:?}", up.headers);
    }
    edge.assert_clean(&[t.value()]);
}

#[test]
fn non_utf8_unrelated_header_is_forwarded_intact() {
    let edge = edge().build();
    let t = Minted::new(2, "alice", &["environment.Control.StopEnv"]);
    edge.publish(0, 1, &[&t]);
    let junk: &[u8] = b"\x80caf\xe9\xff";

    for (vm, request) in [
        get_stopenv(&with_session(b"?", &t)),
        get_stopenv(b"?session=legacy"),
        Request::get(STOPENV),
    ]
    .into_iter()
    .enumerate()
    {
        let ex = edge
            .tb
            .vm(vm % 2)
            .send(request.header_bytes("x-junk", junk));
        assert_eq!(forwarded(&ex).header_bytes("x-junk"), Some(junk));
    }
    assert_eq!(edge.tb.counter("pat_edge.requests.allowed"), Some(1));
    edge.assert_clean(&[t.value()]);
}

#[test]
fn non_utf8_session_values_are_not_tokens() {
    let edge = edge().build();
    let t = Minted::new(3, "alice", &["environment.Control.StopEnv"]);
    edge.publish(0, 1, &[&t]);

    // Not in token format: an ordinary session, passed through untouched.
    for query in [&b"?session=\xff"[..], b"?session=%FF", b"?session=abc\xe9"] {
        let ex = edge.tb.vm(0).send(get_stopenv(query));
        let up = forwarded(&ex);
        assert_eq!(up.header_bytes(":path"), Some(&stopenv(query)[..]));
        assert!(!up.headers.contains("x-pat-user"));
    }
    assert_eq!(edge.tb.counter("pat_edge.requests.passed_through"), Some(3));

    // A token whose last three characters became one 0xff byte (the same length once
    // converted lossily): malformed.
    let value = t.value();
    let mangled = [
        &b"?session="[..],
        &value.as_bytes()[..value.len() - 3],
        b"\xff",
    ]
    .concat();
    let ex = edge.tb.vm(1).send(get_stopenv(&mangled));
    assert_denied(&edge, &ex, "malformed_token", UNAUTHENTICATED);

    // Denied when ordinary sessions are.
    let strict = filter_support::edge()
        .public(r#""missing_session":"deny","ordinary_sessions":"deny""#)
        .build();
    let ex = strict.tb.vm(0).send(get_stopenv(b"?session=\xff"));
    assert_denied(&strict, &ex, "ordinary_session", UNAUTHENTICATED);

    edge.assert_clean(&[t.value()]);
    strict.assert_clean(&[]);
}

#[test]
fn a_valid_token_next_to_a_non_utf8_parameter_is_allowed() {
    let edge = edge().build();
    let t = Minted::new(4, "alice", &["environment.Control.StopEnv"]);
    edge.publish(0, 1, &[&t]);

    for prefix in [&b"?envName=\xff&"[..], b"?envName=%FF&", b"?\xfe\xff=1&"] {
        let path = with_session(&stopenv(prefix), &t);
        let ex = edge
            .tb
            .vm(0)
            .send(Request::get("").path_bytes(path.clone()));
        let up = forwarded(&ex);
        assert_eq!(up.header("x-pat-token-id"), Some("4"));
        assert_eq!(up.header("x-pat-user"), Some("alice"));
        assert_eq!(
            up.header_bytes(":path"),
            Some(&path[..]),
            "forwarded intact"
        );
    }
    edge.assert_clean(&[t.value()]);
}

#[test]
fn strip_token_keeps_non_utf8_parameters_byte_for_byte() {
    let edge = edge().public(r#""strip_token":true"#).build();
    let t = Minted::new(5, "alice", &["environment.Control.StopEnv"]);
    edge.publish(0, 1, &[&t]);

    let path = [
        with_session(&stopenv(b"?envName=\xff&"), &t),
        b"&x=caf\xe9".to_vec(),
    ]
    .concat();
    let ex = edge.tb.vm(1).send(Request::get("").path_bytes(path));
    let up = forwarded(&ex);
    assert_eq!(up.header("x-pat-token-id"), Some("5"));
    assert_eq!(
        up.header_bytes(":path"),
        Some(&stopenv(b"?envName=\xff&x=caf\xe9")[..])
    );
    edge.assert_clean(&[t.value()]);
}

#[test]
fn a_non_ascii_byte_in_the_path_is_ambiguous() {
    let edge = edge().build();
    let t = Minted::new(6, "alice", &["environment.Control.StopEnv"]);
    edge.publish(0, 1, &[&t]);

    for path in [
        with_session(&stopenv(b"\xff?"), &t),
        with_session(b"/1.0/environment/control/rest/stop\xffenv?", &t),
        with_session(b"/1.0/\xe9nvironment/control/rest/stopenv?", &t),
    ] {
        let ex = edge.tb.vm(0).send(Request::get("").path_bytes(path));
        assert_denied(&edge, &ex, "ambiguous_path", INVALID);
    }
    assert_eq!(edge.tb.counter("pat_edge.requests.allowed").unwrap_or(0), 0);

    // Without a token the path is not the filter's business: passed through intact.
    let ex = edge
        .tb
        .vm(1)
        .send(Request::get("").path_bytes(stopenv(b"\xff?envName=x")));
    assert_eq!(
        forwarded(&ex).header_bytes(":path"),
        Some(&stopenv(b"\xff?envName=x")[..])
    );
    edge.assert_clean(&[t.value()]);
}
