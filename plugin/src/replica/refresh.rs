//! Catching up with the published state: the pointer in shared data names it; a VM that
//! holds the same full snapshot applies the deltas it lacks, in order, and any other reloads
//! the full snapshot and every delta since.

use pat_core::keys::TrustedKeys;
use pat_core::snapshot::{ApplyError, Delta, SnapshotError, Stale, TokenState};

use super::Replica;
use crate::shared::{self, SharedStore, StoreError};

/// Why a published state cannot be used here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unusable {
    /// A document does not verify here (e.g. an untrusted key).
    #[error(transparent)]
    Invalid(#[from] SnapshotError),
    /// It has expired.
    #[error(transparent)]
    Stale(#[from] Stale),
    /// A delta in shared data does not apply (a publisher bug).
    #[error(transparent)]
    Chain(#[from] ApplyError),
}

/// What a refresh did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refresh {
    /// Already serving the current state (or nothing newer exists).
    Unchanged,
    /// Nothing has been published to this Envoy yet.
    NothingPublished,
    /// Caught up with the published state.
    Applied {
        /// Its version.
        version: u64,
        /// Its token count.
        tokens: u64,
        /// Deltas applied on the way.
        deltas: usize,
        /// Whether the full snapshot was (re)loaded.
        full: bool,
    },
    /// The published state cannot be used here; the VM now has none and token requests fail
    /// closed. Reported once per published state.
    Failed(Unusable),
}

/// Reloading after a pointer race: the pointer can move between reading it and fetching the
/// keys it names; a few retries always catch up.
const LOAD_ATTEMPTS: usize = 3;

impl Replica {
    /// Checks the shared pointer and catches up with the published state — by its deltas
    /// when this VM holds the same full snapshot, else by reloading — and drops the state in
    /// use when it expires.
    pub fn refresh(
        &mut self,
        store: &impl SharedStore,
        keys: &TrustedKeys,
        now_ms: u64,
    ) -> Result<Refresh, StoreError> {
        if let Some(stale) = self.drop_expired(now_ms) {
            return Ok(Refresh::Failed(stale.into()));
        }
        for _ in 0..LOAD_ATTEMPTS {
            let (pointer, _) = shared::read_pointer(store)?;
            if pointer.version == 0 {
                return Ok(if self.state.is_some() {
                    Refresh::Unchanged
                } else {
                    Refresh::NothingPublished
                });
            }
            let held = self.held();
            if held.is_some_and(|h| h.names(&pointer) || h.version > pointer.version)
                || self.refused.is_some_and(|r| r.names(&pointer))
            {
                return Ok(Refresh::Unchanged);
            }
            if now_ms >= pointer.expires_at.saturating_mul(1000) {
                self.state = None;
                self.refused = Some(pointer);
                return Ok(Refresh::Failed(Unusable::Stale(Stale::Expired {
                    version: pointer.version,
                    expires_at: pointer.expires_at,
                })));
            }
            // Deltas alone, when this VM holds the same full snapshot.
            let mut full = false;
            let mut from = held.filter(|h| h.shares_base(&pointer)).map(|h| h.version);
            if from.is_none() {
                // Drop first: never two full snapshots in memory.
                self.state = None;
                let Some(bytes) = shared::load_full(store, &pointer)? else {
                    continue;
                };
                match pat_core::snapshot::Snapshot::open(bytes, keys) {
                    Ok(snapshot) => self.state = Some(TokenState::new(snapshot)),
                    Err(e) => {
                        self.refused = Some(pointer);
                        return Ok(Refresh::Failed(e.into()));
                    }
                }
                full = true;
                from = Some(pointer.base_version);
            }
            let mut deltas = 0;
            let mut gone = false;
            for version in from.unwrap_or(pointer.version).saturating_add(1)..=pointer.version {
                let state_id = self.state.as_ref().map_or([0; 32], TokenState::state_id);
                let Some(bytes) = shared::load_delta(store, version, &state_id)? else {
                    gone = true;
                    break;
                };
                let applied = Delta::open(bytes, keys)
                    .map_err(Unusable::from)
                    .and_then(|delta| match self.state.as_mut() {
                        Some(state) => state.apply(&delta).map_err(Unusable::from),
                        None => Ok(()),
                    });
                if let Err(e) = applied {
                    self.state = None;
                    self.refused = Some(pointer);
                    return Ok(Refresh::Failed(e));
                }
                deltas += 1;
            }
            if gone {
                // The pointer moved on meanwhile: start over from the full snapshot.
                self.state = None;
                continue;
            }
            self.refused = None;
            let (version, tokens) = self
                .state
                .as_ref()
                .map_or((0, 0), |s| (s.version(), s.token_count()));
            return Ok(Refresh::Applied {
                version,
                tokens,
                deltas,
                full,
            });
        }
        Ok(Refresh::Unchanged)
    }
}
