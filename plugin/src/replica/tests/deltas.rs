//! Deltas: applied in place by every VM, refused when they do not apply to the state held.

use super::*;

#[test]
fn deltas_reach_every_vm_without_reloading_the_full_snapshot() {
    let p = Publisher::new();
    let store = MemoryStore::default();
    ensure_pointer(&store).expect("store");
    // The control VM (keeps nothing) and two serving VMs.
    let (mut control, mut a, mut b) = (Replica::default(), Replica::default(), Replica::default());
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
    let mut late = Replica::default();
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
    let mut edge = Replica::default();
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
    let other = p.same_key();
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
fn a_lagging_vm_catches_up_by_deltas_then_applies_a_pushed_delta_in_place() {
    /// Shared data that counts reads of full snapshots.
    struct Counting<'a> {
        inner: &'a MemoryStore,
        full_reads: std::cell::Cell<usize>,
    }
    impl SharedStore for Counting<'_> {
        fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
            if key.contains(".full.") {
                self.full_reads.set(self.full_reads.get() + 1);
            }
            self.inner.get(key)
        }
        fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
            self.inner.set(key, value, cas)
        }
    }
    let p = Publisher::new();
    let store = MemoryStore::default();
    ensure_pointer(&store).expect("store");
    let mut control = Replica::default();
    control
        .accept(&store, &p.keys(), p.snapshot(1, &["a", "b"]), NOW, false)
        .expect("full");
    let mut serving = Replica::default();
    serving
        .refresh(&store, &p.keys(), NOW.now_ms)
        .expect("store");
    // Another VM publishes version 2; this one has not ticked since.
    control
        .accept(&store, &p.keys(), p.delta(2, &["c"], &["a"]), NOW, false)
        .expect("delta");
    let counting = Counting {
        inner: &store,
        full_reads: std::cell::Cell::new(0),
    };
    let accepted = push(
        &mut serving,
        &counting,
        &p.keys(),
        p.delta(3, &["d"], &["b"]),
    )
    .expect("the delta continues the published state");
    assert_eq!((accepted.version, accepted.tokens), (3, 2));
    assert_eq!(serving.version(), Some(3));
    assert!(holds(&serving, "c") && holds(&serving, "d"));
    assert!(!holds(&serving, "a") && !holds(&serving, "b"));
    assert_eq!(
        counting.full_reads.get(),
        0,
        "caught up by the delta it lacked; the full snapshot was never read back"
    );
    // Every other VM sees the same state.
    let mut late = Replica::default();
    assert!(matches!(
        late.refresh(&store, &p.keys(), NOW.now_ms),
        Ok(Refresh::Applied {
            version: 3,
            tokens: 2,
            ..
        })
    ));
}
