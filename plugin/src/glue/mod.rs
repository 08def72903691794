//! Host glue: the only code that talks to proxy-wasm. Thin by design: it reads what the
//! host offers, calls the pure modules, and writes their answers back.
//!
//! Every host call but one goes through `proxy_wasm::hostcalls` with its `Result` handled:
//! the SDK's convenience methods unwrap, and the string variants of header getters panic on
//! a non-UTF-8 value (which a client controls). Only the `_bytes` variants are used here.
//! The exception is reading the request's headers (`pairs`): the SDK only offers it with a
//! deserialization that allocates twice per header and panics on an unexpected status.
//!
//! # Layout
//! - `root`: the root context: each callback forwarded to [`crate::root::Root`], with the
//!   [`crate::root::RootHost`] over these host calls.
//! - `filter`: the HTTP context: each callback forwarded to [`crate::request::Request`],
//!   with the [`crate::request::RequestHost`] over these host calls.
//! - `vm`: this VM's state, shared by its root contexts and requests: its replica, usage
//!   log, whether it serves requests, its number.
//! - `host`: small adapters over the host calls, and shared data as a
//!   [`crate::shared::SharedStore`].
//! - `pairs`: the request's headers in one call, read in place (the crate's only `unsafe`
//!   code).
//! - `metrics`: the metric ids and what they count.

mod filter;
mod host;
mod metrics;
mod pairs;
mod root;
mod vm;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Trace);
    proxy_wasm::set_root_context(|_| Box::new(root::RootContextGlue::default()));
}}
