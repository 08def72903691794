//! Small adapters over proxy-wasm host calls.

use std::time::UNIX_EPOCH;

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, LogLevel, MapType, Status};

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

/// The host's wall clock, Unix seconds.
pub(crate) fn now_unix() -> u64 {
    now_millis() / 1000
}

/// The host's wall clock, Unix milliseconds.
pub(crate) fn now_millis() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A request header's value as bytes (never the string getter: it panics on non-UTF-8).
pub(crate) fn request_header(name: &str) -> Option<Vec<u8>> {
    hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, name)
        .ok()
        .flatten()
}

/// The request's `content-length`, when present and numeric.
pub(crate) fn content_length() -> Option<usize> {
    let value = request_header("content-length")?;
    std::str::from_utf8(&value).ok()?.trim().parse().ok()
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
