//! One VM: a wasmtime `Store` holding the host-side state of one worker's instance,
//! the guest's exported callbacks, the start sequence and trap capture.

use crate::error::Error;
use crate::http::Headers;
use crate::stream::Stream;
use crate::world::{LogEntry, LogLevel, LogSource, Shared, StartupFailure, TrapRecord};
use std::collections::HashMap;
use std::sync::Arc;
use wasmtime::{Instance, InstancePre, Memory, Store, TypedFunc, WasmParams, WasmResults};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::WasiP1Ctx;

/// The answer an HTTP call callback is currently reading (map types 6/7, buffer 4).
pub(crate) struct CallResponse {
    pub(crate) headers: Headers,
    pub(crate) body: Vec<u8>,
    pub(crate) trailers: Headers,
}

/// The `T` of the VM's `Store`: everything host functions need.
pub(crate) struct HostState {
    pub(crate) wasi: WasiP1Ctx,
    pub(crate) shared: Arc<Shared>,
    pub(crate) vm: usize,
    pub(crate) memory: Option<Memory>,
    pub(crate) malloc: Option<TypedFunc<i32, i32>>,
    /// The context the host called into.
    pub(crate) current: u32,
    /// Set by `proxy_set_effective_context`, reset at every callback.
    pub(crate) effective: u32,
    /// Root context id of each plugin, by plugin index.
    pub(crate) roots: Vec<u32>,
    pub(crate) streams: HashMap<u32, Stream>,
    pub(crate) next_context_id: u32,
    /// The plugin whose `on_configure` is running (buffer type 7 is readable then).
    pub(crate) configuring: Option<usize>,
    pub(crate) call_response: Option<CallResponse>,
    /// `proxy_get_status` (code, message).
    pub(crate) status: (u32, String),
    /// Streams a host call touched (continue/close/local reply) that must be pumped.
    pub(crate) dirty: Vec<u32>,
}

impl HostState {
    fn exists(&self, ctx: u32) -> bool {
        self.roots.contains(&ctx) || self.streams.contains_key(&ctx)
    }

    /// The context host calls act on: the effective one if it (still) exists.
    pub(crate) fn target(&self) -> u32 {
        if self.effective != 0 && self.exists(self.effective) {
            self.effective
        } else {
            self.current
        }
    }

    pub(crate) fn set_effective(&mut self, ctx: u32) -> bool {
        if self.exists(ctx) {
            self.effective = ctx;
            true
        } else {
            false
        }
    }

    pub(crate) fn stream(&self) -> Option<&Stream> {
        self.streams.get(&self.target())
    }

    pub(crate) fn stream_mut(&mut self) -> Option<&mut Stream> {
        let target = self.target();
        self.streams.get_mut(&target)
    }

    /// The root context of `ctx` (itself for a root).
    pub(crate) fn root_of(&self, ctx: u32) -> Option<u32> {
        if self.roots.contains(&ctx) {
            Some(ctx)
        } else {
            self.streams.get(&ctx).map(|s| s.root)
        }
    }

    pub(crate) fn plugin_of(&self, ctx: u32) -> Option<usize> {
        match self.roots.iter().position(|&r| r == ctx) {
            Some(index) => Some(index),
            None => self.streams.get(&ctx).map(|s| s.plugin),
        }
    }

    pub(crate) fn log(&self, level: LogLevel, message: String, source: LogSource) {
        if level < self.shared.config.log_level {
            return;
        }
        self.shared.world().logs.push(LogEntry {
            vm: self.vm,
            level,
            message,
            source,
            context_id: self.target(),
        });
    }

    pub(crate) fn mark_dirty(&mut self) {
        let target = self.target();
        if self.streams.contains_key(&target) && !self.dirty.contains(&target) {
            self.dirty.push(target);
        }
    }

    pub(crate) fn alloc_context_id(&mut self) -> u32 {
        let id = self.next_context_id;
        self.next_context_id += 1;
        id
    }
}

/// The guest trapped; the trap is already recorded in the World.
#[derive(Debug)]
pub(crate) struct Crashed;

type Func1<R> = TypedFunc<i32, R>;
type Func2<R> = TypedFunc<(i32, i32), R>;
type Func3<R> = TypedFunc<(i32, i32, i32), R>;
type Func5<R> = TypedFunc<(i32, i32, i32, i32, i32), R>;

/// The guest's exported callbacks. Missing ones are skipped, as Envoy does.
pub(crate) struct GuestFuncs {
    initialize: Option<TypedFunc<(), ()>>,
    context_create: Option<Func2<()>>,
    vm_start: Option<Func2<i32>>,
    configure: Option<Func2<i32>>,
    tick: Option<Func1<()>>,
    queue_ready: Option<Func2<()>>,
    pub(crate) request_headers: Option<Func3<i32>>,
    pub(crate) request_body: Option<Func3<i32>>,
    pub(crate) request_trailers: Option<Func2<i32>>,
    pub(crate) response_headers: Option<Func3<i32>>,
    pub(crate) response_body: Option<Func3<i32>>,
    pub(crate) response_trailers: Option<Func2<i32>>,
    log: Option<Func1<()>>,
    done: Option<Func1<i32>>,
    delete: Option<Func1<()>>,
    http_call_response: Option<Func5<()>>,
}

fn typed<P: WasmParams, R: WasmResults>(
    store: &mut Store<HostState>,
    instance: &Instance,
    name: &str,
) -> Result<Option<TypedFunc<P, R>>, Error> {
    match instance.get_func(&mut *store, name) {
        None => Ok(None),
        Some(func) => func.typed::<P, R>(&*store).map(Some).map_err(|e| {
            Error::Instantiate(format!("export `{name}` has the wrong signature: {e}"))
        }),
    }
}

impl GuestFuncs {
    fn resolve(store: &mut Store<HostState>, instance: &Instance) -> Result<Self, Error> {
        let initialize = match typed(store, instance, "_initialize")? {
            Some(f) => Some(f),
            None => typed(store, instance, "_start")?,
        };
        Ok(GuestFuncs {
            initialize,
            context_create: typed(store, instance, "proxy_on_context_create")?,
            vm_start: typed(store, instance, "proxy_on_vm_start")?,
            configure: typed(store, instance, "proxy_on_configure")?,
            tick: typed(store, instance, "proxy_on_tick")?,
            queue_ready: typed(store, instance, "proxy_on_queue_ready")?,
            request_headers: typed(store, instance, "proxy_on_request_headers")?,
            request_body: typed(store, instance, "proxy_on_request_body")?,
            request_trailers: typed(store, instance, "proxy_on_request_trailers")?,
            response_headers: typed(store, instance, "proxy_on_response_headers")?,
            response_body: typed(store, instance, "proxy_on_response_body")?,
            response_trailers: typed(store, instance, "proxy_on_response_trailers")?,
            log: typed(store, instance, "proxy_on_log")?,
            done: typed(store, instance, "proxy_on_done")?,
            delete: typed(store, instance, "proxy_on_delete")?,
            http_call_response: typed(store, instance, "proxy_on_http_call_response")?,
        })
    }
}

/// Why startup stopped.
pub(crate) enum StartError {
    Trap {
        callback: &'static str,
        message: String,
    },
    Rejected(StartupFailure),
}

/// One instantiated VM.
pub(crate) struct VmInstance {
    pub(crate) store: Store<HostState>,
    pub(crate) funcs: GuestFuncs,
}

fn trap_message(error: &wasmtime::Error) -> String {
    if let Some(exit) = error.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return format!("proc_exit({})", exit.0);
    }
    if let Some(trap) = error.downcast_ref::<wasmtime::Trap>() {
        return format!("wasm trap: {trap}");
    }
    format!("{error:#}")
}

/// Guest context ids are `u32`, passed as wasm `i32`.
pub(crate) fn w(value: u32) -> i32 {
    value as i32
}

/// Sizes passed to the guest (`usize` on wasm32).
pub(crate) fn wsize(value: usize) -> i32 {
    u32::try_from(value).unwrap_or(u32::MAX) as i32
}

impl VmInstance {
    /// Instantiates the module (no guest code runs yet).
    pub(crate) fn create(
        pre: &InstancePre<HostState>,
        shared: Arc<Shared>,
        vm: usize,
    ) -> Result<Self, Error> {
        let clock = shared.clock.clone();
        let wasi = WasiCtxBuilder::new()
            .envs(&shared.config.env)
            .wall_clock(clock.clone())
            .monotonic_clock(clock)
            .build_p1();
        let host = HostState {
            wasi,
            shared,
            vm,
            memory: None,
            malloc: None,
            current: 0,
            effective: 0,
            roots: Vec::new(),
            streams: HashMap::new(),
            next_context_id: 1,
            configuring: None,
            call_response: None,
            status: (0, String::new()),
            dirty: Vec::new(),
        };
        let mut store = Store::new(pre.module().engine(), host);
        let instance = pre
            .instantiate(&mut store)
            .map_err(|e| Error::Instantiate(format!("{e:#}")))?;
        let module = pre.module();
        let abi = ["proxy_abi_version_0_2_1", "proxy_abi_version_0_2_0"];
        if !abi.iter().any(|name| module.get_export(name).is_some()) {
            return Err(Error::UnsupportedAbi);
        }
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| Error::Instantiate("the module exports no `memory`".to_string()))?;
        let malloc = typed::<i32, i32>(&mut store, &instance, "proxy_on_memory_allocate")?
            .or(typed::<i32, i32>(&mut store, &instance, "malloc")?)
            .ok_or_else(|| {
                Error::Instantiate("the module exports no `proxy_on_memory_allocate`".to_string())
            })?;
        let funcs = GuestFuncs::resolve(&mut store, &instance)?;
        let host = store.data_mut();
        host.memory = Some(memory);
        host.malloc = Some(malloc);
        Ok(VmInstance { store, funcs })
    }

    pub(crate) fn host(&self) -> &HostState {
        self.store.data()
    }

    pub(crate) fn host_mut(&mut self) -> &mut HostState {
        self.store.data_mut()
    }

    pub(crate) fn shared(&self) -> Arc<Shared> {
        self.host().shared.clone()
    }

    /// Calls an export for `ctx`; a trap is recorded and reported as [`Crashed`].
    pub(crate) fn invoke<P: WasmParams, R: WasmResults>(
        &mut self,
        callback: &'static str,
        ctx: u32,
        func: &TypedFunc<P, R>,
        params: P,
    ) -> Result<R, Crashed> {
        let host = self.host_mut();
        let (saved_current, saved_effective) = (host.current, host.effective);
        host.current = ctx;
        host.effective = 0;
        let result = func.call(&mut self.store, params);
        let host = self.host_mut();
        host.current = saved_current;
        host.effective = saved_effective;
        result.map_err(|error| {
            let record = TrapRecord {
                vm: host.vm,
                callback,
                context_id: ctx,
                message: trap_message(&error),
            };
            host.shared.world().traps.push(record);
            Crashed
        })
    }

    /// `_initialize`, then for each plugin: `proxy_on_context_create(root, 0)`,
    /// `proxy_on_vm_start`, `proxy_on_configure`. With `allow_failure`, a `false`
    /// is returned in the list instead of stopping.
    pub(crate) fn start(&mut self, allow_failure: bool) -> Result<Vec<StartupFailure>, StartError> {
        let trap = |callback: &'static str, this: &Self| StartError::Trap {
            callback,
            message: this
                .shared()
                .world()
                .traps
                .last()
                .map(|t| t.message.clone())
                .unwrap_or_default(),
        };
        if let Some(init) = self.funcs.initialize.clone() {
            self.invoke("_initialize", 0, &init, ())
                .map_err(|_| trap("_initialize", self))?;
        }
        let shared = self.shared();
        let vm = self.host().vm;
        let mut failures = Vec::new();
        let mut reject = |plugin: &str, callback| {
            let failure = StartupFailure {
                vm,
                plugin: plugin.to_string(),
                callback,
            };
            if allow_failure {
                failures.push(failure);
                Ok(())
            } else {
                Err(StartError::Rejected(failure))
            }
        };
        for (index, plugin) in shared.config.plugins.iter().enumerate() {
            let root = self.host_mut().alloc_context_id();
            self.host_mut().roots.push(root);
            if let Some(f) = self.funcs.context_create.clone() {
                self.invoke("proxy_on_context_create", root, &f, (w(root), 0))
                    .map_err(|_| trap("proxy_on_context_create", self))?;
            }
            if let Some(f) = self.funcs.vm_start.clone() {
                let len = wsize(shared.config.vm_configuration.len());
                let ok = self
                    .invoke("proxy_on_vm_start", root, &f, (w(root), len))
                    .map_err(|_| trap("proxy_on_vm_start", self))?;
                if ok == 0 {
                    reject(&plugin.root_id, "proxy_on_vm_start")?;
                }
            }
            if let Some(f) = self.funcs.configure.clone() {
                let len = wsize(plugin.configuration.len());
                self.host_mut().configuring = Some(index);
                let result = self.invoke("proxy_on_configure", root, &f, (w(root), len));
                self.host_mut().configuring = None;
                let ok = result.map_err(|_| trap("proxy_on_configure", self))?;
                if ok == 0 {
                    reject(&plugin.root_id, "proxy_on_configure")?;
                }
            }
        }
        Ok(failures)
    }

    pub(crate) fn on_tick(&mut self, root: u32) -> Result<(), Crashed> {
        if let Some(f) = self.funcs.tick.clone() {
            self.invoke("proxy_on_tick", root, &f, w(root))?;
        }
        self.pump_dirty()
    }

    pub(crate) fn on_queue_ready(&mut self, root: u32, token: u32) -> Result<(), Crashed> {
        if let Some(f) = self.funcs.queue_ready.clone() {
            self.invoke("proxy_on_queue_ready", root, &f, (w(root), w(token)))?;
        }
        self.pump_dirty()
    }

    /// Delivers an HTTP call's outcome to the root context that owns it (Envoy
    /// dispatches calls from the root context; the SDK routes by token).
    pub(crate) fn on_http_call_response(
        &mut self,
        root: u32,
        token: u32,
        response: Option<CallResponse>,
    ) -> Result<(), Crashed> {
        let Some(f) = self.funcs.http_call_response.clone() else {
            return Ok(());
        };
        let (headers, body, trailers) = match &response {
            Some(r) => (
                wsize(r.headers.len()),
                wsize(r.body.len()),
                wsize(r.trailers.len()),
            ),
            None => (0, 0, 0),
        };
        let host = self.host_mut();
        host.status = match response {
            Some(_) => (0, String::new()),
            None => (
                crate::abi::Status::BrokenConnection as u32,
                "reset".to_string(),
            ),
        };
        host.call_response = response;
        let result = self.invoke(
            "proxy_on_http_call_response",
            root,
            &f,
            (w(root), w(token), headers, body, trailers),
        );
        let host = self.host_mut();
        host.call_response = None;
        host.status = (0, String::new());
        result?;
        self.pump_dirty()
    }

    pub(crate) fn call_context_create(&mut self, ctx: u32, root: u32) -> Result<(), Crashed> {
        if let Some(f) = self.funcs.context_create.clone() {
            self.invoke("proxy_on_context_create", ctx, &f, (w(ctx), w(root)))?;
        }
        Ok(())
    }

    /// `proxy_on_log`: header maps are read-only views meanwhile (Envoy's access-log phase).
    pub(crate) fn call_log(&mut self, ctx: u32) -> Result<(), Crashed> {
        let Some(f) = self.funcs.log.clone() else {
            return Ok(());
        };
        let set_phase = |vm: &mut Self, on| {
            if let Some(stream) = vm.host_mut().streams.get_mut(&ctx) {
                stream.log_phase = on;
            }
        };
        set_phase(self, true);
        let result = self.invoke("proxy_on_log", ctx, &f, w(ctx));
        set_phase(self, false);
        result
    }

    /// `proxy_on_done` then `proxy_on_delete`.
    pub(crate) fn call_done_delete(&mut self, ctx: u32) -> Result<(), Crashed> {
        if let Some(f) = self.funcs.done.clone() {
            self.invoke("proxy_on_done", ctx, &f, w(ctx))?;
        }
        if let Some(f) = self.funcs.delete.clone() {
            self.invoke("proxy_on_delete", ctx, &f, w(ctx))?;
        }
        Ok(())
    }

    /// Pumps every stream a host call touched, until none is left.
    pub(crate) fn pump_dirty(&mut self) -> Result<(), Crashed> {
        loop {
            let dirty = std::mem::take(&mut self.host_mut().dirty);
            if dirty.is_empty() {
                return Ok(());
            }
            for ctx in dirty {
                self.pump(ctx)?;
            }
        }
    }

    /// Bytes of linear memory.
    pub(crate) fn memory_size(&self) -> usize {
        self.host()
            .memory
            .map(|m| m.data_size(&self.store))
            .unwrap_or(0)
    }
}
