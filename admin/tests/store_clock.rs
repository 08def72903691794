//! The store's clock governs every "now" of what runs over it, in-process: a
//! [`ManualClock`] given to a store decides the documents' issue and expiry, when one is due
//! for re-signing, and the audit log's times, without a test waiting for anything.

mod support;

use std::time::Duration;

use pat_admin::clock::ManualClock;
use pat_admin::snapshot::{self, Reason};
use pat_admin::store::audit;
use support::*;

/// The default snapshot lifetime, seconds; re-signing is due a quarter into it.
const LIFETIME: u64 = 24 * 3600;

#[test]
fn a_manual_clock_decides_issue_expiry_re_signing_and_the_audit_log() {
    let admin = Admin::new();
    admin.key();
    // A clock a day ahead of the system's, standing still.
    let clock = ManualClock::at(admin.now() + 86_400);
    let start = clock.now();
    let mut store = admin.open().with_clock(clock.clock());
    assert_eq!(store.now(), start);

    let (first, reason) = snapshot::current(&mut store).expect("the first document");
    assert!(matches!(reason, Some(Reason::First)), "{reason:?}");
    assert_eq!(first.stamp.issued_at, start, "issued by the store's clock");
    assert_eq!(first.stamp.expires_at, start + LIFETIME);

    // Nothing is due until a quarter of the lifetime has passed by that clock.
    clock.advance(Duration::from_secs(LIFETIME / 4 - 1));
    assert!(
        snapshot::resign_if_needed(&mut store)
            .expect("check")
            .is_none()
    );
    clock.advance(Duration::from_secs(1));
    let (second, reason) = snapshot::resign_if_needed(&mut store)
        .expect("re-sign")
        .expect("due a quarter in");
    assert!(
        matches!(reason, Reason::Due { age, .. } if age == LIFETIME / 4),
        "{reason:?}"
    );
    assert_eq!(second.version, first.stamp.version + 1);
    assert_eq!(second.issued_at, start + LIFETIME / 4);
    assert_eq!(second.expires_at, start + LIFETIME / 4 + LIFETIME);

    // The audit log's times are the clock's too.
    let built: Vec<u64> = audit::list(store.conn(), None, 10)
        .expect("audit")
        .into_iter()
        .filter(|e| e.action == "snapshot.build")
        .map(|e| e.at)
        .collect();
    assert_eq!(built, [start + LIFETIME / 4, start], "newest first");
}
