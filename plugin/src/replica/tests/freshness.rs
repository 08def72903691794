//! Freshness: an expired state is dropped and never reloaded, deltas renew it, each root's age limit.

use super::*;

#[test]
fn an_expired_state_is_dropped_and_never_reloaded_and_deltas_renew_it() {
    let p = Publisher::new();
    let store = MemoryStore::default();
    ensure_pointer(&store).expect("store");
    let mut pusher = Replica::default();
    push(&mut pusher, &store, &p.keys(), p.snapshot(1, &["a"])).expect("accepted");
    let mut other = Replica::default();
    other.refresh(&store, &p.keys(), NOW.now_ms).expect("store");
    let expiry_ms = (ISSUED + 86_400) * 1000;
    assert_eq!(
        other.refresh(&store, &p.keys(), expiry_ms - 1),
        Ok(Refresh::Unchanged)
    );
    assert!(matches!(
        other.refresh(&store, &p.keys(), expiry_ms),
        Ok(Refresh::Failed(Unusable::Stale(Stale::Expired {
            version: 1,
            ..
        })))
    ));
    assert!(other.state().is_none(), "fails closed");
    assert_eq!(
        other.refresh(&store, &p.keys(), expiry_ms + 50),
        Ok(Refresh::Unchanged),
        "reported once, not reloaded every tick"
    );
    let mut late = Replica::default();
    assert!(matches!(
        late.refresh(&store, &p.keys(), expiry_ms + 100),
        Ok(Refresh::Failed(Unusable::Stale(_)))
    ));
    // An empty delta issued later renews the state for another day.
    let renew = {
        let base = p.last().expect("base");
        let built = SnapshotBuilder::new()
            .build_delta(Stamp::lasting(2, ISSUED + 3000, 86_400), base, 1, &p.key)
            .expect("build");
        built.bytes
    };
    push(&mut pusher, &store, &p.keys(), renew).expect("renewed");
    let mut renewed = Replica::default();
    assert!(matches!(
        renewed.refresh(&store, &p.keys(), expiry_ms),
        Ok(Refresh::Applied { version: 2, .. })
    ));
    assert!(holds(&renewed, "a"));
}

#[test]
fn the_age_limit_is_each_root_contexts_own() {
    let p = Publisher::new();
    let store = MemoryStore::default();
    ensure_pointer(&store).expect("store");
    let mut edge = Replica::default();
    push(&mut edge, &store, &p.keys(), p.snapshot(1, &["a"])).expect("accepted");
    let strict = Clock {
        max_age_ms: 1_800_000,
        ..NOW
    };
    assert!(edge.state_for(&p.keys(), NOW).is_some());
    assert!(
        edge.state_for(&p.keys(), strict).is_none(),
        "an hour old is too old for a 30-minute limit"
    );
    assert!(
        edge.state_for(&Publisher::new().keys(), NOW).is_none(),
        "an untrusted key"
    );
    let err = edge
        .precheck_push(
            &store,
            &p.keys(),
            &p.snapshot(2, &["a"])[..BODY_OFFSET],
            None,
            strict,
        )
        .expect_err("too old");
    assert!(matches!(err, PushRejection::Stale(Stale::TooOld { .. })));
}
