//! `proxy_log`, `proxy_get_log_level`, and WASI `fd_write` as Envoy implements it:
//! each write to stdout (info) or stderr (error) is one log line, trailing newline
//! removed; other descriptors get `EBADF`.

use super::memory::{self, Caller};
use super::{HostResult, Status};
use crate::vm::HostState;
use crate::world::{LogLevel, LogSource};
use wasmtime::Linker;

const WASI_ESUCCESS: i32 = 0;
const WASI_EBADF: i32 = 8;
const WASI_EFAULT: i32 = 21;

pub(crate) fn add(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "proxy_log", proxy_log)?;
    linker.func_wrap("env", "proxy_get_log_level", proxy_get_log_level)?;
    linker.func_wrap("wasi_snapshot_preview1", "fd_write", fd_write)?;
    Ok(())
}

fn proxy_log(caller: Caller<'_>, level: i32, ptr: i32, len: i32) -> HostResult {
    let Some(level) = LogLevel::from_raw(level as u32) else {
        return Ok(Status::BadArgument.code());
    };
    match memory::read_string(&caller, ptr, len) {
        Ok(message) => {
            caller.data().log(level, message, LogSource::ProxyLog);
            Ok(Status::Ok.code())
        }
        Err(status) => Ok(status.code()),
    }
}

fn proxy_get_log_level(mut caller: Caller<'_>, ptr: i32) -> HostResult {
    let level = caller.data().shared.config.log_level.raw();
    memory::return_u32(&mut caller, ptr, level)
}

fn gather(caller: &Caller<'_>, iovs: i32, iovs_len: i32) -> Result<Vec<u8>, Status> {
    let mut out = Vec::new();
    for i in 0..iovs_len.max(0) {
        let at = iovs.wrapping_add(i.wrapping_mul(8));
        let iov = memory::read(caller, at, 8)?;
        let buf = i32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]);
        let len = i32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]);
        if len != 0 {
            out.extend_from_slice(&memory::read(caller, buf, len)?);
        }
    }
    Ok(out)
}

fn fd_write(mut caller: Caller<'_>, fd: i32, iovs: i32, iovs_len: i32, nwritten: i32) -> i32 {
    let (level, source) = match fd {
        1 => (LogLevel::Info, LogSource::Stdout),
        2 => (LogLevel::Error, LogSource::Stderr),
        _ => return WASI_EBADF,
    };
    let Ok(bytes) = gather(&caller, iovs, iovs_len) else {
        return WASI_EFAULT;
    };
    if !bytes.is_empty() {
        let text = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
        let message = String::from_utf8_lossy(text).into_owned();
        caller.data().log(level, message, source);
    }
    match memory::write_u32(&mut caller, nwritten, bytes.len() as u32) {
        Ok(()) => WASI_ESUCCESS,
        Err(_) => WASI_EFAULT,
    }
}
