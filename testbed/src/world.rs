//! State shared by every VM of a testbed: the clock, logs, timers, pending HTTP
//! calls, traps, shared data/queues and metrics. One `Arc<Mutex<World>>` per
//! testbed; the lock is only held for the duration of a host call, never while
//! guest code runs.

use crate::builder::Config;
use crate::http::{Headers, Response};
use crate::metrics::Metrics;
use crate::shared::{QueueReady, SharedData, SharedQueues};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// proxy-wasm log levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// 0
    Trace,
    /// 1
    Debug,
    /// 2
    Info,
    /// 3
    Warn,
    /// 4
    Error,
    /// 5
    Critical,
}

impl LogLevel {
    pub(crate) fn from_raw(raw: u32) -> Option<Self> {
        Some(match raw {
            0 => LogLevel::Trace,
            1 => LogLevel::Debug,
            2 => LogLevel::Info,
            3 => LogLevel::Warn,
            4 => LogLevel::Error,
            5 => LogLevel::Critical,
            _ => return None,
        })
    }

    pub(crate) fn raw(self) -> u32 {
        self as u32
    }
}

/// Where a log line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogSource {
    /// `proxy_log`.
    ProxyLog,
    /// WASI `fd_write` to stdout (Envoy logs it at info).
    Stdout,
    /// WASI `fd_write` to stderr (Envoy logs it at error).
    Stderr,
}

/// One captured log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    /// VM index.
    pub vm: usize,
    /// Level.
    pub level: LogLevel,
    /// The text (a trailing newline from stdout/stderr is removed, as Envoy does).
    pub message: String,
    /// `proxy_log`, stdout or stderr.
    pub source: LogSource,
    /// The context that was active (0 during `_initialize`).
    pub context_id: u32,
}

/// A guest trap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrapRecord {
    /// VM index.
    pub vm: usize,
    /// The export that was running (`proxy_on_request_headers`...).
    pub callback: &'static str,
    /// The context it ran for.
    pub context_id: u32,
    /// Wasmtime's message (`wasm trap: wasm `unreachable` instruction executed`...).
    pub message: String,
}

/// A plugin that refused its configuration (kept by [`crate::TestbedBuilder::build_allow_failure`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartupFailure {
    /// VM index.
    pub vm: usize,
    /// Plugin root id.
    pub plugin: String,
    /// `proxy_on_vm_start` or `proxy_on_configure`.
    pub callback: &'static str,
}

/// An HTTP call dispatched by the guest and not answered yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpCall {
    /// The token the guest got (unique across the testbed's VMs).
    pub token: u32,
    /// The VM that dispatched it.
    pub vm: usize,
    /// The context that dispatched it (the effective context at the time).
    pub context_id: u32,
    /// Its root context (Envoy delivers the answer there; the SDK routes it by token).
    pub root_context_id: u32,
    /// Target cluster.
    pub cluster: String,
    /// Request headers (keys lowercased; `content-length` added for a non-empty body).
    pub headers: Headers,
    /// Request body.
    pub body: Vec<u8>,
    /// Request trailers.
    pub trailers: Headers,
    /// The timeout the guest asked for (`None` for 0 = no timeout).
    pub timeout: Option<Duration>,
    /// Clock value when it was dispatched.
    pub dispatched_at: SystemTime,
}

pub(crate) struct PendingCall {
    pub(crate) call: HttpCall,
    pub(crate) deadline: Option<u64>,
}

/// How an HTTP call ends.
pub(crate) enum CallOutcome {
    Response(Response),
    Reset,
}

/// The testbed clock, in nanoseconds since the Unix epoch. Read without the World
/// lock by `proxy_get_current_time_nanoseconds` and WASI clocks.
#[derive(Clone, Debug)]
pub(crate) struct Clock(Arc<AtomicU64>);

impl Clock {
    pub(crate) fn new(start: SystemTime) -> Self {
        let nanos = start
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Clock(Arc::new(AtomicU64::new(nanos)))
    }

    pub(crate) fn nanos(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    /// Moves forward only.
    pub(crate) fn set(&self, nanos: u64) {
        self.0.fetch_max(nanos, Ordering::SeqCst);
    }

    pub(crate) fn system_time(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.nanos())
    }
}

impl wasmtime_wasi::HostWallClock for Clock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos())
    }
}

impl wasmtime_wasi::HostMonotonicClock for Clock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        self.nanos()
    }
}

/// A root context's tick timer.
pub(crate) struct Timer {
    pub(crate) period: u64,
    pub(crate) next_due: u64,
}

/// The next thing `advance` has to do.
pub(crate) enum Due {
    Tick { at: u64, vm: usize, root: u32 },
    CallTimeout { at: u64, token: u32 },
}

/// What every VM of a testbed shares: the frozen configuration, the World and the clock.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) world: Mutex<World>,
    pub(crate) clock: Clock,
}

impl Shared {
    /// Locks the World. A panic while it was held (a host bug) must not hide the
    /// state from the test inspecting it, so poisoning is ignored.
    pub(crate) fn world(&self) -> MutexGuard<'_, World> {
        self.world
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[derive(Default)]
pub(crate) struct World {
    pub(crate) logs: Vec<LogEntry>,
    pub(crate) traps: Vec<TrapRecord>,
    pub(crate) startup_failures: Vec<StartupFailure>,
    pub(crate) shared_data: SharedData,
    pub(crate) queues: SharedQueues,
    pub(crate) queue_ready: Vec<QueueReady>,
    pub(crate) metrics: Metrics,
    pub(crate) http_calls: BTreeMap<u32, PendingCall>,
    pub(crate) next_http_token: u32,
    /// Keyed by (vm, root context id): iteration order breaks ties between equal due times.
    pub(crate) timers: BTreeMap<(usize, u32), Timer>,
}

impl World {
    /// Envoy semantics: 0 disables; a running timer keeps its due time and picks up
    /// the new period when it re-arms.
    pub(crate) fn set_tick_period(&mut self, vm: usize, root: u32, period_ms: u32, now: u64) {
        let period = u64::from(period_ms) * 1_000_000;
        if period == 0 {
            self.timers.remove(&(vm, root));
            return;
        }
        self.timers
            .entry((vm, root))
            .and_modify(|t| t.period = period)
            .or_insert(Timer {
                period,
                next_due: now.saturating_add(period),
            });
    }

    /// Re-arms a timer after its tick ran at `at`.
    pub(crate) fn rearm(&mut self, vm: usize, root: u32, at: u64) {
        if let Some(timer) = self.timers.get_mut(&(vm, root)) {
            timer.next_due = at.saturating_add(timer.period);
        }
    }

    /// The earliest timer or call deadline at or before `until` (ticks first on ties).
    pub(crate) fn next_due(&self, until: u64) -> Option<Due> {
        let tick = self
            .timers
            .iter()
            .filter(|(_, t)| t.next_due <= until)
            .min_by_key(|((vm, root), t)| (t.next_due, *vm, *root))
            .map(|(&(vm, root), t)| Due::Tick {
                at: t.next_due,
                vm,
                root,
            });
        let call = self
            .http_calls
            .iter()
            .filter_map(|(&token, p)| p.deadline.map(|d| (d, token)))
            .filter(|&(d, _)| d <= until)
            .min()
            .map(|(at, token)| Due::CallTimeout { at, token });
        match (tick, call) {
            (Some(Due::Tick { at, vm, root }), Some(Due::CallTimeout { at: c, .. })) if at <= c => {
                Some(Due::Tick { at, vm, root })
            }
            (Some(_), Some(call)) => Some(call),
            (tick, None) => tick,
            (None, call) => call,
        }
    }

    /// Forgets everything owned by a VM that crashed.
    pub(crate) fn forget_vm(&mut self, vm: usize) {
        self.timers.retain(|&(v, _), _| v != vm);
        self.http_calls.retain(|_, p| p.call.vm != vm);
        self.queue_ready.retain(|q| q.vm != vm);
    }

    pub(crate) fn logs_of(&self, vm: usize) -> Vec<LogEntry> {
        self.logs.iter().filter(|l| l.vm == vm).cloned().collect()
    }
}
