//! The HTTP context: one request through the filter.
//!
//! Headers: identity headers are removed from every request first. A control-path request
//! goes to the control endpoint. Otherwise the `session` is looked for in the query; when
//! absent and the body can carry one (form or multipart), headers are held and the body is
//! buffered — up to `max_body_bytes`, and for multipart only up to the first file part.
//! The verdict is then applied: identity headers added (and the token optionally removed),
//! or a platform-shaped JSON denial sent.

use std::rc::Rc;

use pat_core::snapshot::BODY_OFFSET;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, LogLevel};

use super::host::{
    HostShared, add_request_header, content_length, debug_enabled, log, now_millis, property,
    replace_request_body_prefix, request_body, request_clock, request_header, send_json,
    set_request_header, strip_request_header, vm_memory_bytes,
};
use super::metrics::Metrics;
use super::root::{EDGE, refresh};
use crate::config::{Config, PushConfig};
use crate::content_type::{BodyKind, classify};
use crate::control::{CONTROL_SOURCE, is_internal_address, rejection_status};
use crate::decide::{Policy, Verdict, decide};
use crate::edge::PushRejection;
use crate::multipart::{Scan, remove_ranges, scan};
use crate::reply::{Status, accepted_body, error_body, stale_body};
use crate::session::{
    SessionFinding, find_in_pairs, split_path, strip_from_path, strip_pairs, text,
};

/// Expiry may be checked against the clock of the last tick when ticks come at least this
/// often; with a longer refresh interval each token request reads the host clock.
const MAX_CLOCK_AGE: std::time::Duration = std::time::Duration::from_secs(1);

/// Where the decisive `session` was found: what to strip when configured to.
enum Location {
    Query,
    /// The whole body, of this many bytes.
    Form(usize),
    Multipart(Vec<std::ops::Range<usize>>),
    Nowhere,
}

enum Stage {
    /// Waiting for request headers.
    Headers,
    /// Headers held; buffering the body to find the session.
    Body(BodyKind),
    /// Headers held; buffering a snapshot push.
    Push,
    /// Decided (forwarded or answered).
    Done,
}

pub(crate) struct Filter {
    config: Option<Rc<Config>>,
    metrics: Option<Rc<Metrics>>,
    stage: Stage,
    path: Vec<u8>,
    /// Request body bytes buffered so far (from the last body callback).
    buffered: usize,
}

impl Filter {
    pub(crate) fn new(config: Option<Rc<Config>>, metrics: Option<Rc<Metrics>>) -> Self {
        Self {
            config,
            metrics,
            stage: Stage::Headers,
            path: Vec::new(),
            buffered: 0,
        }
    }

    /// Decides with what was found and applies the verdict. Returns the action for the
    /// current callback.
    fn conclude(
        &mut self,
        config: &Config,
        metrics: &Metrics,
        finding: SessionFinding,
        location: Location,
    ) -> Action {
        self.stage = Stage::Done;
        let path = text(&self.path);
        if matches!(&finding, SessionFinding::Found(s) if pat_core::token::is_token_like(s))
            && EDGE.with_borrow(|edge| edge.snapshot().is_none())
        {
            // A VM loads its snapshot lazily: on its first token request after a start or a
            // FAIL_RELOAD, and on every tick after that.
            refresh(config, metrics);
        }
        let policy = Policy {
            missing_session: config.missing_session,
            ordinary_sessions: config.ordinary_sessions,
        };
        let now = request_clock(config.refresh_interval <= MAX_CLOCK_AGE);
        let verdict = EDGE.with_borrow(|edge| {
            // The VM's snapshot is shared by every filter instance in it; each one only uses
            // a snapshot signed by a key it trusts itself.
            let snapshot = edge
                .snapshot()
                .filter(|s| config.keys.get(s.key_id()).is_some());
            decide(policy, snapshot, &path, &finding, now)
        });
        match verdict {
            Verdict::PassThrough => {
                metrics.passed_through();
                Action::Continue
            }
            Verdict::Allow(grant) => {
                // Both were stripped in `headers`: adding makes each the only value.
                add_request_header(
                    &config.identity.token_id,
                    grant.token_id.to_string().as_bytes(),
                );
                add_request_header(&config.identity.user, grant.user.as_bytes());
                if config.strip_token {
                    self.strip(location);
                }
                metrics.allowed();
                Action::Continue
            }
            Verdict::Deny(denial) => {
                metrics.denied(&denial);
                let message = denial.message();
                if debug_enabled() {
                    log(
                        LogLevel::Debug,
                        &format!("pat-edge: denied ({}): {message}", denial.reason()),
                    );
                }
                let code = match denial.category() {
                    crate::decide::Category::Unauthenticated => config.deny.codes.unauthenticated,
                    crate::decide::Category::Forbidden => config.deny.codes.forbidden,
                    crate::decide::Category::InvalidRequest => config.deny.codes.invalid_request,
                };
                send_json(
                    config.deny.http_status,
                    &error_body(code, &message, &config.deny.source),
                    &[],
                );
                Action::Pause
            }
        }
    }

    /// Removes the token from what is forwarded.
    fn strip(&self, location: Location) {
        match location {
            Location::Query => {
                if let Some(path) = strip_from_path(&self.path) {
                    set_request_header(":path", &path);
                }
            }
            Location::Form(len) => {
                let Some(body) = request_body(0, len) else {
                    return;
                };
                if let Some(stripped) = strip_pairs(&body) {
                    replace_request_body_prefix(body.len(), &stripped);
                    set_content_length(body.len(), stripped.len());
                }
            }
            Location::Multipart(ranges) => {
                // Only the buffered head is rewritten; the rest of the upload streams after it.
                let Some(head) = request_body(0, self.buffered) else {
                    return;
                };
                let stripped = remove_ranges(&head, &ranges);
                if stripped.len() != head.len() {
                    replace_request_body_prefix(head.len(), &stripped);
                    let total = content_length();
                    if let Some(total) = total {
                        set_content_length(
                            total,
                            total.saturating_sub(head.len() - stripped.len()),
                        );
                    }
                }
            }
            Location::Nowhere => {}
        }
    }

    fn headers(&mut self, config: &Config, metrics: &Metrics, end_of_stream: bool) -> Action {
        strip_request_header(&config.identity.token_id);
        strip_request_header(&config.identity.user);
        self.path = request_header(":path").unwrap_or_default();
        let (path, query) = split_path(&self.path);
        if let Some(push) = &config.push
            && path == push.path.as_bytes()
        {
            return self.control_headers(config, push, metrics, end_of_stream);
        }
        let finding = query.map_or(SessionFinding::Absent, find_in_pairs);
        if finding != SessionFinding::Absent {
            return self.conclude(config, metrics, finding, Location::Query);
        }
        if end_of_stream {
            return self.conclude(config, metrics, finding, Location::Nowhere);
        }
        let content_type = request_header("content-type");
        let content_type = content_type.as_deref().map(String::from_utf8_lossy);
        match classify(content_type.as_deref()) {
            Ok(BodyKind::Opaque) => self.conclude(config, metrics, finding, Location::Nowhere),
            Ok(kind) => {
                self.stage = Stage::Body(kind);
                Action::Pause
            }
            Err(why) => self.conclude(
                config,
                metrics,
                SessionFinding::Unparseable(why),
                Location::Nowhere,
            ),
        }
    }

    fn body(
        &mut self,
        config: &Config,
        metrics: &Metrics,
        size: usize,
        end_of_stream: bool,
    ) -> Action {
        let Stage::Body(kind) = &self.stage else {
            return Action::Continue;
        };
        let cap = config.max_body_bytes;
        let unreadable = SessionFinding::Unparseable("the body could not be read");
        match kind {
            BodyKind::Form => {
                if size > cap {
                    return self.conclude(
                        config,
                        metrics,
                        SessionFinding::TooLarge,
                        Location::Nowhere,
                    );
                }
                if !end_of_stream {
                    return Action::Pause;
                }
                let Some(body) = request_body(0, size) else {
                    return self.conclude(config, metrics, unreadable, Location::Nowhere);
                };
                self.conclude(config, metrics, find_in_pairs(&body), Location::Form(size))
            }
            BodyKind::Multipart { boundary } => {
                // Only the head matters (the fields before the first file part): look at no
                // more than `cap` bytes of it, however much Envoy delivered at once.
                let head_len = size.min(cap);
                let Some(head) = request_body(0, head_len) else {
                    return self.conclude(config, metrics, unreadable, Location::Nowhere);
                };
                match scan(&head, boundary, end_of_stream && size <= cap) {
                    Scan::NeedMore if size >= cap => {
                        self.conclude(config, metrics, SessionFinding::TooLarge, Location::Nowhere)
                    }
                    Scan::NeedMore => Action::Pause,
                    Scan::Done {
                        finding,
                        session_parts,
                    } => {
                        self.conclude(config, metrics, finding, Location::Multipart(session_parts))
                    }
                }
            }
            BodyKind::Opaque => Action::Continue,
        }
    }

    fn control_headers(
        &mut self,
        config: &Config,
        push: &PushConfig,
        metrics: &Metrics,
        end_of_stream: bool,
    ) -> Action {
        self.stage = Stage::Done;
        let method = request_header(":method").unwrap_or_default();
        let listener = property(&["destination", "address"]).unwrap_or_default();
        let internal = is_internal_address(&String::from_utf8_lossy(&listener));
        if !internal && !push.allow_public_listener {
            log(
                LogLevel::Warn,
                "pat-edge: control request refused: the listener is not on loopback or an internal network",
            );
            control_error(
                403,
                "the control endpoint only answers on loopback or internal-network listeners",
            );
            return Action::Pause;
        }
        match method.as_slice() {
            b"GET" | b"HEAD" => {
                refresh(config, metrics);
                let status = EDGE.with_borrow(|edge| match edge.snapshot() {
                    Some(s) => Status {
                        result: 0,
                        loaded: true,
                        version: s.version(),
                        tokens: s.token_count(),
                        issued_at: s.issued_at(),
                        key_id: Some(s.key_id().to_string()),
                    },
                    None => Status {
                        result: 0,
                        loaded: false,
                        version: 0,
                        tokens: 0,
                        issued_at: 0,
                        key_id: None,
                    },
                });
                send_json(200, &status.body(), &[]);
                Action::Pause
            }
            b"PUT" => {
                let announced = content_length();
                if announced.is_some_and(|len| len > push.max_bytes) {
                    metrics.push(false);
                    control_error(
                        413,
                        &format!(
                            "snapshot larger than push.max_bytes ({} bytes)",
                            push.max_bytes
                        ),
                    );
                    return Action::Pause;
                }
                if end_of_stream {
                    metrics.push(false);
                    control_error(400, "empty body: PUT a signed snapshot (pat-admin publish)");
                    return Action::Pause;
                }
                self.stage = Stage::Push;
                Action::Pause
            }
            _ => {
                send_json(
                    405,
                    &error_body(
                        405,
                        "use GET for the status or PUT to push a snapshot",
                        CONTROL_SOURCE,
                    ),
                    &[("allow", "GET, HEAD, PUT")],
                );
                Action::Pause
            }
        }
    }

    fn push_body(
        &mut self,
        config: &Config,
        metrics: &Metrics,
        size: usize,
        end_of_stream: bool,
    ) -> Action {
        let Some(push) = &config.push else {
            return Action::Continue;
        };
        if size > push.max_bytes {
            self.stage = Stage::Done;
            metrics.push(false);
            control_error(
                413,
                &format!(
                    "snapshot larger than push.max_bytes ({} bytes)",
                    push.max_bytes
                ),
            );
            return Action::Pause;
        }
        if !end_of_stream {
            return Action::Pause;
        }
        self.stage = Stage::Done;
        let started = now_millis();
        let head = request_body(0, size.min(BODY_OFFSET)).unwrap_or_default();
        let outcome = EDGE.with_borrow_mut(|edge| {
            edge.accept_push(&HostShared, &config.keys, &head, size as u64, || {
                request_body(0, size)
            })
        });
        match outcome {
            Ok(accepted) => {
                let ms = now_millis().saturating_sub(started);
                metrics.push(true);
                metrics.snapshot(accepted.version, accepted.tokens, Some(ms));
                log(
                    LogLevel::Info,
                    &format!(
                        "pat-edge: push accepted: snapshot version {} ({} tokens), applied in {ms} ms, VM memory {} bytes",
                        accepted.version,
                        accepted.tokens,
                        vm_memory_bytes()
                    ),
                );
                send_json(
                    200,
                    &accepted_body(accepted.version, accepted.tokens, accepted.issued_at),
                    &[],
                );
            }
            Err(rejection) => {
                metrics.push(false);
                log(
                    LogLevel::Warn,
                    &format!("pat-edge: push rejected: {rejection}"),
                );
                match rejection {
                    PushRejection::Stale { current, .. } => {
                        send_json(
                            409,
                            &stale_body(&rejection.to_string(), CONTROL_SOURCE, current),
                            &[],
                        );
                    }
                    _ => control_error(rejection_status(&rejection), &rejection.to_string()),
                }
            }
        }
        Action::Pause
    }
}

fn control_error(status: u32, message: &str) {
    send_json(
        status,
        &error_body(i64::from(status), message, CONTROL_SOURCE),
        &[],
    );
}

/// Adjusts `content-length` after the body shrank from `before` to `after` bytes.
fn set_content_length(before: usize, after: usize) {
    if before != after && content_length().is_some() {
        set_request_header("content-length", after.to_string().as_bytes());
    }
}

impl Context for Filter {}

impl HttpContext for Filter {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let (Some(config), Some(metrics)) = (self.config.clone(), self.metrics.clone()) else {
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
            return Action::Pause;
        };
        self.headers(&config, &metrics, end_of_stream)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let (Some(config), Some(metrics)) = (self.config.clone(), self.metrics.clone()) else {
            return Action::Pause;
        };
        self.buffered = body_size;
        match self.stage {
            Stage::Body(_) => self.body(&config, &metrics, body_size, end_of_stream),
            Stage::Push => self.push_body(&config, &metrics, body_size, end_of_stream),
            Stage::Headers | Stage::Done => Action::Continue,
        }
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        // Trailers end the body: decide with what was buffered.
        let (Some(config), Some(metrics)) = (self.config.clone(), self.metrics.clone()) else {
            return Action::Pause;
        };
        let size = self.buffered;
        match self.stage {
            Stage::Body(_) => self.body(&config, &metrics, size, true),
            Stage::Push => self.push_body(&config, &metrics, size, true),
            Stage::Headers | Stage::Done => Action::Continue,
        }
    }
}
