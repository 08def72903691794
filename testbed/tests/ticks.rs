//! Ticks and the clock: `advance` fires due ticks in time order across VMs and
//! plugins, once per elapsed period; the guest reads the testbed clock.

mod common;

use pat_testbed::{LogEntry, Plugin, Testbed};
use std::time::{Duration, UNIX_EPOCH};

/// `(vm, label, ms since the testbed started)` of every tick logged so far.
fn ticks(tb: &Testbed, start_ms: u128) -> Vec<(usize, String, u128)> {
    tb.logs()
        .iter()
        .filter_map(|LogEntry { vm, message, .. }| {
            let rest = message.strip_prefix("tick ")?;
            let (label, at) = rest.split_once(" at ")?;
            Some((*vm, label.to_string(), at.parse::<u128>().ok()? - start_ms))
        })
        .collect()
}

fn start_ms(tb: &Testbed) -> u128 {
    tb.now().duration_since(UNIX_EPOCH).unwrap().as_millis()
}

#[test]
fn ticks_fire_in_time_order_across_vms_and_plugins() {
    let tb = common::fixture()
        .workers(2)
        .plugin(Plugin::new("fast").configuration("label=fast tick_ms=100"))
        .plugin(Plugin::new("slow").configuration("label=slow tick_ms=250"))
        .build()
        .unwrap();
    let start = start_ms(&tb);

    tb.advance(Duration::from_millis(500));

    let mut expected = Vec::new();
    for (at, labels) in [
        (100, vec!["fast"]),
        (200, vec!["fast"]),
        (250, vec!["slow"]),
        (300, vec!["fast"]),
        (400, vec!["fast"]),
        (500, vec!["fast", "slow"]),
    ] {
        for vm in 0..2 {
            for label in &labels {
                expected.push((vm, label.to_string(), at));
            }
        }
    }
    assert_eq!(ticks(&tb, start), expected);
    assert_eq!(tb.counter("fixture.ticks"), Some(14));
    assert_eq!(start_ms(&tb) - start, 500);
}

#[test]
fn a_period_fires_only_once_it_has_fully_elapsed() {
    let tb = common::fixture()
        .plugin(Plugin::new("p").configuration("tick_ms=100"))
        .build()
        .unwrap();

    tb.advance(Duration::from_millis(99));
    assert_eq!(tb.counter("fixture.ticks"), Some(0));
    tb.advance(Duration::from_millis(1));
    assert_eq!(tb.counter("fixture.ticks"), Some(1));
    tb.advance(Duration::from_millis(1000));
    assert_eq!(tb.counter("fixture.ticks"), Some(11));
}

#[test]
fn tick_all_fires_every_root_with_a_period_once() {
    let tb = common::fixture()
        .workers(3)
        .plugin(Plugin::new("ticking").configuration("tick_ms=60000"))
        .plugin(Plugin::new("quiet"))
        .build()
        .unwrap();
    let before = tb.now();

    tb.tick_all();

    assert_eq!(tb.counter("fixture.ticks"), Some(3));
    assert_eq!(tb.now(), before);
}
