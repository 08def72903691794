//! The replica driven natively over the in-memory shared data, several replicas standing for
//! the VMs of one Envoy; documents from [`crate::test_support::Publisher`]. One file per
//! behaviour.

mod bundles;
mod deltas;
mod freshness;
mod origin_head;
mod publish;
mod races;
mod refusals;

pub(super) use std::cell::RefCell;

pub(super) use pat_core::keys::TrustedKeys;
pub(super) use pat_core::snapshot::{
    BODY_OFFSET, Kind, SnapshotBuilder, SnapshotError, Stale, Stamp, bundle,
};
pub(super) use pat_core::token::TokenHash;

pub(super) use super::{Accepted, Clock, HeadSeen, PushRejection, Refresh, Replica, Unusable};
pub(super) use crate::shared::{POINTER_KEY, SharedStore, StoreError, ensure_pointer};
pub(super) use crate::test_support::{ISSUED, MemoryStore, NOW, Publisher};

/// Accepts `bytes` as a push to a serving VM.
pub(super) fn push(
    replica: &mut Replica,
    store: &impl SharedStore,
    keys: &TrustedKeys,
    bytes: Vec<u8>,
) -> Result<Accepted, PushRejection> {
    replica.accept(store, keys, bytes, NOW, true)
}

/// Whether the replica serves `token`.
pub(super) fn holds(replica: &Replica, token: &str) -> bool {
    replica
        .state()
        .is_some_and(|s| s.find(&TokenHash::of(token)).is_some())
}
