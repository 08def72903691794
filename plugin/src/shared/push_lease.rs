//! One push at a time per edge.
//!
//! A push is buffered whole before it is applied (a 1,000,000-token snapshot is ~57 MB), so
//! concurrent pushes multiply the memory an edge needs. A push whose signed head checks out
//! takes the lease in shared data before its body is buffered; another push meanwhile gets a
//! "busy, retry" answer. The lease has an end time, renewed while the body arrives, so a
//! push whose client vanished cannot hold it forever.

use super::{SharedStore, StoreError};

/// The lease key.
pub const LEASE_KEY: &str = "pat_edge.v2.push";
/// How long a lease lasts without renewal.
pub const LEASE_MS: u64 = 30_000;

/// Who holds the lease: unique within this Envoy (a VM number and a context id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder(pub u64);

/// The outcome of asking for the lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    /// Taken (or renewed) by the asker.
    Held,
    /// Another push holds it until this instant (Unix milliseconds).
    Busy {
        /// When the other lease ends unless renewed.
        until_ms: u64,
    },
}

fn encode(holder: Holder, until_ms: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    let (h, u) = out.split_at_mut(8);
    h.copy_from_slice(&holder.0.to_le_bytes());
    u.copy_from_slice(&until_ms.to_le_bytes());
    out
}

fn decode(bytes: &[u8]) -> Option<(Holder, u64)> {
    let holder = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    let until = u64::from_le_bytes(bytes.get(8..16)?.try_into().ok()?);
    Some((Holder(holder), until))
}

/// Takes or renews the lease for `holder` until `now_ms + LEASE_MS`, unless someone else
/// holds a lease that has not ended.
pub fn acquire(store: &impl SharedStore, holder: Holder, now_ms: u64) -> Result<Lease, StoreError> {
    for _ in 0..8 {
        let (current, cas) = store.get(LEASE_KEY)?.unwrap_or_default();
        if let Some((other, until_ms)) = decode(&current)
            && other != holder
            && until_ms > now_ms
        {
            return Ok(Lease::Busy { until_ms });
        }
        match store.set(
            LEASE_KEY,
            &encode(holder, now_ms.saturating_add(LEASE_MS)),
            cas,
        ) {
            Ok(()) => return Ok(Lease::Held),
            Err(StoreError::CasMismatch) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::CasMismatch)
}

/// Gives the lease back if `holder` has it.
pub fn release(store: &impl SharedStore, holder: Holder) -> Result<(), StoreError> {
    for _ in 0..8 {
        let Some((current, cas)) = store.get(LEASE_KEY)? else {
            return Ok(());
        };
        if decode(&current).is_none_or(|(h, _)| h != holder) {
            return Ok(());
        }
        match store.set(LEASE_KEY, b"", cas) {
            Ok(()) => return Ok(()),
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
    fn one_holder_at_a_time_and_leases_end() {
        let store = MemoryStore::default();
        let (a, b) = (Holder(1), Holder(2));
        assert_eq!(acquire(&store, a, 1_000), Ok(Lease::Held));
        assert_eq!(
            acquire(&store, b, 2_000),
            Ok(Lease::Busy {
                until_ms: 1_000 + LEASE_MS
            })
        );
        // Renewal by the holder.
        assert_eq!(acquire(&store, a, 20_000), Ok(Lease::Held));
        assert!(matches!(
            acquire(&store, b, 1_000 + LEASE_MS),
            Ok(Lease::Busy { .. })
        ));
        // Only the holder releases.
        release(&store, b).expect("store");
        assert!(matches!(acquire(&store, b, 21_000), Ok(Lease::Busy { .. })));
        release(&store, a).expect("store");
        assert_eq!(acquire(&store, b, 21_000), Ok(Lease::Held));
        // An abandoned lease ends by itself.
        assert_eq!(acquire(&store, a, 21_000 + LEASE_MS), Ok(Lease::Held));
    }
}
