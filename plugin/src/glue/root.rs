//! The root context: configuration, the periodic snapshot check, and the VM-wide snapshot.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, LogLevel};

use super::filter::Filter;
use super::host::{HostShared, log, now_millis};
use super::metrics::Metrics;
use crate::config::{Config, Unmatched};
use crate::edge::{Edge, Refresh};
use crate::shared;

thread_local! {
    /// The snapshot this VM serves from. One per VM (not per root context): when the public
    /// and control filters share a VM, they share one copy.
    pub(crate) static EDGE: RefCell<Edge> = RefCell::new(Edge::default());

    /// Whether this VM serves requests. Envoy also runs a VM on its main thread that never
    /// gets a request; it should not hold a ~57 MB snapshot (at 1,000,000 tokens) nor compete
    /// for CPU when a new one is published. A VM becomes active with its first HTTP context;
    /// from then on it keeps its snapshot current on every tick.
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
}

/// Marks this VM as serving requests.
pub(crate) fn activate() {
    ACTIVE.set(true);
}

/// One configured filter instance in this VM.
#[derive(Default)]
pub(crate) struct Root {
    config: Option<Rc<Config>>,
    metrics: Option<Rc<Metrics>>,
}

impl Context for Root {}

impl RootContext for Root {
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
        let config = match Config::parse(&bytes, |name| std::env::var(name).ok()) {
            Ok(config) => config,
            Err(e) => {
                log(
                    LogLevel::Error,
                    &format!("pat-edge: configuration rejected: {e}"),
                );
                return false;
            }
        };
        if let Err(e) = shared::ensure_pointer(&HostShared) {
            log(LogLevel::Warn, &format!("pat-edge: {e}"));
        }
        if let Err(status) = hostcalls::set_tick_period(config.refresh_interval) {
            log(
                LogLevel::Error,
                &format!("pat-edge: cannot set the refresh tick: {status:?}"),
            );
            return false;
        }
        let keys: Vec<String> = config.keys.iter().map(|k| k.id().to_string()).collect();
        log(
            LogLevel::Info,
            &format!(
                "pat-edge: configured: trusted keys [{}], push endpoint {}, ordinary sessions {}, missing session {}",
                keys.join(", "),
                config.push.as_ref().map_or("disabled", |p| p.path.as_str()),
                word(config.ordinary_sessions),
                word(config.missing_session),
            ),
        );
        let config = Rc::new(config);
        let metrics = Rc::new(Metrics::define());
        if ACTIVE.get() {
            refresh(&config, &metrics);
        }
        self.config = Some(config);
        self.metrics = Some(metrics);
        true
    }

    fn on_tick(&mut self) {
        if !ACTIVE.get() {
            return;
        }
        if let (Some(config), Some(metrics)) = (&self.config, &self.metrics) {
            refresh(config, metrics);
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        activate();
        Some(Box::new(Filter::new(
            self.config.clone(),
            self.metrics.clone(),
        )))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

fn word(rule: Unmatched) -> &'static str {
    match rule {
        Unmatched::Pass => "pass",
        Unmatched::Deny => "deny",
    }
}

/// Switches this VM to a newer published snapshot, if there is one.
pub(crate) fn refresh(config: &Config, metrics: &Metrics) {
    let started = now_millis();
    let outcome = EDGE.with_borrow_mut(|edge| edge.refresh(&HostShared, &config.keys));
    match outcome {
        Ok(Refresh::Applied { version, tokens }) => {
            let ms = now_millis().saturating_sub(started);
            metrics.snapshot(version, tokens, Some(ms));
            log(
                LogLevel::Info,
                &format!(
                    "pat-edge: serving snapshot version {version} ({tokens} tokens), applied in {ms} ms"
                ),
            );
        }
        Ok(Refresh::Failed(e)) => {
            metrics.load_failed();
            metrics.snapshot(0, 0, None);
            log(
                LogLevel::Error,
                &format!(
                    "pat-edge: the published snapshot cannot be used here, token requests are denied until a valid one arrives: {e}"
                ),
            );
        }
        Ok(Refresh::Unchanged | Refresh::NothingPublished) => {}
        Err(e) => log(
            LogLevel::Warn,
            &format!("pat-edge: snapshot check failed: {e}"),
        ),
    }
}
