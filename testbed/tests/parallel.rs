//! Concurrency: two threads drive two VMs of one testbed at the same time; the
//! World keeps their shared state consistent.

mod common;

use pat_testbed::Request;

#[test]
fn two_threads_drive_two_vms() {
    let tb = common::fixture().workers(2).build().unwrap();
    let request = Request::get("/").header("x-fixture-op", "metric");

    std::thread::scope(|scope| {
        for vm in 0..2 {
            let (tb, request) = (&tb, &request);
            scope.spawn(move || {
                let summary = tb.vm(vm).run(request, 100);
                assert_eq!(summary.forwarded, 100);
            });
        }
    });

    assert_eq!(tb.counter("fixture.requests"), Some(200));
    assert_eq!(tb.histogram("fixture.sizes").map(|h| h.len()), Some(200));
    assert!(tb.traps().is_empty());
}
