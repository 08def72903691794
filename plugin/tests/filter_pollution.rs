//! Parameter pollution: two different `session` values anywhere in a request are refused,
//! and so is a token-format value anywhere other than the one decisive `session` (with
//! `strip_token` on, as `envoy.yaml` runs it, such a value would reach the platform).

mod filter_support;

use filter_support::*;
use pat_testbed::{Exchange, Request};

const FORM: &str = "application/x-www-form-urlencoded";
const BOUNDARY: &str = "----pat-edge-pollution";
const UPLOAD: &str = "/1.0/storage/uploader/rest/upload";
const INVALID: i64 = 703;

fn polluted_edge() -> (Edge, Minted, Minted) {
    let edge = edge().public(r#""strip_token":true"#).build();
    let t1 = Minted::new(
        1,
        "alice",
        &["environment.Control.StopEnv", "storage.Uploader.Upload"],
    );
    let t2 = Minted::new(
        2,
        "bob",
        &["environment.Control.StopEnv", "storage.Uploader.Upload"],
    );
    edge.publish(0, 1, &[&t1, &t2]);
    (edge, t1, t2)
}

fn field(name: &str, value: &str) -> String {
    format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
}

fn file_part(name: &str, content: &str) -> String {
    format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"app.war\"\r\nContent-Type: application/octet-stream\r\n\r\n{content}\r\n"
    )
}

fn end() -> String {
    format!("--{BOUNDARY}--\r\n")
}

fn multipart(path: &str, parts: &[String], chunk: usize) -> Request {
    let body = parts.concat();
    Request::post(path)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .header("content-length", body.len().to_string())
        .body(body)
        .chunk_size(chunk)
}

/// Denied with this reason, and nothing of it reached the platform.
fn refused(edge: &Edge, ex: &Exchange, reason: &str) {
    assert_denied(edge, ex, reason, INVALID);
    assert!(ex.forwarded().is_none(), "{reason}: reached the platform");
}

#[test]
fn a_query_session_and_a_different_body_session_conflict() {
    let (edge, t1, t2) = polluted_edge();
    let form = edge.tb.vm(0).send(
        Request::post(format!("{STOPENV}?session={}", t1.value()))
            .header("content-type", FORM)
            .body(format!("envName=x&session={}", t2.value())),
    );
    refused(&edge, &form, "conflicting_sessions");
    let upload = edge.tb.vm(1).send(multipart(
        &format!("{UPLOAD}?session={}", t1.value()),
        &[
            field("session", t2.value()),
            file_part("file", "BIN"),
            end(),
        ],
        64,
    ));
    refused(&edge, &upload, "conflicting_sessions");
    // An ordinary login session in the body against a token in the query: as ambiguous.
    let mixed = edge.tb.vm(0).send(
        Request::post(format!("{STOPENV}?session={}", t1.value()))
            .header("content-type", FORM)
            .body("session=legacy-login"),
    );
    refused(&edge, &mixed, "conflicting_sessions");
    edge.assert_clean(&[t1.value(), t2.value()]);
}

#[test]
fn the_same_token_in_the_query_and_the_body_is_stripped_from_both() {
    let (edge, t1, _) = polluted_edge();
    let ex = edge.tb.vm(0).send(
        Request::post(format!("{STOPENV}?envName=x&session={}", t1.value()))
            .header("content-type", FORM)
            .body(format!("session={}&a=1", t1.value())),
    );
    let up = forwarded(&ex);
    assert_eq!(up.header("x-pat-user"), Some("alice"));
    assert_eq!(up.path(), Some(&*format!("{STOPENV}?envName=x")));
    assert_eq!(up.body_text(), "a=1");
    assert_eq!(up.header("content-length"), None, "none was sent");
}

#[test]
fn tokens_outside_the_session_parameter_are_refused() {
    let (edge, t1, _) = polluted_edge();
    let t = t1.value();
    // The issue's list, in the query.
    let queries = [
        format!("{STOPENV}?Session={t}"),
        format!("{STOPENV}?SESSION={t}"),
        format!("{STOPENV}?session[]={t}"),
        format!("{STOPENV};session={t}"),
        format!("{STOPENV}?session=%20{t}"),
        format!("{STOPENV}?session=+{t}"),
        format!("{STOPENV}?x=1?session={t}"),
        format!("{STOPENV}?session=legacy&note={t}"),
        format!("/1.0/environment/control/rest/{t}"),
    ];
    for (i, path) in queries.iter().enumerate() {
        let ex = edge.tb.vm(i % 2).send(Request::get(path.clone()));
        assert!(
            ex.forwarded().is_none(),
            "{path}: {:?}",
            ex.forwarded().map(|m| m.path().map(str::to_string))
        );
        let body = json(&ex);
        assert_eq!(body["result"], INVALID, "{path}: {body}");
    }
    assert!(edge.tb.counter("pat_edge.requests.denied.stray_token") >= Some(8));

    // In a form body, under another name, or hidden in the session value.
    for body in [
        format!("envName=x&Session={t}"),
        format!("envName=x&token={t}"),
        format!("session=%20{t}"),
        format!("session=x&session[]={t}"),
    ] {
        let ex = edge.tb.vm(0).send(
            Request::post(STOPENV)
                .header("content-type", FORM)
                .body(body.clone()),
        );
        refused(&edge, &ex, "stray_token");
    }
    edge.assert_clean(&[t]);
}

#[test]
fn multipart_tricks_are_refused() {
    let (edge, t1, _) = polluted_edge();
    let t = t1.value();
    let session_with_filename = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"session\"; filename=\"s.txt\"\r\n\r\n{t}\r\n"
    );
    let two_dispositions = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"envName\"\r\nContent-Disposition: form-data; name=\"session\"\r\n\r\n{t}\r\n"
    );
    for (what, parts, reason) in [
        (
            "a differently spelled name",
            vec![field("Session", t), file_part("file", "BIN"), end()],
            "stray_token",
        ),
        (
            "a session part with a filename",
            vec![session_with_filename, end()],
            "unparseable_body",
        ),
        (
            "two Content-Disposition headers",
            vec![two_dispositions, file_part("file", "BIN"), end()],
            "unparseable_body",
        ),
    ] {
        let ex = edge.tb.vm(0).send(multipart(UPLOAD, &parts, 40));
        refused(&edge, &ex, reason);
        let _ = what;
    }
    edge.assert_clean(&[t]);
}

#[test]
fn a_token_after_the_file_part_ends_the_upload_before_it_is_forwarded() {
    let (edge, t1, t2) = polluted_edge();
    let big_file = "B".repeat(300_000);
    for (late, reason) in [
        (field("session", t2.value()), "stray_token"),
        (field("comment", t2.value()), "stray_token"),
        (field("session", "legacy-login"), "conflicting_sessions"),
    ] {
        let parts = [
            field("session", t1.value()),
            file_part("file", &big_file),
            late,
            end(),
        ];
        // 16 KiB writes: the head is decided and forwarded long before the late part arrives.
        let ex = edge.tb.vm(1).send(multipart(UPLOAD, &parts, 16_384));
        assert_denied(&edge, &ex, reason, INVALID);
        assert!(
            ex.forwarded().is_none(),
            "the upload never completed upstream"
        );
    }
    // The same upload without the late part goes through, stripped, in one piece.
    let parts = [
        field("session", t1.value()),
        file_part("file", &big_file),
        field("comment", "fine"),
        end(),
    ];
    let ex = edge.tb.vm(0).send(multipart(UPLOAD, &parts, 16_384));
    let up = forwarded(&ex);
    assert_eq!(up.header("x-pat-user"), Some("alice"));
    let body = up.body_text();
    assert!(!body.contains(t1.value()), "stripped");
    assert!(body.contains("name=\"comment\"") && body.contains(&big_file));
    edge.assert_clean(&[t1.value(), t2.value()]);
}

#[test]
fn opaque_bodies_are_not_parsed() {
    // Documented: JSON, text and bodies without a content type are the platform's to read.
    let (edge, t1, t2) = polluted_edge();
    for content_type in [Some("application/json"), Some("text/plain"), None] {
        let mut request = Request::post(format!("{STOPENV}?session={}", t1.value()))
            .body(format!("{{\"session\":\"{}\"}}", t2.value()));
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let up = forwarded(&edge.tb.vm(0).send(request));
        assert_eq!(up.header("x-pat-user"), Some("alice"), "{content_type:?}");
    }
}

/// Denied as ambiguous for this reason, and the upload never completed upstream.
fn conflicting(edge: &Edge, ex: &Exchange, what: &str) {
    let body = assert_denied(edge, ex, "conflicting_sessions", INVALID);
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("session")),
        "{what}: {body}"
    );
    assert!(ex.forwarded().is_none(), "{what}: reached the platform");
}

#[test]
fn session_in_another_case_beside_a_token_is_ambiguous_whatever_its_value() {
    let (edge, t1, _) = polluted_edge();
    let t = t1.value();
    // The query: the issue's requests, and the name decoded.
    for query in [
        format!("session={t}&Session=legacy-login"),
        format!("session={t}&SESSION=x"),
        format!("SESSION=&session={t}"),
        format!("session={t}&sess%49on=x"),
    ] {
        let ex = edge
            .tb
            .vm(0)
            .send(Request::get(format!("{STOPENV}?{query}")));
        conflicting(&edge, &ex, &query);
    }
    // A form body, alone and merged with the query (both ways).
    for (query, body) in [
        (String::new(), format!("session={t}&Session=x")),
        (format!("?session={t}"), "envName=x&SESSION=x".to_string()),
        ("?Session=x".to_string(), format!("envName=x&session={t}")),
    ] {
        let ex = edge.tb.vm(1).send(
            Request::post(format!("{STOPENV}{query}"))
                .header("content-type", FORM)
                .body(body.clone()),
        );
        conflicting(&edge, &ex, &format!("{query} / {body}"));
    }
    // Multipart: before the file part, and after it (the head already forwarded), with
    // the token in the head or in the query; the exact name after the file beside the
    // query's token is as ambiguous.
    let big_file = "B".repeat(100_000);
    let query = format!("{UPLOAD}?session={t}");
    for (what, path, parts) in [
        (
            "head",
            UPLOAD,
            vec![
                field("session", t),
                field("Session", "x"),
                file_part("file", "BIN"),
            ],
        ),
        (
            "head, token in the query",
            &query,
            vec![field("SESSION", "x"), file_part("file", "BIN")],
        ),
        (
            "after the file",
            UPLOAD,
            vec![
                field("session", t),
                file_part("file", &big_file),
                field("Session", "x"),
            ],
        ),
        (
            "after the file, token in the query",
            &query,
            vec![file_part("file", &big_file), field("SESSION", "")],
        ),
        (
            "session after the file, token in the query",
            &query,
            vec![
                file_part("file", &big_file),
                field("session", "legacy-login"),
            ],
        ),
    ] {
        let parts = [parts, vec![end()]].concat();
        let ex = edge.tb.vm(0).send(multipart(path, &parts, 16_384));
        conflicting(&edge, &ex, what);
    }
    edge.assert_clean(&[t]);
}

#[test]
fn session_in_another_case_without_a_token_is_the_platforms() {
    let (edge, t1, _) = polluted_edge();
    for query in [
        "session=legacy-login&Session=x",
        "Session=x",
        "SESSION=x&session=legacy-login",
    ] {
        let path = format!("{STOPENV}?{query}");
        let up = forwarded(&edge.tb.vm(0).send(Request::get(path.clone())));
        assert_eq!(up.path(), Some(&*path), "untouched");
        assert!(!up.headers.contains("x-pat-user"));
    }
    let ex = edge.tb.vm(1).send(
        Request::post(STOPENV)
            .header("content-type", FORM)
            .body("session=legacy-login&SESSION=x"),
    );
    assert_eq!(forwarded(&ex).body_text(), "session=legacy-login&SESSION=x");
    let parts = [
        field("Session", "x"),
        file_part("file", "BIN"),
        field("SESSION", "y"),
        end(),
    ];
    let up = forwarded(&edge.tb.vm(1).send(multipart(UPLOAD, &parts, 64)));
    assert_eq!(up.body_text(), parts.concat());
    assert_eq!(edge.tb.counter("pat_edge.requests.denied"), Some(0));
    edge.assert_clean(&[t1.value()]);
}
