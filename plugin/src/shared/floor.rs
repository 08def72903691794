//! The version floor: what a (re)started edge learns from its origin before it accepts a
//! pushed snapshot.
//!
//! Shared data dies with Envoy, and with it the memory of which version the edge held. An
//! attacker who kept an old signed snapshot (still within its lifetime) could push it to a
//! freshly started edge and bring revoked tokens back. So, when an origin is configured, the
//! edge first asks the origin for its signed head (a small "current version" statement, like
//! TUF's timestamp metadata) and from then on refuses anything older; until the origin has
//! answered, pushes are refused with a "retry" status and tokens fail closed.
//!
//! The floor lives in shared data next to the pointer, so every VM of this Envoy agrees. It
//! only ever rises.

use super::{SharedStore, StoreError};

/// The floor key.
pub const FLOOR_KEY: &str = "pat_edge.v2.floor";

/// What this edge knows of the origin's version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Floor {
    /// No origin is configured: pushes are limited by freshness alone.
    Unset,
    /// An origin is configured and has not answered yet: no push is accepted.
    Pending,
    /// The origin's version, as last seen: nothing older is accepted.
    Known(u64),
}

impl Floor {
    fn encode(self) -> Option<[u8; 9]> {
        let (tag, version) = match self {
            Self::Unset => return None,
            Self::Pending => (b'P', 0),
            Self::Known(v) => (b'K', v),
        };
        let mut out = [0u8; 9];
        let (first, rest) = out.split_at_mut(1);
        first.copy_from_slice(&[tag]);
        rest.copy_from_slice(&version.to_le_bytes());
        Some(out)
    }

    fn decode(bytes: &[u8]) -> Self {
        let version = bytes
            .get(1..9)
            .and_then(|v| v.try_into().ok())
            .map(u64::from_le_bytes);
        match (bytes.first(), version) {
            (Some(b'K'), Some(v)) => Self::Known(v),
            // Anything else that exists is treated as not known yet: fail closed.
            _ => Self::Pending,
        }
    }
}

/// Reads the floor.
pub fn read(store: &impl SharedStore) -> Result<Floor, StoreError> {
    Ok(match store.get(FLOOR_KEY)? {
        Some((bytes, _)) if !bytes.is_empty() => Floor::decode(&bytes),
        _ => Floor::Unset,
    })
}

/// Marks the floor as pending if nothing set it yet (a VM with an origin, at start).
pub fn ensure_pending(store: &impl SharedStore) -> Result<(), StoreError> {
    if read(store)? == Floor::Unset
        && let Some(bytes) = Floor::Pending.encode()
    {
        store.set(FLOOR_KEY, &bytes, 0)?;
    }
    Ok(())
}

/// Raises the floor to at least `version` (the origin said it holds it); returns the floor.
pub fn raise(store: &impl SharedStore, version: u64) -> Result<u64, StoreError> {
    for _ in 0..8 {
        let (current, cas) = match store.get(FLOOR_KEY)? {
            Some((bytes, cas)) if !bytes.is_empty() => (Floor::decode(&bytes), cas),
            _ => (Floor::Unset, 0),
        };
        let floor = match current {
            Floor::Known(v) if v >= version => return Ok(v),
            _ => version,
        };
        let Some(bytes) = Floor::Known(floor).encode() else {
            return Ok(floor);
        };
        match store.set(FLOOR_KEY, &bytes, cas) {
            Ok(()) => return Ok(floor),
            Err(StoreError::CasMismatch) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::CasMismatch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::memory::MemoryStore;

    #[test]
    fn pending_until_the_origin_answers_then_only_rises() {
        let store = MemoryStore::default();
        assert_eq!(read(&store), Ok(Floor::Unset));
        ensure_pending(&store).expect("store");
        assert_eq!(read(&store), Ok(Floor::Pending));
        assert_eq!(raise(&store, 7), Ok(7));
        assert_eq!(read(&store), Ok(Floor::Known(7)));
        // Lower answers (an origin restored from an old backup) never lower it.
        assert_eq!(raise(&store, 3), Ok(7));
        assert_eq!(raise(&store, 9), Ok(9));
        // A restarted VM does not reset it.
        ensure_pending(&store).expect("store");
        assert_eq!(read(&store), Ok(Floor::Known(9)));
        // "Nothing published yet" is an answer too.
        let fresh = MemoryStore::default();
        ensure_pending(&fresh).expect("store");
        assert_eq!(raise(&fresh, 0), Ok(0));
        assert_eq!(read(&fresh), Ok(Floor::Known(0)));
    }

    #[test]
    fn garbage_reads_as_pending() {
        assert_eq!(Floor::decode(b"K12"), Floor::Pending);
        assert_eq!(Floor::decode(b"X"), Floor::Pending);
    }
}
