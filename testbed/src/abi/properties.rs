//! `proxy_get_property` / `proxy_set_property`. Paths are NUL-separated segments.
//!
//! Supported: `plugin_root_id`, `plugin_vm_id`, `plugin_name` (any context);
//! `source.address|port`, `destination.address|port` (streams); `request.path`,
//! `url_path`, `host`, `scheme`, `method`, `query`, `protocol`, `id`,
//! `headers.<name>` (while the request headers are reachable, or in `on_log`);
//! `response.code`, `response.headers.<name>`; and anything set with
//! `proxy_set_property` on the same stream. Strings are raw bytes, integers
//! 8-byte little-endian, as Envoy encodes them. Everything else is `NotFound`.

use super::memory::{self, Caller};
use super::{HostResult, Status, done, pairs};
use crate::http::Headers;
use crate::stream::{Half, Stream};
use crate::vm::HostState;
use wasmtime::Linker;

pub(crate) fn add(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "proxy_get_property", get_property)?;
    linker.func_wrap("env", "proxy_set_property", set_property)?;
    Ok(())
}

fn text(s: impl AsRef<[u8]>) -> Option<Vec<u8>> {
    Some(s.as_ref().to_vec())
}

fn int(value: i64) -> Option<Vec<u8>> {
    Some(value.to_le_bytes().to_vec())
}

fn port(address: &str) -> Option<Vec<u8>> {
    int(address.rsplit_once(':')?.1.parse().ok()?)
}

fn header_value(headers: &Headers, name: &str) -> Option<Vec<u8>> {
    let values: Vec<&[u8]> = headers
        .iter_bytes()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .collect();
    (!values.is_empty()).then(|| values.join(&b','))
}

fn headers_property(headers: &Headers, rest: &[&str]) -> Option<Vec<u8>> {
    match rest {
        [] => Some(pairs::encode(headers)),
        [name] => header_value(headers, name),
        _ => None,
    }
}

fn visible(stream: &Stream, half: &Half) -> bool {
    stream.log_phase || half.headers_open
}

fn request(stream: &Stream, rest: &[&str]) -> Option<Vec<u8>> {
    let half = &stream.request;
    if !visible(stream, half) {
        return None;
    }
    let h = &half.headers;
    // Raw bytes: `:path` need not be UTF-8.
    let path = h.get_bytes(":path").unwrap_or_default();
    let query_at = path.iter().position(|&b| b == b'?');
    match rest {
        ["path"] => text(path),
        ["url_path"] => text(&path[..query_at.unwrap_or(path.len())]),
        ["query"] => text(query_at.map_or(&[][..], |at| &path[at + 1..])),
        ["host"] => text(h.get_bytes(":authority")?),
        ["scheme"] => text(h.get_bytes(":scheme")?),
        ["method"] => text(h.get_bytes(":method")?),
        ["id"] => text(h.get_bytes("x-request-id")?),
        ["protocol"] => text("HTTP/1.1"),
        ["headers", rest @ ..] => headers_property(h, rest),
        _ => None,
    }
}

fn response(stream: &Stream, rest: &[&str]) -> Option<Vec<u8>> {
    let half = &stream.response;
    if !visible(stream, half) {
        return None;
    }
    match rest {
        ["code"] => int(half.headers.get(":status")?.parse().ok()?),
        ["headers", rest @ ..] => headers_property(&half.headers, rest),
        _ => None,
    }
}

fn lookup(host: &HostState, raw_path: &[u8]) -> Option<Vec<u8>> {
    let path = String::from_utf8_lossy(raw_path);
    let parts: Vec<&str> = path.split('\0').collect();
    let target = host.target();
    let config = &host.shared.config;
    let plugin = host.plugin_of(target).and_then(|i| config.plugins.get(i));
    match parts.as_slice() {
        ["plugin_root_id"] => return text(&plugin?.root_id),
        ["plugin_name"] => return text(&plugin?.name),
        ["plugin_vm_id"] => return text(&config.vm_id),
        _ => {}
    }
    let stream = host.streams.get(&target)?;
    match parts.as_slice() {
        ["source", "address"] => text(&stream.source_address),
        ["source", "port"] => port(&stream.source_address),
        ["destination", "address"] => text(&stream.destination_address),
        ["destination", "port"] => port(&stream.destination_address),
        ["request", rest @ ..] => request(stream, rest),
        ["response", rest @ ..] => response(stream, rest),
        _ => stream.properties.get(raw_path).cloned(),
    }
}

fn get_property(
    mut caller: Caller<'_>,
    path_ptr: i32,
    path_len: i32,
    ptr_ptr: i32,
    size_ptr: i32,
) -> HostResult {
    let path = match memory::read(&caller, path_ptr, path_len) {
        Ok(path) => path,
        Err(status) => return Ok(status.code()),
    };
    match lookup(caller.data(), &path) {
        Some(value) => memory::return_bytes(&mut caller, &value, ptr_ptr, size_ptr),
        None => Ok(Status::NotFound.code()),
    }
}

fn set_property(
    mut caller: Caller<'_>,
    path_ptr: i32,
    path_len: i32,
    value_ptr: i32,
    value_len: i32,
) -> HostResult {
    let read = memory::read(&caller, path_ptr, path_len)
        .and_then(|p| Ok((p, memory::read(&caller, value_ptr, value_len)?)));
    let (path, value) = match read {
        Ok(pv) => pv,
        Err(status) => return Ok(status.code()),
    };
    // Envoy stores properties in the stream's filter state: no stream, no property.
    done(match caller.data_mut().stream_mut() {
        Some(stream) => {
            stream.properties.insert(path, value);
            Ok(())
        }
        None => Err(Status::NotFound),
    })
}
