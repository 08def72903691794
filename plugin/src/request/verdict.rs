//! Deciding with what was found, and applying the verdict: identity headers and stripping
//! for an allowed request, a platform-shaped denial, usage for the next report.

use std::net::IpAddr;
use std::time::Duration;

use super::host::{Event, Level};
use super::{Action, Request, RequestHost, Stage};
use crate::config::{Config, IdentityHeaders};
use crate::decide::{Category, Denial, Policy, Verdict, decide};
use crate::digits::decimal;
use crate::multipart::remove_ranges;
use crate::rate_limit::{Admission, Budget, admit_shared};
use crate::replica::Clock;
use crate::reply::error_body;
use crate::session::{SessionFinding, split_path, strip_from_path, strip_pairs, text};

/// Expiry may be checked against the clock of the last tick when ticks come at least this
/// often; with a longer refresh interval each token request reads the host clock.
const MAX_CLOCK_AGE: Duration = Duration::from_secs(1);

/// What to remove when the token is stripped: the query's `session`, and the body's.
#[derive(Debug, Default)]
pub(super) struct Strip {
    pub(super) query: bool,
    pub(super) body: BodyStrip,
}

#[derive(Debug, Default)]
pub(super) enum BodyStrip {
    #[default]
    Nothing,
    /// The whole form body, of this many bytes.
    Form(usize),
    /// These parts of the buffered multipart head.
    Multipart(Vec<std::ops::Range<usize>>),
}

/// How a verdict was applied.
#[derive(PartialEq, Eq)]
pub(super) enum Applied {
    /// The request goes on to the platform.
    Forwarded,
    /// It was answered here.
    Denied,
}

impl Request {
    /// Decides with what was found and applies the verdict.
    pub(super) fn conclude(
        &mut self,
        host: &impl RequestHost,
        config: &Config,
        finding: SessionFinding,
        strip: Strip,
    ) -> Applied {
        self.stage = Stage::Done;
        // Method resolution reads the path, not the query (which holds the token): only the
        // path is checked as text.
        let path = text(split_path(self.path()).0);
        if matches!(&finding, SessionFinding::Found(s) if pat_core::token::is_token_like(s))
            && host.replica(|replica| replica.state().is_none())
        {
            // A VM loads its snapshot lazily: on its first token request after a start or a
            // FAIL_RELOAD, and on every tick after that.
            host.refresh();
        }
        let policy = Policy {
            missing_session: config.missing_session,
            ordinary_sessions: config.ordinary_sessions,
        };
        let now = host.clock_secs(config.refresh_interval <= MAX_CLOCK_AGE);
        let clock = Clock {
            now_ms: now.saturating_mul(1000),
            max_age_ms: config.max_snapshot_age_ms,
        };
        let verdict = host.replica(|replica| {
            // The VM's snapshot is shared by every filter instance in it; each one only uses
            // a snapshot signed by a key it trusts itself and fresh by its own limit.
            let snapshot = replica.state_for(&config.keys, clock);
            decide(policy, snapshot, &path, &finding, &self.env, now, || {
                client_address(host)
            })
        });
        match verdict {
            Verdict::PassThrough => {
                host.count(Event::PassedThrough);
                Applied::Forwarded
            }
            Verdict::Allow(grant) => {
                // Only a multipart body has parts after the verdict; the masked value its
                // denial would name is made only then.
                if grant.env_limited
                    && matches!(strip.body, BodyStrip::Multipart(_))
                    && let SessionFinding::Found(value) = &finding
                {
                    self.env_limited = Some(pat_core::token::mask(value));
                }
                if let Some(limit) = grant.rate_limit
                    && let Admission::Limited { retry_after_ms } =
                        admit(host, config, grant.token_id, limit)
                {
                    let masked = match &finding {
                        SessionFinding::Found(value) => pat_core::token::mask(value),
                        _ => String::new(),
                    };
                    let denial = Denial::RateLimited {
                        masked,
                        limit,
                        retry_after_ms,
                    };
                    deny(host, config, &denial);
                    return Applied::Denied;
                }
                if config.usage.is_some() {
                    record_use(host, grant.token_id, now);
                }
                // Identity headers were stripped in `headers`: adding makes each the only
                // value.
                let identity = &config.identity;
                if let Some(combined) = &identity.combined {
                    let value = IdentityHeaders::combined_value(grant.token_id, &grant.user);
                    host.add_header(combined, value.as_bytes());
                } else {
                    let mut digits = [0; 20];
                    host.add_header(&identity.token_id, decimal(grant.token_id, &mut digits));
                    host.add_header(&identity.user, grant.user.as_bytes());
                }
                if config.strip_token {
                    self.strip(host, strip);
                }
                host.count(Event::Allowed);
                Applied::Forwarded
            }
            Verdict::Deny(denial) => {
                deny(host, config, &denial);
                Applied::Denied
            }
        }
    }

    /// Like [`Self::conclude`], as the action for the current callback.
    pub(super) fn conclude_now(
        &mut self,
        host: &impl RequestHost,
        config: &Config,
        finding: SessionFinding,
        strip: Strip,
    ) -> Action {
        match self.conclude(host, config, finding, strip) {
            Applied::Forwarded => Action::Continue,
            Applied::Denied => Action::Pause,
        }
    }

    /// Removes the token from what is forwarded.
    fn strip(&mut self, host: &impl RequestHost, strip: Strip) {
        if strip.query
            && let Some(path) = strip_from_path(self.path())
        {
            host.set_header(":path", &path);
        }
        match strip.body {
            BodyStrip::Nothing => {}
            BodyStrip::Form(len) => {
                let Some(body) = host.body(0, len) else {
                    return;
                };
                if let Some(stripped) = strip_pairs(&body) {
                    host.replace_body_prefix(body.len(), &stripped);
                    self.set_content_length(host, body.len() as u64, stripped.len() as u64);
                }
            }
            BodyStrip::Multipart(ranges) => {
                // Only the buffered head is rewritten; the rest of the upload streams after it.
                let Some(head) = host.body(0, self.buffered) else {
                    return;
                };
                let stripped = remove_ranges(&head, &ranges);
                if stripped.len() != head.len() {
                    host.replace_body_prefix(head.len(), &stripped);
                    if let Some(total) = self.content_length {
                        let removed = (head.len() - stripped.len()) as u64;
                        self.set_content_length(host, total, total.saturating_sub(removed));
                    }
                }
            }
        }
    }
}

/// Asks the token's budget for this request ([`crate::rate_limit`]). A shared-data failure
/// counts as over the limit (and is logged): a budget nobody can read is not spent freely.
fn admit(
    host: &impl RequestHost,
    config: &Config,
    token_id: u64,
    limit: pat_core::rate::RateLimit,
) -> Admission {
    let now_us = host.now_micros();
    match config.rate_budget {
        Budget::Shared => admit_shared(host.store(), token_id, limit, now_us).unwrap_or_else(|e| {
            host.log(
                Level::Warn,
                &format!("pat-edge: rate limit of token {token_id}: {e}; request refused"),
            );
            Admission::Limited {
                retry_after_ms: 1000,
            }
        }),
        Budget::PerWorker { workers } => {
            host.rate_budgets(|budgets| budgets.admit(token_id, limit, now_us, workers))
        }
    }
}

/// Notes a token's use for the next usage report: no host call, except the client address
/// the first time the token is seen in a report window.
fn record_use(host: &impl RequestHost, token_id: u64, now: u64) {
    let wants_address = host.usage(|log| log.record(token_id, now));
    if wants_address && let Some(address) = client_address(host) {
        host.usage(|log| log.set_address(token_id, address));
    }
}

/// The client's IP as Envoy's connection manager computes it (`source.address`, which
/// follows `use_remote_address` and `xff_num_trusted_hops`): one property call.
fn client_address(host: &impl RequestHost) -> Option<IpAddr> {
    host.property(&["source", "address"])
        .and_then(|a| String::from_utf8(a).ok())
        .and_then(|a| client_ip(&a))
}

/// The IP of Envoy's `source.address` (`ip:port`, or a bare IP).
fn client_ip(address: &str) -> Option<IpAddr> {
    address
        .parse::<std::net::SocketAddr>()
        .map(|s| s.ip())
        .or_else(|_| address.parse())
        .ok()
}

/// Sends a platform-shaped denial and counts it.
pub(super) fn deny(host: &impl RequestHost, config: &Config, denial: &Denial) {
    host.count(Event::Denied(denial.reason()));
    let message = denial.message();
    if host.debug_enabled() {
        host.log(
            Level::Debug,
            &format!("pat-edge: denied ({}): {message}", denial.reason().name()),
        );
    }
    let codes = &config.deny.codes;
    let code = match denial.category() {
        Category::Unauthenticated => codes.unauthenticated,
        Category::Forbidden => codes.forbidden,
        Category::InvalidRequest => codes.invalid_request,
        Category::Environment => codes.environment,
        Category::RateLimited => codes.rate_limited,
    };
    let body = error_body(code, &message, &config.deny.source);
    if let Denial::RateLimited { retry_after_ms, .. } = denial {
        let status = config
            .deny
            .rate_limited_http_status
            .unwrap_or(config.deny.http_status);
        let seconds = retry_after_ms.div_ceil(1000).max(1).to_string();
        host.send_json(status, &body, &[("retry-after", &seconds)]);
    } else {
        host.send_json(config.deny.http_status, &body, &[]);
    }
}

impl Request {
    /// Adjusts `content-length` after the body shrank from `before` to `after` bytes.
    fn set_content_length(&mut self, host: &impl RequestHost, before: u64, after: u64) {
        if before != after && self.content_length.is_some() {
            host.set_header("content-length", after.to_string().as_bytes());
            self.content_length = Some(after);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::client_ip;

    #[test]
    fn client_ip_of_envoys_source_address() {
        assert_eq!(client_ip("10.1.2.3:4567"), "10.1.2.3".parse().ok());
        assert_eq!(client_ip("[2001:db8::1]:443"), "2001:db8::1".parse().ok());
        assert_eq!(client_ip("2001:db8::1"), "2001:db8::1".parse().ok());
        assert_eq!(client_ip("10.1.2.3"), "10.1.2.3".parse().ok());
        assert_eq!(client_ip("unix:/run/envoy.sock"), None);
    }
}
