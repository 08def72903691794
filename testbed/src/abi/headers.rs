//! Header and trailer maps (types 0–3 of the stream, 6–7 of an HTTP call answer).
//!
//! Availability follows Envoy: a stream's header map is reachable from its
//! callback until it is released (`Continue` or `continue_stream`); reading an
//! unreachable map gives `BadArgument` for a single value (the SDK panics) and an
//! empty list for pairs; in `on_log` headers are read-only views and a missing
//! value is `NotFound`. Mutations of an unreachable map are `BadArgument`.
//! Header values are bytes, stored and returned exactly (they need not be UTF-8,
//! as Envoy's HTTP/1 codec accepts obs-text); keys are converted lossily.

use super::memory::{self, Caller};
use super::{HostResult, Status, done, pairs};
use crate::http::Headers;
use crate::vm::HostState;
use wasmtime::Linker;

const MAX_MAP_TYPE: u32 = 7;

pub(crate) fn add(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "proxy_get_header_map_pairs", get_pairs)?;
    linker.func_wrap("env", "proxy_set_header_map_pairs", set_pairs)?;
    linker.func_wrap("env", "proxy_get_header_map_value", get_value)?;
    linker.func_wrap("env", "proxy_add_header_map_value", add_value)?;
    linker.func_wrap("env", "proxy_replace_header_map_value", replace_value)?;
    linker.func_wrap("env", "proxy_remove_header_map_value", remove_value)?;
    linker.func_wrap("env", "proxy_get_header_map_size", get_size)?;
    Ok(())
}

/// A map as Envoy's `getConstMap` would return it.
fn view(host: &HostState, kind: u32) -> Option<&Headers> {
    match kind {
        0..=3 => {
            let stream = host.stream()?;
            let half = if kind < 2 {
                &stream.request
            } else {
                &stream.response
            };
            let trailers = kind % 2 == 1;
            if stream.log_phase {
                return match (kind, trailers) {
                    (1, _) => None,
                    (_, true) => half.trailers.as_ref(),
                    (_, false) => Some(&half.headers),
                };
            }
            match trailers {
                true if half.trailers_open => half.trailers.as_ref(),
                false if half.headers_open => Some(&half.headers),
                _ => None,
            }
        }
        6 => host.call_response.as_ref().map(|r| &r.headers),
        7 => host.call_response.as_ref().map(|r| &r.trailers),
        _ => None,
    }
}

/// A map as Envoy's mutable `getMap` would return it. Trailers can be added from
/// the last body callback (Envoy's `addDecodedTrailers`).
fn view_mut(host: &mut HostState, kind: u32) -> Option<&mut Headers> {
    if kind > 3 {
        return None;
    }
    let stream = host.stream_mut()?;
    let half = if kind < 2 {
        &mut stream.request
    } else {
        &mut stream.response
    };
    if kind.is_multiple_of(2) {
        return half.headers_open.then_some(&mut half.headers);
    }
    if !half.trailers_open && half.in_last_body() && half.trailers.is_none() {
        half.trailers = Some(Headers::new());
        half.trailers_open = true;
    }
    if half.trailers_open {
        half.trailers.as_mut()
    } else {
        None
    }
}

fn mutate(caller: &mut Caller<'_>, kind: i32, f: impl FnOnce(&mut Headers)) -> Result<(), Status> {
    if kind as u32 > MAX_MAP_TYPE {
        return Err(Status::BadArgument);
    }
    let map = view_mut(caller.data_mut(), kind as u32).ok_or(Status::BadArgument)?;
    f(map);
    Ok(())
}

fn get_pairs(mut caller: Caller<'_>, kind: i32, ptr_ptr: i32, size_ptr: i32) -> HostResult {
    if kind as u32 > MAX_MAP_TYPE {
        return Ok(Status::BadArgument.code());
    }
    let bytes = view(caller.data(), kind as u32)
        .map(pairs::encode)
        .unwrap_or_default();
    memory::return_bytes(&mut caller, &bytes, ptr_ptr, size_ptr)
}

fn set_pairs(mut caller: Caller<'_>, kind: i32, ptr: i32, size: i32) -> HostResult {
    let data = match memory::read(&caller, ptr, size) {
        Ok(data) => data,
        Err(status) => return Ok(status.code()),
    };
    done(mutate(&mut caller, kind, |map| *map = pairs::decode(&data)))
}

fn get_value(
    mut caller: Caller<'_>,
    kind: i32,
    key_ptr: i32,
    key_len: i32,
    ptr_ptr: i32,
    size_ptr: i32,
) -> HostResult {
    if kind as u32 > MAX_MAP_TYPE {
        return Ok(Status::BadArgument.code());
    }
    let key = match memory::read_string(&caller, key_ptr, key_len) {
        Ok(key) => key,
        Err(status) => return Ok(status.code()),
    };
    let host = caller.data();
    let value = match view(host, kind as u32) {
        Some(map) => match map.get_bytes(&key) {
            Some(value) => value.to_vec(),
            None => return Ok(Status::NotFound.code()),
        },
        None if host.stream().is_some_and(|s| s.log_phase) => {
            return Ok(Status::NotFound.code());
        }
        None => return Ok(Status::BadArgument.code()),
    };
    memory::return_bytes(&mut caller, &value, ptr_ptr, size_ptr)
}

fn read_key_value(
    caller: &Caller<'_>,
    key: (i32, i32),
    value: (i32, i32),
) -> Result<(String, Vec<u8>), Status> {
    Ok((
        memory::read_string(caller, key.0, key.1)?,
        memory::read(caller, value.0, value.1)?,
    ))
}

fn add_value(mut caller: Caller<'_>, kind: i32, kp: i32, kl: i32, vp: i32, vl: i32) -> HostResult {
    let (key, value) = match read_key_value(&caller, (kp, kl), (vp, vl)) {
        Ok(kv) => kv,
        Err(status) => return Ok(status.code()),
    };
    done(mutate(&mut caller, kind, |map| map.add_bytes(key, value)))
}

fn replace_value(
    mut caller: Caller<'_>,
    kind: i32,
    kp: i32,
    kl: i32,
    vp: i32,
    vl: i32,
) -> HostResult {
    let (key, value) = match read_key_value(&caller, (kp, kl), (vp, vl)) {
        Ok(kv) => kv,
        Err(status) => return Ok(status.code()),
    };
    done(mutate(&mut caller, kind, |map| {
        map.replace_bytes(key, value)
    }))
}

fn remove_value(mut caller: Caller<'_>, kind: i32, key_ptr: i32, key_len: i32) -> HostResult {
    let key = match memory::read_string(&caller, key_ptr, key_len) {
        Ok(key) => key,
        Err(status) => return Ok(status.code()),
    };
    done(mutate(&mut caller, kind, |map| map.remove(&key)))
}

fn get_size(mut caller: Caller<'_>, kind: i32, ptr: i32) -> HostResult {
    if kind as u32 > MAX_MAP_TYPE {
        return Ok(Status::BadArgument.code());
    }
    let Some(size) = view_mut(caller.data_mut(), kind as u32).map(|m| m.byte_size()) else {
        return Ok(Status::BadArgument.code());
    };
    memory::return_u32(&mut caller, ptr, size as u32)
}
