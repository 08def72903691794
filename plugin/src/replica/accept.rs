//! A push (or a document fetched from the origin): checked on its signed head alone as soon
//! as the head arrives (key, signature, length, freshness, version floor, version, and for a
//! delta its exact base), which rejects forged, truncated, expired, replayed and misplaced
//! documents without touching the VM's state; then verified whole, published to shared data,
//! and served from.

use pat_core::keys::TrustedKeys;
use pat_core::snapshot::{
    BODY_OFFSET, Document, Header, Kind, SnapshotError, Stale, TokenState, bundle, check_fresh,
    check_length, open::open, verify_head,
};

use super::{Clock, Replica};
use crate::shared::floor::{self, Floor};
use crate::shared::{self, Pointer, PublishError, SharedStore, StoreError};

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

/// How much of a push [`Replica::precheck_push`] needs: a document's head, or a bundle's
/// prefix and its first document's head.
pub const PUSH_HEAD_LEN: usize = bundle::PREFIX_LEN + BODY_OFFSET;

impl Replica {
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
        } else if keep && had_state {
            // A chain of deltas continues the published state: a serving VM that lags it
            // catches up first (by deltas, from shared data), so the chain then applies to
            // what it holds in place instead of being read back once published.
            self.catch_up(store, keys, &pointer, clock.now_ms);
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

    /// Brings a serving VM that holds an older state than `pointer` up to it (a refresh:
    /// the deltas it lacks when it holds the same full snapshot).
    fn catch_up(
        &mut self,
        store: &impl SharedStore,
        keys: &TrustedKeys,
        pointer: &Pointer,
        now_ms: u64,
    ) {
        if self.version().is_some_and(|v| v < pointer.version) {
            let _ = self.refresh(store, keys, now_ms);
        }
    }

    /// Serves from documents just published: a full snapshot (and the deltas after it)
    /// becomes the state; deltas apply in place to the state they continue. Only when another
    /// VM moved the published state between this VM's catch-up and the publish does the VM
    /// catch up from shared data again (by deltas, keeping what it holds meanwhile).
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
