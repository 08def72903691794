//! `proxy_get_buffer_bytes`, `proxy_set_buffer_bytes`, `proxy_get_buffer_status`.
//!
//! Bodies are visible during their body callback, or while buffered
//! (`StopIterationAndBuffer`); otherwise they read as empty and cannot be set
//! (`BadArgument`, Envoy's immutable `BufferBase`). Configuration buffers are
//! read-only; the plugin configuration is only readable inside `on_configure`.

use super::memory::{self, Caller};
use super::{HostResult, Status, done};
use crate::stream::Dir;
use crate::vm::HostState;
use wasmtime::Linker;

const MAX_BUFFER_TYPE: u32 = 8;

pub(crate) fn add(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "proxy_get_buffer_bytes", get_buffer_bytes)?;
    linker.func_wrap("env", "proxy_set_buffer_bytes", set_buffer_bytes)?;
    linker.func_wrap("env", "proxy_get_buffer_status", get_buffer_status)?;
    Ok(())
}

fn body_dir(kind: u32) -> Dir {
    if kind == 0 {
        Dir::Request
    } else {
        Dir::Response
    }
}

/// The bytes behind a buffer type, for reading.
fn readable(host: &HostState, kind: u32) -> Result<&[u8], Status> {
    match kind {
        0 | 1 => Ok(host
            .stream()
            .map(|s| s.half(body_dir(kind)))
            .filter(|half| half.body_visible())
            .map_or(&[][..], |half| &half.buffer[..])),
        2 | 3 | 5 | 8 => Ok(&[]),
        4 => host
            .call_response
            .as_ref()
            .map(|r| &r.body[..])
            .ok_or(Status::NotFound),
        6 => Ok(&host.shared.config.vm_configuration),
        7 => host
            .configuring
            .and_then(|i| host.shared.config.plugins.get(i))
            .map(|p| &p.configuration[..])
            .ok_or(Status::NotFound),
        _ => Err(Status::BadArgument),
    }
}

fn get_buffer_bytes(
    mut caller: Caller<'_>,
    kind: i32,
    start: i32,
    max_size: i32,
    ptr_ptr: i32,
    size_ptr: i32,
) -> HostResult {
    let (start, max_size) = (start as u32 as usize, max_size as u32 as usize);
    let chunk = match readable(caller.data(), kind as u32) {
        Err(status) => return Ok(status.code()),
        Ok(bytes) if start >= bytes.len() => Vec::new(),
        Ok(bytes) => bytes[start..start.saturating_add(max_size).min(bytes.len())].to_vec(),
    };
    memory::return_bytes(&mut caller, &chunk, ptr_ptr, size_ptr)
}

/// Envoy's `Buffer::copyFrom`: at 0, drop `len` bytes then prepend; at or past the
/// end, append; anything else is `BadArgument`.
fn splice(buffer: &mut Vec<u8>, start: usize, len: usize, data: &[u8]) -> Result<(), Status> {
    if start == 0 {
        buffer.drain(..len.min(buffer.len()));
        buffer.splice(0..0, data.iter().copied());
        Ok(())
    } else if start >= buffer.len() {
        buffer.extend_from_slice(data);
        Ok(())
    } else {
        Err(Status::BadArgument)
    }
}

fn set_buffer_bytes(
    mut caller: Caller<'_>,
    kind: i32,
    start: i32,
    len: i32,
    data_ptr: i32,
    data_len: i32,
) -> HostResult {
    let kind = kind as u32;
    if kind > MAX_BUFFER_TYPE {
        return Ok(Status::BadArgument.code());
    }
    let data = match memory::read(&caller, data_ptr, data_len) {
        Ok(data) => data,
        Err(status) => return Ok(status.code()),
    };
    let host = caller.data_mut();
    let outcome = match kind {
        0 | 1 => match host.stream_mut() {
            Some(stream) => {
                let half = stream.half_mut(body_dir(kind));
                if half.body_visible() {
                    splice(
                        &mut half.buffer,
                        start as u32 as usize,
                        len as u32 as usize,
                        &data,
                    )
                } else {
                    Err(Status::BadArgument)
                }
            }
            None => Err(Status::BadArgument),
        },
        4 if host.call_response.is_none() => Err(Status::NotFound),
        7 if host.configuring.is_none() => Err(Status::NotFound),
        _ => Err(Status::BadArgument),
    };
    done(outcome)
}

fn get_buffer_status(
    mut caller: Caller<'_>,
    kind: i32,
    len_ptr: i32,
    flags_ptr: i32,
) -> HostResult {
    let len = match readable(caller.data(), kind as u32) {
        Ok(bytes) => bytes.len() as u32,
        Err(status) => return Ok(status.code()),
    };
    done(
        memory::write_u32(&mut caller, len_ptr, len)
            .and_then(|()| memory::write_u32(&mut caller, flags_ptr, 0)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_follows_envoy() {
        let mut b = b"hello".to_vec();
        splice(&mut b, 0, 5, b"HELLO!").unwrap();
        assert_eq!(b, b"HELLO!");
        splice(&mut b, 0, 0, b">").unwrap();
        assert_eq!(b, b">HELLO!");
        splice(&mut b, 7, 0, b"<").unwrap();
        assert_eq!(b, b">HELLO!<");
        assert_eq!(splice(&mut b, 3, 1, b"x"), Err(Status::BadArgument));
    }
}
