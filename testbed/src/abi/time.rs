//! The testbed clock and tick timers.

use super::memory::{self, Caller};
use super::{HostResult, Status};
use crate::vm::HostState;
use wasmtime::Linker;

pub(crate) fn add(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_current_time_nanoseconds",
        |mut caller: Caller<'_>, ptr: i32| -> HostResult {
            let now = caller.data().shared.clock.nanos();
            Ok(memory::write_u64(&mut caller, ptr, now)
                .err()
                .unwrap_or(Status::Ok)
                .code())
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_tick_period_milliseconds",
        |caller: Caller<'_>, period: i32| -> HostResult {
            let host = caller.data();
            // Timers belong to the root context of whichever context asks.
            if let Some(root) = host.root_of(host.target()) {
                let now = host.shared.clock.nanos();
                host.shared
                    .world()
                    .set_tick_period(host.vm, root, period as u32, now);
            }
            Ok(Status::Ok.code())
        },
    )?;
    Ok(())
}
