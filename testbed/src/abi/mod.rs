//! The host functions of proxy-wasm ABI v0.2.1 (module `env`), plus WASI preview 1.
//!
//! One module per hostcall family. Every function validates its pointers
//! ([`memory`]) and returns the status the Rust SDK 0.2.5 expects for the case
//! (see `hostcalls.rs` there); a guest trap inside a nested call (e.g. its
//! allocator) propagates as a trap.

pub(crate) mod buffers;
pub(crate) mod headers;
pub(crate) mod http_call;
pub(crate) mod log;
pub(crate) mod memory;
pub(crate) mod metrics;
pub(crate) mod misc;
pub(crate) mod pairs;
pub(crate) mod properties;
pub(crate) mod shared;
pub(crate) mod stream;
pub(crate) mod time;

use crate::error::Error;
use crate::vm::HostState;
use wasmtime::{Linker, Module};

/// proxy-wasm `WasmResult` codes (those this host returns).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Status {
    Ok = 0,
    NotFound = 1,
    BadArgument = 2,
    InvalidMemoryAccess = 6,
    Empty = 7,
    CasMismatch = 8,
    InternalFailure = 10,
    BrokenConnection = 11,
    Unimplemented = 12,
}

impl Status {
    pub(crate) fn code(self) -> i32 {
        self as i32
    }
}

/// What every host function returns: a status for the guest, or a trap.
pub(crate) type HostResult = wasmtime::Result<i32>;

/// `Ok(status)` for a `Result<(), Status>`-shaped outcome.
pub(crate) fn done(outcome: Result<(), Status>) -> HostResult {
    Ok(outcome.err().unwrap_or(Status::Ok).code())
}

/// Builds the linker shared by every VM of a testbed.
pub(crate) fn linker(module: &Module) -> Result<Linker<HostState>, Error> {
    let err = |e: wasmtime::Error| Error::Instantiate(format!("{e:#}"));
    let mut linker = Linker::new(module.engine());
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |host: &mut HostState| &mut host.wasi)
        .map_err(err)?;
    // Envoy implements fd_write itself: stdout/stderr become log lines.
    linker.allow_shadowing(true);
    log::add(&mut linker).map_err(err)?;
    linker.allow_shadowing(false);
    time::add(&mut linker).map_err(err)?;
    buffers::add(&mut linker).map_err(err)?;
    headers::add(&mut linker).map_err(err)?;
    properties::add(&mut linker).map_err(err)?;
    shared::add(&mut linker).map_err(err)?;
    stream::add(&mut linker).map_err(err)?;
    http_call::add(&mut linker).map_err(err)?;
    metrics::add(&mut linker).map_err(err)?;
    misc::add(&mut linker).map_err(err)?;
    // Imports from other SDKs or ABI versions link, and trap if ever called.
    linker
        .define_unknown_imports_as_traps(module)
        .map_err(err)?;
    Ok(linker)
}
