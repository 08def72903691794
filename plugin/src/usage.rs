//! Usage: each VM remembers, in its own memory, when it last let each token through and
//! from which client address, and hands that to the origin in periodic signed reports.
//!
//! Recording costs no host call and no shared-data write on the request path: the time is
//! the clock read on the last tick, and the client address is read (one property call) only
//! the first time a token is seen in a report window. Reports are bounded
//! ([`pat_core::report::MAX_ENTRIES`]), one is in flight at a time, and a failed one is
//! dropped: usage is best effort and never touches requests.

use std::collections::HashMap;
use std::collections::hash_map::{DefaultHasher, Entry};
use std::hash::BuildHasherDefault;
use std::net::IpAddr;
use std::time::Duration;

use pat_core::report::{MAX_ENTRIES, Use};

/// The `usage` configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageConfig {
    /// Envoy cluster of the origin.
    pub cluster: String,
    /// Path reports are POSTed to.
    pub path: String,
    /// `:authority` of the request.
    pub authority: String,
    /// How often a VM sends what changed.
    pub interval: Duration,
    /// Timeout of one report.
    pub timeout: Duration,
}

/// One token's use in the current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    last_used: u64,
    address: Option<IpAddr>,
}

/// Token ids are the snapshot's, not a client's choice: a fixed hasher is safe and needs no
/// randomness from the host.
type Fixed = BuildHasherDefault<DefaultHasher>;

/// What this VM saw since its last report.
#[derive(Debug, Default)]
pub struct UsageLog {
    seen: HashMap<u64, Seen, Fixed>,
    /// Uses left out because the window was full.
    dropped: u64,
    /// A report is in flight.
    in_flight: bool,
    /// When the current window started (Unix milliseconds): its first use.
    window_started_ms: u64,
}

impl UsageLog {
    /// Records that `token_id` was let through at `now` (Unix seconds). Returns true when
    /// its client address is not known in this window yet (the caller then reads it once
    /// and calls [`Self::set_address`]).
    pub fn record(&mut self, token_id: u64, now: u64) -> bool {
        if self.seen.is_empty() {
            self.window_started_ms = now.saturating_mul(1000);
        }
        let full = self.seen.len() >= MAX_ENTRIES;
        match self.seen.entry(token_id) {
            Entry::Occupied(mut e) => {
                let seen = e.get_mut();
                seen.last_used = seen.last_used.max(now);
                seen.address.is_none()
            }
            Entry::Vacant(_) if full => {
                self.dropped += 1;
                false
            }
            Entry::Vacant(e) => {
                e.insert(Seen {
                    last_used: now,
                    address: None,
                });
                true
            }
        }
    }

    /// The client address of `token_id`'s use in this window.
    pub fn set_address(&mut self, token_id: u64, address: IpAddr) {
        if let Some(seen) = self.seen.get_mut(&token_id) {
            seen.address = Some(address);
        }
    }

    /// The uses to report when one is due at `now_ms` (`interval` after the window's first
    /// use, none in flight): the window is emptied and a report is in flight until
    /// [`Self::finished`].
    pub fn take_due(&mut self, now_ms: u64, interval: Duration) -> Option<Vec<Use>> {
        let interval_ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
        if self.in_flight
            || self.seen.is_empty()
            || now_ms < self.window_started_ms.saturating_add(interval_ms)
        {
            return None;
        }
        self.in_flight = true;
        let mut uses: Vec<Use> = self
            .seen
            .drain()
            .map(|(token_id, seen)| Use {
                token_id,
                last_used: seen.last_used,
                address: seen.address,
            })
            .collect();
        uses.sort_unstable_by_key(|u| u.token_id);
        Some(uses)
    }

    /// The report in flight ended (accepted or not: a failed report is not retried).
    pub fn finished(&mut self) {
        self.in_flight = false;
    }

    /// Uses left out so far because a window was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Tokens seen in the current window.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether nothing was seen in the current window.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_secs(10);

    #[test]
    fn a_window_keeps_the_last_use_and_the_first_address() {
        let mut log = UsageLog::default();
        assert!(log.record(7, 100), "address wanted the first time");
        log.set_address(7, "10.0.0.1".parse().expect("ip"));
        assert!(!log.record(7, 105), "known: no host call");
        assert!(!log.record(7, 103), "never moves back");
        assert!(log.record(8, 101));
        assert_eq!(log.take_due(100_000, INTERVAL), None, "not due yet");
        let uses = log.take_due(110_000, INTERVAL).expect("due");
        assert_eq!(
            uses,
            vec![
                Use {
                    token_id: 7,
                    last_used: 105,
                    address: Some("10.0.0.1".parse().expect("ip"))
                },
                Use {
                    token_id: 8,
                    last_used: 101,
                    address: None
                },
            ]
        );
        // One in flight at a time; the window starts over.
        assert!(log.record(9, 200));
        assert_eq!(log.take_due(230_000, INTERVAL), None, "in flight");
        log.finished();
        assert_eq!(log.take_due(230_000, INTERVAL).map(|u| u.len()), Some(1));
        log.finished();
        assert_eq!(log.take_due(260_000, INTERVAL), None, "nothing seen");
    }

    #[test]
    fn a_full_window_drops_new_tokens_not_known_ones() {
        let mut log = UsageLog::default();
        for id in 0..MAX_ENTRIES as u64 {
            log.record(id, 1);
        }
        assert!(!log.record(u64::MAX, 2));
        assert_eq!(log.dropped(), 1);
        log.record(0, 3);
        assert_eq!(log.len(), MAX_ENTRIES);
        let uses = log.take_due(11_000, INTERVAL).expect("due");
        assert_eq!(uses.first().map(|u| u.last_used), Some(3));
    }
}
