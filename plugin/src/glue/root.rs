//! The root context: each callback forwarded to [`crate::root::Root`], with the
//! [`RootHost`] over these host calls.

use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, MapType};

use super::filter::{Filter, Setup};
use super::host::{self, HostShared, level, log, now_micros, now_millis, vm_memory_bytes};
use super::metrics::Metrics;
use super::vm::{self, REPLICA};
use crate::replica::Replica;
use crate::root::{Answer, Call, Event, Level, Root, RootHost};
use crate::usage::UsageLog;

/// One configured filter instance in this VM.
#[derive(Default)]
pub(crate) struct RootContextGlue {
    root: Root,
    /// `None` until configured (and when the configuration was refused).
    setup: Option<Rc<Setup>>,
}

/// The root host over proxy-wasm: this VM's state, and the metrics of the root asking.
pub(super) struct Host<'a> {
    pub(super) metrics: &'a Metrics,
}

impl RootHost for Host<'_> {
    type Store = HostShared;

    fn dispatch(&self, call: &Call<'_>) -> Result<u32, String> {
        hostcalls::dispatch_http_call(
            call.cluster,
            call.headers.clone(),
            call.body,
            vec![],
            call.timeout,
        )
        .map_err(|status| format!("{status:?}"))
    }

    fn response_header(&self, name: &str) -> Option<String> {
        hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, name)
            .ok()
            .flatten()
            .and_then(|v| String::from_utf8(v).ok())
    }

    fn response_body(&self, len: usize) -> Vec<u8> {
        hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, len)
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    fn set_tick_period(&self, period: Duration) -> bool {
        hostcalls::set_tick_period(period).is_ok()
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

    fn vm_active(&self) -> bool {
        vm::is_active()
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

    fn log(&self, at: Level, message: &str) {
        log(level(at), message);
    }

    fn count(&self, event: Event) {
        self.metrics.root(event);
    }
}

impl Context for RootContextGlue {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let Some(setup) = self.setup.clone() else {
            return;
        };
        let answer = Answer {
            token: token_id,
            headers: num_headers,
            body_size,
        };
        let host = Host {
            metrics: &setup.metrics,
        };
        self.root.on_answer(&host, &setup.config, answer);
    }
}

impl RootContext for RootContextGlue {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        true
    }

    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        let bytes = hostcalls::get_buffer(
            BufferType::PluginConfiguration,
            0,
            plugin_configuration_size,
        )
        .ok()
        .flatten()
        .unwrap_or_default();
        let metrics = Metrics::define();
        let configured = Root::configure(&Host { metrics: &metrics }, &bytes, |name| {
            std::env::var(name).ok()
        });
        match configured {
            Some(config) => {
                self.setup = Some(Rc::new(Setup { config, metrics }));
                true
            }
            None => false,
        }
    }

    fn on_tick(&mut self) {
        host::on_tick();
        let Some(setup) = self.setup.clone() else {
            return;
        };
        let host = Host {
            metrics: &setup.metrics,
        };
        self.root.on_tick(&host, &setup.config);
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        if self
            .setup
            .as_ref()
            .is_some_and(|s| Root::serves_requests(&s.config))
        {
            vm::activate();
        }
        Some(Box::new(Filter::new(context_id, self.setup.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
