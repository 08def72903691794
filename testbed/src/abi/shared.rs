//! Shared data and shared queues (process-wide state behind the World lock).

use super::memory::{self, Caller};
use super::{HostResult, Status, done};
use crate::vm::HostState;
use wasmtime::Linker;

pub(crate) fn add(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "proxy_get_shared_data", get_shared_data)?;
    linker.func_wrap("env", "proxy_set_shared_data", set_shared_data)?;
    linker.func_wrap("env", "proxy_register_shared_queue", register_queue)?;
    linker.func_wrap("env", "proxy_resolve_shared_queue", resolve_queue)?;
    linker.func_wrap("env", "proxy_dequeue_shared_queue", dequeue)?;
    linker.func_wrap("env", "proxy_enqueue_shared_queue", enqueue)?;
    Ok(())
}

fn get_shared_data(
    mut caller: Caller<'_>,
    key_ptr: i32,
    key_len: i32,
    ptr_ptr: i32,
    size_ptr: i32,
    cas_ptr: i32,
) -> HostResult {
    let key = match memory::read(&caller, key_ptr, key_len) {
        Ok(key) => key,
        Err(status) => return Ok(status.code()),
    };
    // Every get copies the value into the VM, as in Envoy.
    let Some(entry) = caller.data().shared.world().shared_data.get(&key).cloned() else {
        return Ok(Status::NotFound.code());
    };
    let status = memory::return_bytes(&mut caller, &entry.value, ptr_ptr, size_ptr)?;
    if status != Status::Ok.code() {
        return Ok(status);
    }
    memory::return_u32(&mut caller, cas_ptr, entry.cas)
}

fn set_shared_data(
    caller: Caller<'_>,
    key_ptr: i32,
    key_len: i32,
    value_ptr: i32,
    value_len: i32,
    cas: i32,
) -> HostResult {
    let read = memory::read(&caller, key_ptr, key_len)
        .and_then(|k| Ok((k, memory::read(&caller, value_ptr, value_len)?)));
    let (key, value) = match read {
        Ok(kv) => kv,
        Err(status) => return Ok(status.code()),
    };
    let mut world = caller.data().shared.world();
    done(world.shared_data.set(&key, &value, cas as u32).map(|_| ()))
}

fn register_queue(
    mut caller: Caller<'_>,
    name_ptr: i32,
    name_len: i32,
    token_ptr: i32,
) -> HostResult {
    let name = match memory::read_string(&caller, name_ptr, name_len) {
        Ok(name) => name,
        Err(status) => return Ok(status.code()),
    };
    let host = caller.data();
    // Notifications go to the root context even when a stream registers.
    let root = host.root_of(host.target()).unwrap_or(0);
    let token =
        host.shared
            .world()
            .queues
            .register(&host.shared.config.vm_id, &name, host.vm, root);
    memory::return_u32(&mut caller, token_ptr, token)
}

fn resolve_queue(
    mut caller: Caller<'_>,
    vm_id_ptr: i32,
    vm_id_len: i32,
    name_ptr: i32,
    name_len: i32,
    token_ptr: i32,
) -> HostResult {
    let read = memory::read_string(&caller, vm_id_ptr, vm_id_len)
        .and_then(|v| Ok((v, memory::read_string(&caller, name_ptr, name_len)?)));
    let (vm_id, name) = match read {
        Ok(vn) => vn,
        Err(status) => return Ok(status.code()),
    };
    let host = caller.data();
    let vm_id = if vm_id.is_empty() {
        host.shared.config.vm_id.clone()
    } else {
        vm_id
    };
    let Some(token) = host.shared.world().queues.resolve(&vm_id, &name) else {
        return Ok(Status::NotFound.code());
    };
    memory::return_u32(&mut caller, token_ptr, token)
}

fn dequeue(mut caller: Caller<'_>, token: i32, ptr_ptr: i32, size_ptr: i32) -> HostResult {
    let item = caller.data().shared.world().queues.dequeue(token as u32);
    match item {
        Ok(item) => memory::return_bytes(&mut caller, &item, ptr_ptr, size_ptr),
        Err(status) => Ok(status.code()),
    }
}

fn enqueue(caller: Caller<'_>, token: i32, value_ptr: i32, value_len: i32) -> HostResult {
    let value = match memory::read(&caller, value_ptr, value_len) {
        Ok(value) => value,
        Err(status) => return Ok(status.code()),
    };
    let mut world = caller.data().shared.world();
    match world.queues.enqueue(token as u32, value) {
        Ok(ready) => {
            world.queue_ready.push(ready);
            Ok(Status::Ok.code())
        }
        Err(status) => Ok(status.code()),
    }
}
