//! Each VM's number within this Envoy, handed out from a shared counter: with a context id,
//! it names who holds the push lease.

use super::{SharedStore, StoreError};

/// Shared-data counter that hands out VM numbers.
pub const VM_COUNTER_KEY: &str = "pat_edge.v2.vms";

/// Takes the next number (from 1): unique among the VMs of this Envoy.
pub fn next(store: &impl SharedStore) -> Result<u64, StoreError> {
    for _ in 0..16 {
        let (bytes, cas) = store.get(VM_COUNTER_KEY)?.unwrap_or_default();
        let current = bytes
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u64::from_le_bytes);
        let next = current.saturating_add(1);
        match store.set(VM_COUNTER_KEY, &next.to_le_bytes(), cas) {
            Ok(()) => return Ok(next),
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
    fn every_vm_gets_a_number_of_its_own() {
        let store = MemoryStore::default();
        assert_eq!(next(&store), Ok(1));
        assert_eq!(next(&store), Ok(2));
        assert_eq!(next(&store), Ok(3));
    }
}
