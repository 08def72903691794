//! One VM's view of the token list: the state it serves from, how it catches up with what
//! was published, how it accepts a push or a fetched document, and when it must stop using
//! its state.
//!
//! Memory is the constraint at 1,000,000 tokens (~40 MB a full snapshot): a VM never holds
//! two full snapshots at once. A delta — the usual change — applies in place, in time
//! proportional to its size. When the VM must reload the full snapshot (another base was
//! published, or a delta it needs is gone), it drops its state *before* fetching the new one
//! (single-threaded: no request runs in between).
//!
//! A push is first checked on its signed head alone (key, signature, length, freshness,
//! version floor, version, and for a delta its exact base), which rejects forged,
//! truncated, expired, replayed and misplaced documents without touching the VM's state.
//!
//! Freshness: a document whose signed expiry has passed is never accepted, and a VM drops
//! its state when the latest document in it expires (token requests then fail closed). A
//! state older than a root context's `max_snapshot_age_ms` is refused by that root when
//! pushed or fetched, and not used for its requests ([`Edge::state_for`]). An empty delta
//! renews a state's freshness for the price of ~250 bytes.

use pat_core::keys::{KeyId, TrustedKeys};
use pat_core::snapshot::{
    ApplyError, BODY_OFFSET, Delta, Document, Header, Kind, SnapshotError, Stale, TokenState,
    bundle, check_fresh, check_length, fresh_until_ms, open::open, verify_head,
};

use crate::floor::{self, Floor};
use crate::shared::{self, Pointer, PublishError, SharedStore, StoreError};

/// The state this VM serves from, and the published one it could not use.
#[derive(Debug, Default)]
pub struct Edge {
    state: Option<TokenState>,
    /// The published state this VM refused (or dropped when it expired): not loaded again
    /// until the pointer moves on, so a bad or stale snapshot is not re-read every tick.
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

/// Why a published state cannot be used here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unusable {
    /// A document does not verify here (e.g. an untrusted key).
    #[error(transparent)]
    Invalid(#[from] SnapshotError),
    /// It has expired.
    #[error(transparent)]
    Stale(#[from] Stale),
    /// A delta in shared data does not apply (a publisher bug).
    #[error(transparent)]
    Chain(#[from] ApplyError),
}

/// What a refresh did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refresh {
    /// Already serving the current state (or nothing newer exists).
    Unchanged,
    /// Nothing has been published to this Envoy yet.
    NothingPublished,
    /// Caught up with the published state.
    Applied {
        /// Its version.
        version: u64,
        /// Its token count.
        tokens: u64,
        /// Deltas applied on the way.
        deltas: usize,
        /// Whether the full snapshot was (re)loaded.
        full: bool,
    },
    /// The published state cannot be used here; the VM now has none and token requests fail
    /// closed. Reported once per published state.
    Failed(Unusable),
}

/// Why a push (or a fetched document) was refused. A refused push changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushRejection {
    /// Not a valid signed document.
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
    /// A delta whose base is not the state this edge holds (a gap, or a fork).
    #[error(
        "the delta from version {base} to {offered} does not apply: this edge holds version {current}; push the full snapshot or let the edge catch up from the origin"
    )]
    DoesNotApply {
        /// The delta's base version.
        base: u64,
        /// Its version.
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

impl From<PublishError> for PushRejection {
    fn from(e: PublishError) -> Self {
        match e {
            PublishError::Stale { offered, current } => Self::NotNewer { offered, current },
            PublishError::DoesNotApply {
                base,
                offered,
                current,
            } => Self::DoesNotApply {
                base,
                offered,
                current,
            },
            PublishError::Store(e) => Self::Store(e),
        }
    }
}

/// An accepted document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// Full snapshot or delta.
    pub kind: Kind,
    /// The version it produced.
    pub version: u64,
    /// The state's token count after it.
    pub tokens: u64,
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
    /// The origin holds a fresh state newer than this edge's: fetch it.
    pub fetch: bool,
}

/// How much of a push [`Edge::precheck_push`] needs: a document's head, or a bundle's
/// prefix and its first document's head.
pub const PUSH_HEAD_LEN: usize = bundle::PREFIX_LEN + BODY_OFFSET;

/// How a document kind reads in logs.
pub fn kind_word(kind: Kind) -> &'static str {
    match kind {
        Kind::Full => "full snapshot",
        Kind::Delta => "delta",
    }
}

/// Reloading after a pointer race: the pointer can move between reading it and fetching the
/// keys it names; a few retries always catch up.
const LOAD_ATTEMPTS: usize = 3;

impl Edge {
    /// The state in use, if any.
    pub fn state(&self) -> Option<&TokenState> {
        self.state.as_ref()
    }

    /// The state a root context may serve from: signed by keys it trusts and fresh by its
    /// own age limit at `now_ms`.
    pub fn state_for(&self, keys: &TrustedKeys, clock: Clock) -> Option<&TokenState> {
        self.state.as_ref().filter(|s| {
            keys.get(KeyId(s.header().key_id)).is_some()
                && keys.get(s.base().key_id()).is_some()
                && clock.now_ms < fresh_until_ms(s.header(), clock.max_age_ms)
        })
    }

    /// Its version, if any.
    pub fn version(&self) -> Option<u64> {
        self.state.as_ref().map(TokenState::version)
    }

    /// Forgets which published state was refused (the trusted keys may have changed).
    pub fn forget_refusals(&mut self) {
        self.refused = None;
    }

    /// The pointer naming what this VM holds.
    fn held(&self) -> Option<Pointer> {
        let state = self.state.as_ref()?;
        let base = state.base().header();
        let latest = state.header();
        Some(Pointer {
            version: latest.version,
            state_id: latest.state_id,
            base_version: base.version,
            base_digest: base.body_digest,
            base_state_id: base.state_id,
            issued_at: latest.issued_at,
            expires_at: latest.expires_at,
            tokens: state.token_count(),
            key_id: latest.key_id,
        })
    }

    /// Drops the state in use if its latest signed expiry has passed.
    fn drop_expired(&mut self, now_ms: u64) -> Option<Stale> {
        let stale = self
            .state
            .as_ref()
            .and_then(|s| check_fresh(s.header(), now_ms, u64::MAX).err())?;
        self.refused = self.held();
        self.state = None;
        Some(stale)
    }

    /// Checks the shared pointer and catches up with the published state — by its deltas
    /// when this VM holds the same full snapshot, else by reloading — and drops the state in
    /// use when it expires.
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
                return Ok(if self.state.is_some() {
                    Refresh::Unchanged
                } else {
                    Refresh::NothingPublished
                });
            }
            let held = self.held();
            if held.is_some_and(|h| h.names(&pointer) || h.version > pointer.version)
                || self.refused.is_some_and(|r| r.names(&pointer))
            {
                return Ok(Refresh::Unchanged);
            }
            if now_ms >= pointer.expires_at.saturating_mul(1000) {
                self.state = None;
                self.refused = Some(pointer);
                return Ok(Refresh::Failed(Unusable::Stale(Stale::Expired {
                    version: pointer.version,
                    expires_at: pointer.expires_at,
                })));
            }
            // Deltas alone, when this VM holds the same full snapshot.
            let mut full = false;
            let mut from = held.filter(|h| h.shares_base(&pointer)).map(|h| h.version);
            if from.is_none() {
                // Drop first: never two full snapshots in memory.
                self.state = None;
                let Some(bytes) = shared::load_full(store, &pointer)? else {
                    continue;
                };
                match pat_core::snapshot::Snapshot::open(bytes, keys) {
                    Ok(snapshot) => self.state = Some(TokenState::new(snapshot)),
                    Err(e) => {
                        self.refused = Some(pointer);
                        return Ok(Refresh::Failed(e.into()));
                    }
                }
                full = true;
                from = Some(pointer.base_version);
            }
            let mut deltas = 0;
            let mut gone = false;
            for version in from.unwrap_or(pointer.version).saturating_add(1)..=pointer.version {
                let state_id = self.state.as_ref().map_or([0; 32], TokenState::state_id);
                let Some(bytes) = shared::load_delta(store, version, &state_id)? else {
                    gone = true;
                    break;
                };
                let applied = Delta::open(bytes, keys)
                    .map_err(Unusable::from)
                    .and_then(|delta| match self.state.as_mut() {
                        Some(state) => state.apply(&delta).map_err(Unusable::from),
                        None => Ok(()),
                    });
                if let Err(e) = applied {
                    self.state = None;
                    self.refused = Some(pointer);
                    return Ok(Refresh::Failed(e));
                }
                deltas += 1;
            }
            if gone {
                // The pointer moved on meanwhile: start over from the full snapshot.
                self.state = None;
                continue;
            }
            self.refused = None;
            let (version, tokens) = self
                .state
                .as_ref()
                .map_or((0, 0), |s| (s.version(), s.token_count()));
            return Ok(Refresh::Applied {
                version,
                tokens,
                deltas,
                full,
            });
        }
        Ok(Refresh::Unchanged)
    }

    /// Checks the signed head of a push as soon as it arrives (`head` = its first bytes, at
    /// least [`PUSH_HEAD_LEN`] or all of it; `total_len` = its full length, when known),
    /// before the rest is buffered. A single document gets every check a push must pass
    /// (key, signature, length, freshness, version floor, newer than what the edge holds,
    /// for a delta its exact base); a bundle's first document is checked for its key and
    /// signature, the rest when the bundle is complete ([`Self::accept`]). Cheap; touches
    /// nothing. Returns the head checked.
    pub fn precheck_push(
        &self,
        store: &impl SharedStore,
        keys: &TrustedKeys,
        head: &[u8],
        total_len: Option<u64>,
        clock: Clock,
    ) -> Result<Header, PushRejection> {
        if bundle::is_bundle(head) {
            let first = head
                .get(bundle::PREFIX_LEN..)
                .ok_or(SnapshotError::TooShort(head.len()))?;
            return Ok(verify_head(first, keys)?);
        }
        let header = verify_head(head, keys)?;
        if let Some(total_len) = total_len {
            check_length(&header, total_len)?;
        }
        let (pointer, _) = shared::read_pointer(store)?;
        self.check_final(store, &header, &pointer, clock)?;
        if header.kind == Kind::Delta
            && (header.base_version != pointer.version || header.base_state_id != pointer.state_id)
        {
            return Err(PushRejection::DoesNotApply {
                base: header.base_version,
                offered: header.version,
                current: pointer.version,
            });
        }
        Ok(header)
    }

    /// Accepts a pushed or fetched document, or a bundle of them (a full snapshot and the
    /// deltas after it, or a chain of deltas), and publishes it to shared data; `keep`: serve
    /// from it (a VM that serves no requests, like the control listener's or Envoy's
    /// main-thread VM, publishes and lets go).
    ///
    /// Every document is verified and the chain must link (each delta names the previous
    /// document's version and state id). The *last* document is what the edge ends up at: it
    /// must be newer than what the edge holds, fresh, and not below the version floor; the
    /// documents before it are vouched for by the chain. A chain that starts with a delta
    /// must apply to the state held; one that starts with a full snapshot replaces it. A VM
    /// that holds a state drops it before opening a full snapshot, so it never holds two.
    pub fn accept(
        &mut self,
        store: &impl SharedStore,
        keys: &TrustedKeys,
        body: Vec<u8>,
        clock: Clock,
        keep: bool,
    ) -> Result<Accepted, PushRejection> {
        let raw = if bundle::is_bundle(&body) {
            bundle::into_documents(body)
                .map_err(|e| SnapshotError::Malformed(format!("the bundle: {e}")))?
        } else {
            vec![body]
        };
        let Some(last) = raw.last() else {
            return Err(SnapshotError::Malformed("an empty bundle".into()).into());
        };
        let last = verify_head(last, keys)?;
        let (pointer, _) = shared::read_pointer(store)?;
        self.check_final(store, &last, &pointer, clock)?;
        let has_full = raw
            .first()
            .and_then(|d| d.get(..BODY_OFFSET))
            .map(|h| verify_head(h, keys).map(|h| h.kind == Kind::Full))
            .transpose()?
            .unwrap_or(false);
        let had_state = self.state.is_some();
        if has_full {
            // Never two full snapshots in memory.
            self.state = None;
        }
        // Whether a chain that starts with a delta applies to the current state is checked
        // where it is published, against the pointer as it is then.
        let outcome = Self::open_chain(raw, keys).and_then(|docs| {
            shared::publish_chain(store, &docs)?;
            Ok(docs)
        });
        let docs = match outcome {
            Ok(docs) => docs,
            Err(rejection) => {
                // Best effort: the rejection is what the caller must hear about. A VM that had
                // no state (one that serves no requests) stays without one.
                if had_state && self.state.is_none() {
                    let _ = self.refresh(store, keys, clock.now_ms);
                }
                return Err(rejection);
            }
        };
        self.refused = None;
        if keep {
            self.adopt(docs, store, keys, clock.now_ms);
        }
        Ok(Accepted {
            kind: last.kind,
            version: last.version,
            tokens: self
                .state
                .as_ref()
                .filter(|s| keep && s.version() == last.version)
                .map_or(u64::from(last.state_tokens), TokenState::token_count),
            issued_at: last.issued_at,
            expires_at: last.expires_at,
        })
    }

    /// The checks on the document an edge ends up at.
    fn check_final(
        &self,
        store: &impl SharedStore,
        header: &Header,
        pointer: &Pointer,
        clock: Clock,
    ) -> Result<(), PushRejection> {
        check_fresh(header, clock.now_ms, clock.max_age_ms)?;
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
        let current = pointer.version.max(self.version().unwrap_or(0));
        if header.version <= current {
            return Err(PushRejection::NotNewer {
                offered: header.version,
                current,
            });
        }
        Ok(())
    }

    /// Opens every document and checks that they link: each delta names the previous
    /// document's version and state id.
    fn open_chain(raw: Vec<Vec<u8>>, keys: &TrustedKeys) -> Result<Vec<Document>, PushRejection> {
        let mut docs: Vec<Document> = Vec::with_capacity(raw.len());
        for bytes in raw {
            let doc = open(bytes, keys)?;
            if let Some(previous) = docs.last() {
                let (prev, next) = (previous.header(), doc.header());
                if next.kind != Kind::Delta
                    || next.base_version != prev.version
                    || next.base_state_id != prev.state_id
                {
                    return Err(SnapshotError::Malformed(format!(
                        "the bundle does not link: version {} does not follow version {}",
                        next.version, prev.version
                    ))
                    .into());
                }
            }
            docs.push(doc);
        }
        Ok(docs)
    }

    /// Serves from documents just published: applies them to the state held when they
    /// continue it, else takes them as the new state (or reloads from shared data).
    fn adopt(
        &mut self,
        docs: Vec<Document>,
        store: &impl SharedStore,
        keys: &TrustedKeys,
        now_ms: u64,
    ) {
        for doc in docs {
            match doc {
                Document::Full(snapshot) => self.state = Some(TokenState::new(snapshot)),
                Document::Delta(delta) => {
                    let applied = self.state.as_mut().map(|s| s.apply(&delta));
                    if !matches!(applied, Some(Ok(()))) {
                        self.state = None;
                        let _ = self.refresh(store, keys, now_ms);
                        return;
                    }
                }
            }
        }
    }

    /// Takes the origin's signed head: raises the version floor to it, and says whether the
    /// origin holds a fresh state newer than this edge's.
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
    use pat_core::snapshot::{Base, Built, SnapshotBuilder, Stamp, StateOf, TokenSpec};
    use pat_core::token::TokenHash;
    use std::cell::RefCell;

    /// The publisher signs at ISSUED for a day; the edge's clock reads NOW, an hour later.
    const ISSUED: u64 = 1_800_000_000;
    const NOW: Clock = Clock {
        now_ms: (ISSUED + 3600) * 1000,
        max_age_ms: 86_400_000,
    };

    /// A publisher that keeps its chain: full snapshots and deltas on top of the last one.
    struct Publisher {
        key: SigningKey,
        last: RefCell<Option<Base>>,
    }

    impl Publisher {
        fn new() -> Self {
            Self {
                key: SigningKey::generate().expect("rng"),
                last: RefCell::new(None),
            }
        }

        fn keys(&self) -> TrustedKeys {
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
                })
                .expect("add");
            }
            b
        }

        fn snapshot(&self, version: u64, tokens: &[&str]) -> Vec<u8> {
            self.snapshot_at(version, ISSUED, tokens)
        }

        fn snapshot_at(&self, version: u64, issued_at: u64, tokens: &[&str]) -> Vec<u8> {
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

        /// A delta on top of the last document built.
        fn delta(&self, version: u64, added: &[&str], removed: &[&str]) -> Vec<u8> {
            let base = self.last.borrow().expect("a base");
            let mut b = Self::builder(added, 100 + version);
            for r in removed {
                b.remove(&TokenHash::of(r));
            }
            let built = b
                .build_delta(Stamp::lasting(version, ISSUED, 86_400), base, 0, &self.key)
                .expect("build");
            self.remember(version, &built);
            built.bytes
        }

        fn remember(&self, version: u64, built: &Built) {
            *self.last.borrow_mut() = Some(Base {
                version,
                state_id: built.state_id,
            });
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

    fn holds(edge: &Edge, token: &str) -> bool {
        edge.state()
            .is_some_and(|s| s.find(&TokenHash::of(token)).is_some())
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
                tokens: 1,
                deltas: 0,
                full: true
            })
        );
        assert_eq!(
            other.refresh(&store, &p.keys(), NOW.now_ms),
            Ok(Refresh::Unchanged)
        );
        assert!(holds(&other, "a"));
        push(&mut pusher, &store, &p.keys(), p.snapshot(2, &["b"])).expect("accepted");
        assert!(matches!(
            other.refresh(&store, &p.keys(), NOW.now_ms),
            Ok(Refresh::Applied {
                version: 2,
                full: true,
                ..
            })
        ));
        // The superseded full key was emptied.
        assert_eq!(
            store
                .live_keys()
                .iter()
                .filter(|k| k.contains(".full."))
                .count(),
            1
        );
    }

    #[test]
    fn deltas_reach_every_vm_without_reloading_the_full_snapshot() {
        let p = Publisher::new();
        let store = MemoryStore::default();
        ensure_pointer(&store).expect("store");
        // The control VM (keeps nothing) and two serving VMs.
        let (mut control, mut a, mut b) = (Edge::default(), Edge::default(), Edge::default());
        control
            .accept(&store, &p.keys(), p.snapshot(1, &["x", "y"]), NOW, false)
            .expect("full");
        assert!(control.state().is_none(), "the control VM keeps no copy");
        for vm in [&mut a, &mut b] {
            vm.refresh(&store, &p.keys(), NOW.now_ms).expect("store");
        }
        let accepted = control
            .accept(&store, &p.keys(), p.delta(2, &["z"], &["x"]), NOW, false)
            .expect("delta");
        assert_eq!((accepted.kind, accepted.version), (Kind::Delta, 2));
        control
            .accept(&store, &p.keys(), p.delta(3, &[], &["y"]), NOW, false)
            .expect("delta");
        // A applies both deltas; B is one behind after A's catch-up, then catches up too.
        assert_eq!(
            a.refresh(&store, &p.keys(), NOW.now_ms),
            Ok(Refresh::Applied {
                version: 3,
                tokens: 1,
                deltas: 2,
                full: false
            })
        );
        assert!(holds(&a, "z") && !holds(&a, "x") && !holds(&a, "y"));
        assert!(matches!(
            b.refresh(&store, &p.keys(), NOW.now_ms),
            Ok(Refresh::Applied {
                deltas: 2,
                full: false,
                ..
            })
        ));
        // A fresh VM loads the full snapshot and every delta since.
        let mut late = Edge::default();
        assert_eq!(
            late.refresh(&store, &p.keys(), NOW.now_ms),
            Ok(Refresh::Applied {
                version: 3,
                tokens: 1,
                deltas: 2,
                full: true
            })
        );
        assert!(holds(&late, "z") && !holds(&late, "x"));
    }

    #[test]
    fn a_delta_that_does_not_apply_is_refused() {
        let p = Publisher::new();
        let store = MemoryStore::default();
        ensure_pointer(&store).expect("store");
        let mut edge = Edge::default();
        push(&mut edge, &store, &p.keys(), p.snapshot(1, &["a"])).expect("full");
        let d2 = p.delta(2, &["b"], &[]);
        let d3 = p.delta(3, &["c"], &[]);
        // A gap: version 3 before version 2.
        assert_eq!(
            push(&mut edge, &store, &p.keys(), d3.clone()),
            Err(PushRejection::DoesNotApply {
                base: 2,
                offered: 3,
                current: 1
            })
        );
        // A fork: a delta from another publisher's version 1.
        let other = Publisher {
            key: SigningKey::from_secret_text(&p.key.to_secret_text()).expect("same key"),
            last: RefCell::new(None),
        };
        other.snapshot(1, &[]);
        let forked = other.delta(2, &["evil"], &[]);
        assert!(matches!(
            push(&mut edge, &store, &p.keys(), forked),
            Err(PushRejection::DoesNotApply { .. })
        ));
        assert!(holds(&edge, "a") && !holds(&edge, "evil"));
        push(&mut edge, &store, &p.keys(), d2.clone()).expect("applies");
        push(&mut edge, &store, &p.keys(), d3).expect("applies");
        // A replayed delta is not newer.
        assert!(matches!(
            push(&mut edge, &store, &p.keys(), d2),
            Err(PushRejection::NotNewer { .. })
        ));
        assert!(holds(&edge, "b") && holds(&edge, "c"));
    }

    #[test]
    fn an_origin_bundle_catches_up_in_one_answer() {
        let p = Publisher::new();
        let store = MemoryStore::default();
        ensure_pointer(&store).expect("store");
        let v1 = p.snapshot(1, &["a"]);
        let d2 = p.delta(2, &["b"], &[]);
        let d3 = p.delta(3, &[], &["a"]);
        let mut idle = Edge::default();
        let body = bundle::encode([v1.as_slice(), d2.as_slice(), d3.as_slice()]);
        let accepted = idle
            .accept(&store, &p.keys(), body.clone(), NOW, false)
            .expect("catches up");
        assert_eq!((accepted.kind, accepted.version), (Kind::Delta, 3));
        // The same again: not newer.
        assert!(matches!(
            idle.accept(&store, &p.keys(), body, NOW, false),
            Err(PushRejection::NotNewer { .. })
        ));
        // A single document works too, and a serving VM sees the end state.
        let d4 = p.delta(4, &["c"], &[]);
        assert!(idle.accept(&store, &p.keys(), d4, NOW, false).is_ok());
        let mut serving = Edge::default();
        serving
            .refresh(&store, &p.keys(), NOW.now_ms)
            .expect("store");
        assert!(holds(&serving, "b") && holds(&serving, "c") && !holds(&serving, "a"));
        // A bundle that is not one is refused.
        assert!(matches!(
            idle.accept(&store, &p.keys(), b"PATBNDL1xx".to_vec(), NOW, false),
            Err(PushRejection::Invalid(SnapshotError::Malformed(_)))
        ));
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
            assert_eq!(edge.version(), Some(5), "{expected}: still version 5");
            assert!(holds(&edge, "a"));
            assert_eq!(
                store.value(POINTER_KEY),
                pointer_before,
                "{expected}: shared data unchanged"
            );
        }
    }

    #[test]
    fn a_vm_that_serves_nothing_publishes_and_lets_go() {
        let p = Publisher::new();
        let store = MemoryStore::default();
        ensure_pointer(&store).expect("store");
        let mut idle = Edge::default();
        let accepted = idle
            .accept(&store, &p.keys(), p.snapshot(3, &["a"]), NOW, false)
            .expect("accepted");
        assert_eq!(accepted.version, 3);
        assert!(idle.state().is_none(), "an idle VM keeps no copy");
        let mut serving = Edge::default();
        assert!(matches!(
            serving.refresh(&store, &p.keys(), NOW.now_ms),
            Ok(Refresh::Applied { version: 3, .. })
        ));
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
        assert!(idle.state().is_none());
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
        assert!(edge.state().is_none());
    }

    #[test]
    fn an_expired_state_is_dropped_and_never_reloaded_and_deltas_renew_it() {
        let p = Publisher::new();
        let store = MemoryStore::default();
        ensure_pointer(&store).expect("store");
        let mut pusher = Edge::default();
        push(&mut pusher, &store, &p.keys(), p.snapshot(1, &["a"])).expect("accepted");
        let mut other = Edge::default();
        other.refresh(&store, &p.keys(), NOW.now_ms).expect("store");
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
        assert!(other.state().is_none(), "fails closed");
        assert_eq!(
            other.refresh(&store, &p.keys(), expiry_ms + 50),
            Ok(Refresh::Unchanged),
            "reported once, not reloaded every tick"
        );
        let mut late = Edge::default();
        assert!(matches!(
            late.refresh(&store, &p.keys(), expiry_ms + 100),
            Ok(Refresh::Failed(Unusable::Stale(_)))
        ));
        // An empty delta issued later renews the state for another day.
        let renew = {
            let base = p.last.borrow().expect("base");
            let built = SnapshotBuilder::new()
                .build_delta(Stamp::lasting(2, ISSUED + 3000, 86_400), base, 1, &p.key)
                .expect("build");
            built.bytes
        };
        push(&mut pusher, &store, &p.keys(), renew).expect("renewed");
        let mut renewed = Edge::default();
        assert!(matches!(
            renewed.refresh(&store, &p.keys(), expiry_ms),
            Ok(Refresh::Applied { version: 2, .. })
        ));
        assert!(holds(&renewed, "a"));
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
        assert!(edge.state_for(&p.keys(), NOW).is_some());
        assert!(
            edge.state_for(&p.keys(), strict).is_none(),
            "an hour old is too old for a 30-minute limit"
        );
        assert!(
            edge.state_for(&Publisher::new().keys(), NOW).is_none(),
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
        let old = p.snapshot(4, &["revoked"]);
        assert_eq!(
            push(&mut edge, &store, &p.keys(), old.clone()),
            Err(PushRejection::WaitingForOrigin)
        );
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
        assert!(edge.state().is_none(), "nothing was applied");
        push(&mut edge, &store, &p.keys(), head.clone()).expect("accepted");
        let again = edge
            .accept_head(&store, &p.keys(), &head[..BODY_OFFSET], NOW)
            .expect("valid");
        assert!(!again.fetch, "nothing newer to fetch");
        let mut forged = p.snapshot(9, &["x"])[..BODY_OFFSET].to_vec();
        forged[16] = 10;
        assert!(edge.accept_head(&store, &p.keys(), &forged, NOW).is_err());
        assert_eq!(
            crate::floor::read(&store),
            Ok(crate::floor::Floor::Known(5))
        );
    }

    #[test]
    fn concurrent_publishers_keep_pointer_and_keys_consistent() {
        // A second publisher moves the pointer between our read and our CAS.
        struct Racing<'a> {
            inner: &'a MemoryStore,
            intruder: RefCell<Option<Box<dyn FnOnce() + 'a>>>,
        }
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
        assert_eq!(loser.version(), None);
        assert!(matches!(
            loser.refresh(&store, &p.keys(), NOW.now_ms),
            Ok(Refresh::Applied { version: 7, .. })
        ));
        assert_eq!(
            store
                .live_keys()
                .iter()
                .filter(|k| k.contains(".full."))
                .count(),
            1,
            "the loser's key was emptied: {:?}",
            store.live_keys()
        );
    }
}
