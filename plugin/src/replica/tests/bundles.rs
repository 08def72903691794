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
