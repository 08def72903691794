//! What is refused changes nothing; a state that does not verify here fails closed.

use super::*;

#[test]
fn refused_pushes_change_nothing() {
    let p = Publisher::new();
    let stranger = Publisher::new();
    let store = MemoryStore::default();
    ensure_pointer(&store).expect("store");
    let mut edge = Replica::default();
    push(&mut edge, &store, &p.keys(), p.snapshot(5, &["a"])).expect("accepted");
    let pointer_before = store.value(POINTER_KEY);

    let mut truncated = p.snapshot(6, &["b"]);
    truncated.pop();
    let mut tampered = p.snapshot(7, &["c"]);
    let last = tampered.len() - 1;
    tampered[last] ^= 0xff;
    let cases = [
        (p.snapshot(5, &["x"]), "NotNewer"),
        (p.snapshot(4, &["x"]), "NotNewer"),
        (p.snapshot_at(8, ISSUED - 86_400, &["x"]), "Expired"),
        (stranger.snapshot(9, &["x"]), "Untrusted"),
        (truncated, "Length"),
        (tampered, "Digest"),
        (b"garbage".to_vec(), "TooShort"),
    ];
    for (bytes, expected) in cases {
        let err = push(&mut edge, &store, &p.keys(), bytes).expect_err(expected);
        assert!(format!("{err:?}").contains(expected), "{expected}: {err:?}");
        assert_eq!(edge.version(), Some(5), "{expected}: still version 5");
        assert!(holds(&edge, "a"));
        assert_eq!(
            store.value(POINTER_KEY),
            pointer_before,
            "{expected}: shared data unchanged"
        );
    }
}

#[test]
fn a_vm_that_cannot_verify_fails_closed() {
    let p = Publisher::new();
    let other_keys = Publisher::new().keys();
    let store = MemoryStore::default();
    ensure_pointer(&store).expect("store");
    push(
        &mut Replica::default(),
        &store,
        &p.keys(),
        p.snapshot(1, &["a"]),
    )
    .expect("accepted");
    let mut edge = Replica::default();
    assert!(matches!(
        edge.refresh(&store, &other_keys, NOW.now_ms),
        Ok(Refresh::Failed(Unusable::Invalid(
            SnapshotError::UntrustedKey(_)
        )))
    ));
    assert!(edge.state().is_none());
}
