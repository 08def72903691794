//! Platform mode: the platform's own accounts and login sessions are the authority.
//!
//! `pat-admin serve --platform-url URL` (or `config set platform-url URL`) turns it on. The
//! token methods then take the platform's login session: this module asks the platform whose
//! it is (`users.Account.GetUserInfo`: `uid`, `email`, `status`), and confirms the password
//! of a change with the platform (`users.Authentication.Signin` with the account's email,
//! then `Signout` of the session it made, at once; or, with `config set
//! platform-password-check check-password`, `users.Authentication.CheckPassword` with the
//! caller's session). pat-edge stores no platform password and no platform session: the
//! answers about a session are kept in memory for a few seconds (`platform-session-cache`,
//! at most 60 s), keyed by the session's SHA-256.
//!
//! Calls are form POSTs (the session and the password never sit in a URL a log might keep)
//! over plain HTTP, each bounded by `platform-timeout` (default 5 s): point the URL at the
//! Envoy in front of the platform on loopback (it routes the platform's methods to it, over
//! TLS if its cluster says so) or at the platform's internal address. A platform that is
//! down, slow or answers anything but the platform's JSON is [`PlatformError`] ("the platform
//! did not answer: …"): nothing is changed and nothing is counted against the password.
//!
//! # Layout
//! - [`Settings`]: the mode's settings, from the store and `--platform-url`.
//! - [`Platform`]: the calls.
//! - [`SessionCache`]: the answers about sessions, by SHA-256, for a few seconds.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::store::db::Connection;
use serde_json::Value;

use crate::error::{Error, Result};

/// Where the platform's methods live, below the base URL.
pub const GET_USER_INFO: &str = "1.0/users/account/rest/getuserinfo";
/// `users.Authentication.Signin`.
pub const SIGNIN: &str = "1.0/users/authentication/rest/signin";
/// `users.Authentication.Signout`.
pub const SIGNOUT: &str = "1.0/users/authentication/rest/signout";
/// `users.Authentication.CheckPassword`.
pub const CHECK_PASSWORD: &str = "1.0/users/authentication/rest/checkpassword";
/// The largest answer read from the platform.
pub const MAX_ANSWER: usize = 256 * 1024;
/// The longest login session accepted from a client (platform sessions are opaque).
pub const MAX_SESSION: usize = 512;

/// How a change's password is confirmed with the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordCheck {
    /// `Signin` with the account's email and the password, then `Signout` of that session.
    Signin,
    /// `CheckPassword` with the caller's session (only where the caller has one: the API).
    CheckPassword,
}

impl PasswordCheck {
    /// As `config set platform-password-check` takes it.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "signin" => Some(Self::Signin),
            "check-password" => Some(Self::CheckPassword),
            _ => None,
        }
    }

    /// As the settings show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Signin => "signin",
            Self::CheckPassword => "check-password",
        }
    }
}

/// What edges forward (`x-pat-user`) for a platform account's tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// The platform's uid (stable: an email change changes nothing at the edges).
    Uid,
    /// The account's email (the edges get the new one when it changes).
    Email,
}

impl Identity {
    /// As `config set platform-identity` takes it.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "uid" => Some(Self::Uid),
            "email" => Some(Self::Email),
            _ => None,
        }
    }

    /// As the settings show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Uid => "uid",
            Self::Email => "email",
        }
    }

    /// The identity of account `uid` with `email`.
    pub fn of(self, uid: i64, email: &str) -> String {
        match self {
            Self::Uid => uid.to_string(),
            Self::Email => email.to_string(),
        }
    }

    /// The setting, or the default ([`Identity::Uid`]).
    pub fn from_store(conn: &Connection) -> Result<Self> {
        Ok(Self::parse(crate::settings::PLATFORM_IDENTITY.get(conn)?).unwrap_or(Self::Uid))
    }
}

/// Platform mode's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The platform API's base URL (ends with `/`).
    pub url: reqwest::Url,
    /// How long one call may take.
    pub timeout: Duration,
    /// How long an answer about a session is reused.
    pub session_cache: Duration,
    /// How a change's password is confirmed.
    pub password_check: PasswordCheck,
    /// What edges forward (when the process started: the operations read the setting as it
    /// is whenever they use it).
    pub identity: Identity,
}

impl Settings {
    /// Platform mode's settings when it is on: `url` (`--platform-url`), else the store's
    /// `platform-url`; `None`: standalone mode.
    pub fn from_store(conn: &Connection, url: Option<&str>) -> Result<Option<Self>> {
        let url = match url {
            Some(url) => url.to_string(),
            None => match crate::settings::PLATFORM_URL.get(conn)? {
                Some(url) => url,
                None => return Ok(None),
            },
        };
        Ok(Some(Self {
            url: parse_url(&url)?,
            timeout: Duration::from_secs(crate::settings::PLATFORM_TIMEOUT.get(conn)?),
            session_cache: Duration::from_secs(crate::settings::PLATFORM_SESSION_CACHE.get(conn)?),
            password_check: PasswordCheck::parse(
                crate::settings::PLATFORM_PASSWORD_CHECK.get(conn)?,
            )
            .unwrap_or(PasswordCheck::Signin),
            identity: Identity::from_store(conn)?,
        }))
    }
}

/// A platform URL: `http://HOST[:PORT][/PATH]`, without a query; the methods go below it.
pub fn parse_url(text: &str) -> Result<reqwest::Url> {
    let text = text.trim();
    let bad = |why: &str| {
        Error::Invalid(format!(
            "platform URL `{}`: {why}",
            text.chars().take(200).collect::<String>()
        ))
    };
    let mut url = reqwest::Url::parse(text)
        .map_err(|e| bad(&format!("{e} (give it as http://HOST:PORT)")))?;
    match url.scheme() {
        "http" => {}
        "https" => {
            return Err(bad(
                "pat-admin calls the platform over plain HTTP: give the Envoy in front of the platform on loopback (http://127.0.0.1:10000, whose platform_api cluster may use TLS) or the platform's internal http:// address",
            ));
        }
        other => return Err(bad(&format!("`{other}` is not http"))),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad(
            "no query or fragment, only the base the API paths go below",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("no user or password in it"));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// The platform did not give a usable answer.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the platform did not answer: {0}")]
pub struct PlatformError(pub String);

/// What the platform says of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// Its uid (stable).
    pub uid: i64,
    /// Its email (may change).
    pub email: String,
    /// `ENABLED`, or what it says instead (`SUSPENDED`, …), upper-cased.
    pub status: String,
}

impl UserInfo {
    /// May the account manage tokens? Only `ENABLED` (anything else: suspended, or a state
    /// this service does not know, fails closed).
    pub fn is_enabled(&self) -> bool {
        self.status == "ENABLED"
    }
}

/// What the platform says of a login session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionAnswer {
    /// A session of this account.
    Valid(UserInfo),
    /// Not a valid session: the platform's non-zero `result`.
    Invalid(i64),
}

/// Calls to the platform.
#[derive(Debug, Clone)]
pub struct Platform {
    http: reqwest::Client,
    settings: Settings,
    runtime: tokio::runtime::Handle,
}

impl Platform {
    /// Calls to the platform with `settings`, run on `runtime` (the caller blocks on each:
    /// call from a thread that may block, never from async code).
    pub fn new(settings: Settings, runtime: tokio::runtime::Handle) -> Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(settings.timeout)
            .timeout(settings.timeout)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Internal(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Self {
            http,
            settings,
            runtime,
        })
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// `GetUserInfo` for `session`.
    pub fn user_info(&self, session: &str) -> Result<SessionAnswer, PlatformError> {
        let answer = self.call(GET_USER_INFO, &[("session", session)])?;
        match result_of(&answer, "GetUserInfo")? {
            0 => Ok(SessionAnswer::Valid(user_info(&answer)?)),
            code => Ok(SessionAnswer::Invalid(code)),
        }
    }

    /// Is `password` the password of the account with `email`? `Signin`, then `Signout` of the
    /// session it made (a failed sign-out is logged: the password was right all the same).
    /// A non-zero `result` is a wrong password (its code is logged, never the password).
    pub fn signin_check(&self, email: &str, password: &str) -> Result<bool, PlatformError> {
        let answer = self.call(SIGNIN, &[("login", email), ("password", password)])?;
        let code = result_of(&answer, "Signin")?;
        if code != 0 {
            eprintln!("pat-admin: platform: Signin to confirm a password answered result {code}");
            return Ok(false);
        }
        match answer.get("session").and_then(Value::as_str) {
            Some(session) if !session.is_empty() => {
                match self
                    .call(SIGNOUT, &[("session", session)])
                    .and_then(|a| result_of(&a, "Signout"))
                {
                    Ok(0) => {}
                    Ok(code) => eprintln!(
                        "pat-admin: platform: Signout of the confirmation's session answered result {code}"
                    ),
                    Err(e) => eprintln!(
                        "pat-admin: platform: Signout of the confirmation's session failed: {e}"
                    ),
                }
            }
            _ => eprintln!(
                "pat-admin: platform: Signin confirmed the password but named no session to sign out"
            ),
        }
        Ok(true)
    }

    /// `CheckPassword` with the caller's `session`: is `password` its account's?
    pub fn check_password(&self, session: &str, password: &str) -> Result<bool, PlatformError> {
        let answer = self.call(
            CHECK_PASSWORD,
            &[("session", session), ("password", password)],
        )?;
        match result_of(&answer, "CheckPassword")? {
            0 => Ok(true),
            code => {
                eprintln!("pat-admin: platform: CheckPassword answered result {code}");
                Ok(false)
            }
        }
    }

    /// One form POST; the JSON object answered.
    fn call(&self, path: &str, form: &[(&str, &str)]) -> Result<Value, PlatformError> {
        let method = path.rsplit('/').next().unwrap_or(path);
        let url = self
            .settings
            .url
            .join(path)
            .map_err(|e| PlatformError(format!("{method}: {e}")))?;
        let request = self.http.post(url).form(form);
        let timeout = self.settings.timeout;
        let fetched = self.runtime.block_on(async move {
            let mut response = request.send().await.map_err(|e| describe(&e))?;
            let status = response.status();
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e))? {
                if body.len() + chunk.len() > MAX_ANSWER {
                    return Err(format!("an answer larger than {MAX_ANSWER} bytes"));
                }
                body.extend_from_slice(&chunk);
            }
            Ok((status, body))
        });
        let (status, body) = fetched.map_err(|e| {
            PlatformError(format!(
                "{method} ({e}; each call may take {} s)",
                timeout.as_secs()
            ))
        })?;
        if !status.is_success() {
            return Err(PlatformError(format!("{method} answered HTTP {status}")));
        }
        let answer: Value = serde_json::from_slice(&body)
            .map_err(|_| PlatformError(format!("{method} answered something that is not JSON")))?;
        if !answer.is_object() {
            return Err(PlatformError(format!(
                "{method} answered JSON that is not an object"
            )));
        }
        Ok(answer)
    }
}

/// The CLI's confirmation of a platform account's password: `Signin` with its email, then
/// `Signout` (the CLI has no platform session for `CheckPassword`).
impl crate::ops::PlatformPasswords for Platform {
    fn check(&self, email: &str, password: &str) -> Result<bool> {
        Ok(self.signin_check(email, password)?)
    }
}

/// The API's confirmation of a change's password: as the settings say, `Signin` with the
/// account's email, or `CheckPassword` with the caller's session.
pub struct ApiPasswords<'a> {
    /// The calls.
    pub platform: &'a Platform,
    /// The caller's platform session.
    pub session: &'a str,
}

impl crate::ops::PlatformPasswords for ApiPasswords<'_> {
    fn check(&self, email: &str, password: &str) -> Result<bool> {
        Ok(match self.platform.settings.password_check {
            PasswordCheck::Signin => self.platform.signin_check(email, password)?,
            PasswordCheck::CheckPassword => self.platform.check_password(self.session, password)?,
        })
    }
}

/// What went wrong with a request, without the URL's form (it carries secrets).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "cannot connect".into()
    } else {
        "the connection failed".into()
    }
}

/// The answer's integer `result`.
fn result_of(answer: &Value, method: &str) -> Result<i64, PlatformError> {
    answer
        .get("result")
        .and_then(Value::as_i64)
        .ok_or_else(|| PlatformError(format!("{method} answered without an integer `result`")))
}

/// `uid`, `email` and `status` of a `GetUserInfo` answer (the uid as a number or digits).
fn user_info(answer: &Value) -> Result<UserInfo, PlatformError> {
    let uid = match answer.get("uid") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|&uid| uid >= 0)
    .ok_or_else(|| PlatformError("GetUserInfo answered without a numeric `uid`".into()))?;
    let email = answer
        .get("email")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|e| !e.is_empty() && e.len() <= 254 && !e.chars().any(char::is_control))
        .ok_or_else(|| PlatformError("GetUserInfo answered without a usable `email`".into()))?;
    let status = answer
        .get("status")
        .and_then(Value::as_str)
        .map(|s| s.trim().to_ascii_uppercase())
        .filter(|s| !s.is_empty() && s.len() <= 64)
        .ok_or_else(|| PlatformError("GetUserInfo answered without a `status`".into()))?;
    Ok(UserInfo {
        uid,
        email: email.to_string(),
        status,
    })
}

/// The platform's answers about login sessions, kept a few seconds, by the session's SHA-256
/// (never the session).
#[derive(Debug)]
pub struct SessionCache {
    ttl: Duration,
    entries: Mutex<HashMap<[u8; 32], (Instant, UserInfo)>>,
}

/// The most answers kept (a flood of sessions evicts the expired ones, then everything).
const CACHE_ENTRIES: usize = 10_000;

impl SessionCache {
    /// Answers kept for `ttl` (zero: none kept).
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::default(),
        }
    }

    /// The answer about the session with this hash, if one is fresh.
    pub fn get(&self, hash: &[u8; 32]) -> Option<UserInfo> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(hash)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, info)| info.clone())
    }

    /// Keeps an answer.
    pub fn put(&self, hash: [u8; 32], info: UserInfo) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CACHE_ENTRIES {
                let ttl = self.ttl;
                entries.retain(|_, (at, _)| at.elapsed() < ttl);
                if entries.len() >= CACHE_ENTRIES {
                    entries.clear();
                }
            }
            entries.insert(hash, (Instant::now(), info));
        }
    }

    /// Forgets every answer about account `uid` (its status or email changed).
    pub fn forget_uid(&self, uid: i64) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, (_, info)| info.uid != uid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_plain_http_bases() {
        let url = parse_url("http://127.0.0.1:8080").expect("url");
        assert_eq!(
            url.join(GET_USER_INFO).expect("join").as_str(),
            "http://127.0.0.1:8080/1.0/users/account/rest/getuserinfo"
        );
        let url = parse_url(" http://platform.internal/api ").expect("url");
        assert_eq!(
            url.join(SIGNIN).expect("join").as_str(),
            "http://platform.internal/api/1.0/users/authentication/rest/signin"
        );
        for bad in [
            "https://app.example",
            "ftp://x",
            "http://x/?a=1",
            "http://u:p@x/",
            "x",
            "",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn user_info_takes_the_uid_as_a_number_or_digits() {
        let info = user_info(&serde_json::json!({
            "result": 0, "uid": 7, "email": "a@example.com", "status": "enabled"
        }))
        .expect("info");
        assert_eq!(
            info,
            UserInfo {
                uid: 7,
                email: "a@example.com".into(),
                status: "ENABLED".into()
            }
        );
        assert!(info.is_enabled());
        let info = user_info(&serde_json::json!({
            "uid": "8", "email": "b@example.com", "status": "SUSPENDED"
        }))
        .expect("info");
        assert_eq!(info.uid, 8);
        assert!(!info.is_enabled());
        for garbage in [
            serde_json::json!({"email": "a@b", "status": "ENABLED"}),
            serde_json::json!({"uid": "x", "email": "a@b", "status": "ENABLED"}),
            serde_json::json!({"uid": -1, "email": "a@b", "status": "ENABLED"}),
            serde_json::json!({"uid": 1, "email": "", "status": "ENABLED"}),
            serde_json::json!({"uid": 1, "email": "a@b"}),
        ] {
            assert!(user_info(&garbage).is_err(), "{garbage}");
        }
    }

    #[test]
    fn the_cache_keeps_answers_for_its_time_only() {
        let info = UserInfo {
            uid: 1,
            email: "a@b".into(),
            status: "ENABLED".into(),
        };
        let cache = SessionCache::new(Duration::from_millis(100));
        cache.put([1; 32], info.clone());
        assert_eq!(cache.get(&[1; 32]), Some(info.clone()));
        assert_eq!(cache.get(&[2; 32]), None);
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(cache.get(&[1; 32]), None);
        let none = SessionCache::new(Duration::ZERO);
        none.put([1; 32], info.clone());
        assert_eq!(none.get(&[1; 32]), None);
        cache.put([3; 32], info);
        cache.forget_uid(1);
        assert_eq!(cache.get(&[3; 32]), None);
    }
}
