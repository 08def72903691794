//! The API's answers to failures: the `result` codes ([`code`]) and [`ApiError`], made from
//! the operations' typed errors (never with a secret in the message).
//!
//! # Layout
//! - [`code`]: the documented `result` codes.
//! - [`ApiError`]: an error answer, its JSON, and the mapping from [`Error`].
//! - [`unknown_method`]: the answer to a method this service does not serve.

use serde_json::{Value, json};

use super::{METHODS, SOURCE};
use crate::error::Error;
use crate::expiry::ExpiryError;
use crate::platform;

/// The `result` codes.
pub mod code {
    /// Success.
    pub const OK: i64 = 0;
    /// Not found: no such token among the caller's (another account's id is not found too).
    /// `py-jelastic` raises `JelasticResourceNotFound` for it.
    pub const NOT_FOUND: i64 = 5;
    /// No valid login session: missing, malformed, unknown, expired or signed out; or an
    /// access token where a login session belongs.
    pub const SESSION: i64 = 701;
    /// Wrong login or password (`Signin`), wrong password (a change); nothing was changed.
    pub const WRONG_PASSWORD: i64 = 710;
    /// Invalid input: a parameter missing or malformed, an unknown or forbidden API method
    /// in `apiList`, a bad or past date, a description too long, a body too large, not
    /// UTF-8, or of a type the service does not read; nothing was changed.
    pub const INVALID: i64 = 711;
    /// Refused by a rule: the token limit, an expiry beyond the maximum lifetime or none
    /// where one is required; nothing was changed.
    pub const REFUSED: i64 = 712;
    /// No such method in this service (with suggestions).
    pub const UNKNOWN_METHOD: i64 = 713;
    /// Too many attempts: another password check for the account (or from the client
    /// address) is waiting or running, so this one was not checked; nothing was changed.
    /// The answer's `retryAfter` says in how many seconds that check should be over.
    pub const TOO_MANY_ATTEMPTS: i64 = 714;
    /// The account is disabled (by the operator, or the platform says it is suspended): it
    /// may not change tokens, and its tokens are on no edge.
    pub const ACCOUNT_DISABLED: i64 = 715;
    /// Platform mode: the platform did not answer (down, too slow, or not its JSON); nothing
    /// was changed.
    pub const PLATFORM_UNAVAILABLE: i64 = 716;
    /// The service failed (its store); the change, if any, was not made.
    pub const INTERNAL: i64 = 99;
}

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The `result` code.
    pub code: i64,
    /// The `error` text (never a secret).
    pub message: String,
    /// `retryAfter`, seconds: when trying again may be answered ([`code::TOO_MANY_ATTEMPTS`]).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Invalid input.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(code::INVALID, message)
    }

    pub(crate) fn session(message: impl Into<String>) -> Self {
        Self::new(code::SESSION, message)
    }

    /// The JSON answer.
    pub fn to_json(&self) -> Value {
        let mut answer = json!({ "result": self.code, "error": self.message, "source": SOURCE });
        if let Some(secs) = self.retry_after {
            answer["retryAfter"] = Value::from(secs);
        }
        answer
    }
}

impl From<platform::PlatformError> for ApiError {
    fn from(e: platform::PlatformError) -> Self {
        Self::from(Error::Platform(e))
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::WrongPassword(_) => {
                Self::new(code::WRONG_PASSWORD, "wrong password; nothing was changed")
            }
            Error::TooManyAttempts { retry_after } => Self {
                code: code::TOO_MANY_ATTEMPTS,
                message: format!(
                    "too many attempts: another password check for this account or from this address is under way; nothing was checked or changed, retry in {retry_after} s"
                ),
                retry_after: Some(retry_after),
            },
            Error::AccountDisabled { .. } => Self::new(code::ACCOUNT_DISABLED, e.to_string()),
            Error::Platform(e) => {
                eprintln!("pat-admin serve: API: {e}");
                Self::new(
                    code::PLATFORM_UNAVAILABLE,
                    format!("{e}; nothing was changed, try again later"),
                )
            }
            Error::NoSuchToken { id, .. } => {
                Self::new(code::NOT_FOUND, format!("token {id} not found"))
            }
            Error::NoSuchUser(_) => Self::session("the session's account no longer exists"),
            Error::Expiry(ExpiryError::TooFar { .. } | ExpiryError::Required(_))
            | Error::Refused(_) => Self::new(code::REFUSED, e.to_string()),
            Error::Invalid(_) | Error::Catalogue(_) | Error::Expiry(_) | Error::Password(_) => {
                Self::invalid(e.to_string())
            }
            other => {
                // Store and system failures: logged for the operator (never a secret: no
                // parameter value reaches these messages), a plain answer for the client.
                eprintln!("pat-admin serve: API: {other}");
                Self::new(
                    code::INTERNAL,
                    "the service could not complete the request; nothing was changed",
                )
            }
        }
    }
}

/// The answer to a method that is not served here, with "did you mean".
pub(crate) fn unknown_method(method: &str) -> ApiError {
    let wanted = method.to_ascii_lowercase();
    let mut close: Vec<(f64, &str)> = METHODS
        .iter()
        .map(|m| (strsim::jaro_winkler(&wanted, &m.to_ascii_lowercase()), *m))
        .filter(|(score, _)| *score >= 0.8)
        .collect();
    close.sort_by(|a, b| b.0.total_cmp(&a.0));
    let hint = if close.is_empty() {
        String::new()
    } else {
        format!(
            " (did you mean {}?)",
            close
                .iter()
                .take(3)
                .map(|(_, m)| *m)
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    ApiError::new(
        code::UNKNOWN_METHOD,
        format!(
            "users.Authentication.{} is not served here{hint}; the methods are {}",
            method.chars().take(64).collect::<String>(),
            METHODS.join(", ")
        ),
    )
}
