//! Envoy's shared-data semantics in a map, for native tests and benchmarks (the testbed and
//! Envoy exercise the real host): `get` returns the value and its CAS, a `set` with CAS 0 is
//! unconditional, a stale CAS on an existing key is refused, a missing key takes any CAS, and
//! every successful `set` gets a new CAS.

use std::cell::RefCell;
use std::collections::HashMap;

use super::{SharedStore, StoreError};

/// An in-memory [`SharedStore`].
#[derive(Debug, Default)]
pub struct MemoryStore {
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
        *next = next.wrapping_add(1).max(1);
        map.insert(key.to_string(), (value.to_vec(), *next));
        Ok(())
    }
}

impl MemoryStore {
    /// A key's value, if it exists.
    pub fn value(&self, key: &str) -> Option<Vec<u8>> {
        self.map.borrow().get(key).map(|(v, _)| v.clone())
    }

    /// Keys holding something (emptied keys left out), sorted.
    pub fn live_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .map
            .borrow()
            .iter()
            .filter(|(_, (v, _))| !v.is_empty())
            .map(|(k, _)| k.clone())
            .collect();
        keys.sort();
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_and_swap_as_envoy_does_it() {
        let store = MemoryStore::default();
        assert_eq!(store.get("k"), Ok(None));
        store
            .set("k", b"a", 77)
            .expect("a missing key takes any CAS");
        let (_, cas) = store.get("k").expect("store").expect("set");
        assert_eq!(store.set("k", b"b", cas + 1), Err(StoreError::CasMismatch));
        store.set("k", b"b", cas).expect("the current CAS");
        store.set("k", b"c", 0).expect("CAS 0 is unconditional");
        assert_eq!(store.value("k"), Some(b"c".to_vec()));
        store.set("gone", b"", 0).expect("emptied");
        assert_eq!(store.live_keys(), ["k"]);
    }
}
