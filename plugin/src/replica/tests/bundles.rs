//! The origin's bundles: a full snapshot and deltas, or deltas alone, in one answer.

use super::*;

#[test]
fn an_origin_bundle_catches_up_in_one_answer() {
    let p = Publisher::new();
    let store = MemoryStore::default();
    ensure_pointer(&store).expect("store");
    let v1 = p.snapshot(1, &["a"]);
    let d2 = p.delta(2, &["b"], &[]);
    let d3 = p.delta(3, &[], &["a"]);
    let mut idle = Replica::default();
    let body = bundle::encode([v1.as_slice(), d2.as_slice(), d3.as_slice()]);
    let accepted = idle
        .accept(&store, &p.keys(), body.clone(), NOW, false)
        .expect("catches up");
    assert_eq!((accepted.kind, accepted.version), (Kind::Delta, 3));
    // The same again: not newer.
    assert!(matches!(
        idle.accept(&store, &p.keys(), body, NOW, false),
        Err(PushRejection::NotNewer { .. })
    ));
    // A single document works too, and a serving VM sees the end state.
    let d4 = p.delta(4, &["c"], &[]);
    assert!(idle.accept(&store, &p.keys(), d4, NOW, false).is_ok());
    let mut serving = Replica::default();
    serving
        .refresh(&store, &p.keys(), NOW.now_ms)
        .expect("store");
    assert!(holds(&serving, "b") && holds(&serving, "c") && !holds(&serving, "a"));
    // A bundle that is not one is refused.
    assert!(matches!(
        idle.accept(&store, &p.keys(), b"PATBNDL1xx".to_vec(), NOW, false),
        Err(PushRejection::Invalid(SnapshotError::Malformed(_)))
    ));
}

/// An origin's bundle that starts from a compaction inside the chain the edge holds (the
/// compaction at 3 and the deltas after it, to an edge at 4): the new chain reuses the
/// deltas after 3, which are the very documents (same keys in shared data) the replaced
/// chain had. Serving VMs catch up with it: replacing the old chain must not empty the
/// keys the new one uses (it did, and every serving VM was left with no token list until
/// another full snapshot came: "cannot be verified yet").
#[test]
fn a_bundle_from_a_compaction_inside_the_chain_keeps_the_deltas_it_shares() {
    let p = Publisher::new();
    let store = MemoryStore::default();
    ensure_pointer(&store).expect("store");
    let mut control = Replica::default();
    let v1 = p.snapshot(1, &["a"]);
    let d2 = p.delta(2, &["b"], &[]);
    let d3 = p.delta(3, &["c"], &[]);
    let state3 = p.last().expect("d3").state_id;
    let d4 = p.delta(4, &["d"], &[]);
    for doc in [v1, d2, d3, d4.clone()] {
        control
            .accept(&store, &p.keys(), doc, NOW, false)
            .expect("the chain");
    }
    let mut serving = Replica::default();
    serving
        .refresh(&store, &p.keys(), NOW.now_ms)
        .expect("store");
    assert!(holds(&serving, "d"));
    let full3 = p.compaction(3, state3, &["a", "b", "c"]);
    let d5 = p.delta(5, &["e"], &[]);
    let body = bundle::encode([full3.as_slice(), d4.as_slice(), d5.as_slice()]);
    let accepted = control
        .accept(&store, &p.keys(), body, NOW, false)
        .expect("the bundle");
    assert_eq!(accepted.version, 5);
    for mut vm in [serving, Replica::default()] {
        let refreshed = vm.refresh(&store, &p.keys(), NOW.now_ms).expect("store");
        assert!(
            matches!(refreshed, Refresh::Applied { version: 5, .. }),
            "{refreshed:?}"
        );
        assert!(["a", "b", "c", "d", "e"].iter().all(|t| holds(&vm, t)));
    }
}
