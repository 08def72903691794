//! State of this VM, shared by every root context and request in it: the snapshot it serves
//! from, whether it serves requests at all, and its number within this Envoy.

use std::cell::{Cell, RefCell};

use proxy_wasm::types::LogLevel;

use super::host::{HostShared, log, millis_since, now_micros, now_millis, vm_memory_bytes};
use super::metrics::Metrics;
use crate::config::Config;
use crate::edge::{Edge, Refresh};
use crate::shared::{SharedStore, StoreError};
use crate::usage::UsageLog;

thread_local! {
    /// The snapshot this VM serves from. One per VM (not per root context): when the public
    /// and control filters share a VM, they share one copy.
    pub(crate) static EDGE: RefCell<Edge> = RefCell::new(Edge::default());

    /// Whether this VM serves requests. Envoy also runs a VM on its main thread that never
    /// gets a request; it should not hold a ~57 MB snapshot (at 1,000,000 tokens) nor compete
    /// for CPU when a new one is published. A VM becomes active with its first HTTP context;
    /// from then on it keeps its snapshot current on every tick.
    static ACTIVE: Cell<bool> = const { Cell::new(false) };

    /// This VM's number within this Envoy (0: not assigned yet), unique among its VMs.
    static NUMBER: Cell<u64> = const { Cell::new(0) };

    /// What this VM let through since its last usage report.
    pub(crate) static USAGE: RefCell<UsageLog> = RefCell::new(UsageLog::default());
}

/// Shared-data counter that hands out VM numbers.
const VM_COUNTER_KEY: &str = "pat_edge.v2.vms";

/// Marks this VM as serving requests.
pub(crate) fn activate() {
    ACTIVE.set(true);
}

/// Whether this VM serves requests.
pub(crate) fn is_active() -> bool {
    ACTIVE.get()
}

/// This VM's number, assigned from a shared counter on first use.
pub(crate) fn number() -> u64 {
    if NUMBER.get() == 0 {
        match next_number(&HostShared) {
            Ok(n) => NUMBER.set(n),
            Err(e) => log(LogLevel::Warn, &format!("pat-edge: VM number: {e}")),
        }
    }
    NUMBER.get()
}

fn next_number(store: &impl SharedStore) -> Result<u64, StoreError> {
    for _ in 0..16 {
        let (bytes, cas) = store.get(VM_COUNTER_KEY)?.unwrap_or_default();
        let current = bytes
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u64::from_le_bytes);
        let next = current.saturating_add(1);
        match store.set(VM_COUNTER_KEY, &next.to_le_bytes(), cas) {
            Ok(()) => return Ok(next),
            Err(StoreError::CasMismatch) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::CasMismatch)
}

/// Switches this VM to a newer published snapshot, if there is one, and drops the one it
/// holds when it expires.
pub(crate) fn refresh(config: &Config, metrics: &Metrics) {
    let (started, timer) = (now_millis(), now_micros());
    let outcome = EDGE.with_borrow_mut(|edge| edge.refresh(&HostShared, &config.keys, started));
    match outcome {
        Ok(Refresh::Applied {
            version,
            tokens,
            deltas,
            full,
        }) => {
            let ms = millis_since(timer);
            metrics.snapshot(version, tokens, Some(ms as u64));
            let how = match (full, deltas) {
                (true, 0) => "the full snapshot".to_string(),
                (true, n) => format!("the full snapshot and {n} delta(s)"),
                (false, n) => format!("{n} delta(s)"),
            };
            log(
                LogLevel::Info,
                &format!(
                    "pat-edge: serving version {version} ({tokens} tokens), applied {how} in {ms:.2} ms, VM memory {} bytes",
                    vm_memory_bytes()
                ),
            );
        }
        Ok(Refresh::Failed(e)) => {
            metrics.load_failed();
            metrics.snapshot(0, 0, None);
            log(
                LogLevel::Error,
                &format!(
                    "pat-edge: the published snapshot cannot be used here, token requests are denied until a valid one arrives: {e}"
                ),
            );
        }
        Ok(Refresh::Unchanged | Refresh::NothingPublished) => {}
        Err(e) => log(
            LogLevel::Warn,
            &format!("pat-edge: snapshot check failed: {e}"),
        ),
    }
}
