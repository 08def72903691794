//! The levels the state machines log at; each host maps them to its own (proxy-wasm's in the
//! glue).

/// A log line's level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Only formatted when the host logs debug lines (per-request detail).
    Debug,
    /// A push accepted, a snapshot served, a catch-up.
    Info,
    /// Something refused or failed that the edge recovers from (a refused push, an origin
    /// that did not answer, a shared-data failure).
    Warn,
    /// Something an operator must look at (a configuration refused, a snapshot that cannot be
    /// used, an origin whose answer fails verification).
    Error,
}
