//! Deltas through the compiled filter: a signed delta pushed to one VM is applied by every
//! worker on its next tick, without reloading the full snapshot; a delta that does not apply
//! (a gap, a fork), a forged or a replayed one is refused and changes nothing; an origin
//! catch-up brings a bundle (a full snapshot and the deltas after it) in one answer; an edge
//! that missed a delta catches up from the origin by the deltas since what it holds, and one
//! on a fork by the full snapshot.

mod filter_support;

use filter_support::*;
use pat_core::keys::SigningKey;
use pat_core::snapshot::{Stamp, bundle};
use pat_testbed::Response;

fn full(edge: &Edge, version: u64, tokens: &[&Minted]) -> pat_core::snapshot::Built {
    snapshot_built(&edge.key, Stamp::lasting(version, START, LIFETIME), tokens)
}

fn status(edge: &Edge, vm: usize) -> serde_json::Value {
    json(
        &edge
            .tb
            .vm(vm)
            .send_to("control", pat_testbed::Request::get(CONTROL_PATH)),
    )
}

#[test]
fn a_delta_reaches_every_worker_without_a_full_reload() {
    let edge = edge().workers(3).build();
    let alice = Minted::new(1, "alice", &["environment.Control.StopEnv"]);
    let bob = Minted::new(2, "bob", &["environment.Control.StopEnv"]);
    let carol = Minted::new(3, "carol", &["environment.Control.StopEnv"]);
    let v1 = full(&edge, 1, &[&alice, &bob]);
    assert_eq!(
        edge.push(2, v1.bytes.clone())
            .local_response()
            .expect("answered")
            .status,
        200
    );
    for vm in 0..2 {
        assert!(edge.get(vm, STOPENV, bob.value()).is_forwarded());
    }

    // Revoke bob, add carol: a delta of a few hundred bytes.
    let d2 = delta(&edge.key, (1, &v1), 2, &[&carol], &[&bob]);
    assert!(d2.bytes.len() < 1024, "{} bytes", d2.bytes.len());
    let reply = edge.push(2, d2.bytes.clone());
    let local = reply.local_response().expect("answered");
    assert_eq!(local.status, 200, "{}", local.body_text());
    assert_eq!(json(&reply)["version"], 2);
    edge.tick();
    for vm in 0..2 {
        assert_denied(
            &edge,
            &edge.get(vm, STOPENV, bob.value()),
            "unknown_token",
            701,
        );
        assert!(edge.get(vm, STOPENV, carol.value()).is_forwarded());
        assert!(edge.get(vm, STOPENV, alice.value()).is_forwarded());
    }
    assert!(
        !edge.tb.logs_containing("applied 1 delta(s)").is_empty(),
        "workers applied the delta, not a full reload"
    );
    assert_eq!(status(&edge, 0)["version"], 2);
    assert_eq!(
        status(&edge, 0)["tokens"],
        0,
        "the publisher's stated count (0 in these tests)"
    );
    edge.assert_clean(&[alice.value(), bob.value(), carol.value()]);
}

#[test]
fn deltas_that_do_not_apply_are_refused_and_change_nothing() {
    let edge = edge().build();
    let alice = Minted::new(1, "alice", &["environment.Control.StopEnv"]);
    let bob = Minted::new(2, "bob", &["environment.Control.StopEnv"]);
    let v1 = full(&edge, 1, &[&alice]);
    edge.push(0, v1.bytes.clone());
    let d2 = delta(&edge.key, (1, &v1), 2, &[&bob], &[]);
    let d3 = delta(&edge.key, (2, &d2), 3, &[], &[&alice]);
    // A gap: version 3 before version 2.
    let reply = edge.push(0, d3.bytes.clone());
    let local = reply.local_response().expect("answered");
    assert_eq!(local.status, 409, "{}", local.body_text());
    assert!(local.body_text().contains("does not apply"));
    assert_eq!(json(&reply)["current_version"], 1);
    // A fork: another history of version 1 (same key, other tokens).
    let other_v1 = full(&edge, 1, &[&bob]);
    let forked = delta(&edge.key, (1, &other_v1), 2, &[], &[&alice]);
    assert_eq!(
        edge.push(1, forked.bytes)
            .local_response()
            .expect("answered")
            .status,
        409
    );
    // Signed by a stranger.
    let stranger = SigningKey::generate().expect("rng");
    let foreign = delta(&stranger, (1, &v1), 2, &[], &[&alice]);
    assert_eq!(
        edge.push(0, foreign.bytes)
            .local_response()
            .expect("answered")
            .status,
        403
    );
    edge.tick();
    for vm in 0..2 {
        assert!(edge.get(vm, STOPENV, alice.value()).is_forwarded());
        assert_denied(
            &edge,
            &edge.get(vm, STOPENV, bob.value()),
            "unknown_token",
            701,
        );
    }
    // In order, both apply; replaying one is refused.
    for d in [&d2, &d3] {
        assert_eq!(
            edge.push(0, d.bytes.clone())
                .local_response()
                .expect("answered")
                .status,
            200
        );
    }
    let replay = edge.push(1, d2.bytes.clone());
    assert_eq!(replay.local_response().expect("answered").status, 409);
    edge.tick();
    for vm in 0..2 {
        assert_denied(
            &edge,
            &edge.get(vm, STOPENV, alice.value()),
            "unknown_token",
            701,
        );
        assert!(edge.get(vm, STOPENV, bob.value()).is_forwarded());
    }
}

#[test]
fn an_origin_catch_up_is_a_bundle_of_the_full_snapshot_and_its_deltas() {
    let origin = r#""origin":{"cluster":"pat_origin","interval_ms":30000,"retry_ms":2000,"timeout_ms":5000}"#;
    let edge = edge()
        .workers(3)
        .public(origin)
        .testbed(|b| b.cluster("pat_origin"))
        .build();
    let alice = Minted::new(1, "alice", &["environment.Control.StopEnv"]);
    let bob = Minted::new(2, "bob", &["environment.Control.StopEnv"]);
    let v1 = full(&edge, 1, &[&alice, &bob]);
    let d2 = delta(&edge.key, (1, &v1), 2, &[], &[&bob]);
    let d3 = delta(&edge.key, (2, &d2), 3, &[], &[]);
    edge.tick();
    let call = edge.tb.pending_http_calls().pop().expect("head fetch");
    edge.tb
        .respond_http_call(
            call.token,
            Response::new(200).body(d3.bytes[..pat_core::snapshot::BODY_OFFSET].to_vec()),
        )
        .expect("delivered");
    edge.tick();
    let call = edge.tb.pending_http_calls().pop().expect("catch-up fetch");
    assert_eq!(
        call.headers.get(":path"),
        Some("/snapshot"),
        "nothing held: all of it"
    );
    let body = bundle::encode([
        v1.bytes.as_slice(),
        d2.bytes.as_slice(),
        d3.bytes.as_slice(),
    ]);
    edge.tb
        .respond_http_call(call.token, Response::new(200).body(body))
        .expect("delivered");
    edge.tick();
    for vm in 0..2 {
        assert!(edge.get(vm, STOPENV, alice.value()).is_forwarded());
        assert_denied(
            &edge,
            &edge.get(vm, STOPENV, bob.value()),
            "unknown_token",
            701,
        );
    }
    assert_eq!(status(&edge, 0)["version"], 3);
    // The next change: the edge asks for what it lacks since version 3.
    let carol = Minted::new(3, "carol", &["environment.Control.StopEnv"]);
    let d4 = delta(&edge.key, (3, &d3), 4, &[&carol], &[]);
    edge.tb.advance(std::time::Duration::from_secs(30));
    let call = edge.tb.pending_http_calls().pop().expect("head fetch");
    edge.tb
        .respond_http_call(
            call.token,
            Response::new(200).body(d4.bytes[..pat_core::snapshot::BODY_OFFSET].to_vec()),
        )
        .expect("delivered");
    edge.tick();
    let call = edge.tb.pending_http_calls().pop().expect("catch-up fetch");
    assert_eq!(call.headers.get(":path"), Some("/snapshot?since=3"));
    edge.tb
        .respond_http_call(
            call.token,
            Response::new(200).body(bundle::encode([d4.bytes.as_slice()])),
        )
        .expect("delivered");
    edge.tick();
    assert!(edge.get(1, STOPENV, carol.value()).is_forwarded());
    edge.assert_clean(&[alice.value(), bob.value(), carol.value()]);
}

#[test]
fn a_bundle_must_link_and_end_fresh() {
    let edge = edge().build();
    let alice = Minted::new(1, "alice", &["environment.Control.StopEnv"]);
    let v1 = full(&edge, 1, &[&alice]);
    let d2 = delta(&edge.key, (1, &v1), 2, &[], &[&alice]);
    let other = full(&edge, 1, &[]);
    let unlinked = delta(&edge.key, (1, &other), 2, &[], &[]);
    let broken = bundle::encode([v1.bytes.as_slice(), unlinked.bytes.as_slice()]);
    let reply = edge.push(0, broken);
    let local = reply.local_response().expect("answered");
    assert_eq!(local.status, 400, "{}", local.body_text());
    assert!(local.body_text().contains("does not link"));
    // A bundle whose last document expired is refused, even if its base is fine.
    let stale_end = {
        let mut b = pat_core::snapshot::SnapshotBuilder::new();
        b.remove(&alice.token.hash());
        b.build_delta(
            Stamp::lasting(2, START - 2 * LIFETIME, LIFETIME),
            pat_core::snapshot::Base {
                version: 1,
                state_id: v1.state_id,
            },
            0,
            &edge.key,
        )
        .expect("build")
    };
    let expired = bundle::encode([v1.bytes.as_slice(), stale_end.bytes.as_slice()]);
    assert_eq!(
        edge.push(0, expired)
            .local_response()
            .expect("answered")
            .status,
        400
    );
    assert_denied(
        &edge,
        &edge.get(0, STOPENV, alice.value()),
        "no_snapshot",
        701,
    );
    // The good one.
    let good = bundle::encode([v1.bytes.as_slice(), d2.bytes.as_slice()]);
    assert_eq!(
        edge.push(0, good)
            .local_response()
            .expect("answered")
            .status,
        200
    );
    assert_denied(
        &edge,
        &edge.get(1, STOPENV, alice.value()),
        "unknown_token",
        701,
    );
}

/// An edge with an origin it asks every 30 s and `workers` VMs. Tests leave the last one
/// idle, as Envoy's main-thread VM is (it never gets a request): an idle VM takes the
/// origin's documents, serving VMs only when that is overdue.
fn edge_with_origin(workers: usize) -> Edge {
    let origin = r#""origin":{"cluster":"pat_origin","interval_ms":30000,"retry_ms":2000,"timeout_ms":5000}"#;
    edge()
        .workers(workers)
        .public(origin)
        .testbed(|b| b.cluster("pat_origin"))
        .build()
}

/// Answers the pending origin fetch with `body` and returns the path it asked for.
fn answer_fetch(edge: &Edge, body: Vec<u8>) -> String {
    let call = edge.tb.pending_http_calls().pop().expect("an origin fetch");
    let path = call.headers.get(":path").unwrap_or_default().to_string();
    edge.tb
        .respond_http_call(call.token, Response::new(200).body(body))
        .expect("delivered");
    path
}

/// The origin's signed head for a document: its first BODY_OFFSET bytes.
fn head(built: &pat_core::snapshot::Built) -> Vec<u8> {
    built.bytes[..pat_core::snapshot::BODY_OFFSET].to_vec()
}

#[test]
fn a_gap_is_caught_up_from_the_origin() {
    let edge = edge_with_origin(3);
    let alice = Minted::new(1, "alice", &["environment.Control.StopEnv"]);
    let bob = Minted::new(2, "bob", &["environment.Control.StopEnv"]);
    let v1 = full(&edge, 1, &[&alice, &bob]);
    // The origin is at version 1 when the edge starts; the edge gets it pushed.
    edge.tick();
    assert_eq!(answer_fetch(&edge, head(&v1)), "/snapshot/head");
    edge.tick();
    assert_eq!(answer_fetch(&edge, v1.bytes.clone()), "/snapshot");
    edge.tick();
    for vm in 0..2 {
        assert!(edge.get(vm, STOPENV, bob.value()).is_forwarded());
    }

    // Version 2 revokes bob, version 3 alice. The edge misses 2 (a push that failed).
    let d2 = delta(&edge.key, (1, &v1), 2, &[], &[&bob]);
    let d3 = delta(&edge.key, (2, &d2), 3, &[], &[&alice]);
    let refused = edge.push(0, d3.bytes.clone());
    assert_eq!(refused.local_response().expect("answered").status, 409);
    assert_eq!(json(&refused)["current_version"], 1);
    // The next round: the head says 3, the edge asks for what it lacks since 1.
    edge.tb.advance(std::time::Duration::from_secs(30));
    assert_eq!(answer_fetch(&edge, head(&d3)), "/snapshot/head");
    edge.tick();
    let body = bundle::encode([d2.bytes.as_slice(), d3.bytes.as_slice()]);
    assert_eq!(answer_fetch(&edge, body), "/snapshot?since=1");
    edge.tick();
    for vm in 0..2 {
        for t in [&alice, &bob] {
            assert_denied(
                &edge,
                &edge.get(vm, STOPENV, t.value()),
                "unknown_token",
                701,
            );
        }
    }
    assert_eq!(status(&edge, 0)["version"], 3);
    let applied = edge.tb.logs_containing("serving version 3");
    assert!(
        applied.len() >= 2 && applied.iter().all(|l| l.contains("applied 2 delta(s)")),
        "both workers caught up by the deltas, without a full reload: {applied:#?}"
    );
    edge.assert_clean(&[alice.value(), bob.value()]);
}

#[test]
fn a_fork_is_caught_up_from_the_origin_with_the_full_snapshot() {
    let edge = edge_with_origin(3);
    let alice = Minted::new(1, "alice", &["environment.Control.StopEnv"]);
    let bob = Minted::new(2, "bob", &["environment.Control.StopEnv"]);
    let carol = Minted::new(3, "carol", &["environment.Control.StopEnv"]);
    // The edge holds a version 2 that the origin does not (e.g. pushed by a publisher whose
    // store was then restored from a backup): the same version, another state.
    let v1 = full(&edge, 1, &[&alice, &bob]);
    let ours = delta(&edge.key, (1, &v1), 2, &[&carol], &[]);
    let theirs = delta(&edge.key, (1, &v1), 2, &[], &[&bob]);
    let d3 = delta(&edge.key, (2, &theirs), 3, &[], &[&alice]);
    edge.tick();
    assert_eq!(answer_fetch(&edge, head(&v1)), "/snapshot/head");
    edge.tick();
    assert_eq!(answer_fetch(&edge, v1.bytes.clone()), "/snapshot");
    assert_eq!(
        edge.push(0, ours.bytes.clone())
            .local_response()
            .expect("answered")
            .status,
        200
    );
    edge.tick();
    for vm in 0..2 {
        assert!(edge.get(vm, STOPENV, carol.value()).is_forwarded());
    }

    // The origin's head says 3; what it sends since 2 continues its own version 2, which
    // does not apply here: the edge then asks for the full snapshot.
    edge.tb.advance(std::time::Duration::from_secs(30));
    assert_eq!(answer_fetch(&edge, head(&d3)), "/snapshot/head");
    edge.tick();
    assert_eq!(
        answer_fetch(&edge, bundle::encode([d3.bytes.as_slice()])),
        "/snapshot?since=2"
    );
    edge.tick();
    let compacted = snapshot_built(&edge.key, Stamp::lasting(3, START, LIFETIME), &[]);
    assert_eq!(answer_fetch(&edge, compacted.bytes), "/snapshot");
    edge.tick();
    for vm in 0..2 {
        for t in [&alice, &bob, &carol] {
            assert_denied(
                &edge,
                &edge.get(vm, STOPENV, t.value()),
                "unknown_token",
                701,
            );
        }
    }
    assert_eq!(status(&edge, 0)["version"], 3);
    edge.assert_clean(&[alice.value(), bob.value(), carol.value()]);
}
