//! The allow / deny / pass-through verdict for one request. Pure: everything it needs is
//! passed in, so every rule is unit-tested natively. The client address is passed as a
//! closure: it is read (a host call) only for a token limited to some networks.

use std::net::IpAddr;

use pat_core::method::{MethodName, PathError, resolve_path};
use pat_core::rate::RateLimit;
use pat_core::snapshot::TokenState;
use pat_core::token::{self, TokenFormatError, TokenHash};

use crate::config::Unmatched;
use crate::env_name::EnvFinding;
use crate::session::SessionFinding;

/// The outcome for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not a token request; forwarded untouched (identity headers are still stripped).
    PassThrough,
    /// A valid token for this method.
    Allow(Grant),
    /// Refused at the edge.
    Deny(Denial),
}

/// What an allowed request carries to the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Public token id.
    pub token_id: u64,
    /// The account the token acts for.
    pub user: String,
    /// The method it was authorized for.
    pub method: MethodName,
    /// Its rate limit, checked after the verdict ([`crate::rate_limit`]).
    pub rate_limit: Option<RateLimit>,
    /// Limited to some environments: a later multipart part that changes the request's
    /// `envName` ends the request.
    pub env_limited: bool,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// No `session` while configured to require one.
    MissingSession,
    /// An ordinary login session while configured to accept tokens only.
    OrdinarySession,
    /// Token prefix, but wrong length, characters or checksum.
    MalformedToken {
        /// The masked value, safe to show.
        masked: String,
        /// What is wrong.
        error: TokenFormatError,
    },
    /// No snapshot is loaded on this edge yet: token requests fail closed.
    NoSnapshot,
    /// Not in the snapshot (never issued, removed or regenerated).
    UnknownToken {
        /// The masked value.
        masked: String,
    },
    /// Past its expiry.
    ExpiredToken {
        /// The masked value.
        masked: String,
    },
    /// A method no token may call (`users.Authentication.*`).
    ForbiddenMethod {
        /// The masked value.
        masked: String,
        /// The method.
        method: MethodName,
    },
    /// A method outside the token's scope.
    OutOfScope {
        /// The masked value.
        masked: String,
        /// The method.
        method: MethodName,
    },
    /// A token limited to some client networks, used from another address (or from one
    /// the edge cannot tell).
    AddressNotAllowed {
        /// The masked value.
        masked: String,
        /// The client address as Envoy sees it.
        address: Option<IpAddr>,
    },
    /// A token on a path that is not an API method.
    NotAnApiMethod,
    /// A token on a path that might reach another method than the one it names.
    AmbiguousPath(&'static str),
    /// Several different `session` values.
    ConflictingSessions,
    /// A token-format value outside the one decisive `session` value.
    StrayToken,
    /// A body that can carry a `session` but cannot be parsed.
    UnparseableBody(&'static str),
    /// A body too large to inspect.
    BodyTooLarge,
    /// A token limited to some environments, on a method that does not act on one
    /// environment (`GetEnvs` lists them all; `CloneEnv` names a second one).
    NotAnEnvironmentMethod {
        /// The masked value.
        masked: String,
        /// The method.
        method: MethodName,
    },
    /// A token limited to some environments, on a request whose one `envName` is not among
    /// them (`None`: the request names none).
    EnvironmentNotAllowed {
        /// The masked value.
        masked: String,
        /// The environment named, if any (shown escaped).
        env: Option<String>,
    },
    /// A token limited to some environments, on a request that names several, or names one
    /// where the filter does not look (`envname=`).
    AmbiguousEnvironment {
        /// The masked value.
        masked: String,
    },
    /// A token over its rate limit.
    RateLimited {
        /// The masked value.
        masked: String,
        /// Its limit.
        limit: RateLimit,
        /// When a retry would be admitted.
        retry_after_ms: u64,
    },
}

/// The families of denial, each with its own configurable `result` code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// No valid credential.
    Unauthenticated,
    /// A valid credential without the right to this method.
    Forbidden,
    /// A request that cannot be authorized unambiguously.
    InvalidRequest,
    /// A token limited to some environments, outside them.
    Environment,
    /// A token over its rate limit.
    RateLimited,
}

/// What a denial is, without its details: the metric suffix and log word ([`Self::name`]),
/// and an index into per-reason tables ([`Self::index`]) so that counting a denial needs
/// no lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// [`Denial::MissingSession`].
    MissingSession,
    /// [`Denial::OrdinarySession`].
    OrdinarySession,
    /// [`Denial::MalformedToken`].
    MalformedToken,
    /// [`Denial::NoSnapshot`].
    NoSnapshot,
    /// [`Denial::UnknownToken`].
    UnknownToken,
    /// [`Denial::ExpiredToken`].
    ExpiredToken,
    /// [`Denial::ForbiddenMethod`].
    ForbiddenMethod,
    /// [`Denial::OutOfScope`].
    OutOfScope,
    /// [`Denial::AddressNotAllowed`].
    AddressNotAllowed,
    /// [`Denial::NotAnApiMethod`].
    NotAnApiMethod,
    /// [`Denial::AmbiguousPath`].
    AmbiguousPath,
    /// [`Denial::ConflictingSessions`].
    ConflictingSessions,
    /// [`Denial::StrayToken`].
    StrayToken,
    /// [`Denial::UnparseableBody`].
    UnparseableBody,
    /// [`Denial::BodyTooLarge`].
    BodyTooLarge,
    /// [`Denial::NotAnEnvironmentMethod`].
    NotAnEnvironmentMethod,
    /// [`Denial::EnvironmentNotAllowed`].
    EnvironmentNotAllowed,
    /// [`Denial::AmbiguousEnvironment`].
    AmbiguousEnvironment,
    /// [`Denial::RateLimited`].
    RateLimited,
}

impl Reason {
    /// Every reason, in [`Self::index`] order (for defining metrics up front).
    pub const ALL: [Self; 19] = [
        Self::MissingSession,
        Self::OrdinarySession,
        Self::MalformedToken,
        Self::NoSnapshot,
        Self::UnknownToken,
        Self::ExpiredToken,
        Self::ForbiddenMethod,
        Self::OutOfScope,
        Self::AddressNotAllowed,
        Self::NotAnApiMethod,
        Self::AmbiguousPath,
        Self::ConflictingSessions,
        Self::StrayToken,
        Self::UnparseableBody,
        Self::BodyTooLarge,
        Self::NotAnEnvironmentMethod,
        Self::EnvironmentNotAllowed,
        Self::AmbiguousEnvironment,
        Self::RateLimited,
    ];

    /// Its position in [`Self::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The metric suffix and log word.
    pub fn name(self) -> &'static str {
        match self {
            Self::MissingSession => "missing_session",
            Self::OrdinarySession => "ordinary_session",
            Self::MalformedToken => "malformed_token",
            Self::NoSnapshot => "no_snapshot",
            Self::UnknownToken => "unknown_token",
            Self::ExpiredToken => "expired_token",
            Self::ForbiddenMethod => "forbidden_method",
            Self::OutOfScope => "out_of_scope",
            Self::AddressNotAllowed => "address_not_allowed",
            Self::NotAnApiMethod => "not_an_api_method",
            Self::AmbiguousPath => "ambiguous_path",
            Self::ConflictingSessions => "conflicting_sessions",
            Self::StrayToken => "stray_token",
            Self::UnparseableBody => "unparseable_body",
            Self::BodyTooLarge => "body_too_large",
            Self::NotAnEnvironmentMethod => "not_an_environment_method",
            Self::EnvironmentNotAllowed => "environment_not_allowed",
            Self::AmbiguousEnvironment => "ambiguous_environment",
            Self::RateLimited => "rate_limited",
        }
    }
}

impl Denial {
    /// Its reason.
    pub fn reason(&self) -> Reason {
        match self {
            Self::MissingSession => Reason::MissingSession,
            Self::OrdinarySession => Reason::OrdinarySession,
            Self::MalformedToken { .. } => Reason::MalformedToken,
            Self::NoSnapshot => Reason::NoSnapshot,
            Self::UnknownToken { .. } => Reason::UnknownToken,
            Self::ExpiredToken { .. } => Reason::ExpiredToken,
            Self::ForbiddenMethod { .. } => Reason::ForbiddenMethod,
            Self::OutOfScope { .. } => Reason::OutOfScope,
            Self::AddressNotAllowed { .. } => Reason::AddressNotAllowed,
            Self::NotAnApiMethod => Reason::NotAnApiMethod,
            Self::AmbiguousPath(_) => Reason::AmbiguousPath,
            Self::ConflictingSessions => Reason::ConflictingSessions,
            Self::StrayToken => Reason::StrayToken,
            Self::UnparseableBody(_) => Reason::UnparseableBody,
            Self::BodyTooLarge => Reason::BodyTooLarge,
            Self::NotAnEnvironmentMethod { .. } => Reason::NotAnEnvironmentMethod,
            Self::EnvironmentNotAllowed { .. } => Reason::EnvironmentNotAllowed,
            Self::AmbiguousEnvironment { .. } => Reason::AmbiguousEnvironment,
            Self::RateLimited { .. } => Reason::RateLimited,
        }
    }

    /// Its category.
    pub fn category(&self) -> Category {
        match self {
            Self::MissingSession
            | Self::OrdinarySession
            | Self::MalformedToken { .. }
            | Self::NoSnapshot
            | Self::UnknownToken { .. }
            | Self::ExpiredToken { .. } => Category::Unauthenticated,
            Self::ForbiddenMethod { .. }
            | Self::OutOfScope { .. }
            | Self::AddressNotAllowed { .. } => Category::Forbidden,
            Self::NotAnApiMethod
            | Self::AmbiguousPath(_)
            | Self::ConflictingSessions
            | Self::StrayToken
            | Self::UnparseableBody(_)
            | Self::BodyTooLarge => Category::InvalidRequest,
            Self::NotAnEnvironmentMethod { .. }
            | Self::EnvironmentNotAllowed { .. }
            | Self::AmbiguousEnvironment { .. } => Category::Environment,
            Self::RateLimited { .. } => Category::RateLimited,
        }
    }

    /// The `error` text for the client. Never contains a token: only masked values.
    pub fn message(&self) -> String {
        match self {
            Self::MissingSession => "authentication required: pass a personal access token as the session parameter".into(),
            Self::OrdinarySession => "this API endpoint accepts personal access tokens only".into(),
            Self::MalformedToken { masked, error } => format!("access token {masked} is not valid: {error}"),
            Self::NoSnapshot => "access tokens cannot be verified yet (the token list has not reached this gateway); retry shortly".into(),
            Self::UnknownToken { masked } => format!("access token {masked} is not valid (revoked, expired, regenerated or never issued)"),
            Self::ExpiredToken { masked } => format!("access token {masked} has expired"),
            Self::ForbiddenMethod { masked, method } => {
                format!("access token {masked} cannot call {method}: access tokens never may")
            }
            Self::OutOfScope { masked, method } => format!("access token {masked} is not allowed to call {method}"),
            Self::AddressNotAllowed { masked, address: Some(address) } => {
                format!("access token {masked} may not be used from {address}: it is limited to other client networks")
            }
            Self::AddressNotAllowed { masked, address: None } => {
                format!("access token {masked} is limited to some client networks and the client address is unknown")
            }
            Self::NotAnApiMethod => "access tokens can only be used on API method paths (/1.0/group/class/rest/method)".into(),
            Self::AmbiguousPath(why) => format!("request path refused for an access token: it contains {why}"),
            Self::ConflictingSessions => "the request carries several different session values".into(),
            Self::StrayToken => "the request carries an access token outside its session parameter; pass it only as session".into(),
            Self::UnparseableBody(why) => format!("the request body cannot be parsed: {why}"),
            Self::BodyTooLarge => "the request body is too large to check for a session parameter".into(),
            Self::NotAnEnvironmentMethod { masked, method } => format!(
                "access token {masked} is limited to some environments and cannot call {method}, which does not act on one environment named by envName"
            ),
            Self::EnvironmentNotAllowed { masked, env: Some(env) } => format!(
                "access token {masked} may not act on environment {}: it is limited to other environments",
                env.escape_default()
            ),
            Self::EnvironmentNotAllowed { masked, env: None } => format!(
                "access token {masked} is limited to some environments: name one of them as envName"
            ),
            Self::AmbiguousEnvironment { masked } => format!(
                "access token {masked} is limited to some environments, and the request names its environment more than once, or in another spelling of envName; pass exactly one envName"
            ),
            Self::RateLimited { masked, limit, retry_after_ms } => format!(
                "access token {masked} is over its rate limit of {limit}; retry in {} s",
                retry_after_ms.div_ceil(1000)
            ),
        }
    }
}

/// How to treat requests without a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// No `session` at all.
    pub missing_session: Unmatched,
    /// A `session` that is not in token format.
    pub ordinary_sessions: Unmatched,
}

/// Decides one request. `path` is `:path` (a query, if any, is not read); `env` is what the
/// pass that found `session` found of `envName` (read only for a token limited to some
/// environments); `now` is Unix seconds; `client` gives the client address, and is called
/// only for a token limited to some networks.
pub fn decide(
    policy: Policy,
    snapshot: Option<&TokenState>,
    path: &str,
    session: &SessionFinding,
    env: &EnvFinding,
    now: u64,
    client: impl FnOnce() -> Option<IpAddr>,
) -> Verdict {
    let value = match session {
        // `session` in another case alone is no session: the platform's to judge.
        SessionFinding::Absent | SessionFinding::OtherCase => {
            return unmatched(policy.missing_session, Denial::MissingSession);
        }
        SessionFinding::Conflicting => return Verdict::Deny(Denial::ConflictingSessions),
        SessionFinding::StrayToken => return Verdict::Deny(Denial::StrayToken),
        SessionFinding::Unparseable(why) => return Verdict::Deny(Denial::UnparseableBody(why)),
        SessionFinding::TooLarge => return Verdict::Deny(Denial::BodyTooLarge),
        SessionFinding::Found(value) => value,
    };
    if !token::is_token_like(value) {
        return unmatched(policy.ordinary_sessions, Denial::OrdinarySession);
    }
    match authorize(snapshot, path, value, env, now, client) {
        Ok(grant) => Verdict::Allow(grant),
        Err(denial) => Verdict::Deny(denial),
    }
}

fn unmatched(rule: Unmatched, denial: Denial) -> Verdict {
    match rule {
        Unmatched::Pass => Verdict::PassThrough,
        Unmatched::Deny => Verdict::Deny(denial),
    }
}

fn authorize(
    snapshot: Option<&TokenState>,
    path: &str,
    value: &str,
    env: &EnvFinding,
    now: u64,
    client: impl FnOnce() -> Option<IpAddr>,
) -> Result<Grant, Denial> {
    token::validate(value).map_err(|error| Denial::MalformedToken {
        masked: token::mask(value),
        error,
    })?;
    let method = resolve_path(path).map_err(|e| match e {
        PathError::NotAnApiPath => Denial::NotAnApiMethod,
        PathError::Ambiguous(why) => Denial::AmbiguousPath(why),
    })?;
    let snapshot = snapshot.ok_or(Denial::NoSnapshot)?;
    let masked = || token::mask(value);
    let entry = snapshot
        .find(&TokenHash::of(value))
        .ok_or_else(|| Denial::UnknownToken { masked: masked() })?;
    if entry.is_expired(now) {
        return Err(Denial::ExpiredToken { masked: masked() });
    }
    // Before anything about the method: from elsewhere, a limited token says nothing more.
    if entry.is_address_limited() {
        let address = client();
        if !address.is_some_and(|ip| entry.allows_address(ip)) {
            return Err(Denial::AddressNotAllowed {
                masked: masked(),
                address,
            });
        }
    }
    if method.is_forbidden_for_tokens() {
        return Err(Denial::ForbiddenMethod {
            masked: masked(),
            method,
        });
    }
    if !entry.allows_method(method.as_str()) {
        return Err(Denial::OutOfScope {
            masked: masked(),
            method,
        });
    }
    let envs = entry.envs();
    let env_limited = !envs.is_unrestricted();
    if env_limited {
        if !entry.method_acts_on_env(method.as_str()) {
            return Err(Denial::NotAnEnvironmentMethod {
                masked: masked(),
                method,
            });
        }
        match env {
            EnvFinding::Found(name) => match name.as_str() {
                Some(name) if envs.allows(name) => {}
                name => {
                    return Err(Denial::EnvironmentNotAllowed {
                        masked: masked(),
                        env: Some(name.unwrap_or("(a name too long)").to_string()),
                    });
                }
            },
            EnvFinding::Absent => {
                return Err(Denial::EnvironmentNotAllowed {
                    masked: masked(),
                    env: None,
                });
            }
            EnvFinding::Conflicting | EnvFinding::Ambiguous => {
                return Err(Denial::AmbiguousEnvironment { masked: masked() });
            }
        }
    }
    Ok(Grant {
        token_id: entry.id(),
        user: entry.user().to_string(),
        method,
        rate_limit: entry.rate_limit(),
        env_limited,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pat_core::keys::{SigningKey, TrustedKeys};
    use pat_core::snapshot::{Snapshot, SnapshotBuilder, StateOf, TokenSpec};
    use pat_core::token::Token;

    const STOP: &str = "/1.0/environment/control/rest/stopenv?envName=x";
    const PASS: Policy = Policy {
        missing_session: Unmatched::Pass,
        ordinary_sessions: Unmatched::Pass,
    };
    const NOW: u64 = 1_800_000_000;

    struct Fixture {
        snapshot: TokenState,
        valid: Token,
        expired: Token,
        unknown: Token,
        /// Limited to 127.0.0.2/32 and 2001:db8::/32.
        limited: Token,
    }

    fn fixture() -> Fixture {
        let key = SigningKey::generate().expect("rng");
        let (valid, expired, unknown, limited) = (
            Token::generate().expect("rng"),
            Token::generate().expect("rng"),
            Token::generate().expect("rng"),
            Token::generate().expect("rng"),
        );
        let networks: [pat_core::net::Network; 2] = [
            "127.0.0.2/32".parse().expect("v4"),
            "2001:db8::/32".parse().expect("v6"),
        ];
        let scope = [MethodName::parse("environment.Control.StopEnv").expect("valid")];
        let mut b = SnapshotBuilder::new();
        b.add(TokenSpec {
            hash: valid.hash(),
            id: 11,
            user: "alice",
            expires_at: Some(NOW + 1),
            scope: &scope,
            networks: &[],
            envs: None,
            rate_limit: None,
        })
        .expect("add");
        b.add(TokenSpec {
            hash: expired.hash(),
            id: 12,
            user: "alice",
            expires_at: Some(NOW),
            scope: &scope,
            networks: &[],
            envs: None,
            rate_limit: None,
        })
        .expect("add");
        b.add(TokenSpec {
            hash: limited.hash(),
            id: 13,
            user: "alice",
            expires_at: None,
            scope: &scope,
            networks: &networks,
            envs: None,
            rate_limit: None,
        })
        .expect("add");
        let built = b
            .build(
                pat_core::snapshot::Stamp::lasting(1, NOW, 86_400),
                StateOf::Genesis,
                &key,
            )
            .expect("build");
        let snapshot = TokenState::new(
            Snapshot::open(built.bytes, &TrustedKeys::new([key.public_key()])).expect("open"),
        );
        Fixture {
            snapshot,
            valid,
            expired,
            unknown,
            limited,
        }
    }

    /// Decides a request whose token (if any) has no network limit: reading the client
    /// address would be a wasted host call, so it fails the test.
    fn decide_unlimited(
        policy: Policy,
        snapshot: Option<&TokenState>,
        path: &str,
        session: &SessionFinding,
        now: u64,
    ) -> Verdict {
        decide(
            policy,
            snapshot,
            path,
            session,
            &EnvFinding::Absent,
            now,
            || panic!("the client address is read only for tokens limited to some networks"),
        )
    }

    fn found(s: &str) -> SessionFinding {
        SessionFinding::Found(s.to_string())
    }

    fn denied(verdict: Verdict) -> Denial {
        match verdict {
            Verdict::Deny(d) => d,
            other => panic!("expected a denial, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_token_in_scope_is_allowed() {
        let f = fixture();
        let verdict =
            decide_unlimited(PASS, Some(&f.snapshot), STOP, &found(f.valid.expose()), NOW);
        let Verdict::Allow(grant) = verdict else {
            panic!("expected allow, got {verdict:?}");
        };
        assert_eq!((grant.token_id, grant.user.as_str()), (11, "alice"));
        assert_eq!(grant.method.as_str(), "environment.control.stopenv");
        // Case and alias variants of the same method.
        for path in [
            "/1.0/ENV/Control/REST/StopEnv",
            "/1.0/env/control/rest/stopenv",
        ] {
            assert!(matches!(
                decide_unlimited(PASS, Some(&f.snapshot), path, &found(f.valid.expose()), NOW),
                Verdict::Allow(_)
            ));
        }
    }

    #[test]
    fn token_denials() {
        let f = fixture();
        let s = Some(&f.snapshot);
        let v = f.valid.expose();
        let mut bad_checksum = v.to_string();
        bad_checksum.pop();
        bad_checksum.push(if v.ends_with('A') { 'B' } else { 'A' });

        let cases: Vec<(Verdict, &str, Category)> = vec![
            (
                decide_unlimited(PASS, s, STOP, &found(&bad_checksum), NOW),
                "malformed_token",
                Category::Unauthenticated,
            ),
            (
                decide_unlimited(PASS, s, STOP, &found("pate_short"), NOW),
                "malformed_token",
                Category::Unauthenticated,
            ),
            (
                decide_unlimited(PASS, s, STOP, &found(f.unknown.expose()), NOW),
                "unknown_token",
                Category::Unauthenticated,
            ),
            (
                decide_unlimited(PASS, s, STOP, &found(f.expired.expose()), NOW),
                "expired_token",
                Category::Unauthenticated,
            ),
            (
                decide_unlimited(PASS, s, STOP, &found(v), NOW + 1),
                "expired_token",
                Category::Unauthenticated,
            ),
            (
                decide_unlimited(PASS, None, STOP, &found(v), NOW),
                "no_snapshot",
                Category::Unauthenticated,
            ),
            (
                decide_unlimited(
                    PASS,
                    s,
                    "/1.0/environment/control/rest/deleteenv",
                    &found(v),
                    NOW,
                ),
                "out_of_scope",
                Category::Forbidden,
            ),
            (
                decide_unlimited(
                    PASS,
                    s,
                    "/1.0/users/authentication/rest/signin",
                    &found(v),
                    NOW,
                ),
                "forbidden_method",
                Category::Forbidden,
            ),
            (
                decide_unlimited(PASS, s, "/", &found(v), NOW),
                "not_an_api_method",
                Category::InvalidRequest,
            ),
            (
                decide_unlimited(
                    PASS,
                    s,
                    "/1.0/environment/control/rest/stopenv;x",
                    &found(v),
                    NOW,
                ),
                "ambiguous_path",
                Category::InvalidRequest,
            ),
            (
                decide_unlimited(
                    PASS,
                    s,
                    "/1.0//environment/control/rest/stopenv",
                    &found(v),
                    NOW,
                ),
                "ambiguous_path",
                Category::InvalidRequest,
            ),
        ];
        for (verdict, reason, category) in cases {
            let denial = denied(verdict);
            assert_eq!(
                (denial.reason().name(), denial.category()),
                (reason, category),
                "{denial:?}"
            );
            let message = denial.message();
            assert!(
                !message.contains(v) && !message.contains(&bad_checksum),
                "{message}"
            );
        }
    }

    #[test]
    fn a_limited_token_is_allowed_only_from_its_networks() {
        let f = fixture();
        let s = Some(&f.snapshot);
        let v = f.limited.expose();
        let from = |ip: &str| {
            let ip: IpAddr = ip.parse().expect("ip");
            decide(
                PASS,
                s,
                STOP,
                &found(v),
                &EnvFinding::Absent,
                NOW,
                move || Some(ip),
            )
        };
        for inside in [
            "127.0.0.2",
            "2001:db8::1",
            "2001:db8:ffff::9",
            "::ffff:127.0.0.2",
        ] {
            assert!(matches!(from(inside), Verdict::Allow(_)), "{inside}");
        }
        for outside in ["127.0.0.1", "127.0.0.3", "2001:db9::1", "::1", "10.0.0.2"] {
            let denial = denied(from(outside));
            assert_eq!(denial.reason().name(), "address_not_allowed", "{outside}");
            assert_eq!(denial.category(), Category::Forbidden);
            let message = denial.message();
            assert!(
                message.contains(outside) && !message.contains(v),
                "{message}"
            );
        }
        // An address the edge cannot tell is not one of the token's.
        let unknown = denied(decide(
            PASS,
            s,
            STOP,
            &found(v),
            &EnvFinding::Absent,
            NOW,
            || None,
        ));
        assert_eq!(unknown.reason().name(), "address_not_allowed");
        assert!(
            unknown.message().contains("unknown"),
            "{}",
            unknown.message()
        );
        // From elsewhere, nothing is said about the method: not even that it is forbidden.
        let elsewhere = || Some("127.0.0.1".parse().expect("ip"));
        let forbidden = "/1.0/users/authentication/rest/createtoken";
        assert_eq!(
            denied(decide(
                PASS,
                s,
                forbidden,
                &found(v),
                &EnvFinding::Absent,
                NOW,
                elsewhere
            ))
            .reason()
            .name(),
            "address_not_allowed"
        );
    }

    #[test]
    fn requests_without_tokens() {
        let f = fixture();
        let s = Some(&f.snapshot);
        let strict = Policy {
            missing_session: Unmatched::Deny,
            ordinary_sessions: Unmatched::Deny,
        };
        assert_eq!(
            decide_unlimited(PASS, s, STOP, &SessionFinding::Absent, NOW),
            Verdict::PassThrough
        );
        assert_eq!(
            decide_unlimited(PASS, s, STOP, &found("0123456789abcdef"), NOW),
            Verdict::PassThrough
        );
        // `Session=x` alone is no session: as if there were none.
        assert_eq!(
            decide_unlimited(PASS, s, STOP, &SessionFinding::OtherCase, NOW),
            Verdict::PassThrough
        );
        assert_eq!(
            denied(decide_unlimited(
                strict,
                s,
                STOP,
                &SessionFinding::OtherCase,
                NOW
            ))
            .reason()
            .name(),
            "missing_session"
        );
        // Ordinary sessions pass even with no snapshot (fail closed applies to tokens only)
        // and on any path.
        assert_eq!(
            decide_unlimited(PASS, None, "/x//y", &found("legacy"), NOW),
            Verdict::PassThrough
        );
        assert_eq!(
            denied(decide_unlimited(
                strict,
                s,
                STOP,
                &SessionFinding::Absent,
                NOW
            ))
            .reason()
            .name(),
            "missing_session"
        );
        assert_eq!(
            denied(decide_unlimited(strict, s, STOP, &found("legacy"), NOW))
                .reason()
                .name(),
            "ordinary_session"
        );
    }

    #[test]
    fn ambiguity_is_denied_whoever_asks() {
        let f = fixture();
        for (finding, reason) in [
            (SessionFinding::Conflicting, "conflicting_sessions"),
            (SessionFinding::StrayToken, "stray_token"),
            (SessionFinding::Unparseable("x"), "unparseable_body"),
            (SessionFinding::TooLarge, "body_too_large"),
        ] {
            let denial = denied(decide_unlimited(
                PASS,
                Some(&f.snapshot),
                STOP,
                &finding,
                NOW,
            ));
            assert_eq!(
                (denial.reason().name(), denial.category()),
                (reason, Category::InvalidRequest)
            );
        }
    }

    #[test]
    fn reasons_are_indexed_and_named_once() {
        for (i, reason) in Reason::ALL.iter().enumerate() {
            assert_eq!(reason.index(), i, "{reason:?}");
        }
        let mut names: Vec<&str> = Reason::ALL.iter().map(|r| r.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Reason::ALL.len());
    }
}
