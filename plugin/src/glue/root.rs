//! The root context: configuration, the periodic snapshot check, and the VM-wide snapshot.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, LogLevel, MapType};

use super::filter::Filter;
use super::host::{self, HostShared, log, now_millis};
use super::metrics::Metrics;
use crate::config::{Config, Unmatched};
use crate::edge::{Edge, PushRejection, Refresh};
use crate::origin::{self, Fetched, OriginConfig};
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

impl Context for Root {
    /// The origin's answer to a fetch this VM dispatched.
    fn on_http_call_response(
        &mut self,
        _token_id: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let (Some(config), Some(metrics)) = (&self.config, &self.metrics) else {
            return;
        };
        let Some(origin) = &config.origin else {
            return;
        };
        let header = |name: &str| {
            hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, name)
                .ok()
                .flatten()
                .and_then(|v| String::from_utf8(v).ok())
        };
        // A failed or reset call comes with no headers and no response maps: reading one
        // is BadArgument, which the SDK turns into a panic.
        let status = if num_headers == 0 {
            None
        } else {
            header(":status")
        };
        let outcome = match status.as_deref() {
            Some("200") => {
                let body = hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                let started = now_millis();
                let result = EDGE.with_borrow_mut(|edge| {
                    edge.accept_fetched(&HostShared, &config.keys, body, ACTIVE.get())
                });
                match result {
                    Ok(accepted) => {
                        metrics.origin(Fetched::Snapshot { etag: None });
                        if ACTIVE.get() {
                            metrics.snapshot(
                                accepted.version,
                                accepted.tokens,
                                Some(now_millis().saturating_sub(started)),
                            );
                        }
                        log(
                            LogLevel::Info,
                            &format!(
                                "pat-edge: snapshot version {} ({} tokens) fetched from the origin and published",
                                accepted.version, accepted.tokens
                            ),
                        );
                        Fetched::Snapshot {
                            etag: header("etag"),
                        }
                    }
                    Err(PushRejection::Stale { offered, current }) => {
                        metrics.origin(Fetched::NotModified);
                        log(
                            LogLevel::Debug,
                            &format!(
                                "pat-edge: the origin's snapshot version {offered} is not newer than version {current}"
                            ),
                        );
                        Fetched::Snapshot {
                            etag: header("etag"),
                        }
                    }
                    Err(e) => {
                        metrics.origin(Fetched::Failed);
                        log(
                            LogLevel::Error,
                            &format!("pat-edge: the snapshot from the origin was refused: {e}"),
                        );
                        Fetched::Failed
                    }
                }
            }
            Some("304") => {
                metrics.origin(Fetched::NotModified);
                Fetched::NotModified
            }
            other => {
                metrics.origin(Fetched::Failed);
                log(
                    LogLevel::Warn,
                    &format!(
                        "pat-edge: snapshot fetch from cluster {} failed ({}); retrying in {} ms",
                        origin.cluster,
                        other.map_or_else(|| "no response".to_string(), |s| format!("HTTP {s}")),
                        origin.retry.as_millis()
                    ),
                );
                Fetched::Failed
            }
        };
        if let Err(e) = origin::finish(&HostShared, now_millis(), &outcome, origin) {
            log(LogLevel::Warn, &format!("pat-edge: {e}"));
        }
    }
}

/// Claims the next origin fetch if it is due and dispatches it.
fn fetch_if_due(origin: &OriginConfig, metrics: &Metrics) {
    let etag = match origin::try_claim(&HostShared, now_millis(), ACTIVE.get(), origin) {
        Ok(Some(etag)) => etag,
        Ok(None) => return,
        Err(e) => {
            log(LogLevel::Warn, &format!("pat-edge: {e}"));
            return;
        }
    };
    let mut headers = vec![
        (":method", "GET"),
        (":path", origin.path.as_str()),
        (":authority", origin.authority.as_str()),
        ("accept", "application/octet-stream"),
    ];
    if let Some(tag) = &etag {
        headers.push(("if-none-match", tag.as_str()));
    }
    if let Err(status) =
        hostcalls::dispatch_http_call(&origin.cluster, headers, None, vec![], origin.timeout)
    {
        metrics.origin(Fetched::Failed);
        log(
            LogLevel::Warn,
            &format!(
                "pat-edge: cannot fetch the snapshot from cluster {}: {status:?} (is the cluster defined?)",
                origin.cluster
            ),
        );
        let _ = origin::finish(&HostShared, now_millis(), &Fetched::Failed, origin);
    }
}

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
        if config.origin.is_some()
            && let Err(e) = origin::ensure_slot(&HostShared, now_millis())
        {
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
                "pat-edge: configured: trusted keys [{}], push endpoint {}, origin {}, ordinary sessions {}, missing session {}",
                keys.join(", "),
                config.push.as_ref().map_or("disabled", |p| p.path.as_str()),
                config
                    .origin
                    .as_ref()
                    .map_or("none", |o| o.cluster.as_str()),
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
        host::on_tick();
        let (Some(config), Some(metrics)) = (&self.config, &self.metrics) else {
            return;
        };
        if ACTIVE.get() {
            refresh(config, metrics);
        }
        if let Some(origin) = &config.origin {
            fetch_if_due(origin, metrics);
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
                    "pat-edge: serving snapshot version {version} ({tokens} tokens), applied in {ms} ms, VM memory {} bytes",
                    host::vm_memory_bytes()
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
