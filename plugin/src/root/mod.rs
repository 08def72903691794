//! The root context, as a state machine behind a host trait ([`RootHost`]): `glue` forwards
//! the proxy-wasm root callbacks (configure, tick, an outbound call's answer) to a [`Root`]
//! and implements the trait over the host calls; the unit tests drive it with a fake host.
//!
//! Every tick a serving VM catches up with the published state and sends its usage report
//! when one is due; and every VM, when an origin is configured, takes the next origin fetch
//! when it is due and no other VM has it (the fetch slot in shared data). An origin round is
//! the signed head first — it raises the version floor, so a (re)started edge accepts no older
//! state, pushed or fetched — then, only when the head names a fresh version newer than the
//! one held, the state: the deltas since the version held (`?since=V`), or the whole of it for
//! an edge that holds nothing or another chain. Answers are verified here; the origin (and any
//! cache in front of it) is trusted for availability only.
//!
//! # Layout
//! - `host`: the [`RootHost`] trait, the [`Call`]s it dispatches, the [`Event`]s it counts.
//! - `configure`: the configuration and what a VM sets up before its listeners take traffic.
//! - `refresh`: the VM's catch-up with the published state, logged and counted.
//! - `origin`: origin rounds: the head, the state, what each answer means.
//! - `report`: usage reports: sending one when due, and its answer.

mod configure;
mod host;
mod origin;
mod refresh;
mod report;

#[cfg(test)]
mod tests;

pub use host::{Call, Event, Level, RootHost};
pub use refresh::refresh;

use crate::config::Config;
use crate::shared::fetch_slot::Fetch;

/// An answer to an outbound call, as the host announces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// The call's token.
    pub token: u32,
    /// How many headers it has: 0 when the call failed or timed out (there is no answer to
    /// read then).
    pub headers: usize,
    /// Its body's size.
    pub body_size: usize,
}

/// One configured root context: the calls it dispatched and waits for.
#[derive(Debug, Default)]
pub struct Root {
    /// The origin fetch in flight.
    fetching: Option<(u32, Fetch)>,
    /// The usage report in flight.
    reporting: Option<u32>,
}

impl Root {
    /// A tick: a serving VM catches up with the published state and reports its usage when
    /// due; the next origin fetch is taken when it is due.
    pub fn on_tick(&mut self, host: &impl RootHost, config: &Config) {
        if host.vm_active() {
            refresh(host, config);
            if let Some(usage) = &config.usage {
                self.report_if_due(host, usage);
            }
        }
        if let Some(origin) = &config.origin {
            self.fetch_if_due(host, origin);
        }
    }

    /// The answer to a call this root dispatched (others are not its own: ignored).
    pub fn on_answer(&mut self, host: &impl RootHost, config: &Config, answer: Answer) {
        if self.reporting.take_if(|t| *t == answer.token).is_some() {
            report::answered(host, answer);
            return;
        }
        let Some(origin) = &config.origin else {
            return;
        };
        if let Some((_, fetch)) = self.fetching.take_if(|(t, _)| *t == answer.token) {
            origin::answered(host, config, origin, &fetch, answer);
        }
    }

    /// Whether an HTTP context of this root makes its VM a serving one: every filter but the
    /// control listener's, which runs in a VM of its own (`envoy.yaml`) that publishes pushes
    /// to shared data and never holds a copy of the state.
    pub fn serves_requests(config: &Config) -> bool {
        config.push.is_none()
    }

    /// The status of the answer being delivered; `None` when there is none (a failed or reset
    /// call comes with no headers, and reading one then is an error in proxy-wasm).
    fn status(host: &impl RootHost, answer: Answer) -> Option<String> {
        (answer.headers > 0)
            .then(|| host.response_header(":status"))
            .flatten()
    }
}

/// `HTTP 503`, or `no response`, for logs.
fn described(status: Option<&str>) -> String {
    status.map_or_else(|| "no response".to_string(), |s| format!("HTTP {s}"))
}
