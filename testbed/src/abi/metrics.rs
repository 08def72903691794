//! `proxy_define_metric`, `proxy_increment_metric`, `proxy_record_metric`, `proxy_get_metric`.

use super::memory::{self, Caller};
use super::{HostResult, Status};
use crate::vm::HostState;
use wasmtime::Linker;

pub(crate) fn add(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_define_metric",
        |mut caller: Caller<'_>,
         kind: i32,
         name_ptr: i32,
         name_len: i32,
         id_ptr: i32|
         -> HostResult {
            let name = match memory::read_string(&caller, name_ptr, name_len) {
                Ok(name) => name,
                Err(status) => return Ok(status.code()),
            };
            let defined = caller
                .data()
                .shared
                .world()
                .metrics
                .define(kind as u32, name);
            match defined {
                Ok(id) => memory::return_u32(&mut caller, id_ptr, id),
                Err(status) => Ok(status.code()),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_increment_metric",
        |caller: Caller<'_>, id: i32, offset: i64| -> HostResult {
            let mut world = caller.data().shared.world();
            Ok(world.metrics.increment(id as u32, offset).code())
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_record_metric",
        |caller: Caller<'_>, id: i32, value: i64| -> HostResult {
            let mut world = caller.data().shared.world();
            Ok(world.metrics.record(id as u32, value as u64).code())
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_metric",
        |mut caller: Caller<'_>, id: i32, ptr: i32| -> HostResult {
            let value = caller.data().shared.world().metrics.get(id as u32);
            match value {
                Ok(value) => Ok(memory::write_u64(&mut caller, ptr, value)
                    .err()
                    .unwrap_or(Status::Ok)
                    .code()),
                Err(status) => Ok(status.code()),
            }
        },
    )?;
    Ok(())
}
