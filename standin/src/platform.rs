//! The platform's own accounts and login sessions, as far as pat-edge's platform mode needs
//! them (still a stand-in: small, in memory, not the product). The methods as the platform
//! spells them:
//!
//! - `users.Authentication.Signin` (`login` = the email, any case; `password`): a new login
//!   session, with the account's `uid` and `email`; a wrong login or password is result
//!   [`WRONG_LOGIN`], a suspended account [`SUSPENDED`];
//! - `users.Authentication.Signout` (`session`): the session ends;
//! - `users.Account.GetUserInfo` (`session`): `uid`, `email`, `status` (`ENABLED`,
//!   `SUSPENDED`); a session that is unknown, signed out or expired is result 701;
//! - `users.Authentication.CheckPassword` (`session`, `password`).
//!
//! Sessions end `--session-lifetime` seconds after Signin. Tests steer it through
//! `POST /_standin/account` (`uid`, and any of `email`, `password`, `status`: an email
//! change, a suspension), `POST /_standin/mode` (`mode`: `normal`, `garbage` — answers that
//! are not JSON —, or `slow` with `secs`) and read `GET /_standin/calls` (how many calls each
//! of these methods got). Sessions and passwords are never logged.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// `result` of a Signin with a wrong login or password (the stand-in's choice).
pub(crate) const WRONG_LOGIN: i64 = 1102;
/// `result` of a Signin of a suspended account (the stand-in's choice).
pub(crate) const SUSPENDED: i64 = 1103;
/// `result` of a call with a session that is not (or no longer) valid.
pub(crate) const BAD_SESSION: i64 = 701;

/// One account.
#[derive(Debug, Clone)]
struct Account {
    email: String,
    password: String,
    status: String,
}

/// How the stand-in answers these methods right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Normal,
    Garbage,
    Slow(Duration),
}

#[derive(Debug)]
struct State {
    accounts: BTreeMap<i64, Account>,
    /// Session value → (uid, when it ends).
    sessions: HashMap<String, (i64, Instant)>,
    calls: BTreeMap<&'static str, u64>,
    mode: Mode,
}

/// The accounts, their sessions, and what tests asked for.
#[derive(Debug)]
pub(crate) struct Accounts {
    state: Mutex<State>,
    session_lifetime: Duration,
}

/// An answer: HTTP status, body, and how long to wait before sending it.
pub(crate) type Answer = (u16, String, Duration);

fn json_answer(value: &Value) -> Answer {
    (200, value.to_string(), Duration::ZERO)
}

impl Accounts {
    /// Accounts from `--account UID:EMAIL:PASSWORD[:STATUS]` specs; sessions live
    /// `session_lifetime`.
    pub(crate) fn new(specs: &[String], session_lifetime: Duration) -> Result<Self, String> {
        let mut accounts = BTreeMap::new();
        for spec in specs {
            let mut parts = spec.splitn(4, ':');
            let uid = parts
                .next()
                .and_then(|u| u.parse::<i64>().ok())
                .ok_or_else(|| {
                    format!("--account {spec}: UID:EMAIL:PASSWORD[:STATUS], UID a number")
                })?;
            let (Some(email), Some(password)) = (parts.next(), parts.next()) else {
                return Err(format!("--account {spec}: UID:EMAIL:PASSWORD[:STATUS]"));
            };
            let status = parts.next().unwrap_or("ENABLED").to_ascii_uppercase();
            accounts.insert(
                uid,
                Account {
                    email: email.to_string(),
                    password: password.to_string(),
                    status,
                },
            );
        }
        Ok(Self {
            state: Mutex::new(State {
                accounts,
                sessions: HashMap::new(),
                calls: BTreeMap::new(),
                mode: Mode::Normal,
            }),
            session_lifetime,
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The answer to `method` (canonical, lowercase: `users.authentication.signin`) when it
    /// is one of the account methods; `None` for every other method.
    pub(crate) fn answer(
        &self,
        method: &str,
        param: impl Fn(&str) -> Option<String>,
    ) -> Option<Answer> {
        let name: &'static str = match method {
            "users.authentication.signin" => "Signin",
            "users.authentication.signout" => "Signout",
            "users.account.getuserinfo" => "GetUserInfo",
            "users.authentication.checkpassword" => "CheckPassword",
            _ => return None,
        };
        let mut state = self.state();
        *state.calls.entry(name).or_default() += 1;
        let delay = match state.mode {
            Mode::Normal => Duration::ZERO,
            Mode::Garbage => {
                return Some((200, "<html>502 Bad Gateway</html>".into(), Duration::ZERO));
            }
            Mode::Slow(d) => d,
        };
        let now = Instant::now();
        state.sessions.retain(|_, (_, end)| *end > now);
        let session_uid = |state: &State| {
            param("session").and_then(|s| state.sessions.get(&s).map(|(uid, _)| *uid))
        };
        let body = match name {
            "Signin" => {
                let login = param("login").unwrap_or_default();
                let password = param("password").unwrap_or_default();
                let found = state
                    .accounts
                    .iter()
                    .find(|(_, a)| a.email.eq_ignore_ascii_case(login.trim()))
                    .map(|(uid, a)| (*uid, a.clone()));
                match found {
                    Some((uid, account)) if account.password == password => {
                        if account.status != "ENABLED" {
                            json!({"result": SUSPENDED, "error": "the account is suspended", "source": "JEL"})
                        } else {
                            let session = new_session();
                            state
                                .sessions
                                .insert(session.clone(), (uid, now + self.session_lifetime));
                            json!({"result": 0, "session": session, "uid": uid, "email": account.email, "login": account.email})
                        }
                    }
                    _ => {
                        json!({"result": WRONG_LOGIN, "error": "wrong login or password", "source": "JEL"})
                    }
                }
            }
            "Signout" => match param("session") {
                Some(s) if state.sessions.remove(&s).is_some() => json!({"result": 0}),
                _ => {
                    json!({"result": BAD_SESSION, "error": "session is not valid", "source": "JEL"})
                }
            },
            "GetUserInfo" => match session_uid(&state)
                .and_then(|uid| state.accounts.get(&uid).map(|a| (uid, a.clone())))
            {
                Some((uid, a)) => {
                    json!({"result": 0, "uid": uid, "email": a.email, "status": a.status, "name": "stand-in user"})
                }
                None => {
                    json!({"result": BAD_SESSION, "error": "session is not valid", "source": "JEL"})
                }
            },
            _ => {
                let password = param("password").unwrap_or_default();
                match session_uid(&state).and_then(|uid| state.accounts.get(&uid).cloned()) {
                    Some(a) if a.password == password => json!({"result": 0}),
                    Some(_) => {
                        json!({"result": WRONG_LOGIN, "error": "wrong password", "source": "JEL"})
                    }
                    None => {
                        json!({"result": BAD_SESSION, "error": "session is not valid", "source": "JEL"})
                    }
                }
            }
        };
        let (status, text, _) = json_answer(&body);
        Some((status, text, delay))
    }

    /// The email of the account a valid login session of this platform belongs to.
    pub(crate) fn session_email(&self, session: &str) -> Option<String> {
        let state = self.state();
        let (uid, end) = state.sessions.get(session)?;
        (*end > Instant::now())
            .then(|| state.accounts.get(uid).map(|a| a.email.clone()))
            .flatten()
    }

    /// The test hooks under `/_standin/` (see the module documentation).
    pub(crate) fn admin(&self, path: &str, param: impl Fn(&str) -> Option<String>) -> Answer {
        let mut state = self.state();
        match path {
            "/_standin/account" => {
                let Some(uid) = param("uid").and_then(|u| u.parse::<i64>().ok()) else {
                    return (
                        400,
                        json!({"error": "uid required"}).to_string(),
                        Duration::ZERO,
                    );
                };
                let account = state.accounts.entry(uid).or_insert_with(|| Account {
                    email: format!("user{uid}@example.com"),
                    password: String::new(),
                    status: "ENABLED".into(),
                });
                if let Some(email) = param("email") {
                    account.email = email;
                }
                if let Some(password) = param("password") {
                    account.password = password;
                }
                if let Some(status) = param("status") {
                    account.status = status.to_ascii_uppercase();
                }
                json_answer(
                    &json!({"result": 0, "uid": uid, "email": account.email, "status": account.status}),
                )
            }
            "/_standin/mode" => {
                state.mode = match param("mode").as_deref() {
                    Some("garbage") => Mode::Garbage,
                    Some("slow") => Mode::Slow(Duration::from_secs(
                        param("secs").and_then(|s| s.parse().ok()).unwrap_or(30),
                    )),
                    _ => Mode::Normal,
                };
                json_answer(&json!({"result": 0, "mode": format!("{:?}", state.mode)}))
            }
            "/_standin/calls" => json_answer(&json!(state.calls)),
            _ => (
                404,
                json!({"error": "no such hook"}).to_string(),
                Duration::ZERO,
            ),
        }
    }
}

/// A new session value: 40 random hexadecimal digits (never in token format).
fn new_session() -> String {
    let mut bytes = [0u8; 20];
    if getrandom::fill(&mut bytes).is_err() {
        // The stand-in only: a clock-based value is enough for tests.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes[..16].copy_from_slice(&nanos.to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_string())
        }
    }

    fn call(accounts: &Accounts, method: &str, pairs: &[(&str, &str)]) -> Value {
        let (_, body, _) = accounts
            .answer(method, params(pairs))
            .expect("an account method");
        serde_json::from_str(&body).expect("json")
    }

    #[test]
    fn signin_userinfo_checkpassword_signout() {
        let accounts = Accounts::new(
            &[
                "7:alice@example.com:secret-1".into(),
                "8:bob@example.com:pw:suspended".into(),
            ],
            Duration::from_secs(60),
        )
        .expect("accounts");
        let wrong = call(
            &accounts,
            "users.authentication.signin",
            &[("login", "alice@example.com"), ("password", "x")],
        );
        assert_eq!(wrong["result"], WRONG_LOGIN);
        let suspended = call(
            &accounts,
            "users.authentication.signin",
            &[("login", "bob@example.com"), ("password", "pw")],
        );
        assert_eq!(suspended["result"], SUSPENDED);
        let signed = call(
            &accounts,
            "users.authentication.signin",
            &[("login", "ALICE@example.com"), ("password", "secret-1")],
        );
        assert_eq!(
            (signed["result"].as_i64(), signed["uid"].as_i64()),
            (Some(0), Some(7))
        );
        let session = signed["session"].as_str().expect("session").to_string();
        let info = call(
            &accounts,
            "users.account.getuserinfo",
            &[("session", &session)],
        );
        assert_eq!(
            (info["uid"].as_i64(), info["status"].as_str()),
            (Some(7), Some("ENABLED"))
        );
        assert_eq!(
            call(
                &accounts,
                "users.authentication.checkpassword",
                &[("session", &session), ("password", "secret-1")]
            )["result"],
            0
        );
        assert_eq!(
            call(
                &accounts,
                "users.authentication.checkpassword",
                &[("session", &session), ("password", "no")]
            )["result"],
            WRONG_LOGIN
        );
        assert_eq!(
            accounts.session_email(&session).as_deref(),
            Some("alice@example.com")
        );
        assert_eq!(
            call(
                &accounts,
                "users.authentication.signout",
                &[("session", &session)]
            )["result"],
            0
        );
        assert_eq!(
            call(
                &accounts,
                "users.account.getuserinfo",
                &[("session", &session)]
            )["result"],
            BAD_SESSION
        );
        assert!(
            accounts
                .answer("environment.control.stopenv", params(&[]))
                .is_none()
        );
    }
}
