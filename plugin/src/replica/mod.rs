//! One VM's copy of the published token state (a *replica*): the state it serves requests
//! from, how it catches up with what was published to shared data, how it accepts a pushed
//! or fetched document and publishes it, and when it must stop using its state.
//!
//! Memory is the constraint at 1,000,000 tokens (~40 MB a full snapshot): a VM never holds
//! two full snapshots at once. A delta — the usual change — applies in place, in time
//! proportional to its size. When the VM must reload the full snapshot (another base was
//! published, or a delta it needs is gone), it drops its state *before* fetching the new one
//! (single-threaded: no request runs in between).
//!
//! Freshness: a document whose signed expiry has passed is never accepted, and a VM drops
//! its state when the latest document in it expires (token requests then fail closed). A
//! state older than a root context's `max_snapshot_age_ms` is refused by that root when
//! pushed or fetched, and not used for its requests ([`Replica::state_for`]). An empty delta
//! renews a state's freshness for the price of ~250 bytes.
//!
//! # Layout
//! - `refresh`: catching up with the published state ([`Replica::refresh`]).
//! - `accept`: a push or a fetched document: its signed head checked as soon as it arrives
//!   ([`Replica::precheck_push`]), the whole verified, published to shared data and served
//!   from ([`Replica::accept`]); the origin's signed head ([`Replica::accept_head`]).

mod accept;
mod refresh;

#[cfg(test)]
mod tests;

pub use accept::{Accepted, HeadSeen, PUSH_HEAD_LEN, PushRejection};
pub use refresh::{Refresh, Unusable};

use pat_core::keys::{KeyId, TrustedKeys};
use pat_core::snapshot::{Kind, Stale, TokenState, check_fresh, fresh_until_ms};

use crate::shared::Pointer;

/// One VM's copy of the token state: the state it serves from, and the published one it
/// could not use.
#[derive(Debug, Default)]
pub struct Replica {
    state: Option<TokenState>,
    /// The published state this VM refused (or dropped when it expired): not loaded again
    /// until the pointer moves on, so a bad or stale snapshot is not re-read every tick.
    refused: Option<Pointer>,
}

/// The clock and the age limit of the root context asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// Now, Unix milliseconds.
    pub now_ms: u64,
    /// `max_snapshot_age_ms`.
    pub max_age_ms: u64,
}

/// How a document kind reads in logs.
pub fn kind_word(kind: Kind) -> &'static str {
    match kind {
        Kind::Full => "full snapshot",
        Kind::Delta => "delta",
    }
}

impl Replica {
    /// The state in use, if any.
    pub fn state(&self) -> Option<&TokenState> {
        self.state.as_ref()
    }

    /// The state a root context may serve from: signed by keys it trusts and fresh by its
    /// own age limit at `now_ms`.
    pub fn state_for(&self, keys: &TrustedKeys, clock: Clock) -> Option<&TokenState> {
        self.state.as_ref().filter(|s| {
            keys.get(KeyId(s.header().key_id)).is_some()
                && keys.get(s.base().key_id()).is_some()
                && clock.now_ms < fresh_until_ms(s.header(), clock.max_age_ms)
        })
    }

    /// Its version, if any.
    pub fn version(&self) -> Option<u64> {
        self.state.as_ref().map(TokenState::version)
    }

    /// Forgets which published state was refused (the trusted keys may have changed).
    pub fn forget_refusals(&mut self) {
        self.refused = None;
    }

    /// The pointer naming what this VM holds.
    fn held(&self) -> Option<Pointer> {
        let state = self.state.as_ref()?;
        let base = state.base().header();
        let latest = state.header();
        Some(Pointer {
            version: latest.version,
            state_id: latest.state_id,
            base_version: base.version,
            base_digest: base.body_digest,
            base_state_id: base.state_id,
            issued_at: latest.issued_at,
            expires_at: latest.expires_at,
            tokens: state.token_count(),
            key_id: latest.key_id,
        })
    }

    /// Drops the state in use if its latest signed expiry has passed.
    fn drop_expired(&mut self, now_ms: u64) -> Option<Stale> {
        let stale = self
            .state
            .as_ref()
            .and_then(|s| check_fresh(s.header(), now_ms, u64::MAX).err())?;
        self.refused = self.held();
        self.state = None;
        Some(stale)
    }
}
