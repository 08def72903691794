//! Guest memory: bad pointers are refused without hurting the host, and the
//! benchmark helpers (`Vm::run`, `memory_size`) work.

mod common;

use pat_testbed::Request;

#[test]
fn an_out_of_bounds_pointer_is_an_invalid_memory_access() {
    let tb = common::fixture().build().unwrap();
    let ex = tb
        .vm(0)
        .send(Request::get("/").header("x-fixture-op", "bad-memory"));

    // Status 6 = InvalidMemoryAccess; the guest carried on.
    assert_eq!(
        ex.forwarded().unwrap().header("x-fixture-status-code"),
        Some("6")
    );
    assert!(tb.traps().is_empty());
}

#[test]
fn many_requests_on_one_vm_do_not_grow_memory() {
    let tb = common::fixture().build().unwrap();
    let request = Request::post("/bench")
        .header("x-fixture-op", "add-header,metric")
        .body("payload");
    tb.vm(0).run(&request, 50);
    let warm = tb.vm(0).memory_size();
    assert!(
        warm >= 64 * 1024 && warm.is_multiple_of(64 * 1024),
        "{warm}"
    );

    let summary = tb.vm(0).run(&request, 500);

    assert_eq!(summary.requests, 500);
    assert_eq!(summary.forwarded, 500);
    assert_eq!(tb.vm(0).memory_size(), warm);
    assert_eq!(tb.vm(0).open_streams(), 0);
    assert_eq!(tb.counter("fixture.requests"), Some(550));
}
