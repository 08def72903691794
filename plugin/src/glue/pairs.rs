//! The request's headers in one host call, kept as the host serialized them.
//!
//! `proxy_wasm::hostcalls::get_map_bytes` makes this call too, then turns every name into a
//! `String` (panicking on a non-UTF-8 one) and every value into a `Vec`, and panics on an
//! unexpected status: in Envoy that costs more than three single-header reads together. Here
//! the serialized map is taken as it is and read in place ([`crate::header_map`]).

// The filter's only unsafe code: the host call and taking ownership of its answer.
#![allow(unsafe_code)]

use proxy_wasm::types::MapType;

use crate::header_map::HeaderMap;

#[link(wasm_import_module = "env")]
unsafe extern "C" {
    /// proxy-wasm ABI v0.2.1: writes a pointer to a buffer it allocated in this VM
    /// (through `proxy_on_memory_allocate`) and the buffer's size. Returns a status code
    /// (0: ok), taken as a plain integer: a code the SDK's `Status` enum does not list would
    /// be undefined behaviour as that enum.
    fn proxy_get_header_map_pairs(
        map_type: MapType,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
}

/// Every request header; `None` when the host refuses the call. The map is checked as the
/// request reads it ([`HeaderMap::read`]).
pub(crate) fn request_headers() -> Option<HeaderMap> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size = 0usize;
    // SAFETY: the host writes only to the two out-parameters, which live for the call, and
    // returns a `u32` (see the declaration).
    let status =
        unsafe { proxy_get_header_map_pairs(MapType::HttpRequestHeaders, &mut data, &mut size) };
    let bytes = if data.is_null() {
        Vec::new()
    } else {
        // SAFETY: `data` is the start of `size` bytes the host allocated through the SDK's
        // `proxy_on_memory_allocate` (a boxed slice of exactly `size` bytes, leaked), so this VM
        // owns them and they are freed as that vector: exactly what the SDK's own getters do.
        // Taken on failure too, so that nothing leaks.
        unsafe { Vec::from_raw_parts(data, size, size) }
    };
    (status == 0).then(|| HeaderMap::unchecked(bytes))
}
