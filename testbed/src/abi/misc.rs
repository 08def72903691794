//! The rest: `proxy_done`, `proxy_set_effective_context`, `proxy_get_status`, and
//! the deliberately unsupported families — foreign functions (`NotFound`) and gRPC
//! (`InternalFailure` for new calls, `NotFound` for tokens: statuses the Rust SDK
//! turns into errors rather than panics).

use super::memory::{self, Caller};
use super::{HostResult, Status};
use crate::vm::HostState;
use wasmtime::Linker;

pub(crate) fn add(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "proxy_done", |_: Caller<'_>| -> HostResult {
        Ok(Status::Ok.code())
    })?;
    linker.func_wrap(
        "env",
        "proxy_set_effective_context",
        |mut caller: Caller<'_>, ctx: i32| -> HostResult {
            let ok = caller.data_mut().set_effective(ctx as u32);
            Ok(if ok { Status::Ok } else { Status::BadArgument }.code())
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_status",
        |mut caller: Caller<'_>, code_ptr: i32, ptr_ptr: i32, size_ptr: i32| -> HostResult {
            let (code, message) = caller.data().status.clone();
            if let Err(status) = memory::write_u32(&mut caller, code_ptr, code) {
                return Ok(status.code());
            }
            memory::return_bytes(&mut caller, message.as_bytes(), ptr_ptr, size_ptr)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_call_foreign_function",
        |caller: Caller<'_>,
         name_ptr: i32,
         name_len: i32,
         args_ptr: i32,
         args_len: i32,
         _: i32,
         _: i32|
         -> HostResult {
            let read = memory::read(&caller, name_ptr, name_len)
                .and_then(|_| memory::read(&caller, args_ptr, args_len));
            Ok(read.err().unwrap_or(Status::NotFound).code())
        },
    )?;
    linker.func_wrap("env", "proxy_grpc_call", grpc_call)?;
    linker.func_wrap(
        "env",
        "proxy_grpc_stream",
        |_: Caller<'_>,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32|
         -> HostResult { Ok(Status::InternalFailure.code()) },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_send",
        |_: Caller<'_>, _: i32, _: i32, _: i32, _: i32| -> HostResult {
            Ok(Status::NotFound.code())
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_cancel",
        |_: Caller<'_>, _: i32| -> HostResult { Ok(Status::NotFound.code()) },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_close",
        |_: Caller<'_>, _: i32| -> HostResult { Ok(Status::NotFound.code()) },
    )?;
    Ok(())
}

#[allow(clippy::too_many_arguments, reason = "the ABI signature")]
fn grpc_call(
    _: Caller<'_>,
    _: i32,
    _: i32,
    _: i32,
    _: i32,
    _: i32,
    _: i32,
    _: i32,
    _: i32,
    _: i32,
    _: i32,
    _: i32,
    _: i32,
) -> HostResult {
    Ok(Status::InternalFailure.code())
}
