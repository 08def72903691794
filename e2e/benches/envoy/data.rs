//! Test data: the signing key and token, full snapshots with filler tokens and deltas on
//! top of them, pushing them, and a seeded pat-admin store.

use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use pat_admin::catalogue::Catalogue;
use pat_core::env::EnvList;
use pat_core::keys::SigningKey;
use pat_core::method::MethodName;
use pat_core::rate::RateLimit;
use pat_core::snapshot::{Base, Built, SnapshotBuilder, Stamp, StateOf, TokenSpec};
use pat_core::token::{Token, TokenHash};
use pat_e2e::release_binary;

use crate::envoys::Envoy;

/// The signing key and the one real token every snapshot may hold.
pub(crate) struct Tokens {
    pub(crate) key: SigningKey,
    pub(crate) real: Token,
}

/// The scopes filler tokens get: half may call the benchmarked method.
pub(crate) fn scopes() -> ([MethodName; 1], [MethodName; 1]) {
    (
        [MethodName::parse("environment.Control.StopEnv").expect("valid")],
        [MethodName::parse("environment.Control.GetEnvs").expect("valid")],
    )
}

/// Now, Unix seconds.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// A signed full snapshot (a new chain): `fillers` tokens (half in scope for the benchmarked
/// method), the `extra` tokens (ids 2, 3, …, in scope) and, when `include_real`, the real
/// token (id 1).
pub(crate) fn full(
    tokens: &Tokens,
    version: u64,
    fillers: usize,
    include_real: bool,
    extra: &[Token],
) -> Built {
    let (stop, other) = scopes();
    let users: Vec<String> = (0..fillers / 10 + 1)
        .map(|i| format!("user{i}@example.com"))
        .collect();
    let mut b = SnapshotBuilder::new();
    for i in 0..fillers {
        b.add(TokenSpec {
            hash: TokenHash::of(&format!("filler-{i}")),
            id: 1000 + i as u64,
            user: &users[i / 10],
            expires_at: None,
            scope: if i % 2 == 0 { &stop } else { &other },
            networks: &[],
            envs: None,
            rate_limit: None,
        })
        .expect("filler");
    }
    for (i, t) in extra.iter().enumerate() {
        b.add(TokenSpec {
            hash: t.hash(),
            id: 2 + i as u64,
            user: "bob",
            expires_at: None,
            scope: &stop,
            networks: &[],
            envs: None,
            rate_limit: None,
        })
        .expect("extra");
    }
    if include_real {
        b.add(real_spec(tokens, &stop)).expect("real");
    }
    b.build(
        Stamp::lasting(version, now(), 86_400),
        StateOf::Genesis,
        &tokens.key,
    )
    .expect("build")
}

/// The real token's record.
fn real_spec<'a>(tokens: &Tokens, scope: &'a [MethodName]) -> TokenSpec<'a> {
    TokenSpec {
        hash: tokens.real.hash(),
        id: 1,
        user: "alice",
        expires_at: None,
        scope,
        networks: &[],
        envs: None,
        rate_limit: None,
    }
}

/// A signed full snapshot like [`snapshot`] whose real token may only be used from
/// 127.0.0.1/32 (where the benchmark's client is), among a few other networks.
pub(crate) fn snapshot_address_limited(tokens: &Tokens, version: u64, fillers: usize) -> Vec<u8> {
    let mut built = SnapshotBuilder::new();
    let (stop, other) = scopes();
    for i in 0..fillers {
        built
            .add(TokenSpec {
                hash: TokenHash::of(&format!("filler-{i}")),
                id: 1000 + i as u64,
                user: "user@example.com",
                expires_at: None,
                scope: if i % 2 == 0 { &stop } else { &other },
                networks: &[],
                envs: None,
                rate_limit: None,
            })
            .expect("filler");
    }
    let networks: Vec<pat_core::net::Network> = ["203.0.113.0/24", "2001:db8::/32", "127.0.0.1/32"]
        .iter()
        .map(|n| n.parse().expect("network"))
        .collect();
    built
        .add(TokenSpec {
            networks: &networks,
            ..real_spec(tokens, &stop)
        })
        .expect("real");
    built
        .build(
            Stamp::lasting(version, now(), 86_400),
            StateOf::Genesis,
            &tokens.key,
        )
        .expect("build")
        .bytes
}

/// What a token is limited to besides its scope.
#[derive(Clone, Copy, Default)]
pub(crate) struct Limits<'a> {
    pub(crate) envs: Option<&'a EnvList>,
    pub(crate) rate_limit: Option<RateLimit>,
}

/// An environment list: these names (valid).
pub(crate) fn env_list(names: &[&str]) -> EnvList {
    EnvList::parse(names)
        .expect("valid environment names")
        .expect("a list")
}

/// A rate limit (`50/s`, `30/min`; valid).
pub(crate) fn rate(text: &str) -> RateLimit {
    text.parse().expect("a valid rate limit")
}

/// A signed full snapshot as pat-admin publishes it since environments and rate limits
/// (the catalogue's environment methods declared): `fillers` tokens (half in scope for the
/// benchmarked method), with `others_limited` a quarter of them limited to 3 environments,
/// a quarter rate-limited, a quarter both; the real token (id 1) with `real`'s limits, and
/// the `extra` tokens (ids 2, 3, …, in scope) with theirs.
pub(crate) fn snapshot_limited(
    tokens: &Tokens,
    version: u64,
    fillers: usize,
    others_limited: bool,
    real: Limits<'_>,
    extra: &[(&Token, Limits<'_>)],
) -> Vec<u8> {
    let (stop, other) = scopes();
    let users: Vec<String> = (0..fillers / 10 + 1)
        .map(|i| format!("user{i}@example.com"))
        .collect();
    let envs = env_list(&["prod", "staging", "dev"]);
    let limit = rate("50/s");
    let mut b = SnapshotBuilder::new();
    b.env_methods(
        Catalogue::builtin()
            .expect("the catalogue")
            .env_methods()
            .cloned(),
    );
    for i in 0..fillers {
        let (limited_envs, limited_rate) = match (others_limited, i % 4) {
            (false, _) | (true, 0) => (false, false),
            (true, 1) => (true, false),
            (true, 2) => (false, true),
            (true, _) => (true, true),
        };
        b.add(TokenSpec {
            hash: TokenHash::of(&format!("filler-{i}")),
            id: 1000 + i as u64,
            user: &users[i / 10],
            expires_at: None,
            scope: if i % 2 == 0 { &stop } else { &other },
            networks: &[],
            envs: limited_envs.then_some(&envs),
            rate_limit: limited_rate.then_some(limit),
        })
        .expect("filler");
    }
    for (i, (t, limits)) in extra.iter().enumerate() {
        b.add(TokenSpec {
            hash: t.hash(),
            id: 2 + i as u64,
            user: "bob",
            expires_at: None,
            scope: &stop,
            networks: &[],
            envs: limits.envs,
            rate_limit: limits.rate_limit,
        })
        .expect("extra");
    }
    b.add(TokenSpec {
        envs: real.envs,
        rate_limit: real.rate_limit,
        ..real_spec(tokens, &stop)
    })
    .expect("real");
    b.build(
        Stamp::lasting(version, now(), 86_400),
        StateOf::Genesis,
        &tokens.key,
    )
    .expect("build")
    .bytes
}

/// A signed full snapshot's bytes: see [`full`].
pub(crate) fn snapshot(
    tokens: &Tokens,
    version: u64,
    fillers: usize,
    include_real: bool,
) -> Vec<u8> {
    full(tokens, version, fillers, include_real, &[]).bytes
}

/// What a delta changes.
pub(crate) enum Change<'a> {
    /// Adds the real token back (as the API does after a regenerate: same id, same scope).
    AddReal,
    /// Removes the token with this hash.
    Remove(&'a TokenHash),
}

/// A signed delta with one change on top of `base`, after which the state holds
/// `state_tokens` tokens.
pub(crate) fn delta(tokens: &Tokens, base: Base, change: Change<'_>, state_tokens: u32) -> Built {
    let (stop, _) = scopes();
    let mut b = SnapshotBuilder::new();
    match change {
        Change::AddReal => b.add(real_spec(tokens, &stop)).expect("real"),
        Change::Remove(hash) => b.remove(hash),
    }
    b.build_delta(
        Stamp::lasting(base.version + 1, now(), 86_400),
        base,
        state_tokens,
        &tokens.key,
    )
    .expect("build delta")
}

/// The base a document produces: for the next delta.
pub(crate) fn base_after(version: u64, built: &Built) -> Base {
    Base {
        version,
        state_id: built.state_id,
    }
}

/// Pushes a snapshot to an Envoy's control listener; it must be accepted.
pub(crate) fn push(client: &reqwest::blocking::Client, envoy: &Envoy, bytes: Vec<u8>) {
    let r = client
        .put(format!(
            "http://127.0.0.1:{}{}",
            envoy.control,
            pat_core::protocol::control::PATH
        ))
        .body(bytes)
        .send()
        .expect("push");
    let status = r.status();
    if !status.is_success() {
        let log = std::fs::read_to_string(&envoy.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        panic!(
            "push refused: {status} {}\nthe end of Envoy's log:\n{}",
            r.text().unwrap_or_default(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
}

/// A pat-admin store with an active signing key (made by `pat-admin key generate`) and
/// `count` tokens (inserted directly: hashing passwords would only measure argon2); returns
/// the public key the edge must trust.
pub(crate) fn seed_admin_store(store_dir: &Path, count: usize) -> String {
    use pat_admin::store::{Store, tokens, users};
    let out = Command::new(release_binary("pat-admin"))
        .env_remove("PAT_ADMIN_STORE")
        .arg("--store")
        .arg(store_dir)
        .args(["--json", "key", "generate"])
        .output()
        .expect("pat-admin key generate");
    assert!(out.status.success(), "key generate failed");
    let key: serde_json::Value = serde_json::from_slice(&out.stdout).expect("key JSON");
    let public_key = key["public_key"].as_str().expect("public_key").to_string();
    let mut store = Store::open(store_dir).expect("store");
    store
        .write(|tx| {
            for u in 0..count / 10 {
                users::add(
                    tx,
                    &format!("user{u}@example.com"),
                    "$argon2id$v=19$m=19456,t=2,p=1$unused$unused",
                    now(),
                )?;
            }
            for i in 0..count {
                tokens::insert(
                    tx,
                    &tokens::Token {
                        id: 0,
                        user: format!("user{}@example.com", i / 10),
                        description: format!("token {i}"),
                        hash: TokenHash::of(&format!("bench-{i}")),
                        scope_set: None,
                        methods: vec!["environment.control.stopenv".into()],
                        created_at: now(),
                        expires_at: None,
                        regenerated_at: None,
                        last_used_at: None,
                        last_used_ip: None,
                        networks: Vec::new(),
                        old_value: None,
                        suspended: false,
                        envs: None,
                        rate_limit: None,
                    },
                )?;
            }
            Ok(())
        })
        .expect("seed");
    public_key
}
