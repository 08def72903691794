//! A push reaches every VM of the Envoy through shared data; a VM that serves nothing publishes and keeps no copy.

use super::*;

#[test]
fn a_push_reaches_every_vm() {
    let p = Publisher::new();
    let store = MemoryStore::default();
    ensure_pointer(&store).expect("store");
    let (mut pusher, mut other) = (Replica::default(), Replica::default());
    assert_eq!(
        other.refresh(&store, &p.keys(), NOW.now_ms),
        Ok(Refresh::NothingPublished)
    );
    let accepted = push(&mut pusher, &store, &p.keys(), p.snapshot(1, &["a"])).expect("accepted");
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
fn a_vm_that_serves_nothing_publishes_and_lets_go() {
    let p = Publisher::new();
    let store = MemoryStore::default();
    ensure_pointer(&store).expect("store");
    let mut idle = Replica::default();
    let accepted = idle
        .accept(&store, &p.keys(), p.snapshot(3, &["a"]), NOW, false)
        .expect("accepted");
    assert_eq!(accepted.version, 3);
    assert!(idle.state().is_none(), "an idle VM keeps no copy");
    let mut serving = Replica::default();
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
