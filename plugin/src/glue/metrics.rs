//! The filter's metrics. Envoy shows them under `/stats` as `wasmcustom.pat_edge.*`; every
//! VM defines the same names, so each is one process-wide stat.

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

use crate::decide::Reason;
use crate::root::Event;

/// Metric ids of this VM.
pub(crate) struct Metrics {
    allowed: Option<u32>,
    passed_through: Option<u32>,
    denied_total: Option<u32>,
    denied: [Option<u32>; Reason::ALL.len()],
    snapshot_version: Option<u32>,
    snapshot_tokens: Option<u32>,
    snapshot_apply_ms: Option<u32>,
    snapshot_load_failed: Option<u32>,
    push_accepted: Option<u32>,
    push_rejected: Option<u32>,
    origin_fetched: Option<u32>,
    origin_heads: Option<u32>,
    origin_not_modified: Option<u32>,
    origin_failed: Option<u32>,
    origin_floor: Option<u32>,
    reports_sent: Option<u32>,
    reports_failed: Option<u32>,
}

fn define(kind: MetricType, name: &str) -> Option<u32> {
    hostcalls::define_metric(kind, name).ok()
}

impl Metrics {
    /// Defines (or looks up) every metric.
    pub(crate) fn define() -> Self {
        let counter = |name: &str| define(MetricType::Counter, name);
        let gauge = |name: &str| define(MetricType::Gauge, name);
        Self {
            allowed: counter("pat_edge.requests.allowed"),
            passed_through: counter("pat_edge.requests.passed_through"),
            denied_total: counter("pat_edge.requests.denied"),
            denied: Reason::ALL
                .map(|reason| counter(&format!("pat_edge.requests.denied.{}", reason.name()))),
            snapshot_version: gauge("pat_edge.snapshot.version"),
            snapshot_tokens: gauge("pat_edge.snapshot.tokens"),
            snapshot_apply_ms: gauge("pat_edge.snapshot.apply_ms"),
            snapshot_load_failed: counter("pat_edge.snapshot.load_failed"),
            push_accepted: counter("pat_edge.push.accepted"),
            push_rejected: counter("pat_edge.push.rejected"),
            origin_fetched: counter("pat_edge.origin.fetched"),
            origin_heads: counter("pat_edge.origin.heads"),
            origin_not_modified: counter("pat_edge.origin.not_modified"),
            origin_failed: counter("pat_edge.origin.failed"),
            origin_floor: gauge("pat_edge.origin.floor"),
            reports_sent: counter("pat_edge.usage.reports_sent"),
            reports_failed: counter("pat_edge.usage.reports_failed"),
        }
    }

    fn increment(id: Option<u32>) {
        if let Some(id) = id {
            let _ = hostcalls::increment_metric(id, 1);
        }
    }

    fn record(id: Option<u32>, value: u64) {
        if let Some(id) = id {
            let _ = hostcalls::record_metric(id, value);
        }
    }

    pub(crate) fn allowed(&self) {
        Self::increment(self.allowed);
    }

    pub(crate) fn passed_through(&self) {
        Self::increment(self.passed_through);
    }

    pub(crate) fn denied(&self, reason: Reason) {
        Self::increment(self.denied_total);
        Self::increment(self.denied.get(reason.index()).copied().flatten());
    }

    pub(crate) fn snapshot(&self, version: u64, tokens: u64, apply_ms: Option<u64>) {
        Self::record(self.snapshot_version, version);
        Self::record(self.snapshot_tokens, tokens);
        if let Some(ms) = apply_ms {
            Self::record(self.snapshot_apply_ms, ms);
        }
    }

    /// Counts what a root context reports.
    pub(crate) fn root(&self, event: Event) {
        match event {
            Event::Fetched => Self::increment(self.origin_fetched),
            Event::Head => Self::increment(self.origin_heads),
            Event::NotModified => Self::increment(self.origin_not_modified),
            Event::OriginFailed => Self::increment(self.origin_failed),
            Event::Floor(floor) => Self::record(self.origin_floor, floor),
            Event::Report { delivered: true } => Self::increment(self.reports_sent),
            Event::Report { delivered: false } => Self::increment(self.reports_failed),
            Event::Serving {
                version,
                tokens,
                apply_ms,
            } => self.snapshot(version, tokens, apply_ms),
            Event::LoadFailed => Self::increment(self.snapshot_load_failed),
        }
    }

    pub(crate) fn push(&self, accepted: bool) {
        Self::increment(if accepted {
            self.push_accepted
        } else {
            self.push_rejected
        });
    }
}
