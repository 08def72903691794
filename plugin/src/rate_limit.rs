//! Per-token rate limits at the edge, as the generic cell rate algorithm (GCRA): one number
//! per token, the *theoretical arrival time* (TAT) of its next request at the steady rate.
//! A request at `now` is admitted when the TAT is at most the burst tolerance ahead of
//! `now` (`(burst - 1) × interval`), and moves the TAT one interval on; otherwise it is
//! refused and told how long until it would be admitted. Equivalent to a token bucket of
//! [`RateLimit::burst`] requests refilled at the limit's rate, in 8 bytes and one
//! comparison.
//!
//! Where the TAT lives is the [`Budget`]'s choice:
//! - [`Budget::Shared`] (the default): in proxy-wasm shared data under `pat_edge.v1.rate.<id>`,
//!   updated with a compare-and-swap, so the edge's workers share one budget and a client
//!   gets the limit whichever worker its connections land on. Two host calls per request of
//!   a limited token; none for other tokens.
//! - [`Budget::PerWorker`]: in the worker's own memory, each worker enforcing
//!   `limit / workers`: no host call, but a client whose connections all land on one worker
//!   gets only its share (see the README's measurements).
//!
//! A key is written only for a token that carries a limit and is used; keys of tokens
//! removed since stay (8 bytes each: proxy-wasm shared data cannot delete).

use std::collections::HashMap;

use pat_core::rate::RateLimit;

use crate::digits::decimal_str;
use crate::shared::{SharedStore, StoreError};

/// Shared-data key prefix of a token's TAT.
pub const KEY_PREFIX: &str = "pat_edge.v1.rate.";

/// How many compare-and-swap attempts before a request is counted as over the limit (only
/// reached when workers race for one token's key this many times in a row).
const CAS_ATTEMPTS: usize = 8;

/// Per-worker budgets tracked before idle ones are forgotten.
const PRUNE_AT: usize = 65_536;

/// The outcome of asking for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Within the limit.
    Admitted,
    /// Over it: retry after this many milliseconds (at least 1).
    Limited {
        /// When a retry would be admitted.
        retry_after_ms: u64,
    },
}

/// One GCRA step: the new TAT if admitted, else how long until a request would be.
/// `tat` and `now` are microseconds; a TAT of 0 is a token not seen yet.
pub fn step(tat_us: u64, limit: RateLimit, now_us: u64, workers: u32) -> Result<u64, u64> {
    let interval = interval_us(limit, workers);
    let burst = u64::from(limit.burst().div_ceil(workers.max(1)).max(1));
    let tolerance = interval.saturating_mul(burst - 1);
    let tat = tat_us.max(now_us);
    let ahead = tat - now_us;
    if ahead > tolerance {
        Err((ahead - tolerance).div_ceil(1000).max(1))
    } else {
        Ok(tat.saturating_add(interval))
    }
}

/// Microseconds between two requests at the steady rate, for one of `workers` workers.
fn interval_us(limit: RateLimit, workers: u32) -> u64 {
    (limit.interval_nanos() / 1000)
        .max(1)
        .saturating_mul(u64::from(workers.max(1)))
}

/// Where the budgets live.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Budget {
    /// In shared data: one budget per token for the whole edge.
    #[default]
    Shared,
    /// In each worker's memory: `limit / workers` each.
    PerWorker {
        /// The edge's worker count (Envoy's `--concurrency`).
        workers: u32,
    },
}

/// The per-worker budgets of one VM (used with [`Budget::PerWorker`]).
#[derive(Debug, Default)]
pub struct LocalBudgets {
    tats: HashMap<u64, u64>,
}

impl LocalBudgets {
    /// Asks for one request of token `id`.
    pub fn admit(&mut self, id: u64, limit: RateLimit, now_us: u64, workers: u32) -> Admission {
        if self.tats.len() >= PRUNE_AT {
            self.prune(now_us);
        }
        let tat = self.tats.entry(id).or_insert(0);
        match step(*tat, limit, now_us, workers) {
            Ok(next) => {
                *tat = next;
                Admission::Admitted
            }
            Err(retry_after_ms) => Admission::Limited { retry_after_ms },
        }
    }

    /// Forgets budgets whose TAT has passed (they would admit a full burst anyway).
    pub fn prune(&mut self, now_us: u64) {
        self.tats.retain(|_, tat| *tat > now_us);
    }

    /// Tokens tracked.
    pub fn len(&self) -> usize {
        self.tats.len()
    }

    /// True when none is tracked.
    pub fn is_empty(&self) -> bool {
        self.tats.is_empty()
    }
}

/// Asks the edge-wide budget in shared data for one request of token `id`.
pub fn admit_shared(
    store: &impl SharedStore,
    id: u64,
    limit: RateLimit,
    now_us: u64,
) -> Result<Admission, StoreError> {
    let mut key = String::with_capacity(KEY_PREFIX.len() + 20);
    key.push_str(KEY_PREFIX);
    key.push_str(decimal_str(id, &mut [0; 20]));
    for _ in 0..CAS_ATTEMPTS {
        let (value, cas) = store.get(&key)?.unwrap_or_default();
        let tat = value
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u64::from_le_bytes);
        match step(tat, limit, now_us, 1) {
            Err(retry_after_ms) => return Ok(Admission::Limited { retry_after_ms }),
            Ok(next) => match store.set(&key, &next.to_le_bytes(), cas) {
                Ok(()) => return Ok(Admission::Admitted),
                Err(StoreError::CasMismatch) => continue,
                Err(other) => return Err(other),
            },
        }
    }
    // Lost every race: the others are spending this budget right now.
    Ok(Admission::Limited {
        retry_after_ms: (interval_us(limit, 1) / 1000).max(1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::memory::MemoryStore;

    fn limit(text: &str) -> RateLimit {
        text.parse().unwrap()
    }

    /// Admitted requests when asking every `gap_us` for `seconds`.
    fn admitted(mut ask: impl FnMut(u64) -> Admission, gap_us: u64, seconds: u64) -> u64 {
        let start = 1_800_000_000_000_000u64;
        (0..seconds * 1_000_000 / gap_us)
            .filter(|i| ask(start + i * gap_us) == Admission::Admitted)
            .count() as u64
    }

    #[test]
    fn a_burst_then_the_steady_rate() {
        let mut budgets = LocalBudgets::default();
        let l = limit("5/s");
        let t0 = 1_000_000_000;
        for _ in 0..5 {
            assert_eq!(budgets.admit(1, l, t0, 1), Admission::Admitted);
        }
        assert_eq!(
            budgets.admit(1, l, t0, 1),
            Admission::Limited {
                retry_after_ms: 200
            }
        );
        assert_eq!(
            budgets.admit(1, l, t0 + 199_000, 1),
            Admission::Limited { retry_after_ms: 1 }
        );
        assert_eq!(budgets.admit(1, l, t0 + 200_000, 1), Admission::Admitted);
        // Another token has its own budget.
        assert_eq!(budgets.admit(2, l, t0, 1), Admission::Admitted);
    }

    #[test]
    fn over_ten_seconds_the_limit_plus_one_burst_is_admitted() {
        for (text, expected) in [("50/s", 500 + 50), ("500/s", 5000 + 500), ("30/min", 5)] {
            let l = limit(text);
            let mut budgets = LocalBudgets::default();
            // Asking every 100 µs: far more often than any of these limits.
            let got = admitted(|now| budgets.admit(7, l, now, 1), 100, 10);
            assert!(
                got.abs_diff(expected) <= 1,
                "{text}: {got} admitted, {expected} expected"
            );
        }
    }

    #[test]
    fn per_worker_budgets_split_the_limit() {
        let l = limit("50/s");
        let mut one = LocalBudgets::default();
        // One worker of two sees every request: it admits half the limit (and half the burst).
        let got = admitted(|now| one.admit(7, l, now, 2), 100, 10);
        assert!(got.abs_diff(250 + 25) <= 1, "{got}");
    }

    #[test]
    fn shared_budgets_hold_across_workers() {
        let store = MemoryStore::default();
        let l = limit("50/s");
        // Two workers alternating on one token share one budget.
        let got = admitted(|now| admit_shared(&store, 9, l, now).unwrap(), 100, 10);
        assert!(got.abs_diff(550) <= 1, "{got}");
        assert!(store.value("pat_edge.v1.rate.9").is_some());
        assert_eq!(store.live_keys().len(), 1);
    }

    /// A store whose first `fail` sets lose a race.
    struct Racing {
        inner: MemoryStore,
        fail: std::cell::Cell<usize>,
    }

    impl SharedStore for Racing {
        fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
            self.inner.get(key)
        }
        fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
            if self.fail.get() > 0 {
                self.fail.set(self.fail.get() - 1);
                return Err(StoreError::CasMismatch);
            }
            self.inner.set(key, value, cas)
        }
    }

    #[test]
    fn a_lost_race_is_retried_and_endless_races_count_as_over_the_limit() {
        let l = limit("5/s");
        let racing = Racing {
            inner: MemoryStore::default(),
            fail: std::cell::Cell::new(3),
        };
        assert_eq!(
            admit_shared(&racing, 1, l, 1_000_000),
            Ok(Admission::Admitted)
        );
        racing.fail.set(usize::MAX);
        assert!(matches!(
            admit_shared(&racing, 1, l, 1_000_000),
            Ok(Admission::Limited { .. })
        ));
    }

    #[test]
    fn idle_budgets_are_pruned() {
        let mut budgets = LocalBudgets::default();
        budgets.admit(1, limit("5/s"), 1_000_000, 1);
        budgets.prune(1_100_000);
        assert_eq!(budgets.len(), 1);
        budgets.prune(1_200_001);
        assert!(budgets.is_empty());
    }
}
