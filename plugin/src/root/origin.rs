//! Origin rounds: the signed head, then the state when the head names a newer one.
//!
//! Shared data dies with Envoy, so a (re)started edge asks the origin itself, at start and
//! then every interval. One VM at a time fetches (the fetch slot, [`fetch_slot`]). Each
//! answer ends in an outcome that schedules the next fetch:
//!
//! | answer | outcome |
//! | --- | --- |
//! | head `200`, verified, newer and fresh | fetch the state now ([`Fetched::HeadNewer`]) |
//! | head `200`, verified, nothing newer | the next round after the interval |
//! | head `404` (nothing published yet) | the floor is 0: pushes may proceed |
//! | state `200`, accepted, or not newer than held | remember its ETag |
//! | state `200`, an empty catch-up | nothing newer |
//! | state `200`, deltas that do not apply here | fetch the whole state now ([`Fetched::NeedFull`]) |
//! | state `200`, below the floor (an origin restored from an old copy) | not retried before the next round |
//! | state `304` | nothing newer |
//! | anything else, garbage, no answer | retry soon |

use pat_core::protocol::{OCTET_STREAM, origin as wire};
use pat_core::snapshot::{BODY_OFFSET, bundle};

use super::host::{Call, Event, Level, RootHost};
use super::{Answer, Root, described};
use crate::config::{Config, OriginConfig};
use crate::replica::{Clock, PushRejection, kind_word};
use crate::shared::fetch_slot::{self, Fetch, Fetched};
use crate::shared::{self, floor};

impl Root {
    /// Claims the next origin fetch if it is due and dispatches it.
    pub(super) fn fetch_if_due(&mut self, host: &impl RootHost, origin: &OriginConfig) {
        let now = host.now_millis();
        let fetch = match fetch_slot::try_claim(host.store(), now, host.vm_active(), origin) {
            Ok(Some(fetch)) => fetch,
            Ok(None) => return,
            Err(e) => {
                host.log(Level::Warn, &format!("pat-edge: {e}"));
                return;
            }
        };
        // A catch-up names what this Envoy holds: the origin answers with the deltas since
        // (or a full snapshot when that is smaller, or the edge holds nothing).
        let held = shared::read_pointer(host.store()).map_or(0, |(p, _)| p.version);
        let path = match &fetch {
            Fetch::Head => origin.head_path.clone(),
            Fetch::Snapshot { full: true, .. } => origin.path.clone(),
            Fetch::Snapshot { .. } => wire::catch_up_path(&origin.path, held),
        };
        let mut headers = vec![
            (":method", "GET"),
            (":path", path.as_str()),
            (":authority", origin.authority.as_str()),
            ("accept", OCTET_STREAM),
        ];
        // Only the full answer is worth a conditional request: a catch-up's URL names the
        // version held, and it changes whenever that does.
        if let Fetch::Snapshot {
            etag: Some(tag),
            full,
        } = &fetch
            && (held == 0 || *full)
        {
            headers.push((wire::IF_NONE_MATCH, tag.as_str()));
        }
        let call = Call {
            cluster: &origin.cluster,
            headers,
            body: None,
            timeout: origin.timeout,
        };
        match host.dispatch(&call) {
            Ok(token) => self.fetching = Some((token, fetch)),
            Err(why) => {
                host.count(Event::OriginFailed);
                host.log(
                    Level::Warn,
                    &format!(
                        "pat-edge: cannot fetch from the origin cluster {}: {why} (is the cluster defined?)",
                        origin.cluster
                    ),
                );
                finish(host, origin, &Fetched::Failed);
            }
        }
    }
}

/// The origin answered `fetch` (or the call ended without an answer).
pub(super) fn answered(
    host: &impl RootHost,
    config: &Config,
    origin: &OriginConfig,
    fetch: &Fetch,
    answer: Answer,
) {
    let status = Root::status(host, answer);
    let outcome = match fetch {
        Fetch::Head => head(host, config, origin, status.as_deref(), answer.body_size),
        Fetch::Snapshot { .. } => state(host, config, origin, status.as_deref(), answer.body_size),
    };
    finish(host, origin, &outcome);
}

/// Records the outcome in the fetch slot (which schedules the next fetch).
fn finish(host: &impl RootHost, origin: &OriginConfig, outcome: &Fetched) {
    if let Err(e) = fetch_slot::finish(host.store(), host.now_millis(), outcome, origin) {
        host.log(Level::Warn, &format!("pat-edge: {e}"));
    }
}

/// A failed fetch: counted and logged, retried after `origin.retry`.
fn failed(
    host: &impl RootHost,
    origin: &OriginConfig,
    what: &str,
    status: Option<&str>,
) -> Fetched {
    host.count(Event::OriginFailed);
    host.log(
        Level::Warn,
        &format!(
            "pat-edge: {what} fetch from cluster {} failed ({}); retrying in {} ms",
            origin.cluster,
            described(status),
            origin.retry.as_millis()
        ),
    );
    Fetched::Failed
}

/// The origin's answer to a head fetch.
fn head(
    host: &impl RootHost,
    config: &Config,
    origin: &OriginConfig,
    status: Option<&str>,
    body_size: usize,
) -> Fetched {
    match status {
        Some("200") => {
            let head = host.response_body(body_size.min(BODY_OFFSET));
            let clock = Clock {
                now_ms: host.now_millis(),
                max_age_ms: config.max_snapshot_age_ms,
            };
            let seen = host
                .replica(|replica| replica.accept_head(host.store(), &config.keys, &head, clock));
            match seen {
                Ok(seen) => {
                    host.count(Event::Head);
                    host.count(Event::Floor(seen.floor));
                    host.log(
                        if seen.fetch {
                            Level::Info
                        } else {
                            Level::Debug
                        },
                        &format!(
                            "pat-edge: the origin holds snapshot version {}; version floor {}{}",
                            seen.version,
                            seen.floor,
                            if seen.fetch { ", fetching it" } else { "" }
                        ),
                    );
                    if seen.fetch {
                        Fetched::HeadNewer
                    } else {
                        Fetched::HeadCurrent
                    }
                }
                Err(e) => {
                    host.count(Event::OriginFailed);
                    host.log(
                        Level::Error,
                        &format!("pat-edge: the origin's snapshot head was refused: {e}"),
                    );
                    Fetched::Failed
                }
            }
        }
        Some("404") => {
            // The origin answered: it has nothing published. Nothing older than nothing can
            // be replayed, so pushes may proceed.
            match floor::raise(host.store(), 0) {
                Ok(floor) => {
                    host.count(Event::Head);
                    host.count(Event::Floor(floor));
                    host.log(
                        Level::Info,
                        "pat-edge: the origin has no snapshot published yet",
                    );
                    Fetched::HeadCurrent
                }
                Err(e) => {
                    host.log(Level::Warn, &format!("pat-edge: {e}"));
                    Fetched::Failed
                }
            }
        }
        other => failed(host, origin, "snapshot head", other),
    }
}

/// The origin's answer to a state fetch (a bundle, or one document).
fn state(
    host: &impl RootHost,
    config: &Config,
    origin: &OriginConfig,
    status: Option<&str>,
    body_size: usize,
) -> Fetched {
    let etag = || host.response_header(wire::ETAG);
    match status {
        Some("200") => {}
        Some("304") => {
            host.count(Event::NotModified);
            return Fetched::NotModified;
        }
        other => return failed(host, origin, "snapshot", other),
    }
    let body = host.response_body(body_size);
    if bundle::decode(&body).is_ok_and(|docs| docs.is_empty()) {
        // Nothing since the version asked about: the origin has moved no further.
        host.count(Event::NotModified);
        return Fetched::Snapshot { etag: etag() };
    }
    let started = host.now_millis();
    let clock = Clock {
        now_ms: started,
        max_age_ms: config.max_snapshot_age_ms,
    };
    let serving = host.vm_active();
    let result = host
        .replica_mut(|replica| replica.accept(host.store(), &config.keys, body, clock, serving));
    match result {
        Ok(accepted) => {
            host.count(Event::Fetched);
            if serving {
                host.count(Event::Serving {
                    version: accepted.version,
                    tokens: accepted.tokens,
                    apply_ms: Some(host.now_millis().saturating_sub(started)),
                });
            }
            host.log(
                Level::Info,
                &format!(
                    "pat-edge: caught up with the origin: version {} ({} tokens, the last document a {})",
                    accepted.version,
                    accepted.tokens,
                    kind_word(accepted.kind)
                ),
            );
            Fetched::Snapshot { etag: etag() }
        }
        Err(rejection @ PushRejection::NotNewer { .. }) => {
            // A push got here first (or another VM's fetch): nothing to do.
            host.count(Event::NotModified);
            host.log(
                Level::Debug,
                &format!("pat-edge: the origin's snapshot: {rejection}"),
            );
            Fetched::Snapshot { etag: etag() }
        }
        Err(rejection @ PushRejection::DoesNotApply { .. }) => {
            // This edge holds another chain than the origin's: take a full copy.
            host.count(Event::OriginFailed);
            host.log(
                Level::Warn,
                &format!(
                    "pat-edge: the origin's deltas do not apply here ({rejection}); fetching its full snapshot"
                ),
            );
            Fetched::NeedFull
        }
        Err(rejection @ PushRejection::BelowFloor { .. }) => {
            // The origin went backwards (restored from an old copy?): not retried before the
            // next round.
            host.count(Event::OriginFailed);
            host.log(
                Level::Error,
                &format!("pat-edge: the origin's snapshot was refused: {rejection}"),
            );
            Fetched::Snapshot { etag: None }
        }
        Err(e) => {
            host.count(Event::OriginFailed);
            host.log(
                Level::Error,
                &format!("pat-edge: the snapshot from the origin was refused: {e}"),
            );
            Fetched::Failed
        }
    }
}
