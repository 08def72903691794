//! Test data: the signing key and token, snapshots with filler tokens, pushing them, and a
//! seeded pat-admin store.

use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use pat_core::keys::SigningKey;
use pat_core::method::MethodName;
use pat_core::snapshot::{SnapshotBuilder, Stamp, StateOf, TokenSpec};
use pat_core::token::{Token, TokenHash};
use pat_e2e::release_binary;

use crate::envoys::Envoy;

/// The signing key and the one real token every snapshot may hold.
pub(crate) struct Tokens {
    pub(crate) key: SigningKey,
    pub(crate) real: Token,
}

/// A signed snapshot: `fillers` tokens (half in scope for the benchmarked method) and, when
/// `include_real`, the real token.
pub(crate) fn snapshot(
    tokens: &Tokens,
    version: u64,
    fillers: usize,
    include_real: bool,
) -> Vec<u8> {
    let stop = [MethodName::parse("environment.Control.StopEnv").expect("valid")];
    let other = [MethodName::parse("environment.Control.GetEnvs").expect("valid")];
    let users: Vec<String> = (0..fillers / 10 + 1)
        .map(|i| format!("user{i}@example.com"))
        .collect();
    let mut b = SnapshotBuilder::new();
    for i in 0..fillers {
        b.add(TokenSpec {
            hash: TokenHash::of(&format!("filler-{i}")),
            id: 100 + i as u64,
            user: &users[i / 10],
            expires_at: None,
            scope: if i % 2 == 0 { &stop } else { &other },
            networks: &[],
        })
        .expect("filler");
    }
    if include_real {
        b.add(TokenSpec {
            hash: tokens.real.hash(),
            id: 1,
            user: "alice",
            expires_at: None,
            scope: &stop,
            networks: &[],
        })
        .expect("real");
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    b.build(
        Stamp::lasting(version, now, 86_400),
        StateOf::Genesis,
        &tokens.key,
    )
    .expect("build")
    .bytes
}

/// Pushes a snapshot to an Envoy's control listener; it must be accepted.
pub(crate) fn push(client: &reqwest::blocking::Client, envoy: &Envoy, bytes: Vec<u8>) {
    let r = client
        .put(format!("http://127.0.0.1:{}/_pat/snapshot", envoy.control))
        .body(bytes)
        .send()
        .expect("push");
    assert!(
        r.status().is_success(),
        "push refused: {}",
        r.text().unwrap_or_default()
    );
}

/// A pat-admin store with an active signing key (made by `pat-admin key generate`) and
/// `count` tokens (inserted directly: hashing passwords would only measure argon2); returns
/// the public key the edge must trust.
pub(crate) fn seed_admin_store(store_dir: &Path, count: usize) -> String {
    use pat_admin::store::{Store, now, tokens, users};
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
                    },
                )?;
            }
            Ok(())
        })
        .expect("seed");
    public_key
}
