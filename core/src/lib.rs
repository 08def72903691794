//! `pat-core`: what the pat-edge filter (wasm32-wasip1) and `pat-admin` (native) must agree
//! on, in one place so the two sides cannot drift.
//!
//! # Layout
//! - [`token`]: the token format (`pate_` + 30 base62 + CRC32 checksum), generation,
//!   validation without lookup, masking for logs, and the SHA-256 [`token::TokenHash`].
//! - [`method`]: canonical API method names, group aliases, the request path → method
//!   resolution (strict: ambiguous paths are refused), and the methods no token may call.
//! - [`user`]: which account names are safe to forward in a header.
//! - [`net`]: client networks (CIDRs) a token may be limited to.
//! - [`env`]: environment names a token may be limited to.
//! - [`rate`]: per-token rate limits (`N/s`, `N/min`).
//! - [`report`]: signed usage reports from edges ("last used").
//! - [`protocol`]: the wire contract between the edge and pat-admin: the control
//!   endpoint's and the origin's paths, parameters, headers and JSON answers.
//! - [`hex`]: lowercase hex, for every crate.
//! - [`keys`]: Ed25519 signing and public keys and their text forms.
//! - [`snapshot`]: the signed documents — full snapshots and deltas: building and signing,
//!   verifying and opening, allocation-free lookups, and the state an edge holds (a snapshot
//!   with deltas applied).
//!
//! This crate runs inside the edge's VM, where a panic kills the VM: it denies `unwrap`,
//! `expect`, `panic!` and unchecked indexing outside tests.

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

pub mod env;
pub mod hex;
pub mod keys;
pub mod method;
pub mod net;
pub mod protocol;
pub mod rate;
pub mod report;
pub mod snapshot;
pub mod token;
pub mod user;
