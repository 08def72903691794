//! Metrics: one metric per name across VMs; counters, gauges, histograms.

mod common;

use pat_testbed::{MetricValue, Request};

#[test]
fn metrics_are_process_wide() {
    let tb = common::fixture().workers(2).build().unwrap();
    let metric = || {
        Request::get("/m")
            .header("x-fixture-op", "metric")
            .header("x-fixture-gauge", "7")
    };

    tb.vm(0).send(metric());
    tb.vm(1).send(metric());
    let third = tb.vm(0).send(metric());

    assert_eq!(tb.counter("fixture.requests"), Some(3));
    // The guest reads the counter back through proxy_get_metric.
    assert_eq!(
        third.forwarded().unwrap().header("x-fixture-counter"),
        Some("3")
    );
    assert_eq!(tb.gauge("fixture.gauge"), Some(7));
    assert_eq!(tb.histogram("fixture.sizes"), Some(vec![42, 42, 42]));
    assert_eq!(tb.counter("fixture.logged"), Some(3));
    assert_eq!(tb.counter("no.such.metric"), None);
    assert!(
        tb.metrics()
            .iter()
            .any(|m| m.name == "fixture.ticks" && m.value == MetricValue::Counter(0))
    );
}
