//! One VM's view of the snapshot: which one it serves from, how it picks up a newer one,
//! and how it accepts a push.
//!
//! Memory is the constraint at 1,000,000 tokens (~57 MB a snapshot): a VM never holds two
//! snapshots at once. When the pointer moves, the VM drops its snapshot *before* fetching
//! the new one (single-threaded: no request runs in between). A push is first checked on
//! its signed header alone (key, signature, length, version), which rejects forged,
//! truncated and replayed pushes without touching the VM's snapshot; only then is the old
//! snapshot dropped and the body read. Should the body still fail (a valid header on a
//! tampered body), the VM restores the current snapshot from shared data.

use pat_core::keys::TrustedKeys;
use pat_core::snapshot::{BODY_OFFSET, Header, Snapshot, SnapshotError, verify_header};

use crate::shared::{self, Pointer, PublishError, SharedStore, StoreError};

/// The snapshot this VM serves from.
#[derive(Debug, Default)]
pub struct Edge {
    snapshot: Option<Snapshot>,
}

/// What a refresh did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refresh {
    /// Already serving the current snapshot (or nothing newer exists).
    Unchanged,
    /// Nothing has been published to this Envoy yet.
    NothingPublished,
    /// Switched to a newer snapshot.
    Applied {
        /// Its version.
        version: u64,
        /// Its token count.
        tokens: u32,
    },
    /// The published snapshot could not be opened here (e.g. this filter does not trust
    /// the key that signed it); the VM now has none and token requests fail closed.
    Failed(SnapshotError),
}

/// Why a push was refused. A refused push changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushRejection {
    /// Not a valid signed snapshot.
    #[error(transparent)]
    Invalid(#[from] SnapshotError),
    /// Not newer than what the edge holds.
    #[error(
        "snapshot version {offered} is not newer than version {current}, which this edge already holds"
    )]
    Stale {
        /// The version offered.
        offered: u64,
        /// The version in place.
        current: u64,
    },
    /// The body could not be read from the host.
    #[error("the snapshot body could not be read")]
    Unreadable,
    /// Shared data failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An accepted push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// Its version.
    pub version: u64,
    /// Its token count.
    pub tokens: u32,
    /// When it was issued, Unix seconds.
    pub issued_at: u64,
}

/// Reloading after a pointer race: the pointer can move between reading it and fetching the
/// key it names; a few retries always catch up.
const LOAD_ATTEMPTS: usize = 3;

impl Edge {
    /// The snapshot in use, if any.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// Its version, if any.
    pub fn version(&self) -> Option<u64> {
        self.snapshot.as_ref().map(Snapshot::version)
    }

    /// Checks the shared pointer and switches to a newer snapshot if there is one.
    pub fn refresh(
        &mut self,
        store: &impl SharedStore,
        keys: &TrustedKeys,
    ) -> Result<Refresh, StoreError> {
        for _ in 0..LOAD_ATTEMPTS {
            let (pointer, _) = shared::read_pointer(store)?;
            if pointer.version == 0 {
                return Ok(if self.snapshot.is_some() {
                    Refresh::Unchanged
                } else {
                    Refresh::NothingPublished
                });
            }
            if self
                .snapshot
                .as_ref()
                .is_some_and(|s| Pointer::of(s) == pointer || s.version() > pointer.version)
            {
                return Ok(Refresh::Unchanged);
            }
            // Drop first: never two snapshots in memory.
            self.snapshot = None;
            let Some(bytes) = shared::load(store, &pointer)? else {
                continue;
            };
            return Ok(match Snapshot::open(bytes, keys) {
                Ok(snapshot) => {
                    let applied = Refresh::Applied {
                        version: snapshot.version(),
                        tokens: snapshot.token_count(),
                    };
                    self.snapshot = Some(snapshot);
                    applied
                }
                Err(e) => Refresh::Failed(e),
            });
        }
        Ok(Refresh::Unchanged)
    }

    /// Checks a pushed snapshot's signed header (`head` = its first bytes, `total_len` =
    /// its full length) against the trusted keys and the versions in place. Cheap; touches
    /// nothing.
    pub fn precheck_push(
        &self,
        store: &impl SharedStore,
        keys: &TrustedKeys,
        head: &[u8],
        total_len: u64,
    ) -> Result<Header, PushRejection> {
        let header = verify_header(head, total_len, keys)?;
        let (pointer, _) = shared::read_pointer(store)?;
        let current = pointer.version.max(self.version().unwrap_or(0));
        if header.version <= current {
            return Err(PushRejection::Stale {
                offered: header.version,
                current,
            });
        }
        Ok(header)
    }

    /// Accepts a push: pre-checks its header, then reads the body (`read_body`), opens it,
    /// publishes it to shared data and serves from it. On any refusal after the pre-check
    /// the VM restores the current snapshot from shared data.
    pub fn accept_push(
        &mut self,
        store: &impl SharedStore,
        keys: &TrustedKeys,
        head: &[u8],
        total_len: u64,
        read_body: impl FnOnce() -> Option<Vec<u8>>,
    ) -> Result<Accepted, PushRejection> {
        self.precheck_push(store, keys, head, total_len)?;
        let had_snapshot = self.snapshot.is_some();
        self.snapshot = None;
        let outcome = read_body()
            .ok_or(PushRejection::Unreadable)
            .and_then(|bytes| Ok(Snapshot::open(bytes, keys)?))
            .and_then(|snapshot| match shared::publish(store, &snapshot) {
                Ok(()) => Ok(snapshot),
                Err(PublishError::Stale { offered, current }) => {
                    Err(PushRejection::Stale { offered, current })
                }
                Err(PublishError::Store(e)) => Err(e.into()),
            });
        match outcome {
            Ok(snapshot) => {
                let accepted = Accepted {
                    version: snapshot.version(),
                    tokens: snapshot.token_count(),
                    issued_at: snapshot.issued_at(),
                };
                self.snapshot = Some(snapshot);
                Ok(accepted)
            }
            Err(rejection) => {
                // Best effort: the rejection is what the caller must hear about. A VM that had
                // no snapshot (one that serves no requests) stays without one.
                if had_snapshot {
                    let _ = self.refresh(store, keys);
                }
                Err(rejection)
            }
        }
    }

    /// Accepts a snapshot fetched from the origin, exactly like a push. `keep`: serve from it
    /// (a VM that serves no requests publishes it to shared data and lets it go).
    pub fn accept_fetched(
        &mut self,
        store: &impl SharedStore,
        keys: &TrustedKeys,
        bytes: Vec<u8>,
        keep: bool,
    ) -> Result<Accepted, PushRejection> {
        let head = bytes.get(..BODY_OFFSET).unwrap_or(&bytes).to_vec();
        let total_len = bytes.len() as u64;
        let accepted = self.accept_push(store, keys, &head, total_len, || Some(bytes))?;
        if !keep {
            self.snapshot = None;
        }
        Ok(accepted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::tests::MemoryStore;
    use crate::shared::{POINTER_KEY, ensure_pointer};
    use pat_core::keys::SigningKey;
    use pat_core::method::MethodName;
    use pat_core::snapshot::{SnapshotBuilder, Stamp, TokenSpec};
    use pat_core::token::TokenHash;

    struct Publisher {
        key: SigningKey,
    }

    impl Publisher {
        fn new() -> Self {
            Self {
                key: SigningKey::generate().expect("rng"),
            }
        }

        fn keys(&self) -> TrustedKeys {
            TrustedKeys::new([self.key.public_key()])
        }

        fn snapshot(&self, version: u64, tokens: &[&str]) -> Vec<u8> {
            let scope = [MethodName::parse("environment.Control.StopEnv").expect("valid")];
            let mut b = SnapshotBuilder::new();
            for (i, t) in tokens.iter().enumerate() {
                b.add(TokenSpec {
                    hash: TokenHash::of(t),
                    id: i as u64 + 1,
                    user: "u",
                    expires_at: None,
                    scope: &scope,
                })
                .expect("add");
            }
            b.build(Stamp::lasting(version, 1_800_000_000, 86_400), &self.key)
                .expect("build")
        }
    }

    fn push(
        edge: &mut Edge,
        store: &impl SharedStore,
        keys: &TrustedKeys,
        bytes: Vec<u8>,
    ) -> Result<Accepted, PushRejection> {
        let head = bytes.get(..BODY_OFFSET).unwrap_or(&bytes).to_vec();
        let len = bytes.len() as u64;
        edge.accept_push(store, keys, &head, len, || Some(bytes))
    }

    #[test]
    fn a_push_reaches_every_vm() {
        let p = Publisher::new();
        let store = MemoryStore::default();
        ensure_pointer(&store).expect("store");
        let (mut pusher, mut other) = (Edge::default(), Edge::default());
        assert_eq!(
            other.refresh(&store, &p.keys()),
            Ok(Refresh::NothingPublished)
        );

        let accepted =
            push(&mut pusher, &store, &p.keys(), p.snapshot(1, &["a"])).expect("accepted");
        assert_eq!((accepted.version, accepted.tokens), (1, 1));
        assert_eq!(
            other.refresh(&store, &p.keys()),
            Ok(Refresh::Applied {
                version: 1,
                tokens: 1
            })
        );
        assert_eq!(other.refresh(&store, &p.keys()), Ok(Refresh::Unchanged));
        assert!(
            other
                .snapshot()
                .expect("loaded")
                .find(&TokenHash::of("a"))
                .is_some()
        );

        push(&mut pusher, &store, &p.keys(), p.snapshot(2, &["b"])).expect("accepted");
        assert_eq!(
            other.refresh(&store, &p.keys()),
            Ok(Refresh::Applied {
                version: 2,
                tokens: 1
            })
        );
        // The superseded key was emptied.
        let v1 = Snapshot::open(p.snapshot(1, &["a"]), &p.keys()).expect("open");
        assert_eq!(
            store.value(&Pointer::of(&v1).snapshot_key()),
            Some(Vec::new())
        );
    }

    #[test]
    fn refused_pushes_change_nothing() {
        let p = Publisher::new();
        let stranger = Publisher::new();
        let store = MemoryStore::default();
        ensure_pointer(&store).expect("store");
        let mut edge = Edge::default();
        push(&mut edge, &store, &p.keys(), p.snapshot(5, &["a"])).expect("accepted");
        let pointer_before = store.value(POINTER_KEY);

        let mut truncated = p.snapshot(6, &["b"]);
        truncated.pop();
        let mut tampered = p.snapshot(7, &["c"]);
        let last = tampered.len() - 1;
        tampered[last] ^= 0xff;
        let cases = [
            (p.snapshot(5, &["x"]), "Stale"),
            (p.snapshot(4, &["x"]), "Stale"),
            (stranger.snapshot(9, &["x"]), "Untrusted"),
            (truncated, "Length"),
            (tampered, "Digest"),
            (b"garbage".to_vec(), "TooShort"),
        ];
        for (bytes, expected) in cases {
            let err = push(&mut edge, &store, &p.keys(), bytes).expect_err(expected);
            assert!(format!("{err:?}").contains(expected), "{expected}: {err:?}");
            assert_eq!(
                edge.version(),
                Some(5),
                "{expected}: the VM still serves version 5"
            );
            assert!(
                edge.snapshot()
                    .expect("kept")
                    .find(&TokenHash::of("a"))
                    .is_some()
            );
            assert_eq!(
                store.value(POINTER_KEY),
                pointer_before,
                "{expected}: shared data unchanged"
            );
        }
    }

    #[test]
    fn a_fetching_vm_that_serves_nothing_publishes_and_lets_go() {
        let p = Publisher::new();
        let store = MemoryStore::default();
        ensure_pointer(&store).expect("store");
        let mut idle = Edge::default();
        let accepted = idle
            .accept_fetched(&store, &p.keys(), p.snapshot(3, &["a"]), false)
            .expect("accepted");
        assert_eq!(accepted.version, 3);
        assert!(idle.snapshot().is_none(), "an idle VM keeps no copy");
        let mut serving = Edge::default();
        assert_eq!(
            serving.refresh(&store, &p.keys()),
            Ok(Refresh::Applied {
                version: 3,
                tokens: 1
            })
        );
        // A refused fetch leaves an idle VM without a snapshot, and the shared one in place.
        let err = idle
            .accept_fetched(&store, &p.keys(), p.snapshot(2, &["b"]), false)
            .expect_err("older");
        assert_eq!(
            err,
            PushRejection::Stale {
                offered: 2,
                current: 3
            }
        );
        assert!(idle.snapshot().is_none());
    }

    #[test]
    fn a_vm_that_cannot_verify_fails_closed() {
        let p = Publisher::new();
        let other_keys = Publisher::new().keys();
        let store = MemoryStore::default();
        ensure_pointer(&store).expect("store");
        push(
            &mut Edge::default(),
            &store,
            &p.keys(),
            p.snapshot(1, &["a"]),
        )
        .expect("accepted");
        let mut edge = Edge::default();
        assert!(matches!(
            edge.refresh(&store, &other_keys),
            Ok(Refresh::Failed(SnapshotError::UntrustedKey(_)))
        ));
        assert!(edge.snapshot().is_none());
    }

    #[test]
    fn concurrent_publishers_keep_pointer_and_key_consistent() {
        // Simulates a race: a second publisher moves the pointer between our read and our CAS.
        struct Racing<'a> {
            inner: &'a MemoryStore,
            intruder: RefCell<Option<Box<dyn FnOnce() + 'a>>>,
        }
        use std::cell::RefCell;
        impl SharedStore for Racing<'_> {
            fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
                self.inner.get(key)
            }
            fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
                if key == POINTER_KEY
                    && let Some(intrude) = self.intruder.borrow_mut().take()
                {
                    intrude();
                }
                self.inner.set(key, value, cas)
            }
        }
        let p = Publisher::new();
        let store = MemoryStore::default();
        ensure_pointer(&store).expect("store");
        let v7 = p.snapshot(7, &["seven"]);
        let v6 = p.snapshot(6, &["six"]);
        let racing = Racing {
            inner: &store,
            intruder: RefCell::new(Some(Box::new(|| {
                let mut e = Edge::default();
                push(&mut e, &store, &p.keys(), v7.clone()).expect("the intruder wins");
            }))),
        };
        let mut loser = Edge::default();
        let err = push(&mut loser, &racing, &p.keys(), v6).expect_err("v6 loses to v7");
        assert_eq!(
            err,
            PushRejection::Stale {
                offered: 6,
                current: 7
            }
        );
        // The loser had no snapshot before and keeps none; its next refresh loads v7.
        assert_eq!(loser.version(), None);
        assert_eq!(
            loser.refresh(&store, &p.keys()),
            Ok(Refresh::Applied {
                version: 7,
                tokens: 1
            })
        );
        let (pointer, _) = shared::read_pointer(&store).expect("store");
        assert_eq!(pointer.version, 7);
        let bytes = shared::load(&store, &pointer)
            .expect("store")
            .expect("present");
        assert_eq!(Snapshot::open(bytes, &p.keys()).expect("open").version(), 7);
    }
}
