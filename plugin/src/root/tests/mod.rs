//! The root machine driven natively by [`crate::test_support::FakeRoot`], which records the
//! calls the root dispatches and delivers the answers each test gives; several roots over one
//! shared data stand for the VMs of one Envoy. One file per behaviour.

mod configure;
mod newer_head;
mod origin_failures;
mod origin_rounds;
mod refresh;
mod reports;

pub(super) use std::time::Duration;

pub(super) use pat_core::keys::SigningKey;
pub(super) use pat_core::protocol::origin as wire;
pub(super) use pat_core::snapshot::{BODY_OFFSET, bundle};

pub(super) use super::{Event, Level, Root};
pub(super) use crate::config::Config;
pub(super) use crate::shared::floor::{self, Floor};
pub(super) use crate::test_support::{FakeRoot, NOW, Publisher, Response, Vm};

/// The origin settings of these tests: a round every 10 s, a retry after 2 s, 5 s to answer.
pub(super) const ORIGIN: &str =
    r#""origin":{"cluster":"pat_origin","interval_ms":10000,"retry_ms":2000,"timeout_ms":5000}"#;

/// A serving VM whose clock reads [`NOW`], and a publisher that signs with its key.
pub(super) fn vm() -> (Vm, Publisher) {
    let vm = Vm::new();
    vm.now_ms.set(NOW.now_ms);
    let publisher = vm.publisher();
    (vm, publisher)
}

/// Configures a root of `host`'s VM with these JSON fields (and `edge_key` for reports).
pub(super) fn configure(host: &FakeRoot, fields: &str, edge_key: &SigningKey) -> Config {
    let json = format!("{{{fields}}}");
    Root::configure(host, json.as_bytes(), |name| host.vm.env(name, edge_key)).expect("configured")
}

/// A root configured with [`ORIGIN`].
pub(super) fn with_origin(host: &FakeRoot) -> (Root, Config) {
    let config = configure(host, ORIGIN, &SigningKey::generate().expect("rng"));
    (Root::default(), config)
}

/// Moves the VM's clock on.
pub(super) fn advance(vm: &Vm, by: Duration) {
    vm.now_ms.set(vm.now_ms.get() + by.as_millis() as u64);
}

/// A serving VM leaves the state fetch to Envoy's main-thread VM (which serves nothing) and
/// only takes it over once that one is late: the clock moved on so far.
pub(super) fn overdue(vm: &Vm) {
    advance(vm, crate::shared::fetch_slot::OVERDUE);
}

/// A document's signed head, as the origin serves it.
pub(super) fn head_of(document: &[u8]) -> Response {
    Response::new(200, &document[..BODY_OFFSET])
}

/// A state answer (a document or a bundle) with an ETag.
pub(super) fn state(body: Vec<u8>, etag: &str) -> Response {
    Response::new(200, body).with_header(wire::ETAG, etag)
}
