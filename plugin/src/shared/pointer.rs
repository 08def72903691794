//! The published token state: the pointer to the current state and the keys holding its
//! documents.
//!
//! Three kinds of keys:
//! - the *pointer* `pat_edge.v3.current`: the current version and state id, the full
//!   snapshot the state builds on (its version and body digest), and the signed times, token
//!   count and key of the latest document. Every VM reads it on each tick (a cheap copy) and
//!   only fetches anything when it changes;
//! - one *full key* per published full snapshot, named after its version and digest,
//!   holding the signed bytes;
//! - one *delta key* per published delta since that full snapshot, named after the version
//!   it produces and the state it applies to (so two chains never share a key, and a VM
//!   walks its own chain: from the state it holds to the next).
//!
//! A VM that holds the base catches up by applying the deltas it lacks, in order; a VM that
//! holds another base (or finds a delta gone) loads the full snapshot and every delta since.
//!
//! A publisher first writes its key, then moves the pointer with compare-and-swap: the
//! pointer never names a document that is not there, and a delta only moves a pointer that
//! names exactly its base state. Two concurrent publishers can never leave the pointer
//! naming one state while the keys hold another, and an older version can never replace a
//! newer one. Keys the pointer no longer needs are emptied after it moved.
//!
//! Shared data has no atomic "create if absent": a missing key accepts any CAS. Each VM
//! creates the pointer (as version 0) when it starts, before its listeners take traffic,
//! so publishers always move an existing pointer with a real CAS.

use pat_core::hex;
use pat_core::snapshot::{Document, Header, Snapshot};

use super::{SharedStore, StoreError};

/// The pointer key.
pub const POINTER_KEY: &str = "pat_edge.v3.current";

/// What the pointer says: the current state, and what it is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pointer {
    /// The current version; 0 = nothing published yet.
    pub version: u64,
    /// The current state id.
    pub state_id: [u8; 32],
    /// The full snapshot the state builds on: its version...
    pub base_version: u64,
    /// ...the BLAKE3 of its body...
    pub base_digest: [u8; 32],
    /// ...and its state id (where the chain of deltas starts).
    pub base_state_id: [u8; 32],
    /// The latest document's issue time, Unix seconds.
    pub issued_at: u64,
    /// The latest document's signed expiry, Unix seconds.
    pub expires_at: u64,
    /// The number of tokens in the state.
    pub tokens: u64,
    /// The id of the key that signed the latest document.
    pub key_id: [u8; 8],
}

const POINTER_LEN: usize = 8 + 32 + 8 + 32 + 32 + 8 + 8 + 8 + 8;

impl Pointer {
    /// The "nothing published yet" pointer.
    pub const NONE: Self = Self {
        version: 0,
        state_id: [0; 32],
        base_version: 0,
        base_digest: [0; 32],
        base_state_id: [0; 32],
        issued_at: 0,
        expires_at: 0,
        tokens: 0,
        key_id: [0; 8],
    };

    /// The pointer naming a full snapshot on its own.
    pub fn of_full(snapshot: &Snapshot) -> Self {
        let h = snapshot.header();
        Self {
            version: h.version,
            state_id: h.state_id,
            base_version: h.version,
            base_digest: h.body_digest,
            base_state_id: h.state_id,
            issued_at: h.issued_at,
            expires_at: h.expires_at,
            tokens: u64::from(h.record_count),
            key_id: h.key_id,
        }
    }

    /// This pointer moved on by a delta with this header, to a state of `tokens` tokens.
    pub fn after(&self, delta: &Header, tokens: u64) -> Self {
        Self {
            version: delta.version,
            state_id: delta.state_id,
            issued_at: delta.issued_at,
            expires_at: delta.expires_at,
            tokens,
            key_id: delta.key_id,
            ..*self
        }
    }

    /// Whether it names the same state as `other`.
    pub fn names(&self, other: &Self) -> bool {
        self.version == other.version && self.state_id == other.state_id
    }

    /// Whether a state of this pointer can catch up to `other` with deltas alone (same full
    /// snapshot underneath, not ahead of it).
    pub fn shares_base(&self, other: &Self) -> bool {
        self.base_version == other.base_version
            && self.base_digest == other.base_digest
            && self.version <= other.version
    }

    /// Little-endian fields in declaration order.
    pub fn encode(&self) -> [u8; POINTER_LEN] {
        let mut out = [0u8; POINTER_LEN];
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            if let Some(slot) = out.get_mut(at..at + bytes.len()) {
                slot.copy_from_slice(bytes);
            }
            at += bytes.len();
        };
        put(&self.version.to_le_bytes());
        put(&self.state_id);
        put(&self.base_version.to_le_bytes());
        put(&self.base_digest);
        put(&self.base_state_id);
        put(&self.issued_at.to_le_bytes());
        put(&self.expires_at.to_le_bytes());
        put(&self.tokens.to_le_bytes());
        put(&self.key_id);
        out
    }

    /// Decodes [`Self::encode`]'s output.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != POINTER_LEN {
            return None;
        }
        let array = |at: usize| -> Option<[u8; 32]> { bytes.get(at..at + 32)?.try_into().ok() };
        let number = |at: usize| -> Option<u64> {
            Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
        };
        Some(Self {
            version: number(0)?,
            state_id: array(8)?,
            base_version: number(40)?,
            base_digest: array(48)?,
            base_state_id: array(80)?,
            issued_at: number(112)?,
            expires_at: number(120)?,
            tokens: number(128)?,
            key_id: bytes.get(136..144)?.try_into().ok()?,
        })
    }

    /// The key holding the full snapshot this state builds on.
    pub fn full_key(&self) -> String {
        full_key(self.base_version, &self.base_digest)
    }
}

/// The key of a full snapshot.
fn full_key(version: u64, digest: &[u8; 32]) -> String {
    format!(
        "pat_edge.v3.full.{version}.{}",
        hex::encode(digest.get(..8).unwrap_or_default())
    )
}

/// The key of the delta that produces `version` from the state `base_state_id`.
pub fn delta_key(version: u64, base_state_id: &[u8; 32]) -> String {
    format!(
        "pat_edge.v3.delta.{version}.{}",
        hex::encode(base_state_id.get(..8).unwrap_or_default())
    )
}

/// Reads the pointer and its CAS. A missing or undecodable pointer reads as [`Pointer::NONE`]
/// with CAS 0.
pub fn read_pointer(store: &impl SharedStore) -> Result<(Pointer, u32), StoreError> {
    Ok(match store.get(POINTER_KEY)? {
        Some((bytes, cas)) => (Pointer::decode(&bytes).unwrap_or(Pointer::NONE), cas),
        None => (Pointer::NONE, 0),
    })
}

/// Creates the pointer as [`Pointer::NONE`] if it does not exist (at VM start).
pub fn ensure_pointer(store: &impl SharedStore) -> Result<(), StoreError> {
    if store.get(POINTER_KEY)?.is_none() {
        store.set(POINTER_KEY, &Pointer::NONE.encode(), 0)?;
    }
    Ok(())
}

/// Why a document was not published to shared data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// Shared data already holds this version or a newer one.
    #[error("version {offered} is not newer than version {current}, which this edge already holds")]
    Stale {
        /// The version offered.
        offered: u64,
        /// The version in place.
        current: u64,
    },
    /// A delta whose base is not the current state.
    #[error(
        "the delta from version {base} to {offered} does not apply to what this edge holds (version {current})"
    )]
    DoesNotApply {
        /// The delta's base version.
        base: u64,
        /// Its version.
        offered: u64,
        /// The version in place.
        current: u64,
    },
    /// Shared data failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Attempts before giving up on a pointer that keeps changing under us.
const CAS_ATTEMPTS: usize = 8;

/// Publishes a verified chain of documents (as [`crate::replica::Replica::accept`] checked it): a
/// full snapshot and the deltas after it replace the current state; deltas alone continue it
/// (the first must name the current state). Writes every key, then moves the pointer to the
/// last document by one CAS, then empties the keys the replaced state no longer needs.
pub fn publish_chain(store: &impl SharedStore, docs: &[Document]) -> Result<(), PublishError> {
    let (Some(first), Some(last)) = (docs.first(), docs.last()) else {
        return Ok(());
    };
    let last_header = *last.header();
    let mut written = false;
    for _ in 0..CAS_ATTEMPTS {
        let (current, cas) = read_pointer(store)?;
        if current.version >= last_header.version {
            if written
                && let Document::Full(s) = first
                && Pointer::of_full(s).full_key() != current.full_key()
            {
                // We lost the race: our full snapshot is nobody's base.
                store.set(&Pointer::of_full(s).full_key(), b"", 0)?;
            }
            return Err(PublishError::Stale {
                offered: last_header.version,
                current: current.version,
            });
        }
        let base = match first {
            Document::Full(snapshot) => Pointer::of_full(snapshot),
            Document::Delta(delta) => {
                let h = delta.header();
                if current.version != h.base_version || current.state_id != h.base_state_id {
                    return Err(PublishError::DoesNotApply {
                        base: h.base_version,
                        offered: h.version,
                        current: current.version,
                    });
                }
                current
            }
        };
        if cas == 0 {
            ensure_pointer(store)?;
            continue;
        }
        if !written {
            for doc in docs {
                match doc {
                    Document::Full(s) => store.set(&base.full_key(), s.as_bytes(), 0)?,
                    Document::Delta(d) => {
                        let h = d.header();
                        store.set(&delta_key(h.version, &h.base_state_id), d.as_bytes(), 0)?;
                    }
                }
            }
            written = true;
        }
        let ours = base.after(&last_header, u64::from(last_header.state_tokens));
        match store.set(POINTER_KEY, &ours.encode(), cas) {
            Ok(()) => {
                if current.version != 0 && !current.shares_base(&ours) {
                    // A compaction inside the old chain starts the new one: the deltas after
                    // it are the same documents under the same keys, and stay.
                    let kept: Vec<String> = docs
                        .iter()
                        .filter_map(|doc| match doc {
                            Document::Delta(d) => {
                                let h = d.header();
                                Some(delta_key(h.version, &h.base_state_id))
                            }
                            Document::Full(_) => None,
                        })
                        .collect();
                    forget(store, &current, &kept)?;
                }
                return Ok(());
            }
            Err(StoreError::CasMismatch) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::CasMismatch.into())
}

/// Empties the keys a superseded state used: its full snapshot and its chain of deltas
/// (walked from the full snapshot's state, each delta naming the next state), except the
/// deltas the new state uses too (`kept`).
fn forget(store: &impl SharedStore, old: &Pointer, kept: &[String]) -> Result<(), StoreError> {
    store.set(&old.full_key(), b"", 0)?;
    let mut state_id = old.base_state_id;
    for version in old.base_version.saturating_add(1)..=old.version {
        let key = delta_key(version, &state_id);
        let Some(bytes) = load(store, &key)? else {
            break;
        };
        if !kept.contains(&key) {
            store.set(&key, b"", 0)?;
        }
        // The next state's id is in the (already verified) delta's signed header.
        match bytes
            .get(..pat_core::snapshot::HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .and_then(|h| Header::decode(h).ok())
        {
            Some(header) => state_id = header.state_id,
            None => break,
        }
    }
    Ok(())
}

/// Fetches the full snapshot a pointer builds on; `None` if it is gone (superseded).
pub fn load_full(
    store: &impl SharedStore,
    pointer: &Pointer,
) -> Result<Option<Vec<u8>>, StoreError> {
    load(store, &pointer.full_key())
}

/// Fetches the delta that produces `version` from the state `base_state_id`; `None` if it
/// is gone.
pub fn load_delta(
    store: &impl SharedStore,
    version: u64,
    base_state_id: &[u8; 32],
) -> Result<Option<Vec<u8>>, StoreError> {
    load(store, &delta_key(version, base_state_id))
}

fn load(store: &impl SharedStore, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(store
        .get(key)?
        .map(|(bytes, _)| bytes)
        .filter(|bytes| !bytes.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_round_trip() {
        let p = Pointer {
            version: 42,
            state_id: [1; 32],
            base_version: 40,
            base_digest: [7; 32],
            base_state_id: [8; 32],
            issued_at: 100,
            expires_at: 200,
            tokens: 3,
            key_id: [9; 8],
        };
        assert_eq!(Pointer::decode(&p.encode()), Some(p));
        assert_eq!(Pointer::decode(&p.encode()[1..]), None);
        assert_eq!(p.full_key(), "pat_edge.v3.full.40.0707070707070707");
        assert_eq!(
            delta_key(41, &[0xab; 32]),
            "pat_edge.v3.delta.41.abababababababab"
        );
        assert!(p.shares_base(&Pointer { version: 45, ..p }));
        assert!(!p.shares_base(&Pointer { version: 41, ..p }));
        assert!(!p.shares_base(&Pointer {
            base_version: 44,
            ..p
        }));
    }
}
