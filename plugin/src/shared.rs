//! How VMs share the current snapshot through proxy-wasm shared data.
//!
//! Two kinds of keys:
//! - the *pointer* `pat_edge.v2.current`: 68 bytes, the current version, body digest, issue
//!   time, expiry, token count and signing key (so a VM can tell a stale snapshot without
//!   loading it, and the control endpoint can report it without holding it).
//!   Every VM reads it on each tick (a cheap copy) and only fetches the snapshot when it
//!   changes;
//! - one *snapshot key* per published snapshot, named after its version and digest, holding
//!   the signed bytes. A superseded snapshot key is emptied once the pointer moves on.
//!
//! A publisher first writes its snapshot key, then moves the pointer with compare-and-swap.
//! Two concurrent pushes can therefore never leave the pointer naming one snapshot while
//! the key holds another, and an older version can never replace a newer one.
//!
//! Shared data has no atomic "create if absent": a missing key accepts any CAS. Each VM
//! creates the pointer (as version 0) when it starts, before its listeners take traffic,
//! so pushes always move an existing pointer with a real CAS.

use pat_core::snapshot::Snapshot;

use crate::hex;

/// The pointer key.
pub const POINTER_KEY: &str = "pat_edge.v2.current";

/// Host shared-data operations (Envoy's semantics: `get` returns the value and its CAS,
/// `set` with CAS 0 is unconditional, a stale CAS is refused).
pub trait SharedStore {
    /// Reads a key: `None` when absent.
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError>;
    /// Writes a key; fails with [`StoreError::CasMismatch`] when `cas` is not current.
    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError>;
}

/// A shared-data failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Someone else wrote the key first.
    #[error("shared data changed concurrently (CAS mismatch)")]
    CasMismatch,
    /// The host refused the operation.
    #[error("shared data operation failed: {0}")]
    Host(String),
}

/// The current version and body digest, as stored under [`POINTER_KEY`], with the signed
/// times of the snapshot it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pointer {
    /// Snapshot version; 0 = nothing published yet.
    pub version: u64,
    /// BLAKE3 of the snapshot body (from its signed header).
    pub digest: [u8; 32],
    /// When it was issued, Unix seconds.
    pub issued_at: u64,
    /// Its signed expiry, Unix seconds.
    pub expires_at: u64,
    /// Its token count.
    pub tokens: u32,
    /// The id of the key that signed it.
    pub key_id: [u8; 8],
}

const POINTER_LEN: usize = 68;

impl Pointer {
    /// The "nothing published yet" pointer.
    pub const NONE: Self = Self {
        version: 0,
        digest: [0; 32],
        issued_at: 0,
        expires_at: 0,
        tokens: 0,
        key_id: [0; 8],
    };

    /// The pointer naming this snapshot.
    pub fn of(snapshot: &Snapshot) -> Self {
        let header = snapshot.header();
        Self {
            version: header.version,
            digest: header.body_digest,
            issued_at: header.issued_at,
            expires_at: header.expires_at,
            tokens: header.token_count,
            key_id: header.key_id,
        }
    }

    /// Whether it names the same snapshot as `other`.
    pub fn names(&self, other: &Self) -> bool {
        self.version == other.version && self.digest == other.digest
    }

    /// Little-endian version, the digest, the issue time, the expiry, the token count, then
    /// the key id.
    pub fn encode(&self) -> [u8; POINTER_LEN] {
        let mut out = [0u8; POINTER_LEN];
        let (version, rest) = out.split_at_mut(8);
        let (digest, rest) = rest.split_at_mut(32);
        let (issued, rest) = rest.split_at_mut(8);
        let (expires, rest) = rest.split_at_mut(8);
        let (tokens, key_id) = rest.split_at_mut(4);
        version.copy_from_slice(&self.version.to_le_bytes());
        digest.copy_from_slice(&self.digest);
        issued.copy_from_slice(&self.issued_at.to_le_bytes());
        expires.copy_from_slice(&self.expires_at.to_le_bytes());
        tokens.copy_from_slice(&self.tokens.to_le_bytes());
        key_id.copy_from_slice(&self.key_id);
        out
    }

    /// Decodes [`Self::encode`]'s output.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let u64_at = |at: usize| -> Option<u64> {
            Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
        };
        (bytes.len() == POINTER_LEN).then_some(())?;
        Some(Self {
            version: u64_at(0)?,
            digest: bytes.get(8..40)?.try_into().ok()?,
            issued_at: u64_at(40)?,
            expires_at: u64_at(48)?,
            tokens: u32::from_le_bytes(bytes.get(56..60)?.try_into().ok()?),
            key_id: bytes.get(60..68)?.try_into().ok()?,
        })
    }

    /// The key holding this snapshot's bytes.
    pub fn snapshot_key(&self) -> String {
        format!(
            "pat_edge.v2.snapshot.{}.{}",
            self.version,
            hex(self.digest.get(..8).unwrap_or_default())
        )
    }
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

/// Why a snapshot was not published to shared data.
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
    /// Shared data failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Attempts before giving up on a pointer that keeps changing under us.
const CAS_ATTEMPTS: usize = 8;

/// Publishes a verified snapshot: writes its key, then moves the pointer by CAS.
pub fn publish(store: &impl SharedStore, snapshot: &Snapshot) -> Result<(), PublishError> {
    let ours = Pointer::of(snapshot);
    let key = ours.snapshot_key();
    let mut written = false;
    for _ in 0..CAS_ATTEMPTS {
        let (current, cas) = read_pointer(store)?;
        if current.version >= ours.version {
            if written && current != ours {
                store.set(&key, b"", 0)?;
            }
            return Err(PublishError::Stale {
                offered: ours.version,
                current: current.version,
            });
        }
        if cas == 0 {
            ensure_pointer(store)?;
            continue;
        }
        if !written {
            store.set(&key, snapshot.as_bytes(), 0)?;
            written = true;
        }
        match store.set(POINTER_KEY, &ours.encode(), cas) {
            Ok(()) => {
                if current.version != 0 {
                    store.set(&current.snapshot_key(), b"", 0)?;
                }
                return Ok(());
            }
            Err(StoreError::CasMismatch) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::CasMismatch.into())
}

/// Fetches the bytes a pointer names; `None` if they are gone (superseded meanwhile).
pub fn load(store: &impl SharedStore, pointer: &Pointer) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(store
        .get(&pointer.snapshot_key())?
        .map(|(bytes, _)| bytes)
        .filter(|bytes| !bytes.is_empty()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    /// Envoy's shared-data semantics in a map (the testbed exercises the real host).
    #[derive(Default)]
    pub(crate) struct MemoryStore {
        map: RefCell<HashMap<String, (Vec<u8>, u32)>>,
        next_cas: RefCell<u32>,
    }

    impl SharedStore for MemoryStore {
        fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
            Ok(self.map.borrow().get(key).cloned())
        }

        fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
            let mut map = self.map.borrow_mut();
            if let Some((_, current)) = map.get(key)
                && cas != 0
                && cas != *current
            {
                return Err(StoreError::CasMismatch);
            }
            let mut next = self.next_cas.borrow_mut();
            *next += 1;
            map.insert(key.to_string(), (value.to_vec(), *next));
            Ok(())
        }
    }

    impl MemoryStore {
        pub(crate) fn value(&self, key: &str) -> Option<Vec<u8>> {
            self.map.borrow().get(key).map(|(v, _)| v.clone())
        }
    }

    #[test]
    fn pointer_round_trip() {
        let p = Pointer {
            version: 42,
            digest: [7; 32],
            issued_at: 100,
            expires_at: 200,
            tokens: 3,
            key_id: [9; 8],
        };
        assert_eq!(Pointer::decode(&p.encode()), Some(p));
        assert_eq!(Pointer::decode(&[0; 67]), None);
        assert_eq!(Pointer::decode(&[0; 69]), None);
        assert_eq!(p.snapshot_key(), "pat_edge.v2.snapshot.42.0707070707070707");
    }
}
