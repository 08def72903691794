//! The pat-edge filter: a proxy-wasm HTTP filter that authorizes personal access tokens,
//! passed as the `session` parameter of platform API calls, against a signed snapshot of
//! hashed tokens pushed to the edge.
//!
//! # Layout
//! Pure modules (no proxy-wasm calls, unit-tested natively):
//! - [`config`]: the JSON configuration and its validation.
//! - [`session`]: `session` in query strings and urlencoded bodies; stripping it.
//! - [`stray`]: token-format values where no token belongs (parameter pollution).
//! - [`content_type`], [`multipart`]: which bodies can carry a session, and the incremental
//!   multipart scan that stops at the first file part.
//! - [`decide`]: the allow / deny / pass-through verdict and the denial reasons.
//! - [`control`]: the control endpoint rules (internal listeners only, reply statuses).
//! - [`shared`]: the shared-data protocol between VMs (pointer + versioned keys, CAS).
//! - [`edge`]: one VM's snapshot: refresh, push acceptance, freshness, one copy in memory.
//! - [`floor`]: the version floor a (re)started edge learns from its origin (no rollback).
//! - [`push_lease`]: one push at a time per edge.
//! - [`origin`]: fetching the snapshot from the origin after a (re)start: the shared fetch
//!   slot that lets one VM at a time fetch.
//! - [`usage`]: what each VM saw let through ("last used"), for the origin's reports.
//! - [`reply`]: the JSON bodies.
//! - [`header_map`]: the request's headers as the host serializes them, read in one call.
//! - [`request`]: one request through the filter, a state machine over these modules behind
//!   a host trait ([`request::RequestHost`]): headers, bodies, the verdict applied, the
//!   control endpoint and pushes.
//!
//! The host glue is `glue` (wasm32 only), the only code that makes proxy-wasm calls: the
//! root context (configuration, ticks, origin fetches, usage reports), the HTTP context that
//! forwards its callbacks to a [`request::Request`] with a [`request::RequestHost`] over the
//! host calls, this VM's state (its snapshot, usage log and number), metrics, and the
//! [`shared::SharedStore`] implementation over proxy-wasm shared data. Its only `unsafe`
//! code (`glue::pairs`) makes the header-map call the SDK only offers with a
//! deserialization that allocates twice per header.
//!
//! A trap kills the worker's VM, so `unwrap`, `expect`, `panic!` and unchecked indexing are
//! denied outside tests; Envoy must run the filter with `failure_policy: FAIL_RELOAD`.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable
    )
)]

pub mod config;
pub mod content_type;
pub mod control;
pub mod decide;
pub mod edge;
pub mod floor;
pub mod header_map;
pub mod multipart;
pub mod origin;
pub mod push_lease;
pub mod reply;
pub mod request;
pub mod session;
pub mod shared;
pub mod stray;
pub mod usage;

#[cfg(target_arch = "wasm32")]
mod glue;
