//! The HTTP context: one request through the filter.
//!
//! Headers: identity headers are removed from every request first. A control-path request
//! goes to the control endpoint. Otherwise the `session` is looked for in the query, and
//! token-format values anywhere else in the path or query refuse the request. When the body
//! can carry fields (form or multipart), the headers are held and the body is read too,
//! whether or not the query had a session: a form body whole (up to `max_body_bytes`), a
//! multipart body up to its first file part. The verdict is then applied: identity headers
//! added (and the token optionally removed), or a platform-shaped JSON denial sent. The rest
//! of a multipart body is still read as it streams to the platform; a token in a later part
//! ends the request with a denial before that part is forwarded.
//!
//! A push on the control path is checked on its signed head as soon as the head arrives,
//! and takes the edge's push lease, before the rest of its body is buffered.

use std::rc::Rc;

use pat_core::snapshot::announced_len;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, LogLevel};

use super::host::{
    HostShared, add_request_header, content_length, debug_enabled, drain_request_body, log,
    millis_since, now_micros, now_millis, property, replace_request_body_prefix, request_body,
    request_clock, request_header, send_json, set_request_header, strip_request_header,
    vm_memory_bytes,
};
use super::metrics::Metrics;
use super::vm::{self, EDGE, refresh};
use crate::config::{Config, PushConfig};
use crate::content_type::{BodyKind, classify};
use crate::control::{CONTROL_SOURCE, is_internal_address, rejection_status};
use crate::decide::{Category, Denial, Policy, Verdict, decide};
use crate::edge::{Clock, PUSH_HEAD_LEN, PushRejection};
use crate::floor::{self, Floor};
use crate::multipart::{Outcome, Scanner, remove_ranges};
use crate::push_lease::{self, Holder, LEASE_MS, Lease};
use crate::reply::{Status, accepted_body, error_body, stale_body};
use crate::session::{
    SessionFinding, find_in_pairs, path_carries_token, split_path, strip_from_path, strip_pairs,
    text,
};
use crate::shared;

/// Expiry may be checked against the clock of the last tick when ticks come at least this
/// often; with a longer refresh interval each token request reads the host clock.
const MAX_CLOCK_AGE: std::time::Duration = std::time::Duration::from_secs(1);

/// What to remove when the token is stripped: the query's `session`, and the body's.
#[derive(Debug, Default)]
struct Strip {
    query: bool,
    body: BodyStrip,
}

#[derive(Debug, Default)]
enum BodyStrip {
    #[default]
    Nothing,
    /// The whole form body, of this many bytes.
    Form(usize),
    /// These parts of the buffered multipart head.
    Multipart(Vec<std::ops::Range<usize>>),
}

enum Stage {
    /// Waiting for request headers.
    Headers,
    /// Headers held; buffering a form body to its end.
    Form { query: SessionFinding },
    /// Headers held; reading a multipart body up to its first file part.
    MultipartHead {
        query: SessionFinding,
        scanner: Box<Scanner>,
    },
    /// Headers released; reading the rest of a multipart body as it streams past.
    MultipartTail { scanner: Box<Scanner> },
    /// Headers held; buffering a snapshot push.
    Push(PushState),
    /// Decided (forwarded or answered).
    Done,
}

/// A push in progress: its body so far, its announced length once its signed head checked
/// out, and the lease it holds.
#[derive(Default)]
struct PushState {
    /// The body so far, moved out of Envoy's buffer as it arrives: the control listener's
    /// buffer limit stays small (1 MiB), so Envoy never reads far ahead of the head check.
    received: Vec<u8>,
    /// The signed head was checked (and the lease taken).
    checked: bool,
    /// A single document's announced length (a bundle announces none).
    announced: Option<u64>,
    lease: Option<Holder>,
    renewed_at_ms: u64,
}

/// What a configured root context gives each of its requests: its configuration and its
/// metric ids.
pub(crate) struct Setup {
    pub(crate) config: Config,
    pub(crate) metrics: Metrics,
}

pub(crate) struct Filter {
    context_id: u32,
    /// `None` when the root's configuration was refused.
    setup: Option<Rc<Setup>>,
    stage: Stage,
    path: Vec<u8>,
    /// Request body bytes buffered so far (from the last body callback).
    buffered: usize,
}

/// How a verdict was applied.
#[derive(PartialEq, Eq)]
enum Applied {
    /// The request goes on to the platform.
    Forwarded,
    /// It was answered here.
    Denied,
}

impl Filter {
    pub(crate) fn new(context_id: u32, setup: Option<Rc<Setup>>) -> Self {
        Self {
            context_id,
            setup,
            stage: Stage::Headers,
            path: Vec::new(),
            buffered: 0,
        }
    }

    /// Decides with what was found and applies the verdict.
    fn conclude(
        &mut self,
        config: &Config,
        metrics: &Metrics,
        finding: SessionFinding,
        strip: Strip,
    ) -> Applied {
        self.stage = Stage::Done;
        let path = text(&self.path);
        if matches!(&finding, SessionFinding::Found(s) if pat_core::token::is_token_like(s))
            && EDGE.with_borrow(|edge| edge.state().is_none())
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
        let clock = Clock {
            now_ms: now.saturating_mul(1000),
            max_age_ms: config.max_snapshot_age_ms,
        };
        let verdict = EDGE.with_borrow(|edge| {
            // The VM's snapshot is shared by every filter instance in it; each one only uses
            // a snapshot signed by a key it trusts itself and fresh by its own limit.
            let snapshot = edge.state_for(&config.keys, clock);
            decide(policy, snapshot, &path, &finding, now, client_address)
        });
        match verdict {
            Verdict::PassThrough => {
                metrics.passed_through();
                Applied::Forwarded
            }
            Verdict::Allow(grant) => {
                if config.usage.is_some() {
                    record_use(grant.token_id, now);
                }
                // Both were stripped in `headers`: adding makes each the only value.
                add_request_header(
                    &config.identity.token_id,
                    grant.token_id.to_string().as_bytes(),
                );
                add_request_header(&config.identity.user, grant.user.as_bytes());
                if config.strip_token {
                    self.strip(strip);
                }
                metrics.allowed();
                Applied::Forwarded
            }
            Verdict::Deny(denial) => {
                deny(config, metrics, &denial);
                Applied::Denied
            }
        }
    }

    /// Like [`Self::conclude`], as the action for the current callback.
    fn conclude_now(
        &mut self,
        config: &Config,
        metrics: &Metrics,
        finding: SessionFinding,
        strip: Strip,
    ) -> Action {
        match self.conclude(config, metrics, finding, strip) {
            Applied::Forwarded => Action::Continue,
            Applied::Denied => Action::Pause,
        }
    }

    /// Removes the token from what is forwarded.
    fn strip(&self, strip: Strip) {
        if strip.query
            && let Some(path) = strip_from_path(&self.path)
        {
            set_request_header(":path", &path);
        }
        match strip.body {
            BodyStrip::Nothing => {}
            BodyStrip::Form(len) => {
                let Some(body) = request_body(0, len) else {
                    return;
                };
                if let Some(stripped) = strip_pairs(&body) {
                    replace_request_body_prefix(body.len(), &stripped);
                    set_content_length(body.len(), stripped.len());
                }
            }
            BodyStrip::Multipart(ranges) => {
                // Only the buffered head is rewritten; the rest of the upload streams after it.
                let Some(head) = request_body(0, self.buffered) else {
                    return;
                };
                let stripped = remove_ranges(&head, &ranges);
                if stripped.len() != head.len() {
                    replace_request_body_prefix(head.len(), &stripped);
                    if let Some(total) = content_length() {
                        set_content_length(
                            total,
                            total.saturating_sub(head.len() - stripped.len()),
                        );
                    }
                }
            }
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
            return self.control_headers(push, metrics, end_of_stream);
        }
        let mut finding = query.map_or(SessionFinding::Absent, find_in_pairs);
        if !finding.is_refusal() && path_carries_token(path) {
            finding = SessionFinding::StrayToken;
        }
        let strip = Strip {
            query: matches!(finding, SessionFinding::Found(_)),
            body: BodyStrip::Nothing,
        };
        if finding.is_refusal() || end_of_stream {
            return self.conclude_now(config, metrics, finding, strip);
        }
        let content_type = request_header("content-type");
        let content_type = content_type.as_deref().map(String::from_utf8_lossy);
        match classify(content_type.as_deref()) {
            // Opaque bodies (JSON, text, none) are not parsed: the query decides.
            Ok(BodyKind::Opaque) => self.conclude_now(config, metrics, finding, strip),
            Ok(BodyKind::Form) => {
                self.stage = Stage::Form { query: finding };
                Action::Pause
            }
            Ok(BodyKind::Multipart { boundary }) => {
                self.stage = Stage::MultipartHead {
                    query: finding,
                    scanner: Box::new(Scanner::new(&boundary)),
                };
                Action::Pause
            }
            Err(why) => self.conclude_now(
                config,
                metrics,
                SessionFinding::Unparseable(why),
                Strip::default(),
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
        let stage = std::mem::replace(&mut self.stage, Stage::Done);
        let cap = config.max_body_bytes;
        let unreadable = SessionFinding::Unparseable("the body could not be read");
        match stage {
            Stage::Form { query } => {
                if size > cap {
                    return self.conclude_now(
                        config,
                        metrics,
                        SessionFinding::TooLarge,
                        Strip::default(),
                    );
                }
                if !end_of_stream {
                    self.stage = Stage::Form { query };
                    return Action::Pause;
                }
                let Some(body) = request_body(0, size) else {
                    return self.conclude_now(config, metrics, unreadable, Strip::default());
                };
                let in_body = find_in_pairs(&body);
                let strip = Strip {
                    query: matches!(query, SessionFinding::Found(_)),
                    body: if matches!(in_body, SessionFinding::Found(_)) {
                        BodyStrip::Form(size)
                    } else {
                        BodyStrip::Nothing
                    },
                };
                self.conclude_now(config, metrics, query.merge(in_body), strip)
            }
            Stage::MultipartHead { query, mut scanner } => {
                // Read only what arrived since the last callback, and no more of the head
                // than `cap`.
                let seen = scanner.seen();
                let head_end = size.min(cap);
                let Some(new) = request_body(seen, head_end.saturating_sub(seen)) else {
                    return self.conclude_now(config, metrics, unreadable, Strip::default());
                };
                let complete = end_of_stream && size <= cap;
                match scanner.feed(&new, complete) {
                    Outcome::Pending if size >= cap => self.conclude_now(
                        config,
                        metrics,
                        SessionFinding::TooLarge,
                        Strip::default(),
                    ),
                    Outcome::Pending => {
                        self.stage = Stage::MultipartHead { query, scanner };
                        Action::Pause
                    }
                    Outcome::Decided {
                        finding,
                        session_parts,
                    } => {
                        // Whatever was buffered beyond the head is the start of the tail.
                        let mut finding = query.clone().merge(finding);
                        if size > head_end && !finding.is_refusal() {
                            let rest = request_body(head_end, size - head_end);
                            match rest.map(|rest| scanner.feed(&rest, end_of_stream)) {
                                Some(Outcome::Late(late)) => finding = late,
                                Some(_) => {}
                                None => finding = unreadable,
                            }
                        }
                        let strip = Strip {
                            query: matches!(query, SessionFinding::Found(_)),
                            body: BodyStrip::Multipart(session_parts),
                        };
                        let applied = self.conclude(config, metrics, finding, strip);
                        if applied == Applied::Denied {
                            return Action::Pause;
                        }
                        if !end_of_stream {
                            self.stage = Stage::MultipartTail { scanner };
                        }
                        Action::Continue
                    }
                    Outcome::Streaming | Outcome::Late(_) => Action::Continue,
                }
            }
            Stage::MultipartTail { mut scanner } => {
                // Headers are released: each callback holds only the newly arrived bytes.
                let Some(chunk) = request_body(0, size) else {
                    deny(
                        config,
                        metrics,
                        &Denial::UnparseableBody("the body could not be read"),
                    );
                    return Action::Pause;
                };
                match scanner.feed(&chunk, end_of_stream) {
                    Outcome::Late(finding) => {
                        let denial = match finding {
                            SessionFinding::Conflicting => Denial::ConflictingSessions,
                            SessionFinding::Unparseable(why) => Denial::UnparseableBody(why),
                            _ => Denial::StrayToken,
                        };
                        log(
                            LogLevel::Info,
                            &format!(
                                "pat-edge: request ended after its head was forwarded ({}): a later multipart part {}",
                                denial.reason().name(),
                                denial.message()
                            ),
                        );
                        deny(config, metrics, &denial);
                        Action::Pause
                    }
                    _ => {
                        if !end_of_stream {
                            self.stage = Stage::MultipartTail { scanner };
                        }
                        Action::Continue
                    }
                }
            }
            Stage::Push(state) => {
                self.stage = Stage::Push(state);
                self.push_body(config, metrics, size, end_of_stream)
            }
            Stage::Headers | Stage::Done => Action::Continue,
        }
    }

    fn control_headers(
        &mut self,
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
                // What this Envoy serves from: the published snapshot (this VM may hold none).
                let floor = floor::read(&HostShared).ok();
                let pointer = shared::read_pointer(&HostShared).map(|(p, _)| p).ok();
                let status = match pointer.filter(|p| p.version != 0) {
                    Some(p) => Status {
                        result: 0,
                        loaded: true,
                        version: p.version,
                        tokens: p.tokens,
                        issued_at: p.issued_at,
                        expires_at: p.expires_at,
                        key_id: Some(pat_core::keys::KeyId(p.key_id).to_string()),
                        floor: None,
                    },
                    None => Status {
                        result: 0,
                        loaded: false,
                        version: 0,
                        tokens: 0,
                        issued_at: 0,
                        expires_at: 0,
                        key_id: None,
                        floor: None,
                    },
                };
                let status = Status {
                    floor: match floor {
                        Some(Floor::Known(v)) => Some(serde_json::json!(v)),
                        Some(Floor::Pending) => Some(serde_json::json!("pending")),
                        Some(Floor::Unset) | None => None,
                    },
                    ..status
                };
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
                self.stage = Stage::Push(PushState::default());
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

    /// Refuses a push now, releasing its lease.
    fn refuse_push(&mut self, metrics: &Metrics, rejection: &PushRejection) -> Action {
        self.release_lease();
        self.stage = Stage::Done;
        metrics.push(false);
        log(
            LogLevel::Warn,
            &format!("pat-edge: push rejected: {rejection}"),
        );
        match rejection {
            PushRejection::NotNewer { current, .. }
            | PushRejection::DoesNotApply { current, .. } => send_json(
                409,
                &stale_body(&rejection.to_string(), CONTROL_SOURCE, *current),
                &[],
            ),
            PushRejection::WaitingForOrigin | PushRejection::Busy => send_json(
                503,
                &error_body(503, &rejection.to_string(), CONTROL_SOURCE),
                &[("retry-after", "1")],
            ),
            _ => control_error(rejection_status(rejection), &rejection.to_string()),
        }
        Action::Pause
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
        let (now, timer) = (now_millis(), now_micros());
        let clock = Clock {
            now_ms: now,
            max_age_ms: config.max_snapshot_age_ms,
        };
        match self.take_push_bytes(config, push, size, end_of_stream, clock) {
            Ok(true) => {}
            Ok(false) => return Action::Pause,
            Err(rejection) => return self.refuse_push(metrics, &rejection),
        }
        let Stage::Push(state) = &mut self.stage else {
            return Action::Pause;
        };
        let bytes = std::mem::take(&mut state.received);
        let outcome = EDGE.with_borrow_mut(|edge| {
            edge.accept(&HostShared, &config.keys, bytes, clock, vm::is_active())
        });
        match outcome {
            Ok(accepted) => {
                self.release_lease();
                self.stage = Stage::Done;
                let ms = millis_since(timer);
                metrics.push(true);
                metrics.snapshot(accepted.version, accepted.tokens, Some(ms as u64));
                log(
                    LogLevel::Info,
                    &format!(
                        "pat-edge: push accepted: {} version {} ({} tokens, expires at {}), verified and published in {ms:.2} ms, VM memory {} bytes",
                        kind_word(accepted.kind),
                        accepted.version,
                        accepted.tokens,
                        accepted.expires_at,
                        vm_memory_bytes()
                    ),
                );
                send_json(
                    200,
                    &accepted_body(accepted.version, accepted.tokens, accepted.issued_at),
                    &[],
                );
                Action::Pause
            }
            Err(rejection) => self.refuse_push(metrics, &rejection),
        }
    }

    /// Moves the newly arrived push bytes into the VM, checks the signed head as soon as it
    /// is complete (and takes the push lease), and enforces the lengths. `Ok(true)`: the whole
    /// body is here.
    fn take_push_bytes(
        &mut self,
        config: &Config,
        push: &PushConfig,
        size: usize,
        end_of_stream: bool,
        clock: Clock,
    ) -> Result<bool, PushRejection> {
        let Stage::Push(state) = &mut self.stage else {
            return Ok(false);
        };
        let chunk = request_body(0, size).ok_or(PushRejection::Unreadable)?;
        drain_request_body(size);
        let max = push.max_bytes as u64;
        let total = (state.received.len() + chunk.len()) as u64;
        if total > max {
            return Err(PushRejection::TooLarge { bytes: total, max });
        }
        state.received.extend_from_slice(&chunk);
        if !state.checked && (total >= PUSH_HEAD_LEN as u64 || end_of_stream) {
            // The signed head decides before the rest arrives: garbage, forged, expired and
            // replayed pushes are answered at once.
            let head = state
                .received
                .get(..PUSH_HEAD_LEN)
                .unwrap_or(&state.received);
            let is_bundle = pat_core::snapshot::bundle::is_bundle(head);
            let header = EDGE.with_borrow(|edge| {
                edge.precheck_push(
                    &HostShared,
                    &config.keys,
                    head,
                    content_length().map(|n| n as u64),
                    clock,
                )
            })?;
            // A single document announces its length in its signed header.
            let announced = (!is_bundle).then(|| announced_len(&header));
            if let Some(announced) = announced
                && announced > max
            {
                return Err(PushRejection::TooLarge {
                    bytes: announced,
                    max,
                });
            }
            let holder = Holder((vm::number() << 32) | u64::from(self.context_id));
            match push_lease::acquire(&HostShared, holder, clock.now_ms)? {
                Lease::Held => {}
                Lease::Busy { .. } => return Err(PushRejection::Busy),
            }
            state.lease = Some(holder);
            state.renewed_at_ms = clock.now_ms;
            state.checked = true;
            state.announced = announced;
            // One allocation for the whole snapshot (a growing vector would double it).
            let expected = announced.or_else(|| content_length().map(|n| n as u64));
            if let Some(expected) = expected {
                let missing = usize::try_from(expected.min(max).saturating_sub(total)).unwrap_or(0);
                state.received.reserve_exact(missing);
            }
        }
        if let Some(announced) = state.announced
            && total > announced
        {
            return Err(PushRejection::Invalid(
                pat_core::snapshot::SnapshotError::Length {
                    expected: announced,
                    actual: total,
                },
            ));
        }
        if let Some(holder) = state.lease
            && clock.now_ms.saturating_sub(state.renewed_at_ms) >= LEASE_MS / 2
        {
            push_lease::acquire(&HostShared, holder, clock.now_ms)?;
            state.renewed_at_ms = clock.now_ms;
        }
        Ok(end_of_stream)
    }

    /// Gives the push lease back, if this request holds it.
    fn release_lease(&mut self) {
        if let Stage::Push(state) = &mut self.stage
            && let Some(holder) = state.lease.take()
            && let Err(e) = push_lease::release(&HostShared, holder)
        {
            log(
                LogLevel::Warn,
                &format!("pat-edge: releasing the push lease: {e}"),
            );
        }
    }
}

/// Notes a token's use for the next usage report: no host call, except the client address
/// the first time the token is seen in a report window.
fn record_use(token_id: u64, now: u64) {
    let wants_address = vm::USAGE.with_borrow_mut(|log| log.record(token_id, now));
    if wants_address && let Some(address) = client_address() {
        vm::USAGE.with_borrow_mut(|log| log.set_address(token_id, address));
    }
}

/// The client's IP as Envoy's connection manager computes it (`source.address`, which
/// follows `use_remote_address` and `xff_num_trusted_hops`): one property call.
fn client_address() -> Option<std::net::IpAddr> {
    property(&["source", "address"])
        .and_then(|a| String::from_utf8(a).ok())
        .and_then(|a| client_ip(&a))
}

/// The IP of Envoy's `source.address` (`ip:port`, or a bare IP).
fn client_ip(address: &str) -> Option<std::net::IpAddr> {
    address
        .parse::<std::net::SocketAddr>()
        .map(|s| s.ip())
        .or_else(|_| address.parse())
        .ok()
}

/// How a document kind reads in logs.
pub(crate) fn kind_word(kind: pat_core::snapshot::Kind) -> &'static str {
    match kind {
        pat_core::snapshot::Kind::Full => "full snapshot",
        pat_core::snapshot::Kind::Delta => "delta",
    }
}

/// Sends a platform-shaped denial and counts it.
fn deny(config: &Config, metrics: &Metrics, denial: &Denial) {
    metrics.denied(denial);
    let message = denial.message();
    if debug_enabled() {
        log(
            LogLevel::Debug,
            &format!("pat-edge: denied ({}): {message}", denial.reason().name()),
        );
    }
    let code = match denial.category() {
        Category::Unauthenticated => config.deny.codes.unauthenticated,
        Category::Forbidden => config.deny.codes.forbidden,
        Category::InvalidRequest => config.deny.codes.invalid_request,
    };
    send_json(
        config.deny.http_status,
        &error_body(code, &message, &config.deny.source),
        &[],
    );
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

impl Context for Filter {
    fn on_done(&mut self) -> bool {
        // A push whose client went away gives its lease back.
        self.release_lease();
        true
    }
}

impl HttpContext for Filter {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let Some(setup) = self.setup.clone() else {
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
        self.headers(&setup.config, &setup.metrics, end_of_stream)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(setup) = self.setup.clone() else {
            return Action::Pause;
        };
        self.buffered = body_size;
        self.body(&setup.config, &setup.metrics, body_size, end_of_stream)
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        // Trailers end the body: decide with what was buffered.
        let Some(setup) = self.setup.clone() else {
            return Action::Pause;
        };
        let size = match self.stage {
            // Their bytes were all taken from the buffer in body callbacks already.
            Stage::MultipartTail { .. } | Stage::Push(_) => 0,
            _ => self.buffered,
        };
        self.body(&setup.config, &setup.metrics, size, true)
    }
}
