//! Proxy-wasm shared data: what the VMs of one Envoy (its worker VMs, the control listener's
//! VM, the main thread's) share, each kind of state under keys of its own. Every change is a
//! compare-and-swap, so VMs racing each other never leave a key half-updated.
//!
//! # Layout
//! - [`pointer`]: the published token state: the pointer naming it and the keys holding its
//!   documents; publishing a verified chain; loading what a VM lacks.
//! - [`floor`]: the version floor learnt from the origin after a (re)start (no rollback).
//! - [`push_lease`]: one push at a time per edge.
//! - [`fetch_slot`]: one origin fetch at a time per edge, what it fetches and when the next
//!   is due.
//! - [`vm_number`]: each VM's number within this Envoy.
//! - `memory` (tests, and the `test-support` feature): an in-memory [`SharedStore`] with
//!   Envoy's semantics, for native tests and benchmarks.

pub mod fetch_slot;
pub mod floor;
#[cfg(any(test, feature = "test-support"))]
pub mod memory;
pub mod pointer;
pub mod push_lease;
pub mod vm_number;

pub use pointer::{
    POINTER_KEY, Pointer, PublishError, delta_key, ensure_pointer, load_delta, load_full,
    publish_chain, read_pointer,
};

/// Host shared-data operations (Envoy's semantics: `get` returns the value and its CAS,
/// `set` with CAS 0 is unconditional, a stale CAS is refused).
pub trait SharedStore {
    /// Reads a key: `None` when absent.
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError>;
    /// Writes a key; fails with [`StoreError::CasMismatch`] when `cas` is not current.
    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError>;
}

/// A shared-data failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Someone else wrote the key first.
    #[error("shared data changed concurrently (CAS mismatch)")]
    CasMismatch,
    /// The host refused the operation.
    #[error("shared data operation failed: {0}")]
    Host(String),
}
