//! The HTTP context: forwards each callback to the request's state machine
//! ([`crate::request::Request`]) with a [`RequestHost`] over proxy-wasm.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action as HostAction;

use super::host::{
    HostShared, add_request_header, debug_enabled, drain_request_body, level, log, now_micros,
    now_millis, property, remove_request_header, replace_request_body_prefix, request_body,
    request_clock, send_json, set_request_header, vm_memory_bytes,
};
use super::metrics::Metrics;
use super::root;
use super::vm::{self, REPLICA};
use crate::config::Config;
use crate::control::CONTROL_SOURCE;
use crate::header_map::HeaderMap;
use crate::rate_limit::LocalBudgets;
use crate::replica::Replica;
use crate::reply::error_body;
use crate::request::{Action, Event, Level, Request, RequestHost};
use crate::usage::UsageLog;

/// What a configured root context gives each of its requests: its configuration and its
/// metric ids.
pub(crate) struct Setup {
    pub(crate) config: Config,
    pub(crate) metrics: Metrics,
}

pub(crate) struct Filter {
    /// `None` when the root's configuration was refused.
    setup: Option<Rc<Setup>>,
    request: Request,
}

impl Filter {
    pub(crate) fn new(context_id: u32, setup: Option<Rc<Setup>>) -> Self {
        Self {
            setup,
            request: Request::new(context_id),
        }
    }
}

/// The request host over proxy-wasm: this VM's state, and the metrics of the root the
/// request came through.
struct Host<'a> {
    setup: &'a Setup,
}

impl RequestHost for Host<'_> {
    type Store = HostShared;

    fn request_headers(&self) -> Option<HeaderMap> {
        super::pairs::request_headers()
    }

    fn add_header(&self, name: &str, value: &[u8]) {
        add_request_header(name, value);
    }

    fn set_header(&self, name: &str, value: &[u8]) {
        set_request_header(name, value);
    }

    fn remove_header(&self, name: &str) {
        remove_request_header(name);
    }

    fn body(&self, start: usize, len: usize) -> Option<Vec<u8>> {
        request_body(start, len)
    }

    fn replace_body_prefix(&self, len: usize, value: &[u8]) {
        replace_request_body_prefix(len, value);
    }

    fn drain_body(&self, len: usize) {
        drain_request_body(len);
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        property(path)
    }

    fn send_json(&self, status: u32, body: &str, extra_headers: &[(&str, &str)]) {
        send_json(status, body, extra_headers);
    }

    fn clock_secs(&self, tick_clock_is_fresh: bool) -> u64 {
        request_clock(tick_clock_is_fresh)
    }

    fn now_millis(&self) -> u64 {
        now_millis()
    }

    fn now_micros(&self) -> u64 {
        now_micros()
    }

    fn memory_bytes(&self) -> usize {
        vm_memory_bytes()
    }

    fn debug_enabled(&self) -> bool {
        debug_enabled()
    }

    fn log(&self, at: Level, message: &str) {
        log(level(at), message);
    }

    fn count(&self, event: Event) {
        let metrics = &self.setup.metrics;
        match event {
            Event::PassedThrough => metrics.passed_through(),
            Event::Allowed => metrics.allowed(),
            Event::Denied(reason) => metrics.denied(reason),
            Event::Push { accepted } => metrics.push(accepted),
            Event::Serving {
                version,
                tokens,
                apply_ms,
            } => metrics.snapshot(version, tokens, Some(apply_ms)),
        }
    }

    fn store(&self) -> &HostShared {
        &HostShared
    }

    fn replica<R>(&self, f: impl FnOnce(&Replica) -> R) -> R {
        REPLICA.with_borrow(f)
    }

    fn replica_mut<R>(&self, f: impl FnOnce(&mut Replica) -> R) -> R {
        REPLICA.with_borrow_mut(f)
    }

    fn usage<R>(&self, f: impl FnOnce(&mut UsageLog) -> R) -> R {
        vm::USAGE.with_borrow_mut(f)
    }

    fn rate_budgets<R>(&self, f: impl FnOnce(&mut LocalBudgets) -> R) -> R {
        vm::RATE_BUDGETS.with_borrow_mut(f)
    }

    fn vm_active(&self) -> bool {
        vm::is_active()
    }

    fn vm_number(&self) -> u64 {
        vm::number()
    }

    fn refresh(&self) {
        let host = root::Host {
            metrics: &self.setup.metrics,
        };
        crate::root::refresh(&host, &self.setup.config);
    }
}

fn host_action(action: Action) -> HostAction {
    match action {
        Action::Continue => HostAction::Continue,
        Action::Pause => HostAction::Pause,
    }
}

impl Context for Filter {
    fn on_done(&mut self) -> bool {
        if let Some(setup) = &self.setup {
            self.request.on_done(&Host { setup });
        }
        true
    }
}

impl HttpContext for Filter {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> HostAction {
        let Some(setup) = &self.setup else {
            // Envoy does not route traffic to a filter whose configuration was refused;
            // should it happen anyway, fail closed.
            send_json(
                503,
                &error_body(
                    503,
                    "the access-token filter is not configured",
                    CONTROL_SOURCE,
                ),
                &[],
            );
            return HostAction::Pause;
        };
        host_action(
            self.request
                .on_headers(&Host { setup }, &setup.config, end_of_stream),
        )
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> HostAction {
        let Some(setup) = &self.setup else {
            return HostAction::Pause;
        };
        host_action(
            self.request
                .on_body(&Host { setup }, &setup.config, body_size, end_of_stream),
        )
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> HostAction {
        let Some(setup) = &self.setup else {
            return HostAction::Pause;
        };
        host_action(self.request.on_trailers(&Host { setup }, &setup.config))
    }
}
