//! Publishers racing each other keep the pointer and the keys it names consistent.

use super::*;

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
            let mut e = Replica::default();
            push(&mut e, &store, &p.keys(), v7.clone()).expect("the intruder wins");
        }))),
    };
    let mut loser = Replica::default();
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
