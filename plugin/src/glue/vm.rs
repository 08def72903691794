//! State of this VM, shared by every root context and request in it: its copy of the token
//! state, whether it serves requests at all, its usage log, its rate-limit budgets (when split
//! per worker), and its number within this Envoy.

use std::cell::{Cell, RefCell};

use proxy_wasm::types::LogLevel;

use super::host::{HostShared, log};
use crate::rate_limit::LocalBudgets;
use crate::replica::Replica;
use crate::shared::vm_number;
use crate::usage::UsageLog;

thread_local! {
    /// The state this VM serves from. One per VM (not per root context): when the public
    /// and control filters share a VM, they share one copy.
    pub(crate) static REPLICA: RefCell<Replica> = RefCell::new(Replica::default());

    /// Whether this VM serves requests. Envoy also runs a VM on its main thread that never
    /// gets a request; it should not hold a ~57 MB snapshot (at 1,000,000 tokens) nor compete
    /// for CPU when a new one is published. A VM becomes active with its first HTTP context;
    /// from then on it keeps its snapshot current on every tick.
    static ACTIVE: Cell<bool> = const { Cell::new(false) };

    /// This VM's number within this Envoy (0: not assigned yet), unique among its VMs.
    static NUMBER: Cell<u64> = const { Cell::new(0) };

    /// What this VM let through since its last usage report.
    pub(crate) static USAGE: RefCell<UsageLog> = RefCell::new(UsageLog::default());

    /// This VM's rate-limit budgets, when they are split per worker.
    pub(crate) static RATE_BUDGETS: RefCell<LocalBudgets> = RefCell::new(LocalBudgets::default());
}

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
        match vm_number::next(&HostShared) {
            Ok(n) => NUMBER.set(n),
            Err(e) => log(LogLevel::Warn, &format!("pat-edge: VM number: {e}")),
        }
    }
    NUMBER.get()
}
