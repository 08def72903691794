//! Signed documents of one chain, as pat-admin signs them: full snapshots, and deltas on top
//! of the last document built.

use std::cell::RefCell;

use pat_core::keys::{SigningKey, TrustedKeys};
use pat_core::method::MethodName;
use pat_core::snapshot::{Base, Built, SnapshotBuilder, Stamp, StateOf, TokenSpec};
use pat_core::token::TokenHash;

use crate::replica::Clock;

/// Documents are issued here (Unix seconds) for a day...
pub const ISSUED: u64 = 1_800_000_000;
/// ...and the edge's clock reads an hour later, with the default age limit (a day).
pub const NOW: Clock = Clock {
    now_ms: (ISSUED + 3600) * 1000,
    max_age_ms: 86_400_000,
};

/// A publisher that keeps its chain: full snapshots and deltas on top of the last one. Its
/// tokens are named by strings (their hashes are the strings' SHA-256), each allowed
/// `environment.Control.StopEnv`.
pub struct Publisher {
    pub key: SigningKey,
    last: RefCell<Option<Base>>,
}

impl Default for Publisher {
    fn default() -> Self {
        Self::new()
    }
}

impl Publisher {
    /// A publisher with a key of its own.
    pub fn new() -> Self {
        Self::with_key(SigningKey::generate().expect("rng"))
    }

    /// A publisher signing with `key`.
    pub fn with_key(key: SigningKey) -> Self {
        Self {
            key,
            last: RefCell::new(None),
        }
    }

    /// Another publisher with the same key, whose chain starts afresh (a fork).
    pub fn same_key(&self) -> Self {
        Self::with_key(SigningKey::from_secret_text(&self.key.to_secret_text()).expect("same key"))
    }

    /// The keys an edge that trusts this publisher holds.
    pub fn keys(&self) -> TrustedKeys {
        TrustedKeys::new([self.key.public_key()])
    }

    fn builder(tokens: &[&str], first_id: u64) -> SnapshotBuilder {
        let scope = [MethodName::parse("environment.Control.StopEnv").expect("valid")];
        let mut b = SnapshotBuilder::new();
        for (i, t) in tokens.iter().enumerate() {
            b.add(TokenSpec {
                hash: TokenHash::of(t),
                id: first_id + i as u64,
                user: "u",
                expires_at: None,
                scope: &scope,
                networks: &[],
                envs: None,
                rate_limit: None,
            })
            .expect("add");
        }
        b
    }

    /// A full snapshot of `tokens` at `version`, issued at [`ISSUED`] for a day.
    pub fn snapshot(&self, version: u64, tokens: &[&str]) -> Vec<u8> {
        self.snapshot_at(version, ISSUED, tokens)
    }

    /// A full snapshot issued at `issued_at` for a day.
    pub fn snapshot_at(&self, version: u64, issued_at: u64, tokens: &[&str]) -> Vec<u8> {
        let built = Self::builder(tokens, 1)
            .build(
                Stamp::lasting(version, issued_at, 86_400),
                StateOf::Genesis,
                &self.key,
            )
            .expect("build");
        self.remember(version, &built);
        built.bytes
    }

    /// A compaction: the full snapshot of `tokens` at `version`, in the state `state_id`
    /// (that of the chain's delta at `version`), issued at [`ISSUED`] for a day. The chain
    /// goes on from the last document built, as before.
    pub fn compaction(&self, version: u64, state_id: [u8; 32], tokens: &[&str]) -> Vec<u8> {
        Self::builder(tokens, 1)
            .build(
                Stamp::lasting(version, ISSUED, 86_400),
                StateOf::Chain(state_id),
                &self.key,
            )
            .expect("build")
            .bytes
    }

    /// A delta on top of the last document built, issued at [`ISSUED`] for a day.
    pub fn delta(&self, version: u64, added: &[&str], removed: &[&str]) -> Vec<u8> {
        self.delta_at(version, ISSUED, added, removed)
    }

    /// A delta on top of the last document built, issued at `issued_at` for a day.
    pub fn delta_at(
        &self,
        version: u64,
        issued_at: u64,
        added: &[&str],
        removed: &[&str],
    ) -> Vec<u8> {
        let base = self.last.borrow().expect("a base");
        let mut b = Self::builder(added, 100 + version);
        for r in removed {
            b.remove(&TokenHash::of(r));
        }
        let built = b
            .build_delta(
                Stamp::lasting(version, issued_at, 86_400),
                base,
                0,
                &self.key,
            )
            .expect("build");
        self.remember(version, &built);
        built.bytes
    }

    /// The last document built, as the base of the next delta.
    pub fn last(&self) -> Option<Base> {
        *self.last.borrow()
    }

    fn remember(&self, version: u64, built: &Built) {
        *self.last.borrow_mut() = Some(Base {
            version,
            state_id: built.state_id,
        });
    }
}
