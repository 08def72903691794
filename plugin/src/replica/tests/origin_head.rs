//! The origin's signed head: after a restart pushes wait for it, and nothing older is accepted.

use super::*;

#[test]
fn after_a_restart_pushes_wait_for_the_origins_version() {
    let p = Publisher::new();
    let store = MemoryStore::default();
    ensure_pointer(&store).expect("store");
    crate::shared::floor::ensure_pending(&store).expect("store");
    let mut edge = Replica::default();
    let old = p.snapshot(4, &["revoked"]);
    assert_eq!(
        push(&mut edge, &store, &p.keys(), old.clone()),
        Err(PushRejection::WaitingForOrigin)
    );
    let head = p.snapshot(5, &["kept"]);
    let seen = edge
        .accept_head(&store, &p.keys(), &head[..BODY_OFFSET], NOW)
        .expect("a valid head");
    assert_eq!(
        seen,
        HeadSeen {
            version: 5,
            floor: 5,
            fetch: true
        }
    );
    assert_eq!(
        push(&mut edge, &store, &p.keys(), old),
        Err(PushRejection::BelowFloor {
            offered: 4,
            floor: 5
        })
    );
    assert!(edge.state().is_none(), "nothing was applied");
    push(&mut edge, &store, &p.keys(), head.clone()).expect("accepted");
    let again = edge
        .accept_head(&store, &p.keys(), &head[..BODY_OFFSET], NOW)
        .expect("valid");
    assert!(!again.fetch, "nothing newer to fetch");
    let mut forged = p.snapshot(9, &["x"])[..BODY_OFFSET].to_vec();
    forged[16] = 10;
    assert!(edge.accept_head(&store, &p.keys(), &forged, NOW).is_err());
    assert_eq!(
        crate::shared::floor::read(&store),
        Ok(crate::shared::floor::Floor::Known(5))
    );
}
