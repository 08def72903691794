//! `pat-testbed`: a wasmtime host that implements the proxy-wasm ABI v0.2.1 with
//! Envoy 1.40 semantics, so the compiled `.wasm` of a filter can be driven from
//! ordinary Rust tests.
//!
//! It is a *stateful emulator*: a test builds a [`Testbed`] (one "Envoy process"
//! running one module), sends requests through one of its VMs, moves the clock,
//! answers HTTP calls, and then **inspects** what happened — the [`Exchange`] of a
//! request (forwarded request, local response, client response, callback actions),
//! metrics, logs, shared data, pending HTTP calls and traps. There is no script of
//! expected host calls.
//!
//! ```
//! use pat_testbed::{Plugin, Request, Response, Testbed, wasm_artifact};
//! use std::time::Duration;
//!
//! # fn main() -> Result<(), pat_testbed::Error> {
//! let tb = Testbed::builder(wasm_artifact("testbed_fixture")?)
//!     .workers(2)
//!     .plugin(Plugin::new("public").configuration("tick_ms=100"))
//!     .cluster("auth")
//!     .build()?;
//! let ex = tb.vm(0).send(Request::get("/hello").header("x-fixture-op", "add-header"));
//! assert_eq!(ex.forwarded().unwrap().header("x-fixture-added"), Some("yes"));
//! tb.advance(Duration::from_millis(100)); // fires the tick in both VMs
//! assert_eq!(tb.counter("fixture.ticks"), Some(2));
//! let call = tb.vm(1).send(Request::get("/x").header("x-fixture-op", "http-call"));
//! let pending = tb.pending_http_calls().pop().unwrap();
//! tb.respond_http_call(pending.token, Response::new(200).body("ok"))?;
//! assert!(call.is_forwarded());
//! # Ok(()) }
//! ```
//!
//! # Model
//!
//! * [`Testbed`] = one Envoy process. It owns the compiled module and a `World`
//!   shared by all VMs (one `Mutex<World>` behind an `Arc`): shared data, shared
//!   queues, metrics, logs, pending HTTP calls, timers and traps, next to the clock.
//!   Nothing is global (only the engine and compiled-module cache are
//!   process-wide, and hold no test state), so tests run in parallel.
//! * [`Vm`] = one worker thread's instance with its own wasmtime `Store` (its
//!   contexts, streams and linear memory). The testbed is `Sync`: two threads may
//!   drive two VMs at once; the World lock serializes host state like Envoy's.
//! * [`Plugin`] = one root context in every VM. Requests go through the first
//!   plugin unless [`Vm::send_to`] names another.
//!
//! # Envoy behaviour worth knowing
//!
//! * `StopIteration` from `on_*_headers` is turned into `StopAllIterationAndWatermark`
//!   unless [`TestbedBuilder::allow_on_headers_stop_iteration`] is set (Envoy's
//!   `allow_on_headers_stop_iteration`, default false): body callbacks are **not**
//!   delivered while headers are paused; after `proxy_continue_stream` the body that
//!   arrived meanwhile is delivered in one callback.
//! * Request headers are only accessible until they are released (`Continue` or
//!   `continue_stream`); afterwards `get_http_request_header` returns `BadArgument`
//!   (the Rust SDK panics) — except read-only in `on_log`.
//! * `replace_header` removes every value and appends one (Envoy's `setCopy`).
//! * Header values (and `:path`) are bytes, not necessarily UTF-8: Envoy's HTTP/1
//!   codec passes obs-text (0x80–0xFF) through, and the SDK's string getters
//!   (`get_http_request_header`) panic on it. Send such values with
//!   [`Request::header_bytes`] / [`Request::path_bytes`]; read them back exactly
//!   with [`HttpMessage::header_bytes`] (the `&str` accessors convert lossily).
//! * An HTTP call that times out is answered with Envoy's async-client response
//!   (`:status: 504`, body `upstream request timeout`); [`Testbed::fail_http_call`]
//!   is a reset (`on_http_call_response(.., 0, 0, 0)`, `get_status` = 11 "reset").
//! * A trap fails the stream with a local `503` (details `wasm_fail_stream`);
//!   [`FailurePolicy`] decides what happens to later requests.
//! * `on_queue_ready` is delivered before the driving testbed call returns.
//! * The testbed records every log level by default (Envoy's default level is
//!   `info`); set [`TestbedBuilder::log_level`] to mimic a production log level.
//!
//! Unsupported on purpose: network (L4) filters and their callbacks, gRPC calls
//! (`proxy_grpc_call`/`proxy_grpc_stream` return `InternalFailure`, which the SDK
//! surfaces as an error; `Unimplemented` would make it panic), foreign functions
//! (`NotFound`), metadata maps, and ABI 0.1.x. Unknown imports link as traps.
//!
//! # Layout
//!
//! * `artifact` — locating `<target>/wasm32-wasip1/release/<name>.wasm` (refused when older
//!   than a source it was built from), the process-wide engine and compiled-module cache.
//! * `builder` — [`TestbedBuilder`], [`Plugin`], [`FailurePolicy`], the frozen `Config`.
//! * `testbed` — [`Testbed`] and the [`Vm`] handle: driving and inspecting.
//! * `world` — state shared by all VMs (clock, logs, timers, traps, HTTP calls).
//! * `shared` — shared data (CAS) and shared queues.
//! * `metrics` — counters, gauges, histograms.
//! * `http` — [`Headers`], [`Request`], [`Response`], [`HttpMessage`].
//! * `exchange` — the [`Exchange`] handle and what it records.
//! * `stream` — one HTTP stream in Envoy's filter-manager order: `stream::half`, each
//!   direction as pure transitions (what to deliver next, what the filter's answer does),
//!   and `stream::pump`, which calls the guest and feeds the answers back.
//! * `vm` — one instance: store, guest exports, start sequence, trap capture.
//! * `abi/*` — the host functions, one module per hostcall family, plus guest
//!   memory access (`abi::memory`) and the header-map wire format (`abi::pairs`).
//! * `error` — [`Error`].

mod abi;
mod artifact;
mod builder;
mod error;
mod exchange;
mod http;
mod metrics;
mod shared;
mod stream;
mod testbed;
mod vm;
mod world;

pub use artifact::{check_fresh, wasm_artifact};
pub use builder::{FailurePolicy, Plugin, TestbedBuilder, UpstreamFn};
pub use error::Error;
pub use exchange::{Action, Callback, CallbackAction, Exchange, LocalResponse, StreamStatus};
pub use http::{Headers, HttpMessage, Request, Response};
pub use metrics::{Metric, MetricValue};
pub use shared::SharedValue;
pub use testbed::{RunSummary, Testbed, Vm};
pub use world::{HttpCall, LogEntry, LogLevel, LogSource, StartupFailure, TrapRecord};
