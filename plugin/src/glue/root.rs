//! The root context: configuration, the periodic snapshot check, and the origin rounds.

use std::rc::Rc;

use pat_core::snapshot::BODY_OFFSET;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, LogLevel, MapType};

use super::filter::{Filter, Setup};
use super::host::{self, HostShared, log, now_millis};
use super::metrics::Metrics;
use super::vm::{self, EDGE, refresh};
use crate::config::{Config, Unmatched};
use crate::edge::{Clock, PushRejection, kind_word};
use crate::floor;
use crate::origin::{self, Fetch, Fetched, OriginConfig};
use crate::shared;

/// One configured filter instance in this VM.
#[derive(Default)]
pub(crate) struct Root {
    /// `None` until configured (and when the configuration was refused).
    setup: Option<Rc<Setup>>,
    /// The origin fetch this root dispatched and is waiting for.
    in_flight: Option<(u32, Fetch)>,
    /// The usage report this root dispatched and is waiting for.
    report_in_flight: Option<u32>,
}

impl Root {
    /// The origin's answer to a head fetch.
    fn head_answer(
        &self,
        config: &Config,
        metrics: &Metrics,
        origin: &OriginConfig,
        status: Option<&str>,
        body_size: usize,
    ) -> Fetched {
        match status {
            Some("200") => {
                let head = response_body(body_size.min(BODY_OFFSET));
                let clock = Clock {
                    now_ms: now_millis(),
                    max_age_ms: config.max_snapshot_age_ms,
                };
                let seen = EDGE
                    .with_borrow(|edge| edge.accept_head(&HostShared, &config.keys, &head, clock));
                match seen {
                    Ok(seen) => {
                        let outcome = if seen.fetch {
                            Fetched::HeadNewer
                        } else {
                            Fetched::HeadCurrent
                        };
                        metrics.origin(&outcome);
                        metrics.origin_floor(seen.floor);
                        log(
                            if seen.fetch {
                                LogLevel::Info
                            } else {
                                LogLevel::Debug
                            },
                            &format!(
                                "pat-edge: the origin holds snapshot version {}; version floor {}{}",
                                seen.version,
                                seen.floor,
                                if seen.fetch { ", fetching it" } else { "" }
                            ),
                        );
                        outcome
                    }
                    Err(e) => {
                        metrics.origin(&Fetched::Failed);
                        log(
                            LogLevel::Error,
                            &format!("pat-edge: the origin's snapshot head was refused: {e}"),
                        );
                        Fetched::Failed
                    }
                }
            }
            Some("404") => {
                // The origin answered: it has nothing published. Nothing older than nothing
                // can be replayed, so pushes may proceed.
                match floor::raise(&HostShared, 0) {
                    Ok(floor) => {
                        metrics.origin(&Fetched::HeadCurrent);
                        metrics.origin_floor(floor);
                        log(
                            LogLevel::Info,
                            "pat-edge: the origin has no snapshot published yet",
                        );
                        Fetched::HeadCurrent
                    }
                    Err(e) => {
                        log(LogLevel::Warn, &format!("pat-edge: {e}"));
                        Fetched::Failed
                    }
                }
            }
            other => {
                metrics.origin(&Fetched::Failed);
                log(
                    LogLevel::Warn,
                    &format!(
                        "pat-edge: snapshot head fetch from cluster {} failed ({}); retrying in {} ms",
                        origin.cluster,
                        other.map_or_else(|| "no response".to_string(), |s| format!("HTTP {s}")),
                        origin.retry.as_millis()
                    ),
                );
                Fetched::Failed
            }
        }
    }

    /// The origin's answer to a full-snapshot fetch.
    fn snapshot_answer(
        &self,
        config: &Config,
        metrics: &Metrics,
        origin: &OriginConfig,
        status: Option<&str>,
        body_size: usize,
    ) -> Fetched {
        let etag = || response_header("etag");
        match status {
            Some("200") => {
                let body = response_body(body_size);
                if pat_core::snapshot::bundle::decode(&body).is_ok_and(|docs| docs.is_empty()) {
                    // Nothing since the version asked about: the origin has moved no further.
                    metrics.origin(&Fetched::NotModified);
                    return Fetched::Snapshot { etag: etag() };
                }
                let started = now_millis();
                let clock = Clock {
                    now_ms: started,
                    max_age_ms: config.max_snapshot_age_ms,
                };
                let result = EDGE.with_borrow_mut(|edge| {
                    edge.accept(&HostShared, &config.keys, body, clock, vm::is_active())
                });
                match result {
                    Ok(accepted) => {
                        let fetched = Fetched::Snapshot { etag: etag() };
                        metrics.origin(&fetched);
                        if vm::is_active() {
                            metrics.snapshot(
                                accepted.version,
                                accepted.tokens,
                                Some(now_millis().saturating_sub(started)),
                            );
                        }
                        log(
                            LogLevel::Info,
                            &format!(
                                "pat-edge: caught up with the origin: version {} ({} tokens, the last document a {})",
                                accepted.version,
                                accepted.tokens,
                                kind_word(accepted.kind)
                            ),
                        );
                        fetched
                    }
                    Err(rejection @ PushRejection::NotNewer { .. }) => {
                        metrics.origin(&Fetched::NotModified);
                        log(
                            LogLevel::Debug,
                            &format!("pat-edge: the origin's snapshot: {rejection}"),
                        );
                        Fetched::Snapshot { etag: etag() }
                    }
                    Err(rejection @ PushRejection::DoesNotApply { .. }) => {
                        // This edge holds another chain than the origin's: take a full copy.
                        metrics.origin(&Fetched::Failed);
                        log(
                            LogLevel::Warn,
                            &format!(
                                "pat-edge: the origin's deltas do not apply here ({rejection}); fetching its full snapshot"
                            ),
                        );
                        Fetched::NeedFull
                    }
                    Err(rejection @ PushRejection::BelowFloor { .. }) => {
                        // The origin went backwards (restored from an old copy?): not retried
                        // before the next round.
                        metrics.origin(&Fetched::Failed);
                        log(
                            LogLevel::Error,
                            &format!("pat-edge: the origin's snapshot was refused: {rejection}"),
                        );
                        Fetched::Snapshot { etag: None }
                    }
                    Err(e) => {
                        metrics.origin(&Fetched::Failed);
                        log(
                            LogLevel::Error,
                            &format!("pat-edge: the snapshot from the origin was refused: {e}"),
                        );
                        Fetched::Failed
                    }
                }
            }
            Some("304") => {
                metrics.origin(&Fetched::NotModified);
                Fetched::NotModified
            }
            other => {
                metrics.origin(&Fetched::Failed);
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
        }
    }
}

fn response_header(name: &str) -> Option<String> {
    hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, name)
        .ok()
        .flatten()
        .and_then(|v| String::from_utf8(v).ok())
}

fn response_body(size: usize) -> Vec<u8> {
    hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, size)
        .ok()
        .flatten()
        .unwrap_or_default()
}

impl Context for Root {
    /// The origin's answer to a fetch this VM dispatched.
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
        let (config, metrics) = (&setup.config, &setup.metrics);
        if self.report_in_flight.take_if(|t| *t == token_id).is_some() {
            let status = (num_headers > 0)
                .then(|| response_header(":status"))
                .flatten();
            let delivered = status.as_deref() == Some("200");
            metrics.report(delivered);
            if !delivered {
                log(
                    LogLevel::Warn,
                    &format!(
                        "pat-edge: a usage report was not accepted ({}); it is dropped, the next one carries later uses",
                        status.map_or_else(|| "no response".to_string(), |s| format!("HTTP {s}"))
                    ),
                );
            }
            vm::USAGE.with_borrow_mut(|log| log.finished());
            return;
        }
        let Some(origin) = &config.origin else {
            return;
        };
        let Some((_, fetch)) = self.in_flight.take_if(|(t, _)| *t == token_id) else {
            return;
        };
        // A failed or reset call comes with no headers and no response maps: reading one
        // is BadArgument, which the SDK turns into a panic.
        let status = if num_headers == 0 {
            None
        } else {
            response_header(":status")
        };
        let outcome = match fetch {
            Fetch::Head => self.head_answer(config, metrics, origin, status.as_deref(), body_size),
            Fetch::Snapshot { .. } => {
                self.snapshot_answer(config, metrics, origin, status.as_deref(), body_size)
            }
        };
        if let Err(e) = origin::finish(&HostShared, now_millis(), &outcome, origin) {
            log(LogLevel::Warn, &format!("pat-edge: {e}"));
        }
    }
}

impl Root {
    /// Sends this VM's usage report when one is due.
    fn report_if_due(&mut self, usage: &crate::config::Usage, metrics: &Metrics) {
        let now = now_millis();
        let Some(uses) = vm::USAGE.with_borrow_mut(|log| log.take_due(now, usage.config.interval))
        else {
            return;
        };
        let body = pat_core::report::sign(&uses, now, &usage.key);
        let headers = vec![
            (":method", "POST"),
            (":path", usage.config.path.as_str()),
            (":authority", usage.config.authority.as_str()),
            ("content-type", "application/octet-stream"),
        ];
        match hostcalls::dispatch_http_call(
            &usage.config.cluster,
            headers,
            Some(&body),
            vec![],
            usage.config.timeout,
        ) {
            Ok(token) => self.report_in_flight = Some(token),
            Err(status) => {
                metrics.report(false);
                log(
                    LogLevel::Warn,
                    &format!(
                        "pat-edge: cannot send a usage report to cluster {}: {status:?}",
                        usage.config.cluster
                    ),
                );
                vm::USAGE.with_borrow_mut(|log| log.finished());
            }
        }
    }

    /// Claims the next origin fetch if it is due and dispatches it.
    fn fetch_if_due(&mut self, origin: &OriginConfig, metrics: &Metrics) {
        let fetch = match origin::try_claim(&HostShared, now_millis(), vm::is_active(), origin) {
            Ok(Some(fetch)) => fetch,
            Ok(None) => return,
            Err(e) => {
                log(LogLevel::Warn, &format!("pat-edge: {e}"));
                return;
            }
        };
        // A catch-up names what this Envoy holds: the origin answers with the deltas since
        // (or a full snapshot when that is smaller, or the edge holds nothing).
        let held = shared::read_pointer(&HostShared).map_or(0, |(p, _)| p.version);
        let path = match &fetch {
            Fetch::Head => origin.head_path.clone(),
            Fetch::Snapshot { full: true, .. } => origin.path.clone(),
            Fetch::Snapshot { .. } => origin::catch_up_path(&origin.path, held),
        };
        let mut headers = vec![
            (":method", "GET"),
            (":path", path.as_str()),
            (":authority", origin.authority.as_str()),
            ("accept", "application/octet-stream"),
        ];
        if let Fetch::Snapshot {
            etag: Some(tag),
            full,
        } = &fetch
            && (held == 0 || *full)
        {
            headers.push(("if-none-match", tag.as_str()));
        }
        match hostcalls::dispatch_http_call(&origin.cluster, headers, None, vec![], origin.timeout)
        {
            Ok(token) => self.in_flight = Some((token, fetch)),
            Err(status) => {
                metrics.origin(&Fetched::Failed);
                log(
                    LogLevel::Warn,
                    &format!(
                        "pat-edge: cannot fetch from the origin cluster {}: {status:?} (is the cluster defined?)",
                        origin.cluster
                    ),
                );
                let _ = origin::finish(&HostShared, now_millis(), &Fetched::Failed, origin);
            }
        }
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
        if config.origin.is_some() {
            // Before any listener takes traffic: no push is accepted until the origin said
            // which version it holds.
            let ready = floor::ensure_pending(&HostShared)
                .and_then(|()| origin::ensure_slot(&HostShared, now_millis()));
            if let Err(e) = ready {
                log(LogLevel::Warn, &format!("pat-edge: {e}"));
            }
        }
        // The trusted keys may have changed: a snapshot refused before may be usable now.
        EDGE.with_borrow_mut(|edge| edge.forget_refusals());
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
                "pat-edge: configured: trusted keys [{}], push endpoint {}, origin {}, usage reports {}, max snapshot age {} ms, ordinary sessions {}, missing session {}",
                keys.join(", "),
                config.push.as_ref().map_or("disabled", |p| p.path.as_str()),
                config
                    .origin
                    .as_ref()
                    .map_or("none", |o| o.cluster.as_str()),
                config.usage.as_ref().map_or_else(
                    || "off".to_string(),
                    |u| format!(
                        "to {} every {} s, signed by edge key {}",
                        u.config.cluster,
                        u.config.interval.as_secs(),
                        u.key.public_key().id()
                    )
                ),
                config.max_snapshot_age_ms,
                word(config.ordinary_sessions),
                word(config.missing_session),
            ),
        );
        let metrics = Metrics::define();
        if vm::is_active() {
            refresh(&config, &metrics);
        }
        self.setup = Some(Rc::new(Setup { config, metrics }));
        true
    }

    fn on_tick(&mut self) {
        host::on_tick();
        let Some(setup) = self.setup.clone() else {
            return;
        };
        let (config, metrics) = (&setup.config, &setup.metrics);
        if vm::is_active() {
            refresh(config, metrics);
            if let Some(usage) = &config.usage {
                self.report_if_due(usage, metrics);
            }
        }
        if let Some(origin) = &config.origin {
            self.fetch_if_due(origin, metrics);
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        // The control listener's filter runs in a VM of its own (envoy.yaml): it publishes
        // pushes to shared data and never holds a snapshot itself.
        if self.setup.as_ref().is_some_and(|s| s.config.push.is_none()) {
            vm::activate();
        }
        Some(Box::new(Filter::new(context_id, self.setup.clone())))
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
