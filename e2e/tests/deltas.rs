//! Deltas pushed to the real control listener: one reaches every worker; forged, replayed and
//! misplaced ones (a gap, a fork) are refused and change nothing.
//!
//! The documents are signed here with a key the edge is told to trust as well, at versions
//! far above what the stack's own origin publishes.

use std::time::Duration;

use pat_core::keys::SigningKey;
use pat_core::method::MethodName;
use pat_core::snapshot::{Base, Built, SnapshotBuilder, Stamp, StateOf, TokenSpec};
use pat_core::token::Token;
use pat_e2e::{Answer, Client, Stack, unix_now, within};

const STOPENV: &str = "/1.0/environment/control/rest/stopenv";

/// Signs documents and remembers the chain's last state.
struct Publisher {
    key: SigningKey,
}

impl Publisher {
    fn spec(token: &Token, id: u64) -> TokenSpec<'static> {
        static SCOPE: std::sync::LazyLock<[MethodName; 1]> = std::sync::LazyLock::new(|| {
            [MethodName::parse("environment.Control.StopEnv").expect("valid")]
        });
        TokenSpec {
            hash: token.hash(),
            id,
            user: "alice",
            expires_at: None,
            scope: &*SCOPE,
            networks: &[],
            envs: None,
            rate_limit: None,
        }
    }

    fn full(&self, version: u64, tokens: &[&Token]) -> (Built, Base) {
        let mut b = SnapshotBuilder::new();
        for (i, t) in tokens.iter().enumerate() {
            b.add(Self::spec(t, 100 + i as u64)).expect("add");
        }
        let built = b
            .build(
                Stamp::lasting(version, unix_now(), 86_400),
                StateOf::Genesis,
                &self.key,
            )
            .expect("build");
        let base = Base {
            version,
            state_id: built.state_id,
        };
        (built, base)
    }

    fn delta(
        &self,
        base: Base,
        version: u64,
        added: &[(&Token, u64)],
        removed: &[&Token],
        state_tokens: u32,
    ) -> (Built, Base) {
        let mut b = SnapshotBuilder::new();
        for (t, id) in added {
            b.add(Self::spec(t, *id)).expect("add");
        }
        for t in removed {
            b.remove(&t.hash());
        }
        let built = b
            .build_delta(
                Stamp::lasting(version, unix_now(), 86_400),
                base,
                state_tokens,
                &self.key,
            )
            .expect("build");
        let next = Base {
            version,
            state_id: built.state_id,
        };
        (built, next)
    }
}

fn new_token() -> Token {
    Token::generate().expect("rng")
}

/// What 24 requests on fresh connections (both workers) get with this token.
fn answers(stack: &Stack, client: &Client, token: &Token) -> Vec<Answer> {
    (0..24)
        .map(|_| {
            client.get(
                &stack.url(&format!("{STOPENV}?envName=x&session={}", token.expose())),
                &[],
            )
        })
        .collect()
}

fn served_everywhere(stack: &Stack, client: &Client, token: &Token) -> bool {
    answers(stack, client, token).iter().all(Answer::is_ok)
}

fn denied_everywhere(stack: &Stack, client: &Client, token: &Token) -> bool {
    answers(stack, client, token)
        .iter()
        .all(|a| a.denied_with(701))
}

fn setup() -> (Stack, Publisher, Client) {
    let mut stack = Stack::start();
    let publisher = Publisher {
        key: SigningKey::generate().expect("rng"),
    };
    stack.also_trust(&publisher.key.public_key());
    (stack, publisher, Client::new())
}

#[test]
fn a_delta_reaches_every_worker() {
    let (stack, publisher, client) = setup();
    let control = format!("{}/_pat/snapshot", stack.control_url());
    let (a, b, c) = (new_token(), new_token(), new_token());
    let (full, base) = publisher.full(1000, &[&a, &b]);
    assert_eq!(client.put(&control, full.bytes).status, 200);
    assert!(
        within(Duration::from_secs(5), || served_everywhere(
            &stack, &client, &a
        ))
        .is_some(),
        "the full snapshot is served"
    );

    // Revoke a, add c: a few hundred bytes instead of the whole list.
    let (delta, _) = publisher.delta(base, 1001, &[(&c, 200)], &[&a], 2);
    assert!(delta.bytes.len() < 1024, "{} bytes", delta.bytes.len());
    let accepted = client.put(&control, delta.bytes);
    assert_eq!(
        (
            accepted.status,
            &accepted.json["version"],
            &accepted.json["tokens"]
        ),
        (200, &1001.into(), &2.into()),
        "{accepted:?}"
    );
    assert!(
        within(Duration::from_secs(5), || denied_everywhere(
            &stack, &client, &a
        ))
        .is_some(),
        "the revoked token is denied on every worker"
    );
    assert!(served_everywhere(&stack, &client, &b), "untouched token");
    assert!(served_everywhere(&stack, &client, &c), "added token");
    let status = client.get(&control, &[]);
    assert_eq!(
        (&status.json["version"], &status.json["tokens"]),
        (&1001.into(), &2.into())
    );
    let logs = stack.envoy_logs();
    assert!(logs.contains("push accepted: delta version 1001"), "{logs}");
    assert!(
        logs.matches("serving version 1001 (2 tokens), applied 1 delta(s)")
            .count()
            >= 2,
        "both workers applied the delta in place: {logs}"
    );
}

#[test]
fn forged_replayed_and_misplaced_deltas_are_refused_and_change_nothing() {
    let (stack, publisher, client) = setup();
    let control = format!("{}/_pat/snapshot", stack.control_url());
    let (a, b) = (new_token(), new_token());
    let (full, base) = publisher.full(1000, &[&a]);
    assert_eq!(client.put(&control, full.bytes).status, 200);
    let (first, after_first) = publisher.delta(base, 1001, &[(&b, 200)], &[], 2);
    assert_eq!(client.put(&control, first.bytes.clone()).status, 200);
    assert!(
        within(Duration::from_secs(5), || served_everywhere(
            &stack, &client, &b
        ))
        .is_some()
    );

    let intruder = Publisher {
        key: SigningKey::generate().expect("rng"),
    };
    let (forged, _) = intruder.delta(after_first, 1002, &[], &[&a], 1);
    // A gap: a delta on a base this edge never held (1002 → 1003, 1002 missing).
    let (_, unseen) = publisher.delta(after_first, 1002, &[], &[&a], 1);
    let (gap, _) = publisher.delta(unseen, 1003, &[], &[&b], 0);
    // A fork: the right base version with another state (a different 1001).
    let (_, other_1001) = publisher.delta(base, 1001, &[], &[&a], 0);
    let (fork, _) = publisher.delta(other_1001, 1002, &[(&a, 100)], &[], 1);
    // Flipped byte in a signed delta.
    let (mut tampered, _) = publisher.delta(after_first, 1002, &[], &[&a], 1);
    let last = tampered.bytes.len() - 1;
    tampered.bytes[last] ^= 1;
    for (what, body, status, current) in [
        ("forged", forged.bytes, 403, None),
        ("tampered", tampered.bytes, 400, None),
        ("replayed", first.bytes, 409, Some(1001)),
        ("after a gap", gap.bytes, 409, Some(1001)),
        ("on a fork", fork.bytes, 409, Some(1001)),
    ] {
        let answer = client.put(&control, body);
        assert_eq!(answer.status, status, "{what}: {answer:?}");
        assert_eq!(
            answer.json["result"],
            i64::from(status),
            "{what}: {answer:?}"
        );
        assert_eq!(answer.json["source"], "pat-edge", "{what}");
        if let Some(current) = current {
            assert_eq!(
                answer.json["current_version"], current,
                "{what}: {answer:?}"
            );
        }
        let now = client.get(&control, &[]);
        assert_eq!(now.json["version"], 1001, "{what} changed nothing");
        assert!(
            served_everywhere(&stack, &client, &a),
            "{what}: a still served"
        );
        assert!(
            served_everywhere(&stack, &client, &b),
            "{what}: b still served"
        );
    }
    let stats = stack.stats();
    assert!(
        stats.contains("wasmcustom.pat_edge.push.rejected: 5"),
        "{}",
        stats
            .lines()
            .filter(|l| l.contains("push"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
