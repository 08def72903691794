//! Shared data: one map for every VM of a testbed, with compare-and-swap.

mod common;

use pat_testbed::{HttpMessage, Request, Testbed};

fn run(tb: &Testbed, vm: usize, headers: &[(&str, &str)]) -> HttpMessage {
    let mut request = Request::get("/shared");
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    tb.vm(vm).send(request).forwarded().expect("forwarded")
}

#[test]
fn two_vms_share_data_with_cas() {
    let tb = common::fixture().workers(2).build().unwrap();

    let set = run(
        &tb,
        0,
        &[
            ("x-fixture-op", "shared-set"),
            ("x-fixture-key", "k"),
            ("x-fixture-value", "v1"),
        ],
    );
    assert_eq!(set.header("x-fixture-result"), Some("ok"));

    let seen = run(
        &tb,
        1,
        &[("x-fixture-op", "shared-get"), ("x-fixture-key", "k")],
    );
    assert_eq!(seen.header("x-fixture-value"), Some("v1"));
    let cas = seen.header("x-fixture-cas").unwrap().to_string();
    assert_eq!(tb.shared_data("k").unwrap().cas.to_string(), cas);

    // VM 0 wins the race with the CAS it read...
    let won = run(
        &tb,
        0,
        &[
            ("x-fixture-op", "shared-set"),
            ("x-fixture-key", "k"),
            ("x-fixture-value", "v2"),
            ("x-fixture-cas", &cas),
        ],
    );
    assert_eq!(won.header("x-fixture-result"), Some("ok"));
    // ...so VM 1, holding the same stale CAS, loses and changes nothing.
    let lost = run(
        &tb,
        1,
        &[
            ("x-fixture-op", "shared-set"),
            ("x-fixture-key", "k"),
            ("x-fixture-value", "v3"),
            ("x-fixture-cas", &cas),
        ],
    );
    assert_eq!(lost.header("x-fixture-result"), Some("cas-mismatch"));

    let now = tb.shared_data("k").unwrap();
    assert_eq!(now.value, b"v2");
    assert_ne!(now.cas.to_string(), cas);
}

#[test]
fn missing_keys_and_host_seeded_values() {
    let tb = common::fixture().build().unwrap();
    let missing = run(
        &tb,
        0,
        &[("x-fixture-op", "shared-get"), ("x-fixture-key", "nope")],
    );
    assert_eq!(missing.header("x-fixture-result"), Some("missing"));

    let cas = tb.set_shared_data("seed", "from-host");
    let seeded = run(
        &tb,
        0,
        &[("x-fixture-op", "shared-get"), ("x-fixture-key", "seed")],
    );
    assert_eq!(seeded.header("x-fixture-value"), Some("from-host"));
    assert_eq!(
        seeded.header("x-fixture-cas"),
        Some(cas.to_string().as_str())
    );
}

#[test]
fn testbeds_do_not_share_anything() {
    let a = common::fixture().build().unwrap();
    let b = common::fixture().build().unwrap();
    a.set_shared_data("only-a", "1");
    assert!(b.shared_data("only-a").is_none());
    a.vm(0)
        .send(Request::get("/").header("x-fixture-op", "metric"));
    assert_eq!(a.counter("fixture.requests"), Some(1));
    assert_eq!(b.counter("fixture.requests"), Some(0));
}
