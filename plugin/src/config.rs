//! The filter's configuration: the JSON in Envoy's `configuration` field, plus trusted
//! public keys from the VM's environment (`PAT_PUBLIC_KEYS`, comma-separated).
//!
//! Unknown fields are errors (a typo must not silently fall back to a default), and every
//! error names the field and says what is expected.

use std::time::Duration;

use pat_core::keys::{KeyError, PublicKey, TrustedKeys};
use pat_core::protocol;
use serde::Deserialize;

use crate::rate_limit::Budget;
use crate::usage::UsageConfig;

/// Default name of the environment variable holding trusted public keys.
pub const DEFAULT_KEYS_ENV: &str = "PAT_PUBLIC_KEYS";
/// Default `max_snapshot_age_ms`: a day, pat-admin's default snapshot lifetime.
pub const DEFAULT_MAX_SNAPSHOT_AGE_MS: u64 = 86_400_000;
/// Default name of the environment variable holding this edge's report-signing key.
pub const DEFAULT_EDGE_KEY_ENV: &str = "PAT_EDGE_KEY";
/// Default control path for snapshot pushes and status.
pub const DEFAULT_CONTROL_PATH: &str = protocol::control::PATH;
/// The documented identity header names: the two headers' defaults (`token_id`, `user`) and
/// the combined header's (`combined`). Removed from every request whatever is configured.
pub const DOCUMENTED_IDENTITY_HEADERS: [&str; 3] =
    ["x-pat-token-id", "x-pat-user", "x-pat-identity"];

/// What to do with requests that carry no token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unmatched {
    /// Forward untouched (the platform authenticates them itself).
    Pass,
    /// Deny at the edge.
    Deny,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Keys whose snapshots are accepted.
    pub keys: TrustedKeys,
    /// Requests whose `session` is not in token format (ordinary login sessions).
    pub ordinary_sessions: Unmatched,
    /// Requests without any `session`.
    pub missing_session: Unmatched,
    /// Remove the token from the forwarded request (query, form or multipart field).
    pub strip_token: bool,
    /// Headers that carry the identity to the platform.
    pub identity: IdentityHeaders,
    /// Header names removed from every request ([`IdentityHeaders::removed`]).
    pub removed_headers: Vec<String>,
    /// How denials look.
    pub deny: DenyStyle,
    /// Largest request body inspected for a `session` field.
    pub max_body_bytes: usize,
    /// How often each VM checks for a newer snapshot.
    pub refresh_interval: Duration,
    /// Snapshots issued longer ago than this are refused and not served from.
    pub max_snapshot_age_ms: u64,
    /// Snapshot push endpoint (control listener only).
    pub push: Option<PushConfig>,
    /// Where a (re)started edge fetches the current snapshot.
    pub origin: Option<OriginConfig>,
    /// Where usage reports go, and the edge's key that signs them (absent: no reports).
    pub usage: Option<Usage>,
    /// Where per-token rate-limit budgets live.
    pub rate_budget: Budget,
}

/// The `rate_limits` section: where each token's budget lives
/// ([`crate::rate_limit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RawBudget {
    /// One budget per token for the whole edge, in shared data.
    Shared,
    /// `limit / workers` in each worker.
    PerWorker,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawRateLimits {
    budget: RawBudget,
    /// With `per_worker`: Envoy's worker count (`--concurrency`).
    workers: u32,
}

impl Default for RawRateLimits {
    fn default() -> Self {
        Self {
            budget: RawBudget::Shared,
            workers: 0,
        }
    }
}

/// `rate_limits`: a per-worker split needs the worker count.
fn parse_rate_limits(raw: &RawRateLimits) -> Result<Budget, ConfigError> {
    match (raw.budget, raw.workers) {
        (RawBudget::Shared, 0) => Ok(Budget::Shared),
        (RawBudget::Shared, _) => Err(ConfigError::Range {
            field: "rate_limits.workers",
            message: "only with budget \"per_worker\"",
        }),
        (RawBudget::PerWorker, workers @ 1..=1024) => Ok(Budget::PerWorker { workers }),
        (RawBudget::PerWorker, _) => Err(ConfigError::Range {
            field: "rate_limits.workers",
            message: "with budget \"per_worker\", give Envoy's worker count (--concurrency), 1 to 1024",
        }),
    }
}

/// Usage reporting: where to, and the key that signs the reports.
#[derive(Debug, Clone)]
pub struct Usage {
    /// Where to.
    pub config: UsageConfig,
    /// This edge's signing key (from the environment).
    pub key: std::sync::Arc<pat_core::keys::SigningKey>,
}

/// Identity headers added on allowed requests. Removed from every incoming request, with the
/// documented names of both forms whatever is configured ([`IdentityHeaders::removed`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityHeaders {
    /// Carries the public token id.
    pub token_id: String,
    /// Carries the account name.
    pub user: String,
    /// When set, allowed requests carry the identity in this one header instead of the two,
    /// as an RFC 8941 dictionary (`id=5, user="alice@example.com"`; account names never need
    /// escaping, and token ids are the store's sequential ids, far below the format's
    /// 15-digit integers): one header write per request instead of two. The two headers are still
    /// removed from every request, so an upstream that trusted them before cannot be fooled
    /// after the switch; and a client's `x-pat-identity` is removed while this is unset.
    pub combined: Option<String>,
}

impl Default for IdentityHeaders {
    fn default() -> Self {
        Self {
            token_id: DOCUMENTED_IDENTITY_HEADERS[0].into(),
            user: DOCUMENTED_IDENTITY_HEADERS[1].into(),
            combined: None,
        }
    }
}

impl IdentityHeaders {
    /// Every header name the filter can set, removed from every request (so that what the
    /// platform receives under them is the edge's or nothing), each once, at most six: the
    /// configured `token_id`, `user` and `combined` (when set), and the documented names of
    /// both forms ([`DOCUMENTED_IDENTITY_HEADERS`]) whatever is configured: an upstream set
    /// up for the documented names, or for the other form, would trust them.
    pub fn removed(&self) -> Vec<String> {
        let configured = [
            Some(self.token_id.as_str()),
            Some(self.user.as_str()),
            self.combined.as_deref(),
        ];
        let mut names: Vec<String> = Vec::with_capacity(6);
        for name in configured
            .into_iter()
            .flatten()
            .chain(DOCUMENTED_IDENTITY_HEADERS)
        {
            if !names.iter().any(|known| known.eq_ignore_ascii_case(name)) {
                names.push(name.to_ascii_lowercase());
            }
        }
        names
    }

    /// The combined header's value for a token id and account name.
    pub fn combined_value(token_id: u64, user: &str) -> String {
        format!("id={token_id}, user=\"{user}\"")
    }
}

/// The platform's error shape: `{"result": code, "error": message, "source": source}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DenyStyle {
    /// HTTP status of a denial (the platform answers errors with 200).
    pub http_status: u32,
    /// The `source` field.
    pub source: String,
    /// The `result` code per kind of denial.
    pub codes: DenyCodes,
    /// HTTP status of a rate-limit denial; unset: `http_status`. The platform's own clients
    /// (py-jelastic, jelastic-client) read no `result` from a non-200 answer and do not retry
    /// on 429, so 429 is for operators whose clients handle it. `Retry-After` is sent either
    /// way.
    pub rate_limited_http_status: Option<u32>,
}

impl Default for DenyStyle {
    fn default() -> Self {
        Self {
            http_status: 200,
            source: "JEL".into(),
            codes: DenyCodes::default(),
            rate_limited_http_status: None,
        }
    }
}

/// `result` codes of denials, by category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DenyCodes {
    /// No valid credential: malformed, unknown or expired token, no snapshot yet, and
    /// (when configured to deny them) missing or ordinary sessions.
    pub unauthenticated: i64,
    /// A valid token calling a method outside its scope, or a method no token may call.
    pub forbidden: i64,
    /// A request the edge cannot authorize unambiguously: conflicting `session` values,
    /// ambiguous path, unparseable or oversized body.
    pub invalid_request: i64,
    /// A token limited to some environments, on a request that does not name exactly one of
    /// them, or on a method that does not act on one environment.
    pub environment: i64,
    /// A token over its rate limit.
    pub rate_limited: i64,
}

impl Default for DenyCodes {
    fn default() -> Self {
        Self {
            unauthenticated: 701,
            forbidden: 702,
            invalid_request: 703,
            environment: 704,
            rate_limited: 705,
        }
    }
}

/// The snapshot push endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushConfig {
    /// Path of the endpoint (`PUT` a snapshot, `GET` the status).
    pub path: String,
    /// Largest snapshot accepted.
    pub max_bytes: usize,
    /// Accept pushes on a listener whose address is not loopback or private. Off by
    /// default: the control endpoint belongs on an internal listener.
    pub allow_public_listener: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawConfig {
    public_keys: Vec<String>,
    public_keys_env: String,
    ordinary_sessions: Unmatched,
    missing_session: Unmatched,
    strip_token: bool,
    identity_headers: IdentityHeaders,
    deny: DenyStyle,
    max_body_bytes: u64,
    refresh_interval_ms: u64,
    max_snapshot_age_ms: u64,
    push: Option<RawPush>,
    origin: Option<RawOrigin>,
    usage: Option<RawUsage>,
    rate_limits: RawRateLimits,
}

impl Default for RawConfig {
    fn default() -> Self {
        Self {
            public_keys: Vec::new(),
            public_keys_env: DEFAULT_KEYS_ENV.into(),
            ordinary_sessions: Unmatched::Pass,
            missing_session: Unmatched::Pass,
            strip_token: false,
            identity_headers: IdentityHeaders::default(),
            deny: DenyStyle::default(),
            max_body_bytes: 1024 * 1024,
            refresh_interval_ms: 20,
            max_snapshot_age_ms: DEFAULT_MAX_SNAPSHOT_AGE_MS,
            push: None,
            origin: None,
            usage: None,
            rate_limits: RawRateLimits::default(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawUsage {
    cluster: String,
    path: String,
    authority: String,
    interval_ms: u64,
    timeout_ms: u64,
    key_env: String,
}

impl Default for RawUsage {
    fn default() -> Self {
        Self {
            cluster: "pat_origin".into(),
            path: protocol::origin::USAGE_PATH.into(),
            authority: "pat-origin".into(),
            interval_ms: 10_000,
            timeout_ms: 5_000,
            key_env: DEFAULT_EDGE_KEY_ENV.into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawPush {
    enabled: bool,
    path: String,
    max_bytes: u64,
    allow_public_listener: bool,
}

impl Default for RawPush {
    fn default() -> Self {
        Self {
            enabled: true,
            path: DEFAULT_CONTROL_PATH.into(),
            max_bytes: 256 * 1024 * 1024,
            allow_public_listener: false,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawOrigin {
    cluster: String,
    path: String,
    head_path: String,
    authority: String,
    interval_ms: u64,
    retry_ms: u64,
    timeout_ms: u64,
}

impl Default for RawOrigin {
    fn default() -> Self {
        Self {
            cluster: "pat_origin".into(),
            path: protocol::origin::SNAPSHOT_PATH.into(),
            head_path: protocol::origin::HEAD_PATH.into(),
            authority: "pat-origin".into(),
            interval_ms: 10_000,
            retry_ms: 2_000,
            timeout_ms: 10_000,
        }
    }
}

/// The `origin` configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginConfig {
    /// Envoy cluster of the origin.
    pub cluster: String,
    /// Path of the snapshot on the origin.
    pub path: String,
    /// Path of the signed head on the origin.
    pub head_path: String,
    /// `:authority` of the request.
    pub authority: String,
    /// Time between rounds after a success (or a 304).
    pub interval: Duration,
    /// Time before retrying after a failure.
    pub retry: Duration,
    /// Timeout of one fetch.
    pub timeout: Duration,
}

/// Why the configuration was refused (`on_configure` returns false and logs this).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Not JSON, a wrong type, or an unknown field.
    #[error("configuration is not valid: {0}")]
    Json(String),
    /// A public key that does not parse.
    #[error("{place}: {source}")]
    PublicKey {
        /// Where it came from (`public_keys[1]`, `PAT_PUBLIC_KEYS`).
        place: String,
        /// What is wrong with it.
        source: KeyError,
    },
    /// No key at all: nothing could ever be accepted.
    #[error(
        "no trusted public keys: set `public_keys` in the filter configuration or {0} in vm_config.environment_variables (the `public_key` printed by `pat-admin key generate`)"
    )]
    NoKeys(String),
    /// A header name that is not a lowercase HTTP token.
    #[error(
        "identity_headers.{field}: `{value}` is not a valid header name (lowercase letters, digits and -, not a pseudo-header)"
    )]
    HeaderName {
        /// Which field.
        field: &'static str,
        /// The value given.
        value: String,
    },
    /// An identity header named like a header the filter reads or HTTP framing uses.
    #[error(
        "identity_headers.{field}: `{value}` is a standard header (the filter or HTTP itself reads it): use a header of your own, such as x-pat-user"
    )]
    ReservedHeader {
        /// Which field.
        field: &'static str,
        /// The value given.
        value: String,
    },
    /// Two identity headers have the same name.
    #[error("identity_headers: token_id, user and combined must be different headers")]
    SameHeaders,
    /// A status Envoy cannot send.
    #[error("deny.http_status: {0} is not an HTTP status (200-599)")]
    HttpStatus(u32),
    /// A zero `result` code would read as success.
    #[error("deny.codes.{0}: 0 means success to platform clients; use a non-zero code")]
    ZeroCode(&'static str),
    /// `source` must be plain text.
    #[error("deny.source: use 1-64 printable ASCII characters")]
    Source,
    /// Out of range numbers.
    #[error("{field}: {message}")]
    Range {
        /// Which field.
        field: &'static str,
        /// What range is accepted.
        message: &'static str,
    },
    /// An origin setting that cannot work.
    #[error("origin.{0}")]
    Origin(&'static str),
    /// A usage setting that cannot work.
    #[error("usage.{0}")]
    Usage(String),
    /// A control path that is not a plain absolute path.
    #[error("push.path: `{0}` must start with / and contain no ?, #, % or spaces")]
    ControlPath(String),
}

impl Config {
    /// Parses the plugin configuration. `env` looks up environment variables (the VM's, in
    /// the filter). Empty configuration means all defaults (keys then come from the env).
    /// Sections are checked in the order they are listed here; the first error is returned.
    pub fn parse(json: &[u8], env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let raw: RawConfig = if json.iter().all(u8::is_ascii_whitespace) {
            RawConfig::default()
        } else {
            serde_json::from_slice(json).map_err(|e| ConfigError::Json(e.to_string()))?
        };
        let keys = parse_keys(&raw.public_keys, &raw.public_keys_env, &env)?;
        check_identity(&raw.identity_headers)?;
        check_deny(&raw.deny)?;
        let limits = parse_limits(&raw)?;
        let rate_budget = parse_rate_limits(&raw.rate_limits)?;
        let push = match raw.push {
            Some(push) if push.enabled => Some(parse_push(push)?),
            _ => None,
        };
        let origin = raw.origin.map(parse_origin).transpose()?;
        let usage = match raw.usage {
            Some(usage) => parse_usage(usage, &env)?,
            None => None,
        };
        Ok(Self {
            keys,
            ordinary_sessions: raw.ordinary_sessions,
            missing_session: raw.missing_session,
            strip_token: raw.strip_token,
            removed_headers: raw.identity_headers.removed(),
            identity: raw.identity_headers,
            deny: raw.deny,
            max_body_bytes: limits.max_body_bytes,
            refresh_interval: limits.refresh_interval,
            max_snapshot_age_ms: limits.max_snapshot_age_ms,
            push,
            origin,
            usage,
            rate_budget,
        })
    }
}

/// `public_keys` and the keys in the environment variable `public_keys_env` names: at least
/// one in all.
fn parse_keys(
    listed: &[String],
    env_name: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<TrustedKeys, ConfigError> {
    let mut keys = Vec::new();
    for (i, text) in listed.iter().enumerate() {
        keys.push(
            text.parse::<PublicKey>()
                .map_err(|source| ConfigError::PublicKey {
                    place: format!("public_keys[{i}]"),
                    source,
                })?,
        );
    }
    if let Some(list) = env(env_name) {
        let from_env = TrustedKeys::parse_list(&list).map_err(|source| ConfigError::PublicKey {
            place: env_name.to_string(),
            source,
        })?;
        keys.extend(from_env.iter().cloned());
    }
    let keys = TrustedKeys::new(keys);
    if keys.is_empty() {
        return Err(ConfigError::NoKeys(env_name.to_string()));
    }
    Ok(keys)
}

/// `identity_headers`: different valid header names.
fn check_identity(headers: &IdentityHeaders) -> Result<(), ConfigError> {
    let fields = [
        ("token_id", Some(&headers.token_id)),
        ("user", Some(&headers.user)),
        ("combined", headers.combined.as_ref()),
    ];
    for (field, value) in fields {
        let Some(value) = value else { continue };
        if !is_header_name(value) {
            return Err(ConfigError::HeaderName {
                field,
                value: value.clone(),
            });
        }
        if RESERVED_HEADERS.contains(&value.as_str()) {
            return Err(ConfigError::ReservedHeader {
                field,
                value: value.clone(),
            });
        }
    }
    let combined = headers.combined.as_ref();
    if headers.token_id == headers.user
        || combined.is_some_and(|c| *c == headers.token_id || *c == headers.user)
    {
        return Err(ConfigError::SameHeaders);
    }
    Ok(())
}

/// `deny`: a status Envoy can send, non-zero codes, a plain `source`.
fn check_deny(deny: &DenyStyle) -> Result<(), ConfigError> {
    for status in [Some(deny.http_status), deny.rate_limited_http_status]
        .into_iter()
        .flatten()
    {
        if !(200..=599).contains(&status) {
            return Err(ConfigError::HttpStatus(status));
        }
    }
    for (field, code) in [
        ("unauthenticated", deny.codes.unauthenticated),
        ("forbidden", deny.codes.forbidden),
        ("invalid_request", deny.codes.invalid_request),
        ("environment", deny.codes.environment),
        ("rate_limited", deny.codes.rate_limited),
    ] {
        if code == 0 {
            return Err(ConfigError::ZeroCode(field));
        }
    }
    if deny.source.is_empty()
        || deny.source.len() > 64
        || !deny.source.bytes().all(|b| (0x20..0x7f).contains(&b))
    {
        return Err(ConfigError::Source);
    }
    Ok(())
}

/// The top-level numbers.
struct Limits {
    max_body_bytes: usize,
    refresh_interval: Duration,
    max_snapshot_age_ms: u64,
}

/// `max_body_bytes`, `refresh_interval_ms` and `max_snapshot_age_ms`, each in its range.
fn parse_limits(raw: &RawConfig) -> Result<Limits, ConfigError> {
    let max_body_bytes =
        in_range(raw.max_body_bytes, 1024, 64 * 1024 * 1024).ok_or(ConfigError::Range {
            field: "max_body_bytes",
            message: "use 1024 to 67108864 bytes (and keep it within the listener's buffer limit)",
        })?;
    let refresh_ms = in_range(raw.refresh_interval_ms, 10, 60_000).ok_or(ConfigError::Range {
        field: "refresh_interval_ms",
        message: "use 10 to 60000 milliseconds",
    })?;
    let max_snapshot_age_ms =
        in_range(raw.max_snapshot_age_ms, 1_000, 90 * 86_400_000).ok_or(ConfigError::Range {
            field: "max_snapshot_age_ms",
            message: "use 1000 to 7776000000 milliseconds (90 days)",
        })? as u64;
    Ok(Limits {
        max_body_bytes,
        refresh_interval: Duration::from_millis(refresh_ms as u64),
        max_snapshot_age_ms,
    })
}

/// An enabled `push` section: a plain absolute path and a size limit in range.
fn parse_push(raw: RawPush) -> Result<PushConfig, ConfigError> {
    if !raw.path.starts_with('/')
        || raw
            .path
            .bytes()
            .any(|b| matches!(b, b'?' | b'#' | b'%') || !(0x21..0x7f).contains(&b))
    {
        return Err(ConfigError::ControlPath(raw.path));
    }
    let max_bytes =
        in_range(raw.max_bytes, 1024, 1024 * 1024 * 1024).ok_or(ConfigError::Range {
            field: "push.max_bytes",
            message: "use 1024 to 1073741824 bytes (a 1,000,000-token snapshot is about 57 MB)",
        })?;
    Ok(PushConfig {
        path: raw.path,
        max_bytes,
        allow_public_listener: raw.allow_public_listener,
    })
}

/// The `usage` section; `None` (reports off) when its key variable is unset or empty.
fn parse_usage(
    raw: RawUsage,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Option<Usage>, ConfigError> {
    if raw.cluster.is_empty() || raw.authority.is_empty() {
        return Err(ConfigError::Usage(
            "cluster and authority must not be empty".into(),
        ));
    }
    if !raw.path.starts_with('/') || raw.path.bytes().any(|b| !(0x21..0x7f).contains(&b)) {
        return Err(ConfigError::Usage(
            "path: use an absolute path such as /usage".into(),
        ));
    }
    if !(1_000..=3_600_000).contains(&raw.interval_ms) {
        return Err(ConfigError::Usage(
            "interval_ms: use 1000 to 3600000 milliseconds".into(),
        ));
    }
    if !(100..=60_000).contains(&raw.timeout_ms) {
        return Err(ConfigError::Usage(
            "timeout_ms: use 100 to 60000 milliseconds".into(),
        ));
    }
    let Some(text) = env(&raw.key_env).filter(|t| !t.trim().is_empty()) else {
        return Ok(None);
    };
    let key = pat_core::keys::SigningKey::from_secret_text(text.trim()).map_err(|e| {
        ConfigError::Usage(format!(
            "{}: {e} (the edge key that `pat-admin edge key generate` wrote)",
            raw.key_env
        ))
    })?;
    Ok(Some(Usage {
        config: UsageConfig {
            cluster: raw.cluster,
            path: raw.path,
            authority: raw.authority,
            interval: Duration::from_millis(raw.interval_ms),
            timeout: Duration::from_millis(raw.timeout_ms),
        },
        key: std::sync::Arc::new(key),
    }))
}

/// The `origin` section.
fn parse_origin(raw: RawOrigin) -> Result<OriginConfig, ConfigError> {
    if raw.cluster.is_empty() || raw.authority.is_empty() {
        return Err(ConfigError::Origin(
            "cluster and origin.authority must not be empty",
        ));
    }
    let is_path = |p: &str| p.starts_with('/') && p.bytes().all(|b| (0x21..0x7f).contains(&b));
    if !is_path(&raw.path) {
        return Err(ConfigError::Origin(
            "path: use an absolute path such as /snapshot",
        ));
    }
    if !is_path(&raw.head_path) || raw.head_path == raw.path {
        return Err(ConfigError::Origin(
            "head_path: use an absolute path other than path, such as /snapshot/head",
        ));
    }
    if !(1_000..=86_400_000).contains(&raw.interval_ms) {
        return Err(ConfigError::Origin(
            "interval_ms: use 1000 to 86400000 milliseconds",
        ));
    }
    if !(100..=raw.interval_ms).contains(&raw.retry_ms) {
        return Err(ConfigError::Origin(
            "retry_ms: use 100 milliseconds up to interval_ms",
        ));
    }
    if !(100..=300_000).contains(&raw.timeout_ms) {
        return Err(ConfigError::Origin(
            "timeout_ms: use 100 to 300000 milliseconds",
        ));
    }
    Ok(OriginConfig {
        cluster: raw.cluster,
        path: raw.path,
        head_path: raw.head_path,
        authority: raw.authority,
        interval: Duration::from_millis(raw.interval_ms),
        retry: Duration::from_millis(raw.retry_ms),
        timeout: Duration::from_millis(raw.timeout_ms),
    })
}

fn in_range(value: u64, min: u64, max: u64) -> Option<usize> {
    (min..=max)
        .contains(&value)
        .then(|| usize::try_from(value).ok())
        .flatten()
}

/// A lowercase HTTP header name that is not a pseudo-header.
/// Headers an identity header may not be named as: those the filter reads on every request,
/// and those HTTP framing and Envoy give a meaning of their own.
const RESERVED_HEADERS: [&str; 14] = [
    "content-type",
    "content-length",
    "transfer-encoding",
    "host",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "cookie",
    "authorization",
    "x-forwarded-for",
    "x-request-id",
];

fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use pat_core::keys::SigningKey;

    fn key() -> String {
        SigningKey::generate()
            .expect("rng")
            .public_key()
            .to_string()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_with_keys_from_the_environment() {
        let k = key();
        let config = Config::parse(b"", |name| (name == "PAT_PUBLIC_KEYS").then(|| k.clone()))
            .expect("valid");
        assert_eq!(config.keys.len(), 1);
        assert_eq!(config.ordinary_sessions, Unmatched::Pass);
        assert_eq!(config.identity.user, "x-pat-user");
        assert_eq!(config.deny.http_status, 200);
        assert_eq!(config.deny.source, "JEL");
        assert_eq!(config.refresh_interval, Duration::from_millis(20));
        assert!(config.push.is_none());
    }

    #[test]
    fn rate_limit_budgets_and_their_denials() {
        let k = key();
        let parse = |fields: &str| {
            Config::parse(
                format!(r#"{{"public_keys":["{k}"]{fields}}}"#).as_bytes(),
                no_env,
            )
        };
        let defaults = parse("").expect("valid");
        assert_eq!(defaults.rate_budget, Budget::Shared);
        assert_eq!(
            (
                defaults.deny.codes.environment,
                defaults.deny.codes.rate_limited
            ),
            (704, 705)
        );
        assert_eq!(defaults.deny.rate_limited_http_status, None);
        let split = parse(r#","rate_limits":{"budget":"per_worker","workers":4}"#).expect("valid");
        assert_eq!(split.rate_budget, Budget::PerWorker { workers: 4 });
        let with_429 = parse(r#","deny":{"rate_limited_http_status":429}"#).expect("valid");
        assert_eq!(with_429.deny.rate_limited_http_status, Some(429));
        for (fields, expected) in [
            (
                r#","rate_limits":{"budget":"per_worker"}"#,
                "rate_limits.workers",
            ),
            (
                r#","rate_limits":{"budget":"shared","workers":2}"#,
                "rate_limits.workers",
            ),
            (r#","rate_limits":{"budget":"global"}"#, "unknown variant"),
            (r#","deny":{"rate_limited_http_status":99}"#, "99"),
            (
                r#","deny":{"codes":{"rate_limited":0}}"#,
                "deny.codes.rate_limited",
            ),
            (
                r#","deny":{"codes":{"environment":0}}"#,
                "deny.codes.environment",
            ),
        ] {
            let error = parse(fields).expect_err(fields).to_string();
            assert!(error.contains(expected), "{fields}: {error}");
        }
    }

    #[test]
    fn every_identity_header_name_is_removed_once() {
        let removed = |fields: &str| {
            let k = key();
            Config::parse(format!("{{{fields}}}").as_bytes(), |name| {
                (name == "PAT_PUBLIC_KEYS").then(|| k.clone())
            })
            .expect("valid")
            .removed_headers
        };
        let documented = ["x-pat-token-id", "x-pat-user", "x-pat-identity"];
        // The default: the combined header is off, and still removed.
        assert_eq!(removed(""), documented);
        assert_eq!(
            removed(r#""identity_headers":{"combined":"x-pat-identity"}"#),
            documented
        );
        assert_eq!(
            removed(r#""identity_headers":{"token_id":"x-id","user":"x-who","combined":"x-both"}"#),
            [
                "x-id",
                "x-who",
                "x-both",
                "x-pat-token-id",
                "x-pat-user",
                "x-pat-identity"
            ]
        );
        assert_eq!(
            removed(r#""identity_headers":{"token_id":"x-pat-user","user":"x-pat-token-id"}"#),
            ["x-pat-user", "x-pat-token-id", "x-pat-identity"]
        );
    }

    #[test]
    fn full_configuration() {
        let (a, b) = (key(), key());
        let json = format!(
            r#"{{"public_keys":["{a}"],"ordinary_sessions":"deny","missing_session":"deny","strip_token":true,
               "identity_headers":{{"token_id":"x-token","user":"x-user"}},
               "deny":{{"http_status":403,"source":"edge","codes":{{"forbidden":7}}}},
               "max_body_bytes":4096,"refresh_interval_ms":20,
               "push":{{"path":"/control/snapshot","max_bytes":2048}}}}"#
        );
        let config = Config::parse(json.as_bytes(), |_| Some(b.clone())).expect("valid");
        assert_eq!(config.keys.len(), 2);
        assert_eq!(config.missing_session, Unmatched::Deny);
        assert!(config.strip_token);
        assert_eq!(config.deny.codes.forbidden, 7);
        assert_eq!(config.deny.codes.unauthenticated, 701);
        let push = config.push.expect("push enabled");
        assert_eq!(push.path, "/control/snapshot");
        assert!(!push.allow_public_listener);
        assert!(config.origin.is_none());
        let with_origin = format!(r#"{{"public_keys":["{a}"],"origin":{{}}}}"#);
        let origin = Config::parse(with_origin.as_bytes(), no_env)
            .expect("valid")
            .origin
            .expect("origin");
        assert_eq!(
            (origin.cluster.as_str(), origin.path.as_str()),
            ("pat_origin", "/snapshot")
        );
        assert_eq!(origin.head_path, "/snapshot/head");
        assert_eq!(origin.interval, Duration::from_secs(10));
        assert_eq!(config.max_snapshot_age_ms, DEFAULT_MAX_SNAPSHOT_AGE_MS);
    }

    #[test]
    fn errors_name_the_field() {
        let k = key();
        let with_key = |extra: &str| format!(r#"{{"public_keys":["{k}"]{extra}}}"#);
        let cases = [
            ("not json".to_string(), "configuration is not valid"),
            (
                with_key(r#","strip_tokens":true"#),
                "unknown field `strip_tokens`",
            ),
            (
                r#"{"public_keys":["ed25519:nope"]}"#.to_string(),
                "public_keys[0]",
            ),
            (
                with_key(r#","identity_headers":{"user":"X-User"}"#),
                "identity_headers.user",
            ),
            (
                with_key(r#","identity_headers":{"combined":"X-Identity"}"#),
                "identity_headers.combined",
            ),
            (
                with_key(r#","identity_headers":{"combined":"x-pat-user"}"#),
                "must be different",
            ),
            (
                with_key(r#","identity_headers":{"user":"content-type"}"#),
                "identity_headers.user: `content-type` is a standard header",
            ),
            (
                with_key(r#","identity_headers":{"combined":"content-length"}"#),
                "identity_headers.combined: `content-length` is a standard header",
            ),
            (
                with_key(r#","identity_headers":{"user":"x-pat-token-id"}"#),
                "must be different",
            ),
            (
                with_key(r#","deny":{"http_status":99}"#),
                "deny.http_status",
            ),
            (
                with_key(r#","deny":{"codes":{"forbidden":0}}"#),
                "deny.codes.forbidden",
            ),
            (with_key(r#","deny":{"source":""}"#), "deny.source"),
            (with_key(r#","max_body_bytes":10"#), "max_body_bytes"),
            (
                with_key(r#","refresh_interval_ms":0"#),
                "refresh_interval_ms",
            ),
            (with_key(r#","push":{"path":"relative"}"#), "push.path"),
            (with_key(r#","push":{"max_bytes":1}"#), "push.max_bytes"),
            (
                with_key(r#","origin":{"interval_ms":10}"#),
                "origin.interval_ms",
            ),
            (with_key(r#","origin":{"path":"x"}"#), "origin.path"),
            (
                with_key(r#","origin":{"head_path":"/snapshot"}"#),
                "origin.head_path",
            ),
            (
                with_key(r#","max_snapshot_age_ms":5"#),
                "max_snapshot_age_ms",
            ),
            (
                with_key(r#","origin":{"retry_ms":99999999}"#),
                "origin.retry_ms",
            ),
            (
                with_key(r#","origin":{"clusters":"x"}"#),
                "unknown field `clusters`",
            ),
            ("{}".to_string(), "no trusted public keys"),
        ];
        for (json, expected) in cases {
            let err = Config::parse(json.as_bytes(), no_env)
                .expect_err(&json)
                .to_string();
            assert!(err.contains(expected), "{json}: {err}");
        }
        let err = Config::parse(b"{}", |_| Some("garbage".into()))
            .expect_err("bad env")
            .to_string();
        assert!(err.starts_with("PAT_PUBLIC_KEYS:"), "{err}");
    }

    #[test]
    fn usage_reports_need_the_edge_key_from_the_environment() {
        let k = key();
        let edge_key = SigningKey::generate().expect("rng");
        let secret = edge_key.to_secret_text().to_string();
        let json = format!(r#"{{"public_keys":["{k}"],"usage":{{"interval_ms":5000}}}}"#);
        let with_key = Config::parse(json.as_bytes(), |name| {
            (name == "PAT_EDGE_KEY").then(|| secret.clone())
        })
        .expect("valid");
        let usage = with_key.usage.expect("reports on");
        assert_eq!(usage.config.path, "/usage");
        assert_eq!(usage.config.interval, Duration::from_secs(5));
        assert_eq!(usage.key.public_key(), edge_key.public_key());
        // No key in the environment: reports are off, the rest works.
        assert!(
            Config::parse(json.as_bytes(), no_env)
                .expect("valid")
                .usage
                .is_none()
        );
        let err = Config::parse(json.as_bytes(), |name| {
            (name == "PAT_EDGE_KEY").then(|| "garbage".to_string())
        })
        .expect_err("a bad key")
        .to_string();
        assert!(err.contains("usage.PAT_EDGE_KEY"), "{err}");
        let bad = format!(r#"{{"public_keys":["{k}"],"usage":{{"interval_ms":5}}}}"#);
        assert!(Config::parse(bad.as_bytes(), no_env).is_err());
    }

    #[test]
    fn push_can_be_disabled_explicitly() {
        let k = key();
        let json = format!(r#"{{"public_keys":["{k}"],"push":{{"enabled":false}}}}"#);
        assert!(
            Config::parse(json.as_bytes(), no_env)
                .expect("valid")
                .push
                .is_none()
        );
    }
}
