//! Until a valid snapshot is loaded, token requests are denied (fail closed) while other
//! requests follow the pass-through rule; VMs pick the snapshot up from shared data.

mod filter_support;

use filter_support::*;
use pat_core::keys::SigningKey;
use pat_testbed::Request;

#[test]
fn before_the_first_push_tokens_are_denied_and_the_rest_passes() {
    let edge = edge().build();
    let t = Minted::new(1, "alice", &["environment.Control.StopEnv"]);
    let ex = edge.get(0, STOPENV, t.value());
    let body = assert_denied(&edge, &ex, "no_snapshot", 701);
    assert!(
        body["error"].as_str().expect("text").contains("retry"),
        "{body}"
    );
    assert!(edge.get(0, STOPENV, "legacy-session").is_forwarded());
    assert!(edge.tb.vm(0).send(Request::get(STOPENV)).is_forwarded());
    // A malformed token is still recognisably malformed.
    assert_denied(
        &edge,
        &edge.get(0, STOPENV, "pate_abc"),
        "malformed_token",
        701,
    );
}

#[test]
fn an_idle_vm_loads_the_snapshot_on_its_first_token_request() {
    let edge = edge().workers(3).build();
    let t = Minted::new(1, "alice", &["environment.Control.StopEnv"]);
    edge.publish(0, 1, &[&t]);
    // VM 2 never served anything and no tick has fired: it loads from shared data now.
    assert!(edge.get(2, STOPENV, t.value()).is_forwarded());
    let memory_before = edge.tb.vm(1).memory_size();
    // Idle VMs (like Envoy's main-thread VM) do not load on ticks.
    edge.tick();
    assert_eq!(
        edge.tb.vm(1).memory_size(),
        memory_before,
        "an idle VM holds no snapshot"
    );
}

#[test]
fn a_vm_that_does_not_trust_the_published_key_fails_closed() {
    // The control filter trusts an extra key the public filter does not (a misconfiguration):
    // the public filter must refuse to serve from a snapshot it cannot verify.
    let other = SigningKey::generate().expect("rng");
    let edge = edge()
        .control(&format!(
            r#"{{"push":{{"path":"{CONTROL_PATH}"}},"public_keys":["{}"]}}"#,
            other.public_key()
        ))
        .build();
    let t = Minted::new(1, "alice", &["environment.Control.StopEnv"]);
    let reply = edge.tb.vm(0).send_to(
        "control",
        Request::put(CONTROL_PATH).body(snapshot(&other, 1, &[&t])),
    );
    assert_eq!(reply.local_response().expect("answered").status, 200);
    // VM 0 accepted and published it with the control filter's keys (keeping no copy: it
    // served no request yet), but the public filters cannot load it, and fail closed.
    assert_denied(&edge, &edge.get(0, STOPENV, t.value()), "no_snapshot", 701);
    assert_denied(&edge, &edge.get(1, STOPENV, t.value()), "no_snapshot", 701);
    assert!(!edge.tb.logs_containing("cannot be used here").is_empty());
    assert_eq!(edge.tb.counter("pat_edge.snapshot.load_failed"), Some(2));
    // Each VM reports the refusal once, and does not reload it on every tick.
    edge.tick();
    edge.tick();
    assert_eq!(edge.tb.counter("pat_edge.snapshot.load_failed"), Some(2));
}
