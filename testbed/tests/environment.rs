//! What the guest sees of its environment: WASI env vars, the testbed clock
//! (proxy and WASI), and properties.

mod common;

use pat_testbed::Request;
use std::time::{Duration, UNIX_EPOCH};

#[test]
fn env_vars_reach_wasi() {
    let tb = common::fixture().env("PAT_KEY", "k1").build().unwrap();
    let read = |name: &str| {
        tb.vm(0)
            .send(
                Request::get("/")
                    .header("x-fixture-op", "env")
                    .header("x-fixture-env", name),
            )
            .forwarded()
            .unwrap()
            .header("x-fixture-env-value")
            .map(str::to_string)
    };
    assert_eq!(read("PAT_KEY").as_deref(), Some("k1"));
    assert_eq!(read("HOME").as_deref(), Some("<unset>"));
}

#[test]
fn proxy_and_wasi_clocks_read_the_testbed_clock() {
    let tb = common::fixture()
        .start_time(UNIX_EPOCH + Duration::from_secs(1_000))
        .build()
        .unwrap();
    tb.advance(Duration::from_millis(1_500));

    let ex = tb
        .vm(0)
        .send(Request::get("/").header("x-fixture-op", "time"));

    let forwarded = ex.forwarded().unwrap();
    assert_eq!(forwarded.header("x-fixture-time"), Some("1001500000000"));
    assert_eq!(
        forwarded.header("x-fixture-wasi-time"),
        Some("1001500000000")
    );
}

#[test]
fn request_and_connection_properties() {
    let tb = common::fixture().build().unwrap();
    let default = tb
        .vm(0)
        .send(Request::get("/a/b?c=d").header("x-fixture-op", "property"))
        .forwarded()
        .unwrap();
    assert_eq!(default.header("x-fixture-path"), Some("/a/b?c=d"));
    assert_eq!(default.header("x-fixture-source"), Some("10.0.0.1:40000"));

    let custom = tb
        .vm(0)
        .send(
            Request::get("/")
                .header("x-fixture-op", "property")
                .source_address("192.0.2.7:5555"),
        )
        .forwarded()
        .unwrap();
    assert_eq!(custom.header("x-fixture-source"), Some("192.0.2.7:5555"));
}
