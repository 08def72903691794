//! `proxy_http_call`: records the call as pending in the World; the test answers
//! it ([`crate::Testbed::respond_http_call`]) or lets it time out.

use super::memory::{self, Caller};
use super::{HostResult, Status, pairs};
use crate::vm::HostState;
use crate::world::{HttpCall, PendingCall};
use std::time::Duration;
use wasmtime::Linker;

pub(crate) fn add(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "proxy_http_call", http_call)?;
    Ok(())
}

#[allow(clippy::too_many_arguments, reason = "the ABI signature")]
fn http_call(
    mut caller: Caller<'_>,
    cluster_ptr: i32,
    cluster_len: i32,
    headers_ptr: i32,
    headers_len: i32,
    body_ptr: i32,
    body_len: i32,
    trailers_ptr: i32,
    trailers_len: i32,
    timeout_ms: i32,
    token_ptr: i32,
) -> HostResult {
    let read = || -> Result<_, Status> {
        Ok((
            memory::read_string(&caller, cluster_ptr, cluster_len)?,
            memory::read(&caller, headers_ptr, headers_len)?,
            memory::read(&caller, body_ptr, body_len)?,
            memory::read(&caller, trailers_ptr, trailers_len)?,
        ))
    };
    let (cluster, headers, body, trailers) = match read() {
        Ok(parts) => parts,
        Err(status) => return Ok(status.code()),
    };
    // Envoy writes the token slot first to validate it.
    if let Err(status) = memory::write_u32(&mut caller, token_ptr, 0) {
        return Ok(status.code());
    }
    let host = caller.data();
    let mut headers = pairs::decode(&headers);
    let trailers = pairs::decode(&trailers);
    let required = [":path", ":method", ":authority"];
    if timeout_ms < 0
        || !host.shared.config.clusters.contains(&cluster)
        || !required.iter().all(|h| headers.contains(h))
    {
        return Ok(Status::BadArgument.code());
    }
    if !body.is_empty() {
        headers.replace("content-length", body.len().to_string());
    }
    let Some(root) = host.root_of(host.target()) else {
        return Ok(Status::InternalFailure.code());
    };
    let now = host.shared.clock.nanos();
    let timeout = (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms as u64));
    let token = {
        let mut world = host.shared.world();
        world.next_http_token += 1;
        let token = world.next_http_token;
        world.http_calls.insert(
            token,
            PendingCall {
                call: HttpCall {
                    token,
                    vm: host.vm,
                    context_id: host.target(),
                    root_context_id: root,
                    cluster,
                    headers,
                    body,
                    trailers,
                    timeout,
                    dispatched_at: host.shared.clock.system_time(),
                },
                deadline: timeout.map(|t| now.saturating_add(t.as_nanos() as u64)),
            },
        );
        token
    };
    memory::return_u32(&mut caller, token_ptr, token)
}
