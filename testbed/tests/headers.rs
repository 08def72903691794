//! Header maps: mutations reach the forwarded request, keys are case-insensitive,
//! `replace` drops every previous value.

mod common;

use pat_testbed::{Action, Callback, Request, StreamStatus};

#[test]
fn filter_mutations_reach_the_forwarded_request() {
    let tb = common::fixture().build().unwrap();
    let ex = tb.vm(0).send(
        Request::get("/items?x=1")
            .header("x-fixture-op", "add-header")
            .header("X-Fixture-Replace", "old-1")
            .header("x-fixture-replace", "old-2")
            .header("x-fixture-remove", "gone"),
    );

    assert_eq!(ex.status(), StreamStatus::Forwarded);
    let forwarded = ex.forwarded().unwrap();
    assert_eq!(forwarded.header("x-fixture-added"), Some("yes"));
    assert_eq!(forwarded.headers.get_all("x-fixture-replace"), vec!["new"]);
    assert_eq!(forwarded.header("x-fixture-remove"), None);
    assert_eq!(forwarded.path(), Some("/items?x=1"));
    assert_eq!(forwarded.header(":method"), Some("GET"));
    assert_eq!(
        ex.actions_of(Callback::RequestHeaders),
        vec![Action::Continue]
    );
    assert_eq!(ex.response_status(), Some(200));
    assert!(tb.traps().is_empty());
}

#[test]
fn pseudo_headers_are_present_and_keys_lowercased() {
    let tb = common::fixture().build().unwrap();
    let ex = tb.vm(0).send(
        Request::post("/x")
            .authority("api.example")
            .header("X-Mixed-Case", "v"),
    );

    let forwarded = ex.forwarded().unwrap();
    let names: Vec<&str> = forwarded.headers.iter().map(|(k, _)| k).collect();
    assert_eq!(
        names,
        vec![":authority", ":path", ":method", ":scheme", "x-mixed-case"]
    );
    assert_eq!(forwarded.header(":authority"), Some("api.example"));
}

#[test]
fn request_headers_are_unreachable_once_released() {
    // Envoy drops its pointer to the request headers after `Continue`: reading
    // them in a response callback is `BadArgument`, which the Rust SDK panics on.
    let tb = common::fixture().build().unwrap();
    let ex = tb
        .vm(0)
        .send(Request::get("/late").header("x-fixture-op", "read-request-late"));

    let traps = tb.traps();
    assert_eq!(traps.len(), 1);
    assert_eq!(traps[0].callback, "proxy_on_response_headers");
    assert!(!tb.logs_containing("unexpected status: 2").is_empty());
    assert_eq!(ex.local_response().unwrap().status, 503);
}

#[test]
fn on_log_reads_request_headers() {
    let tb = common::fixture().build().unwrap();
    tb.vm(0)
        .send(Request::get("/logged").header("x-fixture-op", "log-phase"));

    assert_eq!(
        tb.logs_containing("on_log"),
        vec!["on_log fixture path=/logged"]
    );
    assert_eq!(tb.counter("fixture.logged"), Some(1));
}

#[test]
fn non_utf8_values_reach_the_guest_byte_for_byte() {
    // Envoy's HTTP/1 codec passes obs-text (0x80-0xFF) through in header values and
    // `:path`: the guest must see exactly those bytes, however it reads them.
    let raw: &[u8] = b"multipart/form-data; boundary=\xff\xfe\x80";
    let path: &[u8] = b"/caf\xe9?q=\xff";
    let tb = common::fixture().build().unwrap();
    let ex = tb.vm(0).send(
        Request::get("")
            .path_bytes(path)
            .header("x-fixture-op", "raw-bytes")
            .header_bytes("x-fixture-raw", raw),
    );

    assert!(tb.traps().is_empty(), "{:?}", tb.traps());
    let forwarded = ex.forwarded().unwrap();
    assert_eq!(forwarded.header_bytes("x-fixture-raw"), Some(raw));
    assert_eq!(forwarded.header_bytes(":path"), Some(path));
    for via in ["value", "pair", "property"] {
        assert_eq!(
            forwarded.header_bytes(&format!("x-fixture-raw-{via}")),
            Some(raw),
            "x-fixture-raw read through {via}"
        );
        assert_eq!(
            forwarded.header_bytes(&format!("x-fixture-path-{via}")),
            Some(path),
            ":path read through {via}"
        );
    }
    // The `&str` view is lossy, never absent.
    assert_eq!(forwarded.path(), Some("/caf\u{fffd}?q=\u{fffd}"));
}

#[test]
fn the_sdk_string_getter_traps_on_non_utf8_values() {
    // What a filter risks by using `get_http_request_header` instead of the bytes
    // variant: the SDK's `String::from_utf8(..).unwrap()` panics, Envoy answers 503.
    let tb = common::fixture().build().unwrap();
    let ex = tb.vm(0).send(
        Request::get("/")
            .header("x-fixture-op", "raw-as-string")
            .header_bytes("x-fixture-raw", b"caf\xe9"),
    );

    let traps = tb.traps();
    assert_eq!(traps.len(), 1, "{traps:?}");
    assert_eq!(traps[0].callback, "proxy_on_request_headers");
    assert_eq!(ex.local_response().unwrap().status, 503);
}
