//! Tokens in request bodies: urlencoded forms and multipart uploads (a `session` field before
//! the file). Headers are held while the head of the body is read, within a size cap.

mod filter_support;

use filter_support::*;
use pat_testbed::{Action, Callback, Request};

const FORM: &str = "application/x-www-form-urlencoded";
const BOUNDARY: &str = "----pat-edge-test";
const UPLOAD: &str = "/1.0/storage/uploader/rest/upload";

fn multipart(fields: &[(&str, &str)], file: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .bytes(),
        );
    }
    body.extend(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"app.war\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .bytes(),
    );
    body.extend_from_slice(file);
    body.extend(format!("\r\n--{BOUNDARY}--\r\n").bytes());
    body
}

fn upload(body: Vec<u8>, chunk: usize) -> Request {
    let len = body.len();
    Request::post(UPLOAD)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .header("content-length", len.to_string())
        .body(body)
        .chunk_size(chunk)
}

#[test]
fn form_bodies_in_chunks() {
    let edge = edge().build();
    let t = Minted::new(5, "alice", &["environment.Control.StopEnv"]);
    edge.publish(0, 1, &[&t]);
    let body = format!("envName=my-project&session={}&x=1", t.value());
    let ex = edge.tb.vm(1).send(
        Request::post(STOPENV)
            .header("content-type", FORM)
            .body(body.clone())
            .chunk_size(7),
    );
    let up = forwarded(&ex);
    assert_eq!(up.header("x-pat-token-id"), Some("5"));
    assert_eq!(up.body_text(), body, "the body is forwarded intact");
    // Headers were held while the body was read.
    assert_eq!(
        ex.actions_of(Callback::RequestHeaders),
        vec![Action::StopIteration]
    );
}

#[test]
fn multipart_uploads_are_decided_at_the_first_file_part() {
    let edge = edge().build();
    let t = Minted::new(6, "ci", &["storage.Uploader.Upload"]);
    edge.publish(0, 1, &[&t]);
    // 4 MiB file, beyond the 1 MiB inspection cap: only the head is buffered.
    let file: Vec<u8> = (0..4 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let body = multipart(&[("envName", "x"), ("session", t.value())], &file);
    let ex = edge.tb.vm(0).send(upload(body.clone(), 64 * 1024));
    let up = forwarded(&ex);
    assert_eq!(up.header("x-pat-user"), Some("ci"));
    assert_eq!(
        up.body, body,
        "the upload reaches the platform byte for byte"
    );
    let body_actions = ex.actions_of(Callback::RequestBody);
    assert_eq!(
        body_actions.first(),
        Some(&Action::Continue),
        "decided on the first 64 KiB chunk: {body_actions:?}"
    );
}

#[test]
fn a_first_chunk_beyond_the_cap_is_still_scanned() {
    // Envoy may hand over more than max_body_bytes in the first body callback (it reads
    // fast on loopback): the head is scanned, not refused for its size.
    let edge = edge().testbed(|b| b.buffer_limit(8 * 1024 * 1024)).build();
    let t = Minted::new(6, "ci", &["storage.Uploader.Upload"]);
    edge.publish(0, 1, &[&t]);
    let file = vec![7u8; 3 * 1024 * 1024];
    let ex = edge.tb.vm(0).send(upload(
        multipart(&[("session", t.value())], &file),
        2 * 1024 * 1024,
    ));
    assert_eq!(forwarded(&ex).header("x-pat-token-id"), Some("6"));
    // Without a decision within the cap, it is too large.
    let no_file_headers = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"big\"\r\n\r\n{}",
        "x".repeat(2 * 1024 * 1024)
    );
    let ex = edge
        .tb
        .vm(0)
        .send(upload(no_file_headers.into_bytes(), 2 * 1024 * 1024));
    assert_denied(&edge, &ex, "body_too_large", 703);
}

#[test]
fn a_session_field_split_across_chunks_is_found() {
    let edge = edge().build();
    let t = Minted::new(6, "ci", &["storage.Uploader.Upload"]);
    edge.publish(0, 1, &[&t]);
    let body = multipart(&[("session", t.value())], b"tiny");
    let ex = edge.tb.vm(0).send(upload(body, 5));
    assert_eq!(forwarded(&ex).header("x-pat-token-id"), Some("6"));
}

#[test]
fn a_wrong_scope_in_a_body_is_denied() {
    let edge = edge().build();
    let t = Minted::new(6, "ci", &["environment.Control.StopEnv"]);
    edge.publish(0, 1, &[&t]);
    let ex = edge
        .tb
        .vm(0)
        .send(upload(multipart(&[("session", t.value())], b"x"), 1024));
    assert_denied(&edge, &ex, "out_of_scope", 702);
    let ex = edge.tb.vm(0).send(
        Request::post("/1.0/environment/control/rest/deleteenv")
            .header("content-type", FORM)
            .body(format!("session={}", t.value())),
    );
    assert_denied(&edge, &ex, "out_of_scope", 702);
}

#[test]
fn strip_token_rewrites_bodies_and_content_length() {
    let edge = edge().public(r#""strip_token":true"#).build();
    let t = Minted::new(
        6,
        "ci",
        &["storage.Uploader.Upload", "environment.Control.StopEnv"],
    );
    edge.publish(0, 1, &[&t]);

    let form = format!("envName=a%20b&session={}&x=1", t.value());
    let ex = edge.tb.vm(0).send(
        Request::post(STOPENV)
            .header("content-type", FORM)
            .header("content-length", form.len().to_string())
            .body(form),
    );
    let up = forwarded(&ex);
    assert_eq!(up.body_text(), "envName=a%20b&x=1");
    assert_eq!(up.header("content-length"), Some("17"));

    let ex = edge.tb.vm(0).send(upload(
        multipart(&[("envName", "x"), ("session", t.value())], b"DATA"),
        4096,
    ));
    let up = forwarded(&ex);
    let expected = multipart(&[("envName", "x")], b"DATA");
    assert_eq!(up.body, expected);
    assert_eq!(
        up.header("content-length"),
        Some(expected.len().to_string().as_str())
    );
    assert!(!up.body_text().contains(t.value()));
}

#[test]
fn oversized_and_unparseable_bodies_are_denied() {
    let edge = edge().public(r#""max_body_bytes":4096"#).build();
    let big = format!("a={}", "x".repeat(5000));
    let ex = edge.tb.vm(0).send(
        Request::post(STOPENV)
            .header("content-type", FORM)
            .body(big)
            .chunk_size(1000),
    );
    assert_denied(&edge, &ex, "body_too_large", 703);

    for (content_type, body) in [
        ("multipart/form-data", "x".to_string()),
        (
            "multipart/form-data; boundary=abc",
            "no boundary in here".to_string(),
        ),
        (
            "multipart/form-data; boundary=abc",
            "--abc\r\nContent-Disposition: form-data; name*=utf-8''session\r\n\r\nx\r\n--abc--"
                .to_string(),
        ),
    ] {
        let ex = edge.tb.vm(0).send(
            Request::post(UPLOAD)
                .header("content-type", content_type)
                .body(body),
        );
        assert_denied(&edge, &ex, "unparseable_body", 703);
    }
}

#[test]
fn trailers_end_a_form_body() {
    let edge = edge().build();
    let t = Minted::new(5, "alice", &["environment.Control.StopEnv"]);
    edge.publish(0, 1, &[&t]);
    let ex = edge.tb.vm(0).send(
        Request::post(STOPENV)
            .header("content-type", FORM)
            .body(format!("session={}", t.value()))
            .trailer("x-checksum", "1"),
    );
    assert_eq!(forwarded(&ex).header("x-pat-token-id"), Some("5"));
}

#[test]
fn bodies_that_cannot_carry_a_session_are_not_buffered() {
    let edge = edge().build();
    let ex = edge.tb.vm(0).send(
        Request::post(STOPENV)
            .header("content-type", "application/octet-stream")
            .body(vec![0u8; 10_000])
            .chunk_size(1000),
    );
    assert!(ex.is_forwarded());
    assert_eq!(
        ex.actions_of(Callback::RequestHeaders),
        vec![Action::Continue]
    );
}
