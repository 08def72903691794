//! What a request needs from its host: the request's headers and body, local replies, a
//! property, the clock, logs and metrics, and the VM's state (its snapshot, its usage log,
//! shared data). The filter implements it over proxy-wasm (`glue`), the unit tests over a
//! recording fake.
//!
//! Over proxy-wasm each request-level method is one host call at most (the VM's state is
//! this VM's own memory; `refresh` is the tick's snapshot check), and the machine is
//! generic over the host: the trait adds no call and no dispatch to a request.

use crate::decide::Reason;
use crate::header_map::HeaderMap;
pub use crate::log::Level;
use crate::rate_limit::LocalBudgets;
use crate::replica::Replica;
use crate::shared::SharedStore;
use crate::usage::UsageLog;

/// What a request counts (the filter's metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Forwarded untouched (no token).
    PassedThrough,
    /// Allowed with a token.
    Allowed,
    /// Denied, for this reason.
    Denied(Reason),
    /// A push accepted or refused.
    Push {
        /// Accepted.
        accepted: bool,
    },
    /// A push was published and this VM serves it now.
    Serving {
        /// Its version.
        version: u64,
        /// Its tokens.
        tokens: u64,
        /// How long verifying and publishing it took.
        apply_ms: u64,
    },
}

/// The host of one request (one HTTP context) and of the VM it runs in.
pub trait RequestHost {
    /// The VM's shared data.
    type Store: SharedStore;

    /// Every request header (pseudo-headers too) in one call; `None` when the host could not
    /// give them. The request is refused then, and when the map does not add up.
    fn request_headers(&self) -> Option<HeaderMap>;
    /// Adds a request header value.
    fn add_header(&self, name: &str, value: &[u8]);
    /// Replaces a request header's values with one.
    fn set_header(&self, name: &str, value: &[u8]);
    /// Removes every value of a request header.
    fn remove_header(&self, name: &str);

    /// `len` bytes of the buffered request body from `start` (`len` 0: an empty read that
    /// costs nothing).
    fn body(&self, start: usize, len: usize) -> Option<Vec<u8>>;
    /// Replaces the first `len` bytes of the buffered request body with `value` (the only
    /// rewrite Envoy supports).
    fn replace_body_prefix(&self, len: usize, value: &[u8]);
    /// Empties the first `len` bytes of the buffered request body.
    fn drain_body(&self, len: usize);

    /// A stream property (`["source", "address"]`, `["destination", "address"]`).
    fn property(&self, path: &[&str]) -> Option<Vec<u8>>;

    /// Answers the request here with a JSON body (`content-type` and `cache-control` set,
    /// plus `extra_headers`).
    fn send_json(&self, status: u32, body: &str, extra_headers: &[(&str, &str)]);

    /// Unix seconds for an expiry check: the clock of the last tick when ticks are frequent
    /// enough (`tick_clock_is_fresh`), else the host's.
    fn clock_secs(&self, tick_clock_is_fresh: bool) -> u64;
    /// The host's wall clock, Unix milliseconds.
    fn now_millis(&self) -> u64;
    /// The host's wall clock, Unix microseconds (for timings in logs).
    fn now_micros(&self) -> u64;
    /// The VM's linear memory in bytes (for logs).
    fn memory_bytes(&self) -> usize;

    /// Whether a [`Level::Debug`] line would be logged.
    fn debug_enabled(&self) -> bool;
    /// Logs a line. Callers never pass a token: only masked values and ids.
    fn log(&self, level: Level, message: &str);
    /// Counts an event.
    fn count(&self, event: Event);

    /// The VM's shared data.
    fn store(&self) -> &Self::Store;
    /// The VM's copy of the token state.
    fn replica<R>(&self, f: impl FnOnce(&Replica) -> R) -> R;
    /// The VM's copy of the token state, to change it.
    fn replica_mut<R>(&self, f: impl FnOnce(&mut Replica) -> R) -> R;
    /// What the VM let through since its last usage report.
    fn usage<R>(&self, f: impl FnOnce(&mut UsageLog) -> R) -> R;
    /// The VM's own rate-limit budgets (used when budgets are split per worker).
    fn rate_budgets<R>(&self, f: impl FnOnce(&mut LocalBudgets) -> R) -> R;
    /// Whether the VM serves requests (holds a snapshot of its own).
    fn vm_active(&self) -> bool;
    /// The VM's number within this Envoy.
    fn vm_number(&self) -> u64;
    /// Loads the published snapshot into the VM (logged and counted by the host).
    fn refresh(&self);
}
