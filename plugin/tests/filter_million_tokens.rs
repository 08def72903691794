//! A 1,000,000-token snapshot: pushed, shared, looked up, revoked from — within the memory
//! budget of 64 bytes per token per VM, measured on the VMs' linear memory.

mod filter_support;

use filter_support::*;
use pat_core::method::MethodName;
use pat_core::snapshot::{SnapshotBuilder, Stamp, StateOf, TokenSpec};
use pat_core::token::TokenHash;

const FILLERS: usize = 1_000_000;

/// 1,000,000 tokens over 100,000 users and four scopes, plus the `real` ones.
fn big_snapshot(edge: &Edge, version: u64, real: &[&Minted]) -> Vec<u8> {
    let scopes: Vec<Vec<MethodName>> = [
        &["environment.Control.GetEnvs"][..],
        &[
            "environment.Control.StopEnv",
            "environment.Control.StartEnv",
        ],
        &[
            "storage.Uploader.Upload",
            "environment.Deployment.DeployArchive",
        ],
        &["marketplace.App.GetList"],
    ]
    .iter()
    .map(|names| names.iter().map(|n| method(n)).collect())
    .collect();
    let users: Vec<String> = (0..FILLERS / 10)
        .map(|i| format!("user{i}@example.com"))
        .collect();
    let mut builder = SnapshotBuilder::new();
    for i in 0..FILLERS {
        builder
            .add(TokenSpec {
                hash: TokenHash::of(&format!("filler-{i}")),
                id: 1_000 + i as u64,
                user: &users[i / 10],
                expires_at: (i % 3 == 0).then_some(START + 86_400 * 30),
                scope: &scopes[i % scopes.len()],
                networks: &[],
                envs: None,
                rate_limit: None,
            })
            .expect("filler");
    }
    for t in real {
        builder
            .add(TokenSpec {
                hash: t.token.hash(),
                id: t.id,
                user: &t.user,
                expires_at: t.expires_at,
                scope: &t.scope,
                networks: &[],
                envs: None,
                rate_limit: None,
            })
            .expect("real token");
    }
    builder
        .build(
            Stamp::lasting(version, START, 7 * 86_400),
            StateOf::Genesis,
            &edge.key,
        )
        .expect("build")
        .bytes
}

#[test]
fn a_million_tokens_fit_the_memory_budget_and_revoke_like_ten() {
    // VMs 0 and 1 serve; pushes go to VM 2, which serves nothing, as the control listener's
    // own VM does in envoy.yaml. A push is moved into that VM as it arrives (Envoy keeps at
    // most a 1 MiB buffer of it).
    let edge = edge()
        .workers(3)
        .testbed(|b| b.buffer_limit(1 << 20))
        .build();
    let alice = Minted::new(1, "alice", &["environment.Control.StopEnv"]);
    let bob = Minted::new(2, "bob", &["storage.Uploader.Upload"]);

    // Warm both VMs so their baseline memory includes the filter's own working set.
    for vm in 0..2 {
        assert!(edge.get(vm, STOPENV, "legacy").is_forwarded());
    }
    let baseline: Vec<usize> = (0..3).map(|vm| edge.tb.vm(vm).memory_size()).collect();

    let v1 = big_snapshot(&edge, 1, &[&alice, &bob]);
    let per_token_on_wire = v1.len() as f64 / (FILLERS + 2) as f64;
    assert!(
        per_token_on_wire < 60.0,
        "{per_token_on_wire:.1} bytes per token on the wire"
    );
    let reply = edge.push_in(2, v1, 64 * 1024);
    assert_eq!(
        reply.local_response().expect("answered").status,
        200,
        "{}",
        reply.local_response().expect("answered").body_text()
    );

    // The serving workers load it on their next tick.
    edge.tick();
    for vm in 0..2 {
        assert!(
            edge.get(vm, STOPENV, alice.value()).is_forwarded(),
            "vm {vm}"
        );
        assert!(
            edge.get(vm, "/1.0/storage/uploader/rest/upload", bob.value())
                .is_forwarded(),
            "vm {vm}"
        );
        assert_denied(
            &edge,
            &edge.get(vm, "/1.0/environment/control/rest/deleteenv", alice.value()),
            "out_of_scope",
            702,
        );
        assert_denied(
            &edge,
            &edge.get(vm, STOPENV, Minted::new(9, "x", &[]).value()),
            "unknown_token",
            701,
        );
    }

    // Revoke bob at a million tokens: a second full snapshot.
    let v2 = big_snapshot(&edge, 2, &[&alice]);
    let reply = edge.push_in(2, v2, 64 * 1024);
    assert_eq!(reply.local_response().expect("answered").status, 200);
    edge.tick();
    for vm in 0..2 {
        assert_denied(
            &edge,
            &edge.get(vm, "/1.0/storage/uploader/rest/upload", bob.value()),
            "unknown_token",
            701,
        );
        assert!(edge.get(vm, STOPENV, alice.value()).is_forwarded());
    }
    assert_eq!(
        edge.tb.gauge("pat_edge.snapshot.tokens"),
        Some(FILLERS as i64 + 1)
    );

    // After two full snapshots each VM has held, memory stays within 64 bytes per token:
    // the old snapshot is dropped before the new one is read; the VM that took the pushes
    // held each one only while verifying it.
    for (vm, before) in baseline.iter().enumerate() {
        let grown = edge.tb.vm(vm).memory_size() - before;
        let per_token = grown as f64 / FILLERS as f64;
        println!("vm {vm}: linear memory grew {grown} bytes = {per_token:.1} bytes per token");
        assert!(per_token <= 64.0, "vm {vm}: {per_token:.1} bytes per token");
    }
    edge.assert_clean(&[alice.value(), bob.value()]);
}
