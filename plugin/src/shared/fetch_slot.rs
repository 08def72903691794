//! The fetch slot: one origin fetch at a time per edge, what it fetches next and when.
//!
//! When the next fetch is due and none is in flight, a VM claims the slot by
//! compare-and-swap and dispatches the request ([`try_claim`]); the answer records the
//! outcome and schedules the next fetch ([`finish`]): the interval after a success, a short
//! retry after a failure, at once when the head announced a newer state. A claim whose answer
//! never comes ends by itself (the call's timeout and a second). Any VM takes a head fetch;
//! for the state itself, VMs that do not serve requests (Envoy's main-thread VM) claim first
//! and serving VMs only step in when it is [`OVERDUE`], so the 57 MB body of a
//! 1,000,000-token snapshot is normally not held next to a VM's own copy.

use std::time::Duration;

use super::{SharedStore, StoreError};
use crate::config::OriginConfig;

/// The fetch slot key.
pub const SLOT_KEY: &str = "pat_edge.v2.origin";
/// How late a full-snapshot fetch must be before a serving VM takes it over.
pub const OVERDUE: Duration = Duration::from_secs(5);

/// What a claimed fetch asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetch {
    /// The signed head.
    Head,
    /// What the edge lacks (or, `full`, the origin's whole state), conditionally on this ETag.
    Snapshot {
        /// The ETag of the last full answer fetched.
        etag: Option<String>,
        /// Ask for the full state, not the deltas since the version held (this edge's chain
        /// is not the origin's).
        full: bool,
    },
}

/// The fetch slot: when the next fetch is due, whether one is in flight, what it fetches,
/// and the last ETag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slot {
    /// Unix milliseconds from which the next fetch is due.
    pub next_fetch_ms: u64,
    /// Unix milliseconds until which a claimed fetch is considered in flight.
    pub in_flight_until_ms: u64,
    /// The next fetch is the state (the head announced a newer one).
    pub want_snapshot: bool,
    /// ...and in full (the deltas did not apply).
    pub want_full: bool,
    /// The origin's ETag of the last snapshot fetched.
    pub etag: Option<String>,
}

impl Slot {
    /// 8-byte LE `next_fetch_ms`, 8-byte LE `in_flight_until_ms`, a flag byte, then the ETag.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(17 + self.etag.as_ref().map_or(0, String::len));
        out.extend_from_slice(&self.next_fetch_ms.to_le_bytes());
        out.extend_from_slice(&self.in_flight_until_ms.to_le_bytes());
        out.push(u8::from(self.want_snapshot) | (u8::from(self.want_full) << 1));
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
            .get(17..)
            .filter(|b| !b.is_empty())
            .and_then(|b| std::str::from_utf8(b).ok())
            .map(str::to_string);
        Self {
            next_fetch_ms: read(0..8),
            in_flight_until_ms: read(8..16),
            want_snapshot: bytes.get(16).is_some_and(|b| b & 1 != 0),
            want_full: bytes.get(16).is_some_and(|b| b & 2 != 0),
            etag,
        }
    }
}

/// Creates the slot if it does not exist (at VM start, before traffic), with the first fetch
/// (a head) due now.
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
/// overdue full-snapshot fetch). Returns what to fetch when claimed.
pub fn try_claim(
    store: &impl SharedStore,
    now_ms: u64,
    serving: bool,
    config: &OriginConfig,
) -> Result<Option<Fetch>, StoreError> {
    let Some((bytes, cas)) = store.get(SLOT_KEY)? else {
        ensure_slot(store, now_ms)?;
        return Ok(None);
    };
    let slot = Slot::decode(&bytes);
    let due = if serving && slot.want_snapshot {
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
        Ok(()) => Ok(Some(if slot.want_snapshot {
            Fetch::Snapshot {
                etag: slot.etag,
                full: slot.want_full,
            }
        } else {
            Fetch::Head
        })),
        Err(StoreError::CasMismatch) => Ok(None),
        Err(e) => Err(e),
    }
}

/// How a fetch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// The head names a snapshot newer than the one held: fetch it now.
    HeadNewer,
    /// The head names nothing newer (or the origin has nothing yet).
    HeadCurrent,
    /// A snapshot was received (accepted, or not newer than what the edge holds); remember
    /// its ETag.
    Snapshot {
        /// The origin's ETag, if it sent one.
        etag: Option<String>,
    },
    /// `304 Not Modified`.
    NotModified,
    /// The origin's deltas do not apply to this edge's state: fetch its full state next.
    NeedFull,
    /// Unreachable, an error status, or something that failed verification.
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
        let (delay, want_snapshot, want_full) = match outcome {
            Fetched::HeadNewer => (Duration::ZERO, true, false),
            Fetched::NeedFull => (Duration::ZERO, true, true),
            Fetched::Failed => (config.retry, slot.want_snapshot, slot.want_full),
            Fetched::HeadCurrent | Fetched::Snapshot { .. } | Fetched::NotModified => {
                (config.interval, false, false)
            }
        };
        slot.next_fetch_ms = now_ms.saturating_add(millis(delay));
        slot.want_snapshot = want_snapshot;
        slot.want_full = want_full;
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
    use crate::shared::memory::MemoryStore;

    fn config() -> OriginConfig {
        OriginConfig {
            cluster: "pat_origin".into(),
            path: "/snapshot".into(),
            head_path: "/snapshot/head".into(),
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
            want_snapshot: true,
            want_full: true,
            etag: Some("\"3-ab\"".into()),
        };
        assert_eq!(Slot::decode(&slot.encode()), slot);
        assert_eq!(Slot::decode(b"short"), Slot::default());
    }

    #[test]
    fn a_round_is_a_head_then_the_snapshot_only_when_newer() {
        let store = MemoryStore::default();
        let c = config();
        ensure_slot(&store, 0).expect("store");
        assert_eq!(
            try_claim(&store, 1_000, false, &c),
            Ok(Some(Fetch::Head)),
            "due at start"
        );
        assert_eq!(try_claim(&store, 1_001, false, &c), Ok(None), "in flight");
        // The head announces a newer snapshot: fetched at once.
        finish(&store, 1_100, &Fetched::HeadNewer, &c).expect("store");
        assert_eq!(
            try_claim(&store, 1_100, false, &c),
            Ok(Some(Fetch::Snapshot {
                etag: None,
                full: false
            }))
        );
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
        assert_eq!(try_claim(&store, 32_000, false, &c), Ok(Some(Fetch::Head)));
        finish(&store, 32_100, &Fetched::HeadCurrent, &c).expect("store");
        assert_eq!(try_claim(&store, 32_200, false, &c), Ok(None));
        // A failed head is retried soon, still as a head.
        assert_eq!(try_claim(&store, 62_100, false, &c), Ok(Some(Fetch::Head)));
        finish(&store, 62_200, &Fetched::Failed, &c).expect("store");
        assert_eq!(try_claim(&store, 64_200, false, &c), Ok(Some(Fetch::Head)));
        // A failed snapshot fetch is retried as a snapshot fetch, conditionally.
        finish(&store, 64_300, &Fetched::HeadNewer, &c).expect("store");
        assert!(
            try_claim(&store, 64_300, false, &c)
                .expect("store")
                .is_some()
        );
        finish(&store, 64_400, &Fetched::Failed, &c).expect("store");
        assert_eq!(
            try_claim(&store, 66_400, false, &c),
            Ok(Some(Fetch::Snapshot {
                etag: Some("\"1-x\"".into()),
                full: false
            }))
        );
    }

    #[test]
    fn serving_vms_take_heads_but_only_overdue_snapshots() {
        let store = MemoryStore::default();
        let c = config();
        ensure_slot(&store, 1_000_000).expect("store");
        assert_eq!(
            try_claim(&store, 1_000_050, true, &c),
            Ok(Some(Fetch::Head))
        );
        finish(&store, 1_000_100, &Fetched::HeadNewer, &c).expect("store");
        assert_eq!(try_claim(&store, 1_004_000, true, &c), Ok(None));
        assert_eq!(
            try_claim(&store, 1_005_100, true, &c),
            Ok(Some(Fetch::Snapshot {
                etag: None,
                full: false
            }))
        );
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
