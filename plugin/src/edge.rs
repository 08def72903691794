//! One VM's view of the snapshot: which one it serves from, how it picks up a newer one,
//! how it accepts a push or a fetched snapshot, and when it must stop using one.
//!
//! Memory is the constraint at 1,000,000 tokens (~57 MB a snapshot): a VM never holds two
//! snapshots at once. When the pointer moves, the VM drops its snapshot *before* fetching
//! the new one (single-threaded: no request runs in between). A push is first checked on
//! its signed head alone (key, signature, length, freshness, version floor, version), which
//! rejects forged, truncated, expired and replayed pushes without touching the VM's snapshot
//! and before the rest of the body is buffered; only then is the old snapshot dropped and
//! the body read. Should the body still fail (a valid head on a tampered body), the VM
//! restores the current snapshot from shared data.
//!
//! Freshness: a snapshot whose signed expiry has passed is never accepted, and a VM drops
//! the one it holds when it expires (token requests then fail closed). A snapshot older than
//! a root context's `max_snapshot_age_ms` is refused by that root when pushed or fetched,
//! and not used for its requests ([`Edge::snapshot_for`]).

use pat_core::keys::TrustedKeys;
use pat_core::snapshot::{
    BODY_OFFSET, Header, Snapshot, SnapshotError, Stale, check_fresh, check_length, fresh_until_ms,
    verify_head,
};

use crate::floor::{self, Floor};
use crate::shared::{self, Pointer, PublishError, SharedStore, StoreError};

/// The snapshot this VM serves from, and the published one it could not use.
#[derive(Debug, Default)]
pub struct Edge {
    snapshot: Option<Snapshot>,
    /// The published snapshot this VM refused (or dropped when it expired): not loaded again
    /// until the pointer moves on, so a bad or stale 57 MB snapshot is not re-read every tick.
    refused: Option<Pointer>,
}

/// The clock and the age limit of the root context asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// Now, Unix milliseconds.
    pub now_ms: u64,
    /// `max_snapshot_age_ms`.
    pub max_age_ms: u64,
}

/// Why a published snapshot cannot be used here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unusable {
    /// It does not verify here (e.g. an untrusted key).
    #[error(transparent)]
    Invalid(#[from] SnapshotError),
    /// It has expired.
    #[error(transparent)]
    Stale(#[from] Stale),
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
    /// The published snapshot cannot be used here; the VM now has none and token requests
    /// fail closed. Reported once per published snapshot.
    Failed(Unusable),
}

/// Why a push (or a fetched snapshot) was refused. A refused push changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushRejection {
    /// Not a valid signed snapshot.
    #[error(transparent)]
    Invalid(#[from] SnapshotError),
    /// Expired, or older than this edge accepts.
    #[error(transparent)]
    Stale(#[from] Stale),
    /// Not newer than what the edge holds.
    #[error(
        "snapshot version {offered} is not newer than version {current}, which this edge already holds"
    )]
    NotNewer {
        /// The version offered.
        offered: u64,
        /// The version in place.
        current: u64,
    },
    /// Older than what the origin holds.
    #[error(
        "snapshot version {offered} is older than version {floor}, which the origin holds: a replayed snapshot is never accepted"
    )]
    BelowFloor {
        /// The version offered.
        offered: u64,
        /// The origin's version.
        floor: u64,
    },
    /// The origin has not told this (re)started edge its version yet.
    #[error(
        "this edge (re)started and is asking the origin for the current version first; retry in a moment"
    )]
    WaitingForOrigin,
    /// Another push is being applied on this edge.
    #[error("another push is being applied on this edge; retry in a moment")]
    Busy,
    /// Larger than this edge accepts.
    #[error("the snapshot is {bytes} bytes, larger than push.max_bytes ({max} bytes)")]
    TooLarge {
        /// Its size, as announced or as received.
        bytes: u64,
        /// The limit.
        max: u64,
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
    /// Its signed expiry, Unix seconds.
    pub expires_at: u64,
}

/// What the origin's signed head said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadSeen {
    /// The origin's version.
    pub version: u64,
    /// The floor now.
    pub floor: u64,
    /// The origin holds a fresh snapshot newer than this edge's: fetch it.
    pub fetch: bool,
}

/// Reloading after a pointer race: the pointer can move between reading it and fetching the
/// key it names; a few retries always catch up.
const LOAD_ATTEMPTS: usize = 3;

impl Edge {
    /// The snapshot in use, if any.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// The snapshot a root context may serve from: signed by a key it trusts and fresh by
    /// its own age limit at `now_ms`.
    pub fn snapshot_for(&self, keys: &TrustedKeys, clock: Clock) -> Option<&Snapshot> {
        self.snapshot.as_ref().filter(|s| {
            keys.get(s.key_id()).is_some()
                && clock.now_ms < fresh_until_ms(s.header(), clock.max_age_ms)
        })
    }

    /// Its version, if any.
    pub fn version(&self) -> Option<u64> {
        self.snapshot.as_ref().map(Snapshot::version)
    }

    /// Forgets which published snapshot was refused (the trusted keys may have changed).
    pub fn forget_refusals(&mut self) {
        self.refused = None;
    }

    /// Drops the snapshot in use if its signed expiry has passed; returns its version.
    fn drop_expired(&mut self, now_ms: u64) -> Option<Stale> {
        let stale = self
            .snapshot
            .as_ref()
            .and_then(|s| check_fresh(s.header(), now_ms, u64::MAX).err())?;
        if let Some(s) = self.snapshot.take() {
            self.refused = Some(Pointer::of(&s));
        }
        Some(stale)
    }

    /// Checks the shared pointer and switches to a newer snapshot if there is one; drops the
    /// one in use when it expires.
    pub fn refresh(
        &mut self,
        store: &impl SharedStore,
        keys: &TrustedKeys,
        now_ms: u64,
    ) -> Result<Refresh, StoreError> {
        if let Some(stale) = self.drop_expired(now_ms) {
            return Ok(Refresh::Failed(stale.into()));
        }
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
                .is_some_and(|s| Pointer::of(s).names(&pointer) || s.version() > pointer.version)
                || self.refused.is_some_and(|r| r.names(&pointer))
            {
                return Ok(Refresh::Unchanged);
            }
            // Drop first: never two snapshots in memory.
            self.snapshot = None;
            if now_ms >= pointer.expires_at.saturating_mul(1000) {
                self.refused = Some(pointer);
                return Ok(Refresh::Failed(Unusable::Stale(Stale::Expired {
                    version: pointer.version,
                    expires_at: pointer.expires_at,
                })));
            }
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
                    self.refused = None;
                    applied
                }
                Err(e) => {
                    self.refused = Some(pointer);
                    Refresh::Failed(e.into())
                }
            });
        }
        Ok(Refresh::Unchanged)
    }

    /// Checks a pushed snapshot's signed head (`head` = its first bytes; `total_len` = its
    /// full length, when known) against the trusted keys, the clock, the version floor and
    /// the versions in place. Cheap; touches nothing.
    pub fn precheck_push(
        &self,
        store: &impl SharedStore,
        keys: &TrustedKeys,
        head: &[u8],
        total_len: Option<u64>,
        clock: Clock,
    ) -> Result<Header, PushRejection> {
        let header = verify_head(head, keys)?;
        if let Some(total_len) = total_len {
            check_length(&header, total_len)?;
        }
        check_fresh(&header, clock.now_ms, clock.max_age_ms)?;
        match floor::read(store)? {
            Floor::Pending => return Err(PushRejection::WaitingForOrigin),
            Floor::Known(floor) if header.version < floor => {
                return Err(PushRejection::BelowFloor {
                    offered: header.version,
                    floor,
                });
            }
            Floor::Known(_) | Floor::Unset => {}
        }
        let (pointer, _) = shared::read_pointer(store)?;
        let current = pointer.version.max(self.version().unwrap_or(0));
        if header.version <= current {
            return Err(PushRejection::NotNewer {
                offered: header.version,
                current,
            });
        }
        Ok(header)
    }

    /// Accepts a pushed or fetched snapshot: pre-checks its head, opens it and publishes it
    /// to shared data; `keep`: serve from it (a VM that serves no requests, like the control
    /// listener's or Envoy's main-thread VM, publishes it and lets it go). The VM drops its
    /// current snapshot before opening the new one, so it never holds two; on any refusal
    /// after the pre-check it restores the current one from shared data.
    pub fn accept(
        &mut self,
        store: &impl SharedStore,
        keys: &TrustedKeys,
        bytes: Vec<u8>,
        clock: Clock,
        keep: bool,
    ) -> Result<Accepted, PushRejection> {
        let head = bytes.get(..BODY_OFFSET).unwrap_or(&bytes);
        self.precheck_push(store, keys, head, Some(bytes.len() as u64), clock)?;
        let had_snapshot = self.snapshot.is_some();
        self.snapshot = None;
        let outcome = Snapshot::open(bytes, keys)
            .map_err(PushRejection::from)
            .and_then(|snapshot| match shared::publish(store, &snapshot) {
                Ok(()) => Ok(snapshot),
                Err(PublishError::Stale { offered, current }) => {
                    Err(PushRejection::NotNewer { offered, current })
                }
                Err(PublishError::Store(e)) => Err(e.into()),
            });
        match outcome {
            Ok(snapshot) => {
                let header = snapshot.header();
                let accepted = Accepted {
                    version: header.version,
                    tokens: header.token_count,
                    issued_at: header.issued_at,
                    expires_at: header.expires_at,
                };
                self.snapshot = keep.then_some(snapshot);
                self.refused = None;
                Ok(accepted)
            }
            Err(rejection) => {
                // Best effort: the rejection is what the caller must hear about. A VM that had
                // no snapshot (one that serves no requests) stays without one.
                if had_snapshot {
                    let _ = self.refresh(store, keys, clock.now_ms);
                }
                Err(rejection)
            }
        }
    }

    /// Takes the origin's signed head: raises the version floor to it, and says whether the
    /// origin holds a fresh snapshot newer than this edge's.
    pub fn accept_head(
        &self,
        store: &impl SharedStore,
        keys: &TrustedKeys,
        head: &[u8],
        clock: Clock,
    ) -> Result<HeadSeen, PushRejection> {
        let header = verify_head(head, keys)?;
        let floor = floor::raise(store, header.version)?;
        let (pointer, _) = shared::read_pointer(store)?;
        let current = pointer.version.max(self.version().unwrap_or(0));
        let fresh = check_fresh(&header, clock.now_ms, clock.max_age_ms);
        Ok(HeadSeen {
            version: header.version,
            floor,
            fetch: header.version > current && fresh.is_ok(),
        })
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

    /// The publisher signs at ISSUED for a day; the edge's clock reads NOW, an hour later.
    const ISSUED: u64 = 1_800_000_000;
    const NOW: Clock = Clock {
        now_ms: (ISSUED + 3600) * 1000,
        max_age_ms: 86_400_000,
    };

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
            self.snapshot_at(version, ISSUED, tokens)
        }

        fn snapshot_at(&self, version: u64, issued_at: u64, tokens: &[&str]) -> Vec<u8> {
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
            b.build(Stamp::lasting(version, issued_at, 86_400), &self.key)
                .expect("build")
        }
    }

    fn push(
        edge: &mut Edge,
        store: &impl SharedStore,
        keys: &TrustedKeys,
        bytes: Vec<u8>,
    ) -> Result<Accepted, PushRejection> {
        edge.accept(store, keys, bytes, NOW, true)
    }

    #[test]
    fn a_push_reaches_every_vm() {
        let p = Publisher::new();
        let store = MemoryStore::default();
        ensure_pointer(&store).expect("store");
        let (mut pusher, mut other) = (Edge::default(), Edge::default());
        assert_eq!(
            other.refresh(&store, &p.keys(), NOW.now_ms),
            Ok(Refresh::NothingPublished)
        );

        let accepted =
            push(&mut pusher, &store, &p.keys(), p.snapshot(1, &["a"])).expect("accepted");
        assert_eq!((accepted.version, accepted.tokens), (1, 1));
        assert_eq!(
            other.refresh(&store, &p.keys(), NOW.now_ms),
            Ok(Refresh::Applied {
                version: 1,
                tokens: 1
            })
        );
        assert_eq!(
            other.refresh(&store, &p.keys(), NOW.now_ms),
            Ok(Refresh::Unchanged)
        );
        assert!(
            other
                .snapshot()
                .expect("loaded")
                .find(&TokenHash::of("a"))
                .is_some()
        );

        push(&mut pusher, &store, &p.keys(), p.snapshot(2, &["b"])).expect("accepted");
        assert_eq!(
            other.refresh(&store, &p.keys(), NOW.now_ms),
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
            (p.snapshot(5, &["x"]), "NotNewer"),
            (p.snapshot(4, &["x"]), "NotNewer"),
            (p.snapshot_at(8, ISSUED - 86_400, &["x"]), "Expired"),
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
            .accept(&store, &p.keys(), p.snapshot(3, &["a"]), NOW, false)
            .expect("accepted");
        assert_eq!(accepted.version, 3);
        assert!(idle.snapshot().is_none(), "an idle VM keeps no copy");
        let mut serving = Edge::default();
        assert_eq!(
            serving.refresh(&store, &p.keys(), NOW.now_ms),
            Ok(Refresh::Applied {
                version: 3,
                tokens: 1
            })
        );
        // A refused fetch leaves an idle VM without a snapshot, and the shared one in place.
        let err = idle
            .accept(&store, &p.keys(), p.snapshot(2, &["b"]), NOW, false)
            .expect_err("older");
        assert_eq!(
            err,
            PushRejection::NotNewer {
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
            edge.refresh(&store, &other_keys, NOW.now_ms),
            Ok(Refresh::Failed(Unusable::Invalid(
                SnapshotError::UntrustedKey(_)
            )))
        ));
        assert!(edge.snapshot().is_none());
    }

    #[test]
    fn an_expired_snapshot_is_dropped_and_never_reloaded() {
        let p = Publisher::new();
        let store = MemoryStore::default();
        ensure_pointer(&store).expect("store");
        let mut pusher = Edge::default();
        push(&mut pusher, &store, &p.keys(), p.snapshot(1, &["a"])).expect("accepted");
        let mut other = Edge::default();
        assert!(matches!(
            other.refresh(&store, &p.keys(), NOW.now_ms),
            Ok(Refresh::Applied { .. })
        ));
        // A millisecond before the signed expiry it is still served; at it, dropped.
        let expiry_ms = (ISSUED + 86_400) * 1000;
        assert_eq!(
            other.refresh(&store, &p.keys(), expiry_ms - 1),
            Ok(Refresh::Unchanged)
        );
        assert!(matches!(
            other.refresh(&store, &p.keys(), expiry_ms),
            Ok(Refresh::Failed(Unusable::Stale(Stale::Expired {
                version: 1,
                ..
            })))
        ));
        assert!(other.snapshot().is_none(), "fails closed");
        // Reported once, not reloaded on every tick.
        assert_eq!(
            other.refresh(&store, &p.keys(), expiry_ms + 50),
            Ok(Refresh::Unchanged)
        );
        assert!(other.snapshot().is_none());
        // A VM that starts after the expiry never loads it at all.
        let mut late = Edge::default();
        assert!(matches!(
            late.refresh(&store, &p.keys(), expiry_ms + 100),
            Ok(Refresh::Failed(Unusable::Stale(_)))
        ));
        assert!(late.snapshot().is_none());
    }

    #[test]
    fn the_age_limit_is_each_root_contexts_own() {
        let p = Publisher::new();
        let store = MemoryStore::default();
        ensure_pointer(&store).expect("store");
        let mut edge = Edge::default();
        push(&mut edge, &store, &p.keys(), p.snapshot(1, &["a"])).expect("accepted");
        let strict = Clock {
            max_age_ms: 1_800_000,
            ..NOW
        };
        assert!(edge.snapshot_for(&p.keys(), NOW).is_some());
        assert!(
            edge.snapshot_for(&p.keys(), strict).is_none(),
            "an hour old is too old for a 30-minute limit"
        );
        assert!(
            edge.snapshot_for(&Publisher::new().keys(), NOW).is_none(),
            "an untrusted key"
        );
        let err = edge
            .precheck_push(
                &store,
                &p.keys(),
                &p.snapshot(2, &["a"])[..BODY_OFFSET],
                None,
                strict,
            )
            .expect_err("too old");
        assert!(matches!(err, PushRejection::Stale(Stale::TooOld { .. })));
    }

    #[test]
    fn after_a_restart_pushes_wait_for_the_origins_version() {
        let p = Publisher::new();
        let store = MemoryStore::default();
        ensure_pointer(&store).expect("store");
        crate::floor::ensure_pending(&store).expect("store");
        let mut edge = Edge::default();
        // An old but fresh snapshot, replayed before the origin answered: refused.
        let old = p.snapshot(4, &["revoked"]);
        assert_eq!(
            push(&mut edge, &store, &p.keys(), old.clone()),
            Err(PushRejection::WaitingForOrigin)
        );
        // The origin says version 5 is current.
        let head = p.snapshot(5, &["kept"]);
        let seen = edge
            .accept_head(&store, &p.keys(), &head[..BODY_OFFSET], NOW)
            .expect("a valid head");
        assert_eq!(
            seen,
            HeadSeen {
                version: 5,
                floor: 5,
                fetch: true
            }
        );
        assert_eq!(
            push(&mut edge, &store, &p.keys(), old),
            Err(PushRejection::BelowFloor {
                offered: 4,
                floor: 5
            })
        );
        assert!(edge.snapshot().is_none(), "nothing was applied");
        // The origin's own snapshot, or anything newer, is accepted.
        push(&mut edge, &store, &p.keys(), p.snapshot(5, &["kept"])).expect("accepted");
        let again = edge
            .accept_head(&store, &p.keys(), &head[..BODY_OFFSET], NOW)
            .expect("valid");
        assert!(!again.fetch, "nothing newer to fetch");
        // A forged head changes nothing.
        let mut forged = p.snapshot(9, &["x"])[..BODY_OFFSET].to_vec();
        forged[16] = 10;
        assert!(edge.accept_head(&store, &p.keys(), &forged, NOW).is_err());
        assert_eq!(
            crate::floor::read(&store),
            Ok(crate::floor::Floor::Known(5))
        );
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
            PushRejection::NotNewer {
                offered: 6,
                current: 7
            }
        );
        // The loser had no snapshot before and keeps none; its next refresh loads v7.
        assert_eq!(loser.version(), None);
        assert_eq!(
            loser.refresh(&store, &p.keys(), NOW.now_ms),
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
