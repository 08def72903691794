//! Snapshot pushes on the control endpoint: verified, shared with every VM through shared
//! data, picked up by the other workers on their next tick; refused pushes change nothing.

mod filter_support;

use std::time::Duration;

use filter_support::*;
use pat_core::keys::SigningKey;
use pat_testbed::Request;

fn status(edge: &Edge, vm: usize) -> serde_json::Value {
    let ex = edge
        .tb
        .vm(vm)
        .send_to("control", Request::get(CONTROL_PATH));
    assert_eq!(ex.local_response().expect("answered").status, 200);
    json(&ex)
}

#[test]
fn a_push_on_one_worker_reaches_the_other_within_one_tick() {
    let edge = edge().build();
    let kept = Minted::new(1, "alice", &["environment.Control.StopEnv"]);
    let revoked = Minted::new(2, "alice", &["environment.Control.StopEnv"]);
    edge.publish(0, 1, &[&kept, &revoked]);
    // Worker 1 serves traffic (and loads version 1 on its first token request).
    assert!(edge.get(1, STOPENV, revoked.value()).is_forwarded());

    // Revoke on worker 0: effective there at once...
    edge.publish(0, 2, &[&kept]);
    assert_denied(
        &edge,
        &edge.get(0, STOPENV, revoked.value()),
        "unknown_token",
        701,
    );
    // ...and on worker 1 once its refresh tick (50 ms) has fired.
    assert!(
        edge.get(1, STOPENV, revoked.value()).is_forwarded(),
        "not yet ticked"
    );
    edge.tb.advance(Duration::from_millis(50));
    assert_denied(
        &edge,
        &edge.get(1, STOPENV, revoked.value()),
        "unknown_token",
        701,
    );
    assert!(edge.get(1, STOPENV, kept.value()).is_forwarded());

    assert_eq!(edge.tb.gauge("pat_edge.snapshot.version"), Some(2));
    assert_eq!(edge.tb.gauge("pat_edge.snapshot.tokens"), Some(1));
    assert_eq!(edge.tb.counter("pat_edge.push.accepted"), Some(2));
    edge.assert_clean(&[kept.value(), revoked.value()]);
}

#[test]
fn pushes_from_both_workers_while_requests_flow_on_threads() {
    let edge = edge().build();
    let tokens: Vec<Minted> = (1..=20)
        .map(|i| Minted::new(i, "alice", &["environment.Control.StopEnv"]))
        .collect();
    let all: Vec<&Minted> = tokens.iter().collect();
    edge.publish(0, 1, &all);
    std::thread::scope(|s| {
        s.spawn(|| {
            for version in 2..=10u64 {
                // Every version keeps token 1; the others come and go.
                let subset: Vec<&Minted> = all
                    .iter()
                    .copied()
                    .filter(|t| t.id == 1 || t.id % version != 0)
                    .collect();
                edge.publish((version % 2) as usize, version, &subset);
            }
        });
        s.spawn(|| {
            for _ in 0..200 {
                assert!(edge.get(1, STOPENV, tokens[0].value()).is_forwarded());
                edge.tick();
            }
        });
    });
    edge.tick();
    for vm in 0..2 {
        assert_eq!(status(&edge, vm)["version"], 10);
    }
    assert!(edge.tb.traps().is_empty());
}

#[test]
fn status_reports_version_tokens_and_issue_time() {
    let edge = edge().build();
    let before = status(&edge, 0);
    assert_eq!(before["loaded"], false);
    assert_eq!(before["version"], 0);
    let a = Minted::new(1, "a", &["environment.Control.StopEnv"]);
    let b = Minted::new(2, "b", &["environment.Control.StopEnv"]);
    let reply = edge.push(0, snapshot(&edge.key, 9, &[&a, &b]));
    let accepted = json(&reply);
    assert_eq!(
        (
            accepted["result"].as_i64(),
            accepted["version"].as_i64(),
            accepted["tokens"].as_i64()
        ),
        (Some(0), Some(9), Some(2))
    );
    for vm in 0..2 {
        let s = status(&edge, vm);
        assert_eq!(s["loaded"], true);
        assert_eq!(s["version"], 9);
        assert_eq!(s["tokens"], 2);
        assert_eq!(s["issued_at"], START);
        assert_eq!(s["key_id"], edge.key.public_key().id().to_string());
    }
}

#[test]
fn refused_pushes_change_nothing() {
    let edge = edge()
        .control(r#"{"push":{"path":"/_pat/snapshot","max_bytes":65536}}"#)
        .build();
    let t = Minted::new(1, "alice", &["environment.Control.StopEnv"]);
    let intruder = Minted::new(2, "mallory", &["environment.Control.StopEnv"]);
    edge.publish(0, 5, &[&t]);
    let pointer = edge
        .tb
        .shared_data("pat_edge.v3.current")
        .expect("published")
        .value;

    let stranger = SigningKey::generate().expect("rng");
    let mut forged = snapshot(&stranger, 6, &[&intruder]);
    forged[40..48].copy_from_slice(&edge.key.public_key().id().0);
    let mut truncated = snapshot(&edge.key, 6, &[&intruder]);
    truncated.truncate(truncated.len() - 10);
    let mut tampered = snapshot(&edge.key, 6, &[&intruder]);
    let last = tampered.len() - 1;
    tampered[last] ^= 0x55;

    let bulk: Vec<Minted> = (10..1800)
        .map(|i| Minted::new(i, "bulk", &["environment.Control.GetEnvs"]))
        .collect();
    let big = snapshot(&edge.key, 6, &bulk.iter().collect::<Vec<_>>());
    assert!(big.len() > 65536, "{}", big.len());

    let cases: Vec<(&str, Request, u32)> = vec![
        (
            "untrusted key",
            Request::put(CONTROL_PATH).body(snapshot(&stranger, 6, &[&intruder])),
            403,
        ),
        (
            "forged signature",
            Request::put(CONTROL_PATH).body(forged),
            403,
        ),
        ("truncated", Request::put(CONTROL_PATH).body(truncated), 400),
        (
            "tampered body",
            Request::put(CONTROL_PATH).body(tampered),
            400,
        ),
        (
            "garbage",
            Request::put(CONTROL_PATH).body("not a snapshot"),
            400,
        ),
        (
            "replayed older",
            Request::put(CONTROL_PATH).body(snapshot(&edge.key, 4, &[&intruder])),
            409,
        ),
        (
            "same version",
            Request::put(CONTROL_PATH).body(snapshot(&edge.key, 5, &[&intruder])),
            409,
        ),
        ("empty", Request::put(CONTROL_PATH), 400),
        (
            "large garbage, refused at its first bytes",
            Request::put(CONTROL_PATH)
                .body(vec![0u8; 70_000])
                .chunk_size(16_384),
            400,
        ),
        (
            "too large",
            Request::put(CONTROL_PATH)
                .body(big.clone())
                .chunk_size(16_384),
            413,
        ),
        ("wrong method", Request::post(CONTROL_PATH).body("x"), 405),
        (
            "public listener",
            Request::put(CONTROL_PATH)
                .body(snapshot(&edge.key, 6, &[&intruder]))
                .destination_address("203.0.113.7:10001"),
            403,
        ),
    ];
    for (what, request, expected) in cases {
        for vm in 0..2 {
            let ex = edge.tb.vm(vm).send_to("control", request.clone());
            let local = ex
                .local_response()
                .unwrap_or_else(|| panic!("{what}: not answered"));
            assert_eq!(local.status, expected, "{what}: {}", local.body_text());
            let body = json(&ex);
            assert_eq!(body["result"], expected, "{what}");
            assert_eq!(body["source"], "pat-edge", "{what}");
            if expected == 409 {
                assert_eq!(
                    body["current_version"], 5,
                    "{what}: the edge says what it holds"
                );
            }
            // Nothing changed: the same pointer, the same version, the same tokens.
            assert_eq!(
                edge.tb
                    .shared_data("pat_edge.v3.current")
                    .expect("kept")
                    .value,
                pointer,
                "{what}"
            );
            assert_eq!(status(&edge, vm)["version"], 5, "{what}");
            assert!(edge.get(vm, STOPENV, t.value()).is_forwarded(), "{what}");
            assert_denied(
                &edge,
                &edge.get(vm, STOPENV, intruder.value()),
                "unknown_token",
                701,
            );
        }
    }
    assert_eq!(
        edge.tb.counter("pat_edge.push.rejected"),
        Some(20),
        "wrong methods and foreign listeners are not push attempts"
    );
    edge.assert_clean(&[t.value(), intruder.value()]);
}

#[test]
fn the_public_filter_never_accepts_pushes() {
    let edge = edge().build();
    let intruder = Minted::new(2, "mallory", &["environment.Control.StopEnv"]);
    // Sent through the public filter: just another request for the platform.
    let ex =
        edge.tb
            .vm(0)
            .send(Request::put(CONTROL_PATH).body(snapshot(&edge.key, 1, &[&intruder])));
    assert!(ex.is_forwarded());
    assert!(
        edge.tb
            .shared_data("pat_edge.v3.current")
            .is_none_or(|v| v.value == [0u8; 144])
    );
    assert_denied(
        &edge,
        &edge.get(0, STOPENV, intruder.value()),
        "no_snapshot",
        701,
    );
}
