//! Small adapters over proxy-wasm host calls.

use std::cell::Cell;
use std::time::UNIX_EPOCH;

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, LogLevel, MapType, Status};

use crate::log::Level;
use crate::shared::{SharedStore, StoreError};

/// Proxy-wasm shared data (one map per `vm_id`, shared by every VM of this Envoy).
pub(crate) struct HostShared;

impl SharedStore for HostShared {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        match hostcalls::get_shared_data(key) {
            Ok((Some(value), cas)) => Ok(Some((value, cas.unwrap_or(0)))),
            Ok((None, Some(cas))) => Ok(Some((Vec::new(), cas))),
            Ok((None, None)) => Ok(None),
            Err(status) => Err(StoreError::Host(format!("get {key}: {status:?}"))),
        }
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        match hostcalls::set_shared_data(key, Some(value), Some(cas)) {
            Ok(()) => Ok(()),
            Err(Status::CasMismatch) => Err(StoreError::CasMismatch),
            Err(status) => Err(StoreError::Host(format!("set {key}: {status:?}"))),
        }
    }
}

/// Logs a line. Callers never pass a token: only masked values and ids.
pub(crate) fn log(level: LogLevel, message: &str) {
    let _ = hostcalls::log(level, message);
}

/// A state machine's log level as proxy-wasm's.
pub(crate) fn level(level: Level) -> LogLevel {
    match level {
        Level::Debug => LogLevel::Debug,
        Level::Info => LogLevel::Info,
        Level::Warn => LogLevel::Warn,
        Level::Error => LogLevel::Error,
    }
}

thread_local! {
    /// The wall clock in Unix seconds as of the last tick (0: not read yet). Expiry is
    /// checked against it so that a request does not pay for a host call; ticks come every
    /// `refresh_interval_ms` (at most 1 s when this is used, see [`request_clock`]).
    static CLOCK: Cell<u64> = const { Cell::new(0) };

    /// Whether the host logs `debug` lines, as of the last tick (until then: assume so).
    /// Per-request debug lines are only formatted when it does.
    static DEBUG_LOGS: Cell<bool> = const { Cell::new(true) };
}

/// Re-reads the host clock and log level into this VM's copies. Called on every tick.
pub(crate) fn on_tick() {
    CLOCK.set(now_millis() / 1000);
    DEBUG_LOGS.set(
        hostcalls::get_log_level().map_or(true, |level| level as u32 <= LogLevel::Debug as u32),
    );
}

/// Whether a debug line would be logged (as of the last tick).
pub(crate) fn debug_enabled() -> bool {
    DEBUG_LOGS.get()
}

/// Unix seconds for a request's expiry check: the clock read at the last tick when ticks
/// are frequent enough (`tick_clock_is_fresh`), else the host clock.
pub(crate) fn request_clock(tick_clock_is_fresh: bool) -> u64 {
    match CLOCK.get() {
        0 => {
            let now = now_millis() / 1000;
            CLOCK.set(now);
            now
        }
        cached if tick_clock_is_fresh => cached,
        _ => now_millis() / 1000,
    }
}

/// This VM's linear memory in bytes: the snapshot and everything else the guest holds (it
/// only grows; freed memory is reused by the guest's allocator).
pub(crate) fn vm_memory_bytes() -> usize {
    core::arch::wasm32::memory_size(0) * 65536
}

/// The host's wall clock, Unix microseconds: for timing what the VM does (logged in ms with
/// two decimals, since a delta applies in well under a millisecond).
pub(crate) fn now_micros() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The host's wall clock, Unix milliseconds.
pub(crate) fn now_millis() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Adds a request header value (after removing any, so it is the only one). Cheaper in
/// Envoy than a replace.
pub(crate) fn add_request_header(name: &str, value: &[u8]) {
    let _ = hostcalls::add_map_value_bytes(MapType::HttpRequestHeaders, name, value);
}

/// Sets (replaces) a request header.
pub(crate) fn set_request_header(name: &str, value: &[u8]) {
    let _ = hostcalls::set_map_value_bytes(MapType::HttpRequestHeaders, name, Some(value));
}

/// Removes every value of a request header.
pub(crate) fn remove_request_header(name: &str) {
    let _ = hostcalls::remove_map_value(MapType::HttpRequestHeaders, name);
}

/// `len` bytes of the buffered request body from `start`.
pub(crate) fn request_body(start: usize, len: usize) -> Option<Vec<u8>> {
    if len == 0 {
        return Some(Vec::new());
    }
    hostcalls::get_buffer(BufferType::HttpRequestBody, start, len)
        .ok()
        .flatten()
}

/// Replaces the first `len` bytes of the buffered request body with `value`. Envoy only
/// supports replacing a prefix (or appending): any other range is `BadArgument`, which the
/// SDK turns into a panic, so that is all this offers.
pub(crate) fn replace_request_body_prefix(len: usize, value: &[u8]) {
    let _ = hostcalls::set_buffer(BufferType::HttpRequestBody, 0, len, value);
}

/// Empties the first `len` bytes of the buffered request body (after they were copied into
/// the VM): Envoy then keeps no copy of what the filter already holds.
pub(crate) fn drain_request_body(len: usize) {
    let _ = hostcalls::set_buffer(BufferType::HttpRequestBody, 0, len, &[]);
}

/// A host property (e.g. `["destination", "address"]`).
pub(crate) fn property(path: &[&str]) -> Option<Vec<u8>> {
    hostcalls::get_property(path.to_vec()).ok().flatten()
}

/// Answers the request locally with a JSON body.
pub(crate) fn send_json(status: u32, body: &str, extra_headers: &[(&str, &str)]) {
    let mut headers = vec![
        ("content-type", "application/json"),
        ("cache-control", "no-store"),
    ];
    headers.extend_from_slice(extra_headers);
    let _ = hostcalls::send_http_response(status, headers, Some(body.as_bytes()));
}
