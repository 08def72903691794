//! Stream control: `proxy_continue_stream`, `proxy_close_stream`,
//! `proxy_send_local_response`. They only record the request; the VM applies it
//! after the current callback returns (Envoy defers them the same way).

use super::memory::{self, Caller};
use super::{HostResult, Status, pairs};
use crate::exchange::LocalResponse;
use crate::vm::HostState;
use wasmtime::Linker;

pub(crate) fn add(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "proxy_continue_stream", continue_stream)?;
    linker.func_wrap("env", "proxy_close_stream", close_stream)?;
    linker.func_wrap("env", "proxy_send_local_response", send_local_response)?;
    Ok(())
}

fn continue_stream(mut caller: Caller<'_>, kind: i32) -> HostResult {
    let host = caller.data_mut();
    let status = match kind {
        0 | 1 => {
            if let Some(stream) = host.stream_mut() {
                if kind == 0 {
                    stream.request.resume = true;
                } else {
                    stream.response.resume = true;
                }
                host.mark_dirty();
            }
            Status::Ok
        }
        2 => Status::Ok,
        3 => Status::Unimplemented,
        _ => Status::BadArgument,
    };
    Ok(status.code())
}

fn close_stream(mut caller: Caller<'_>, kind: i32) -> HostResult {
    let host = caller.data_mut();
    let status = match kind {
        0 | 1 => {
            if let Some(stream) = host.stream_mut() {
                stream.reset = true;
                host.mark_dirty();
            }
            Status::Ok
        }
        2 | 3 => Status::Ok,
        _ => Status::BadArgument,
    };
    Ok(status.code())
}

#[allow(clippy::too_many_arguments, reason = "the ABI signature")]
fn send_local_response(
    mut caller: Caller<'_>,
    status_code: i32,
    details_ptr: i32,
    details_len: i32,
    body_ptr: i32,
    body_len: i32,
    headers_ptr: i32,
    headers_len: i32,
    grpc_status: i32,
) -> HostResult {
    let read = || -> Result<_, Status> {
        Ok((
            memory::read_string(&caller, details_ptr, details_len)?,
            memory::read(&caller, body_ptr, body_len)?,
            memory::read(&caller, headers_ptr, headers_len)?,
        ))
    };
    let (details, body, headers) = match read() {
        Ok(parts) => parts,
        Err(status) => return Ok(status.code()),
    };
    let host = caller.data_mut();
    if let Some(stream) = host.stream_mut()
        && stream.local_reply.is_none()
    {
        stream.local_reply = Some(LocalResponse {
            status: status_code as u32,
            // Envoy replaces whitespace in details with underscores.
            details: details.replace(char::is_whitespace, "_"),
            body,
            headers: pairs::decode(&headers),
            grpc_status: (0..=16).contains(&grpc_status).then_some(grpc_status),
        });
        host.mark_dirty();
    }
    Ok(Status::Ok.code())
}
