//! Freshness: a snapshot past its signed expiry, or older than `max_snapshot_age_ms`, is
//! never accepted, and an edge stops serving from the one it holds when it expires: token
//! requests then fail closed instead of trusting a frozen list forever.

mod filter_support;

use std::time::{Duration, UNIX_EPOCH};

use filter_support::*;
use pat_core::snapshot::Stamp;

const HOUR: u64 = 3600;

#[test]
fn an_edge_drops_its_snapshot_when_it_expires() {
    let edge = edge().build();
    let t = Minted::new(1, "alice", &["environment.Control.StopEnv"]);
    let short = snapshot_stamped(&edge.key, Stamp::lasting(1, START, 2), &[&t]);
    assert_eq!(
        edge.push(0, short)
            .local_response()
            .expect("answered")
            .status,
        200
    );
    for vm in 0..2 {
        assert!(edge.get(vm, STOPENV, t.value()).is_forwarded());
    }
    // Two seconds later: expired. Every worker drops it on its next tick.
    edge.tb.advance(Duration::from_millis(2050));
    for vm in 0..2 {
        assert_denied(&edge, &edge.get(vm, STOPENV, t.value()), "no_snapshot", 701);
    }
    assert!(
        !edge.tb.logs_containing("expired at").is_empty(),
        "the operator is told why"
    );
    // A fresh one brings the tokens back.
    edge.publish(1, 2, &[&t]);
    edge.tick();
    for vm in 0..2 {
        assert!(edge.get(vm, STOPENV, t.value()).is_forwarded());
    }
    edge.assert_clean(&[t.value()]);
}

#[test]
fn expired_or_too_old_pushes_are_refused() {
    let edge = edge()
        .public(r#""max_snapshot_age_ms":3600000"#)
        .control(r#"{"push":{"path":"/_pat/snapshot"},"max_snapshot_age_ms":3600000}"#)
        .testbed(|b| b.start_time(UNIX_EPOCH + Duration::from_secs(START + 2 * HOUR)))
        .build();
    let t = Minted::new(1, "alice", &["environment.Control.StopEnv"]);
    // Expired an hour ago (a snapshot captured earlier and replayed).
    let expired = snapshot_stamped(&edge.key, Stamp::lasting(3, START, HOUR), &[&t]);
    let answer = edge.push(0, expired);
    let local = answer.local_response().expect("answered");
    assert_eq!(local.status, 400, "{}", local.body_text());
    assert!(
        local.body_text().contains("expired"),
        "{}",
        local.body_text()
    );
    // Valid for a week, but issued two hours ago: older than this edge's one-hour limit.
    let old = snapshot_stamped(&edge.key, Stamp::lasting(4, START, 7 * 24 * HOUR), &[&t]);
    let answer = edge.push(0, old);
    let local = answer.local_response().expect("answered");
    assert_eq!(local.status, 400, "{}", local.body_text());
    assert!(
        local.body_text().contains("max_snapshot_age_ms"),
        "{}",
        local.body_text()
    );
    assert_denied(&edge, &edge.get(0, STOPENV, t.value()), "no_snapshot", 701);
    // A recent one is accepted.
    let recent = snapshot_stamped(
        &edge.key,
        Stamp::lasting(5, START + 2 * HOUR - 60, 24 * HOUR),
        &[&t],
    );
    assert_eq!(
        edge.push(0, recent)
            .local_response()
            .expect("answered")
            .status,
        200
    );
    assert!(edge.get(1, STOPENV, t.value()).is_forwarded());
}

#[test]
fn the_public_filter_stops_serving_a_snapshot_older_than_its_limit() {
    // The control filter accepts a day; the public filter serves at most 30 minutes.
    let t = Minted::new(1, "alice", &["environment.Control.StopEnv"]);
    for (minutes_after, served) in [(29, true), (31, false)] {
        let edge = edge()
            .public(r#""max_snapshot_age_ms":1800000"#)
            .testbed(move |b| {
                b.start_time(UNIX_EPOCH + Duration::from_secs(START + minutes_after * 60))
            })
            .build();
        edge.publish(0, 1, &[&t]);
        let ex = edge.get(0, STOPENV, t.value());
        if served {
            assert!(ex.is_forwarded(), "{minutes_after} minutes old");
        } else {
            assert_denied(&edge, &ex, "no_snapshot", 701);
        }
    }
}

#[test]
fn the_status_reports_expiry_and_floor() {
    let edge = edge().build();
    let t = Minted::new(1, "alice", &["environment.Control.StopEnv"]);
    edge.publish(0, 1, &[&t]);
    let ex = edge
        .tb
        .vm(0)
        .send_to("control", pat_testbed::Request::get(CONTROL_PATH));
    let status = json(&ex);
    assert_eq!(status["expires_at"], START + LIFETIME);
    assert!(status.get("floor").is_none(), "no origin configured");
}
