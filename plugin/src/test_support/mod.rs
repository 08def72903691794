//! Fakes for native tests, benchmarks and other crates' tests (the `test-support` feature,
//! and this crate's own tests): the two state machines ([`crate::request::Request`],
//! [`crate::root::Root`]) run on them exactly as on proxy-wasm, with shared data in memory.
//!
//! # Layout
//! - `publisher`: [`Publisher`], signed full snapshots and deltas of a chain, as pat-admin
//!   signs them.
//! - `vm`: [`Vm`], one VM's state (shared data, its replica, usage log, clock, whether it
//!   serves requests) and what it logged and counted; [`Minted`] tokens for its snapshots.
//! - `request_host`: request hosts over a [`Vm`]: [`FakeRequest`], which keeps the request's
//!   headers and body as Envoy does and records every change and reply (for tests), and
//!   [`QuietRequest`], whose calls cost next to nothing (for benchmarks).
//! - `root_host`: [`FakeRoot`], a root host over a [`Vm`] that records the calls the root
//!   dispatches and delivers the answers a test gives.
//!
//! Shared data is [`MemoryStore`].

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod publisher;
mod request_host;
mod root_host;
mod vm;

pub use crate::shared::memory::MemoryStore;
pub use publisher::{ISSUED, NOW, Publisher};
pub use request_host::{FakeRequest, QuietRequest, Reply, Run, Unreadable};
pub use root_host::{Dispatched, FakeRoot, Response};
pub use vm::{ENV_METHODS, Minted, START, Vm};
