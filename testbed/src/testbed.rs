//! [`Testbed`] (one Envoy process) and [`Vm`] (one worker): driving requests,
//! time and HTTP calls, and inspecting the shared state.

use crate::abi;
use crate::artifact;
use crate::builder::{Config, FailurePolicy, TestbedBuilder};
use crate::error::Error;
use crate::exchange::{Exchange, StreamStatus};
use crate::http::{Request, Response};
use crate::metrics::{Metric, MetricValue};
use crate::shared::SharedValue;
use crate::stream::{bypass, fail_exchange};
use crate::vm::{CallResponse, Crashed, HostState, StartError, VmInstance};
use crate::world::{
    CallOutcome, Clock, Due, HttpCall, LogEntry, Shared, StartupFailure, TrapRecord, World,
};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};
use wasmtime::InstancePre;

/// Bound on queue-notification rounds, so two VMs feeding each other cannot hang a test.
const MAX_QUEUE_ROUNDS: usize = 1000;

/// One worker's slot: its instance, or `None` once it crashed.
struct VmSlot {
    index: usize,
    instance: Option<VmInstance>,
}

impl VmSlot {
    /// Runs `f` on a live instance; a trap crashes the VM.
    fn run(&mut self, shared: &Shared, f: impl FnOnce(&mut VmInstance) -> Result<(), Crashed>) {
        let Some(instance) = self.instance.as_mut() else {
            return;
        };
        if f(instance).is_err() {
            self.crash(shared);
        }
    }

    /// Envoy marks the VM failed: in-flight streams get a 503, its timers and calls vanish.
    fn crash(&mut self, shared: &Shared) {
        if let Some(mut instance) = self.instance.take() {
            for (_, stream) in instance.host_mut().streams.drain() {
                stream.fail();
            }
        }
        shared.world().forget_vm(self.index);
    }

    fn reload(&mut self, shared: &Arc<Shared>, pre: &InstancePre<HostState>) {
        let Ok(mut instance) = VmInstance::create(pre, shared.clone(), self.index) else {
            return;
        };
        if instance.start(false).is_ok() {
            self.instance = Some(instance);
        } else {
            // The new VM failed to start: it stays failed (the trap, if any, is recorded).
            shared.world().forget_vm(self.index);
        }
    }

    fn send(
        &mut self,
        shared: &Arc<Shared>,
        pre: &InstancePre<HostState>,
        plugin: usize,
        request: Request,
    ) -> Exchange {
        let config = &shared.config;
        if self.instance.is_none() {
            match config.failure_policy {
                FailurePolicy::FailClosed => {}
                FailurePolicy::FailReload => self.reload(shared, pre),
                FailurePolicy::FailOpen => {
                    let exchange = Exchange::new(self.index, 0, &config.plugins[plugin].root_id);
                    bypass(&exchange, request, config.upstream.as_ref());
                    return exchange;
                }
            }
        }
        let Some(instance) = self.instance.as_mut() else {
            let exchange = Exchange::new(self.index, 0, &config.plugins[plugin].root_id);
            fail_exchange(&exchange);
            return exchange;
        };
        match instance.start_stream(plugin, request) {
            Ok(exchange) => exchange,
            Err((exchange, Crashed)) => {
                self.crash(shared);
                exchange
            }
        }
    }
}

/// One Envoy process running one module: VMs, plugins, and the shared World.
///
/// `Sync`: several threads may drive different VMs at once. Every method takes
/// `&self`; state lives in the VMs' stores and the World.
pub struct Testbed {
    shared: Arc<Shared>,
    pre: InstancePre<HostState>,
    vms: Vec<Mutex<VmSlot>>,
}

impl std::fmt::Debug for Testbed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Testbed")
            .field("wasm", &self.shared.config.wasm)
            .field("workers", &self.vms.len())
            .finish_non_exhaustive()
    }
}

/// What [`Vm::run`] saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Requests sent.
    pub requests: usize,
    /// Completed through the upstream.
    pub forwarded: usize,
    /// Answered by a local response.
    pub local_responses: usize,
    /// Left paused by the filter.
    pub paused: usize,
    /// Reset.
    pub reset: usize,
}

impl Testbed {
    /// Starts configuring a testbed for the module at `wasm` (see [`crate::wasm_artifact`]).
    pub fn builder(wasm: impl Into<PathBuf>) -> TestbedBuilder {
        TestbedBuilder::new(wasm.into())
    }

    pub(crate) fn start(config: Config, allow_failure: bool) -> Result<Testbed, Error> {
        let module = artifact::load_module(&config.wasm)?;
        let linker = abi::linker(&module)?;
        let pre = linker
            .instantiate_pre(&module)
            .map_err(|e| Error::Instantiate(format!("{e:#}")))?;
        let workers = config.workers;
        let shared = Arc::new(Shared {
            clock: Clock::new(config.start_time),
            config,
            world: Mutex::new(World::default()),
        });
        let mut vms = Vec::with_capacity(workers);
        for index in 0..workers {
            let mut instance = VmInstance::create(&pre, shared.clone(), index)?;
            match instance.start(allow_failure) {
                Ok(failures) => shared.world().startup_failures.extend(failures),
                Err(StartError::Trap { callback, message }) => {
                    return Err(Error::StartupTrap {
                        vm: index,
                        callback,
                        message,
                        logs: shared.world().logs_of(index),
                    });
                }
                Err(StartError::Rejected(failure)) => {
                    return Err(Error::Rejected {
                        vm: index,
                        plugin: failure.plugin,
                        callback: failure.callback,
                        logs: shared.world().logs_of(index),
                    });
                }
            }
            vms.push(Mutex::new(VmSlot {
                index,
                instance: Some(instance),
            }));
        }
        Ok(Testbed { shared, pre, vms })
    }

    fn slot(&self, index: usize) -> MutexGuard<'_, VmSlot> {
        self.vms[index]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn world(&self) -> MutexGuard<'_, World> {
        self.shared.world()
    }

    /// The VM of worker `index`. Panics if there is no such worker.
    pub fn vm(&self, index: usize) -> Vm<'_> {
        assert!(
            index < self.vms.len(),
            "VM {index} does not exist: the testbed has {} worker(s)",
            self.vms.len()
        );
        Vm { tb: self, index }
    }

    /// Number of VMs.
    pub fn workers(&self) -> usize {
        self.vms.len()
    }

    /// Root ids of the plugins, in order (the first one is the default).
    pub fn plugins(&self) -> Vec<String> {
        self.shared
            .config
            .plugins
            .iter()
            .map(|p| p.root_id.clone())
            .collect()
    }

    // ---- time -------------------------------------------------------------

    /// The testbed clock.
    pub fn now(&self) -> SystemTime {
        self.shared.clock.system_time()
    }

    /// Moves the clock forward by `by`, firing every tick and HTTP-call timeout
    /// that falls due, in time order across all VMs (the clock reads the due time
    /// during each callback). A period fires once per elapsed period.
    pub fn advance(&self, by: Duration) {
        let clock = &self.shared.clock;
        let until = clock
            .nanos()
            .saturating_add(u64::try_from(by.as_nanos()).unwrap_or(u64::MAX));
        loop {
            let due = self.world().next_due(until);
            match due {
                None => break,
                Some(Due::Tick { at, vm, root }) => {
                    clock.set(at);
                    self.fire_tick(vm, root);
                    self.world().rearm(vm, root, at);
                }
                Some(Due::CallTimeout { at, token }) => {
                    clock.set(at);
                    let pending = self.world().http_calls.remove(&token);
                    if let Some(pending) = pending {
                        self.deliver(&pending.call, CallOutcome::Response(timeout_response()));
                    }
                }
            }
            self.flush_queue_ready();
        }
        clock.set(until);
    }

    /// Fires `on_tick` once, now, in every root context that has a tick period.
    pub fn tick_all(&self) {
        let timers: Vec<(usize, u32)> = self.world().timers.keys().copied().collect();
        for (vm, root) in timers {
            self.fire_tick(vm, root);
            self.flush_queue_ready();
        }
    }

    fn fire_tick(&self, vm: usize, root: u32) {
        let mut slot = self.slot(vm);
        if slot.instance.is_none() {
            self.world().timers.remove(&(vm, root));
            return;
        }
        slot.run(&self.shared, |instance| instance.on_tick(root));
    }

    // ---- HTTP calls ------------------------------------------------------

    /// HTTP calls dispatched and not answered yet, by token.
    pub fn pending_http_calls(&self) -> Vec<HttpCall> {
        self.world()
            .http_calls
            .values()
            .map(|p| p.call.clone())
            .collect()
    }

    /// Answers a pending call: `proxy_on_http_call_response(root, token, headers,
    /// body size, trailers)` runs with the response readable as map 6/7 and buffer 4;
    /// streams it resumes continue before this returns.
    pub fn respond_http_call(&self, token: u32, response: Response) -> Result<(), Error> {
        let pending = self.world().http_calls.remove(&token);
        let pending = pending.ok_or(Error::UnknownHttpCall(token))?;
        self.deliver(&pending.call, CallOutcome::Response(response));
        self.flush_queue_ready();
        Ok(())
    }

    /// Fails a pending call as a reset: `proxy_on_http_call_response(.., 0, 0, 0)`
    /// with `proxy_get_status` reporting 11 (`BrokenConnection`) "reset".
    pub fn fail_http_call(&self, token: u32) -> Result<(), Error> {
        let pending = self.world().http_calls.remove(&token);
        let pending = pending.ok_or(Error::UnknownHttpCall(token))?;
        self.deliver(&pending.call, CallOutcome::Reset);
        self.flush_queue_ready();
        Ok(())
    }

    fn deliver(&self, call: &HttpCall, outcome: CallOutcome) {
        let response = match outcome {
            CallOutcome::Response(r) => Some(CallResponse {
                headers: r.header_map(),
                body: r.body_bytes(),
                trailers: r.trailer_map().unwrap_or_default(),
            }),
            CallOutcome::Reset => None,
        };
        let (root, token) = (call.root_context_id, call.token);
        self.slot(call.vm).run(&self.shared, |instance| {
            instance.on_http_call_response(root, token, response)
        });
    }

    /// Delivers `on_queue_ready` notifications owed after enqueues, until none is left.
    fn flush_queue_ready(&self) {
        for _ in 0..MAX_QUEUE_ROUNDS {
            let batch = std::mem::take(&mut self.world().queue_ready);
            if batch.is_empty() {
                return;
            }
            for ready in batch {
                if ready.vm < self.vms.len() {
                    self.slot(ready.vm).run(&self.shared, |instance| {
                        instance.on_queue_ready(ready.context_id, ready.token)
                    });
                }
            }
        }
    }

    // ---- inspection --------------------------------------------------------

    /// Every captured log line (all VMs, in order).
    pub fn logs(&self) -> Vec<LogEntry> {
        self.world().logs.clone()
    }

    /// Log messages containing `needle`.
    pub fn logs_containing(&self, needle: &str) -> Vec<String> {
        self.world()
            .logs
            .iter()
            .filter(|l| l.message.contains(needle))
            .map(|l| l.message.clone())
            .collect()
    }

    /// Forgets captured logs (e.g. after a noisy setup).
    pub fn clear_logs(&self) {
        self.world().logs.clear();
    }

    /// Every trap so far (a test of a healthy filter asserts this is empty).
    pub fn traps(&self) -> Vec<TrapRecord> {
        self.world().traps.clone()
    }

    /// Plugins that refused their configuration ([`TestbedBuilder::build_allow_failure`]).
    pub fn startup_failures(&self) -> Vec<StartupFailure> {
        self.world().startup_failures.clone()
    }

    /// A counter's value.
    pub fn counter(&self, name: &str) -> Option<u64> {
        match self.world().metrics.find(name, 0) {
            Some(MetricValue::Counter(v)) => Some(*v),
            _ => None,
        }
    }

    /// A gauge's value.
    pub fn gauge(&self, name: &str) -> Option<i64> {
        match self.world().metrics.find(name, 1) {
            Some(MetricValue::Gauge(v)) => Some(*v),
            _ => None,
        }
    }

    /// A histogram's samples.
    pub fn histogram(&self, name: &str) -> Option<Vec<u64>> {
        match self.world().metrics.find(name, 2) {
            Some(MetricValue::Histogram(v)) => Some(v.clone()),
            _ => None,
        }
    }

    /// Every metric defined so far.
    pub fn metrics(&self) -> Vec<Metric> {
        self.world().metrics.snapshot()
    }

    /// A shared-data entry.
    pub fn shared_data(&self, key: impl AsRef<[u8]>) -> Option<SharedValue> {
        self.world().shared_data.get(key.as_ref()).cloned()
    }

    /// Sets a shared-data entry unconditionally (as another VM would); returns its CAS.
    pub fn set_shared_data(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> u32 {
        self.world()
            .shared_data
            .set(key.as_ref(), value.as_ref(), 0)
            .expect("an unconditional set cannot mismatch")
    }

    /// Items waiting in a shared queue of this testbed's `vm_id`.
    pub fn queue_len(&self, name: &str) -> Option<usize> {
        self.world().queues.len(&self.shared.config.vm_id, name)
    }
}

/// Envoy's async client answer when an HTTP call times out.
fn timeout_response() -> Response {
    Response::new(504)
        .header("content-length", "24")
        .header("content-type", "text/plain")
        .body("upstream request timeout")
}

/// A handle on one VM of a [`Testbed`].
#[derive(Clone, Copy)]
pub struct Vm<'a> {
    tb: &'a Testbed,
    index: usize,
}

impl std::fmt::Debug for Vm<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vm").field("index", &self.index).finish()
    }
}

impl Vm<'_> {
    /// The worker index.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Sends a request through the first plugin and runs it as far as the filter
    /// lets it (to completion unless it pauses).
    pub fn send(&self, request: Request) -> Exchange {
        self.send_to_plugin(0, request)
    }

    /// Sends a request through the plugin with this root id. Panics if there is none.
    pub fn send_to(&self, root_id: &str, request: Request) -> Exchange {
        let plugin = self
            .tb
            .shared
            .config
            .plugin_index(root_id)
            .unwrap_or_else(|| panic!("no plugin with root_id `{root_id}`"));
        self.send_to_plugin(plugin, request)
    }

    fn send_to_plugin(&self, plugin: usize, request: Request) -> Exchange {
        let exchange =
            self.tb
                .slot(self.index)
                .send(&self.tb.shared, &self.tb.pre, plugin, request);
        self.tb.flush_queue_ready();
        exchange
    }

    /// Sends `count` copies of `request` through the first plugin (for benchmarks:
    /// the VM stays warm, nothing is retained but the counts).
    pub fn run(&self, request: &Request, count: usize) -> RunSummary {
        let mut summary = RunSummary::default();
        for _ in 0..count {
            let status = self.send(request.clone()).status();
            summary.requests += 1;
            match status {
                StreamStatus::Forwarded => summary.forwarded += 1,
                StreamStatus::LocalResponse => summary.local_responses += 1,
                StreamStatus::Paused => summary.paused += 1,
                StreamStatus::Reset => summary.reset += 1,
            }
        }
        summary
    }

    /// Bytes of the VM's linear memory (0 after a crash).
    pub fn memory_size(&self) -> usize {
        self.tb
            .slot(self.index)
            .instance
            .as_ref()
            .map_or(0, VmInstance::memory_size)
    }

    /// True once a trap failed this VM (and it has not been reloaded).
    pub fn is_crashed(&self) -> bool {
        self.tb.slot(self.index).instance.is_none()
    }

    /// Streams of this VM that are still open (paused).
    pub fn open_streams(&self) -> usize {
        self.tb
            .slot(self.index)
            .instance
            .as_ref()
            .map_or(0, |i| i.host().streams.len())
    }
}
