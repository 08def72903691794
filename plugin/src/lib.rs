//! The pat-edge filter: a proxy-wasm HTTP filter that authorizes personal access tokens,
//! passed as the `session` parameter of platform API calls, against a signed snapshot of
//! hashed tokens pushed to the edge.
//!
//! # Layout
//! Pure modules (no proxy-wasm calls, unit-tested natively):
//! - [`config`]: the JSON configuration and its validation.
//! - [`session`]: `session` (and `envName`, in the same pass) in query strings and urlencoded
//!   bodies; stripping `session`.
//! - [`env_name`]: the request's `envName` as that same pass finds it (for tokens limited to
//!   environments).
//! - [`stray`]: token-format values where no token belongs (parameter pollution).
//! - [`content_type`], [`multipart`]: which bodies can carry a session, and the incremental
//!   multipart scan that stops at the first file part.
//! - [`decide`]: the allow / deny / pass-through verdict and the denial reasons.
//! - [`digits`]: numbers in decimal without allocating.
//! - [`rate_limit`]: per-token rate limits (GCRA), edge-wide in shared data or per worker.
//! - [`control`]: the control endpoint rules (internal listeners only, reply statuses).
//! - [`reply`]: the JSON bodies, from the wire contract's types ([`pat_core::protocol`]).
//! - [`header_map`]: the request's headers as the host serializes them, read in one call.
//! - [`shared`]: what the VMs of one Envoy share in proxy-wasm shared data: the published
//!   state (pointer and documents), the version floor, the push lease, the origin fetch
//!   slot, VM numbers; every change a compare-and-swap.
//! - [`replica`]: one VM's copy of the token state: catching up with what was published
//!   (refresh), accepting a push or a fetched document (accept), freshness.
//! - [`usage`]: what each VM saw let through ("last used"), for the origin's reports.
//! - [`log`]: the levels the state machines log at.
//! - [`request`]: one request through the filter, a state machine over these modules behind
//!   a host trait ([`request::RequestHost`]): headers, bodies, the verdict applied, the
//!   control endpoint and pushes.
//! - [`root`]: the root context, a state machine behind a host trait ([`root::RootHost`]):
//!   configuration, the refresh tick, origin rounds (the signed head, snapshot fetches,
//!   catch-ups) and usage-report delivery.
//! - `test_support` (the `test-support` feature, and this crate's tests): fake hosts for
//!   both machines, the in-memory shared data, a publisher of signed documents: for native
//!   tests, benchmarks and other crates' tests (pat-admin's fake edge runs the real
//!   control endpoint on them).
//!
//! The host glue is `glue` (wasm32 only), the only code that makes proxy-wasm calls: it
//! forwards the root and HTTP callbacks to [`root::Root`] and [`request::Request`] with each
//! machine's host trait implemented over the host calls, and holds this VM's state (its
//! replica, usage log and number), the metrics, and the [`shared::SharedStore`]
//! implementation over proxy-wasm shared data. Its only `unsafe` code (`glue::pairs`) makes
//! the header-map call the SDK only offers with a deserialization that allocates twice per
//! header.
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
pub mod digits;
pub mod env_name;
pub mod header_map;
pub mod log;
pub mod multipart;
pub mod rate_limit;
pub mod replica;
pub mod reply;
pub mod request;
pub mod root;
pub mod session;
pub mod shared;
pub mod stray;
#[cfg(any(test, feature = "test-support"))]
pub mod test_support;
pub mod usage;

#[cfg(target_arch = "wasm32")]
mod glue;
