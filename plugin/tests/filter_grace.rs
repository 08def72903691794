//! Regeneration with a grace window, through the compiled filter: the old value is a second
//! record of the same token id with its own end time. Both values work during the window,
//! on every worker; the old one is denied once its end time passes (as expiry), or at once
//! when a delta removes it (`remove` or a later `regenerate` ending the window early).

mod filter_support;

use std::time::Duration;

use filter_support::*;
use pat_core::snapshot::Stamp;

const UNAUTHENTICATED: i64 = 701;

/// Pushes to VM 0 and checks the control endpoint accepted it.
fn accepted(edge: &Edge, bytes: Vec<u8>) {
    let answer = edge.push(0, bytes);
    assert_eq!(answer.local_response().expect("answered").status, 200);
}

#[test]
fn both_values_work_until_the_window_ends() {
    let edge = edge().build();
    let grace = 1;
    let new = Minted::new(7, "alice", &["environment.Control.StopEnv"]);
    let old =
        Minted::new(7, "alice", &["environment.Control.StopEnv"]).expiring(edge.now() + grace);
    edge.publish(0, 1, &[&new, &old]);
    for vm in 0..2 {
        for value in [new.value(), old.value()] {
            let forwarded = forwarded(&edge.get(vm, STOPENV, value));
            assert_eq!(forwarded.header("x-pat-token-id"), Some("7"));
            assert_eq!(forwarded.header("x-pat-user"), Some("alice"));
        }
    }
    // The window ends: the old value is denied like an expired token, the new one goes on.
    edge.tb.advance(Duration::from_secs(grace));
    edge.tick();
    for vm in 0..2 {
        assert_denied(
            &edge,
            &edge.get(vm, STOPENV, old.value()),
            "expired_token",
            UNAUTHENTICATED,
        );
        assert!(edge.get(vm, STOPENV, new.value()).is_forwarded());
    }
    edge.assert_clean(&[new.value(), old.value()]);
}

#[test]
fn a_delta_that_removes_the_old_value_ends_the_window_at_once() {
    let edge = edge().build();
    let new = Minted::new(7, "alice", &["environment.Control.StopEnv"]);
    let old =
        Minted::new(7, "alice", &["environment.Control.StopEnv"]).expiring(edge.now() + 86_400);
    let v1 = snapshot_built(&edge.key, Stamp::lasting(1, START, LIFETIME), &[&new, &old]);
    accepted(&edge, v1.bytes.clone());
    edge.tick();
    assert!(edge.get(1, STOPENV, old.value()).is_forwarded());
    // `pat-admin regenerate` again: the old value's record goes, the token gets a newer one.
    let newer = Minted::new(7, "alice", &["environment.Control.StopEnv"]);
    let v2 = delta(&edge.key, (1, &v1), 2, &[&newer], &[&old, &new]);
    accepted(&edge, v2.bytes);
    edge.tick();
    for vm in 0..2 {
        for gone in [old.value(), new.value()] {
            assert_denied(
                &edge,
                &edge.get(vm, STOPENV, gone),
                "unknown_token",
                UNAUTHENTICATED,
            );
        }
        assert!(edge.get(vm, STOPENV, newer.value()).is_forwarded());
    }
    edge.assert_clean(&[new.value(), old.value(), newer.value()]);
}
