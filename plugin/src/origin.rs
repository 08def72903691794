//! Recovery from the snapshot origin (`pat-admin serve`): shared data dies with Envoy, so a
//! (re)started edge fetches the signed snapshot itself — at start, then every interval, with
//! `If-None-Match` so an unchanged snapshot costs a `304`.
//!
//! One VM at a time fetches. They coordinate through a *fetch slot* in shared data: when the
//! next fetch is due and no fetch is in flight, a VM claims the slot by compare-and-swap and
//! dispatches the request; the answer records the outcome and schedules the next fetch (the
//! interval after a success, a short retry after a failure). VMs that do not serve requests
//! (Envoy's main-thread VM) claim first; serving VMs only step in when a fetch is overdue, so
//! the 57 MB body of a 1,000,000-token snapshot is normally not held next to a VM's own copy.

use std::time::Duration;

use crate::shared::{SharedStore, StoreError};

/// The fetch slot key.
pub const SLOT_KEY: &str = "pat_edge.v1.origin";
/// How late a fetch must be before a serving VM takes it over.
pub const OVERDUE: Duration = Duration::from_secs(5);

/// The `origin` configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginConfig {
    /// Envoy cluster of the origin.
    pub cluster: String,
    /// Path of the snapshot on the origin.
    pub path: String,
    /// `:authority` of the request.
    pub authority: String,
    /// Time between fetches after a success (or a 304).
    pub interval: Duration,
    /// Time before retrying after a failure.
    pub retry: Duration,
    /// Timeout of one fetch.
    pub timeout: Duration,
}

/// The fetch slot: when the next fetch is due, whether one is in flight, and the last ETag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slot {
    /// Unix milliseconds from which the next fetch is due.
    pub next_fetch_ms: u64,
    /// Unix milliseconds until which a claimed fetch is considered in flight.
    pub in_flight_until_ms: u64,
    /// The origin's ETag of the last snapshot fetched.
    pub etag: Option<String>,
}

impl Slot {
    /// 8-byte LE `next_fetch_ms`, 8-byte LE `in_flight_until_ms`, then the ETag bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.etag.as_ref().map_or(0, String::len));
        out.extend_from_slice(&self.next_fetch_ms.to_le_bytes());
        out.extend_from_slice(&self.in_flight_until_ms.to_le_bytes());
        if let Some(etag) = &self.etag {
            out.extend_from_slice(etag.as_bytes());
        }
        out
    }

    /// Decodes [`Self::encode`]'s output; anything unreadable is a fresh slot.
    pub fn decode(bytes: &[u8]) -> Self {
        let read = |range: std::ops::Range<usize>| {
            bytes
                .get(range)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u64::from_le_bytes)
        };
        let etag = bytes
            .get(16..)
            .filter(|b| !b.is_empty())
            .and_then(|b| std::str::from_utf8(b).ok())
            .map(str::to_string);
        Self {
            next_fetch_ms: read(0..8),
            in_flight_until_ms: read(8..16),
            etag,
        }
    }
}

/// Creates the slot if it does not exist (at VM start, before traffic), with the first fetch
/// due now: idle VMs take it at once, serving VMs only if it is still pending later.
pub fn ensure_slot(store: &impl SharedStore, now_ms: u64) -> Result<(), StoreError> {
    if store.get(SLOT_KEY)?.is_none() {
        let slot = Slot {
            next_fetch_ms: now_ms,
            ..Slot::default()
        };
        store.set(SLOT_KEY, &slot.encode(), 0)?;
    }
    Ok(())
}

/// Tries to claim the next fetch. `serving`: this VM serves requests (it then only takes an
/// overdue fetch). Returns the ETag to send as `If-None-Match` when claimed.
pub fn try_claim(
    store: &impl SharedStore,
    now_ms: u64,
    serving: bool,
    config: &OriginConfig,
) -> Result<Option<Option<String>>, StoreError> {
    let Some((bytes, cas)) = store.get(SLOT_KEY)? else {
        ensure_slot(store, now_ms)?;
        return Ok(None);
    };
    let slot = Slot::decode(&bytes);
    let due = if serving {
        slot.next_fetch_ms.saturating_add(millis(OVERDUE))
    } else {
        slot.next_fetch_ms
    };
    if now_ms < due || now_ms < slot.in_flight_until_ms {
        return Ok(None);
    }
    let claimed = Slot {
        in_flight_until_ms: now_ms
            .saturating_add(millis(config.timeout))
            .saturating_add(1000),
        ..slot.clone()
    };
    match store.set(SLOT_KEY, &claimed.encode(), cas) {
        Ok(()) => Ok(Some(slot.etag)),
        Err(StoreError::CasMismatch) => Ok(None),
        Err(e) => Err(e),
    }
}

/// How a fetch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// A snapshot was received (accepted, or not newer than what the edge holds); remember
    /// its ETag.
    Snapshot {
        /// The origin's ETag, if it sent one.
        etag: Option<String>,
    },
    /// `304 Not Modified`.
    NotModified,
    /// Unreachable, an error status, or a snapshot that failed verification.
    Failed,
}

/// Records the outcome and schedules the next fetch.
pub fn finish(
    store: &impl SharedStore,
    now_ms: u64,
    outcome: &Fetched,
    config: &OriginConfig,
) -> Result<(), StoreError> {
    for _ in 0..8 {
        let (bytes, cas) = store.get(SLOT_KEY)?.unwrap_or_default();
        let mut slot = Slot::decode(&bytes);
        slot.in_flight_until_ms = 0;
        slot.next_fetch_ms = now_ms.saturating_add(millis(match outcome {
            Fetched::Failed => config.retry,
            Fetched::Snapshot { .. } | Fetched::NotModified => config.interval,
        }));
        if let Fetched::Snapshot { etag } = outcome {
            slot.etag = etag.clone();
        }
        match store.set(SLOT_KEY, &slot.encode(), cas) {
            Ok(()) => return Ok(()),
            Err(StoreError::CasMismatch) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::CasMismatch)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::tests::MemoryStore;

    fn config() -> OriginConfig {
        OriginConfig {
            cluster: "pat_origin".into(),
            path: "/snapshot".into(),
            authority: "pat-origin".into(),
            interval: Duration::from_secs(30),
            retry: Duration::from_secs(2),
            timeout: Duration::from_secs(10),
        }
    }

    #[test]
    fn slot_round_trip() {
        let slot = Slot {
            next_fetch_ms: 5,
            in_flight_until_ms: 9,
            etag: Some("\"3-ab\"".into()),
        };
        assert_eq!(Slot::decode(&slot.encode()), slot);
        assert_eq!(Slot::decode(b"short"), Slot::default());
    }

    #[test]
    fn one_claim_at_a_time_then_scheduled() {
        let store = MemoryStore::default();
        let c = config();
        ensure_slot(&store, 0).expect("store");
        assert_eq!(
            try_claim(&store, 1_000, false, &c),
            Ok(Some(None)),
            "due at start"
        );
        assert_eq!(try_claim(&store, 1_001, false, &c), Ok(None), "in flight");
        finish(
            &store,
            2_000,
            &Fetched::Snapshot {
                etag: Some("\"1-x\"".into()),
            },
            &c,
        )
        .expect("store");
        assert_eq!(
            try_claim(&store, 2_001, false, &c),
            Ok(None),
            "not due before the interval"
        );
        assert_eq!(
            try_claim(&store, 32_000, false, &c),
            Ok(Some(Some("\"1-x\"".into()))),
            "conditional next time"
        );
        finish(&store, 33_000, &Fetched::Failed, &c).expect("store");
        assert_eq!(
            try_claim(&store, 35_000, false, &c),
            Ok(Some(Some("\"1-x\"".into()))),
            "retried after 2 s"
        );
    }

    #[test]
    fn serving_vms_only_take_overdue_fetches() {
        let store = MemoryStore::default();
        let c = config();
        ensure_slot(&store, 1_000_000).expect("store");
        assert_eq!(try_claim(&store, 1_004_000, true, &c), Ok(None));
        assert_eq!(try_claim(&store, 1_005_000, true, &c), Ok(Some(None)));
        // The slot is created with the first fetch due now, not in 1970.
        let fresh = MemoryStore::default();
        ensure_slot(&fresh, 1_000_000).expect("store");
        assert_eq!(try_claim(&fresh, 1_000_050, true, &c), Ok(None));
        assert_eq!(try_claim(&fresh, 1_000_050, false, &c), Ok(Some(None)));
    }

    #[test]
    fn a_claim_that_never_answers_expires() {
        let store = MemoryStore::default();
        let c = config();
        ensure_slot(&store, 0).expect("store");
        assert!(try_claim(&store, 0, false, &c).expect("store").is_some());
        assert_eq!(try_claim(&store, 10_999, false, &c), Ok(None));
        assert!(
            try_claim(&store, 11_000, false, &c)
                .expect("store")
                .is_some(),
            "timeout + 1 s later"
        );
    }
}
