//! What the root context needs from its host: outbound HTTP calls and their answers, the
//! refresh tick, the VM's state (its replica, usage log, shared data), the clock, logs and
//! metrics. The filter implements it over proxy-wasm (`glue`), the unit tests over a fake that
//! records every call and answers what the test says (`test_support`).

use std::time::Duration;

pub use crate::log::Level;
use crate::replica::Replica;
use crate::shared::SharedStore;
use crate::usage::UsageLog;

/// An outbound HTTP call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call<'a> {
    /// The Envoy cluster it goes to.
    pub cluster: &'a str,
    /// Its headers, pseudo-headers (`:method`, `:path`, `:authority`) first.
    pub headers: Vec<(&'a str, &'a str)>,
    /// Its body, if any.
    pub body: Option<&'a [u8]>,
    /// How long the host waits for the answer (then answers the call with nothing).
    pub timeout: Duration,
}

/// What the root counts (the filter's metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The origin sent a state (accepted, or not newer than the one held).
    Fetched,
    /// The origin's signed head was read.
    Head,
    /// The origin had nothing newer (`304`, or an empty catch-up).
    NotModified,
    /// An origin fetch failed (no answer, an error status, an answer refused).
    OriginFailed,
    /// The version floor is now this.
    Floor(u64),
    /// A usage report was delivered (`true`) or not.
    Report {
        /// Accepted by the origin.
        delivered: bool,
    },
    /// This VM serves from this state now.
    Serving {
        /// Its version (0: none).
        version: u64,
        /// Its tokens.
        tokens: u64,
        /// How long loading it took, when it was loaded.
        apply_ms: Option<u64>,
    },
    /// The published state cannot be used here.
    LoadFailed,
}

/// The host of a root context and of the VM it runs in.
pub trait RootHost {
    /// The VM's shared data.
    type Store: SharedStore;

    /// Dispatches an outbound call: its token, or why the host refused it (no such cluster).
    fn dispatch(&self, call: &Call<'_>) -> Result<u32, String>;
    /// A header of the answer being delivered (`:status` among them); `None` when absent.
    fn response_header(&self, name: &str) -> Option<String>;
    /// The first `len` bytes of the answer's body being delivered (fewer when it is shorter).
    fn response_body(&self, len: usize) -> Vec<u8>;
    /// Sets the refresh tick's period; `false` when the host refused it.
    fn set_tick_period(&self, period: Duration) -> bool;

    /// The VM's shared data.
    fn store(&self) -> &Self::Store;
    /// The VM's copy of the token state.
    fn replica<R>(&self, f: impl FnOnce(&Replica) -> R) -> R;
    /// The VM's copy of the token state, to change it.
    fn replica_mut<R>(&self, f: impl FnOnce(&mut Replica) -> R) -> R;
    /// What the VM let through since its last usage report.
    fn usage<R>(&self, f: impl FnOnce(&mut UsageLog) -> R) -> R;
    /// Whether the VM serves requests (and so holds a copy of the state).
    fn vm_active(&self) -> bool;

    /// The host's wall clock, Unix milliseconds.
    fn now_millis(&self) -> u64;
    /// The host's wall clock, Unix microseconds (for timings in logs).
    fn now_micros(&self) -> u64;
    /// The VM's linear memory in bytes (for logs).
    fn memory_bytes(&self) -> usize;

    /// Logs a line.
    fn log(&self, level: Level, message: &str);
    /// Counts an event.
    fn count(&self, event: Event);
}
