//! Password checks, one implementation for every place a password is checked: the CLI's
//! confirmation of a change, the API's `Signin` and its confirmation of a change (so the
//! Access Tokens page too).
//!
//! A check
//! 1. takes a slot for its account (or, for a login that names no account, for that login:
//!    unknown logins queue exactly like accounts) and, from the API, for its client address
//!    ([`crate::store::checks`]). When either is taken by a check still waiting or running,
//!    it is refused at once ([`Error::TooManyAttempts`], with when to retry) and audited
//!    (`auth.refused`: the first refusal at once, the others in one entry when that check
//!    ends, so refusals cannot flood the log): parallel guesses get one check where one was
//!    due, whoever sends them and however many connections they use;
//! 2. waits the back-off the consecutive failures of its account (or login) and address call
//!    for ([`password::delay_after`]: 250 ms doubling to 16 s), holding its slots;
//! 3. checks the password (argon2id, or a dummy hash for an unknown login: the same work);
//! 4. records the result with its slots given back, in one transaction: a wrong password
//!    counts for the account (or login) and the address and is audited (`auth.failed`), a
//!    right one clears both counts.
//!
//! A process killed while it holds slots blocks them at most [`STALE_AFTER`] beyond the end
//! it announced.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::password;
use crate::store::checks::{self, Holder, Key, Taken};
use crate::store::db::Connection;
use crate::store::sessions::{self, FailureKey};
use crate::store::{Store, audit, users};

/// How long a check itself is expected to take beyond its back-off: what "retry in N s"
/// adds to the back-off of the check under way.
pub const CHECK_TIME: Duration = Duration::from_secs(1);
/// How long past its expected end a slot keeps blocking when its holder never gave it back
/// (a process killed while it waited).
pub const STALE_AFTER: Duration = Duration::from_secs(60);
/// How long failed checks of a client address or unknown login are remembered, seconds.
pub const FORGET_FAILURES: u64 = 3600;

/// One password check: who it is for, where it came from, and what the audit log says.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    /// The login as given (an account's name, in any case, or a name no account has).
    pub login: &'a str,
    /// The account's stored name, when the login names one.
    pub account: Option<&'a str>,
    /// The client address (API calls); `None` on the command line.
    pub client: Option<&'a str>,
    /// The audit log's actor (`api <address>`, or the OS user).
    pub actor: &'a str,
    /// What the password is for.
    pub purpose: Purpose,
}

/// What a password is checked for (the audit log says it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The API's `Signin`.
    SignIn,
    /// Confirming a change (CLI or API).
    Confirmation,
}

impl Attempt<'_> {
    fn keys(&self) -> Vec<Key<'_>> {
        let mut keys = vec![Key::Login(self.account.unwrap_or(self.login))];
        keys.extend(self.client.map(Key::Address));
        keys
    }

    /// Consecutive failures of the account (or login) and of the address, the larger.
    fn failures(&self, conn: &Connection, at: u64) -> Result<u32> {
        let own = match self.account {
            Some(name) => users::get(conn, name)?.map_or(0, |u| u.failed_attempts),
            None => sessions::failures(conn, FailureKey::Login(self.login), at, FORGET_FAILURES)?,
        };
        let from_address = match self.client {
            Some(address) => {
                sessions::failures(conn, FailureKey::Address(address), at, FORGET_FAILURES)?
            }
            None => 0,
        };
        Ok(own.max(from_address))
    }
}

/// What a check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The password is right (the counts are cleared).
    Right,
    /// The password is wrong (counted and audited).
    Wrong,
}

/// Checks a password as the module documentation says: `announce` is told the back-off and
/// the failure count before the wait (when there is one), `verify` checks the password and
/// says whether it is right. A refusal (another check holds a slot) is
/// [`Error::TooManyAttempts`]; an error of `verify` records nothing and gives the slots back.
pub fn check(
    store: &mut Store,
    attempt: &Attempt<'_>,
    announce: impl FnOnce(Duration, u32),
    verify: impl FnOnce() -> Result<bool>,
) -> Result<Verdict> {
    let holder = Holder::new()?;
    let keys = attempt.keys();
    let taken = store.write(|tx| {
        let at_ms = tx.now_ms();
        let failures = attempt.failures(tx, at_ms / 1000)?;
        let delay = password::delay_after(failures);
        let ends_at = at_ms + millis(delay + CHECK_TIME);
        let stale_at = ends_at + millis(STALE_AFTER);
        match checks::take(tx, &keys, holder, at_ms, ends_at, stale_at)? {
            Taken::Yes => Ok(Ok((delay, failures))),
            Taken::Busy { until, first } => {
                let retry_after = until.saturating_sub(at_ms).div_ceil(1000).max(1);
                if first {
                    audit::record_by(
                        tx,
                        attempt.actor,
                        attempt.account,
                        "auth.refused",
                        None,
                        &format!(
                            "{}: not checked, another password check for {} is under way; retry in {retry_after} s (further attempts refused meanwhile are counted when it ends)",
                            match attempt.purpose {
                                Purpose::SignIn => "sign-in",
                                Purpose::Confirmation => "password confirmation",
                            },
                            who(attempt)
                        ),
                    )?;
                }
                Ok(Err(retry_after))
            }
        }
    })?;
    let (delay, failures) = taken.map_err(|retry_after| Error::TooManyAttempts { retry_after })?;
    if !delay.is_zero() {
        announce(delay, failures);
    }
    std::thread::sleep(delay);
    let verified = match verify() {
        Ok(verified) => verified,
        Err(e) => {
            // Nothing was learnt about the password: nothing is counted.
            let _ = store.write(|tx| give_back(tx, attempt, holder));
            return Err(e);
        }
    };
    let recorded = store.write(|tx| {
        give_back(tx, attempt, holder)?;
        let at = tx.now();
        if verified {
            if let Some(name) = attempt.account {
                users::reset_failures(tx, name)?;
            }
            if let Some(address) = attempt.client {
                sessions::reset_failures(tx, FailureKey::Address(address))?;
            }
            return Ok(Verdict::Right);
        }
        match attempt.account {
            Some(name) => users::record_failure(tx, name, at)?,
            None => {
                sessions::record_failure(tx, FailureKey::Login(attempt.login), at, FORGET_FAILURES)?
            }
        }
        if let Some(address) = attempt.client {
            sessions::record_failure(tx, FailureKey::Address(address), at, FORGET_FAILURES)?;
        }
        audit::record_by(
            tx,
            attempt.actor,
            attempt.account,
            "auth.failed",
            None,
            &wrong(attempt),
        )?;
        Ok(Verdict::Wrong)
    });
    if recorded.is_err() {
        let _ = store.write(|tx| give_back(tx, attempt, holder));
    }
    recorded
}

/// Gives the slots back; audits, in one entry, the attempts refused meanwhile beyond the
/// first (which was audited when it came).
fn give_back(tx: &Connection, attempt: &Attempt<'_>, holder: Holder) -> Result<()> {
    let refused = checks::release(tx, holder)?;
    if refused > 1 {
        audit::record_by(
            tx,
            attempt.actor,
            attempt.account,
            "auth.refused",
            None,
            &format!(
                "{} more attempt(s) refused, not checked, while a password check for {} was under way",
                refused - 1,
                who(attempt)
            ),
        )?;
    }
    Ok(())
}

/// The audit detail of a wrong password (never the password).
fn wrong(attempt: &Attempt<'_>) -> String {
    match (attempt.purpose, attempt.account) {
        (Purpose::SignIn, Some(_)) => "sign-in: wrong password".into(),
        (Purpose::SignIn, None) => format!(
            "sign-in: no account named {:?}",
            attempt.login.chars().take(64).collect::<String>()
        ),
        (Purpose::Confirmation, _) => "wrong password".into(),
    }
}

/// Whose slots are taken, for the audit entry: the account (or the login, shortened) and
/// the address.
fn who(attempt: &Attempt<'_>) -> String {
    let login = match attempt.account {
        Some(name) => format!("account {name}"),
        None => format!(
            "login {:?}",
            attempt.login.chars().take(64).collect::<String>()
        ),
    };
    match attempt.client {
        Some(address) => format!("{login} or client address {address}"),
        None => login,
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
