//! Who acts, and the password confirmation every account's change needs.
//!
//! # Layout
//! - [`Channel`], [`Actor`]: an account and where the request came from (the audit log's
//!   actor).
//! - [`Confirmation`]: how a change is confirmed: the account's password (asked for only
//!   once the request is checked), a confirmation made earlier ([`Confirmed`]), or none for
//!   the operator's own actions.
//! - [`Ops::confirm`]: one password check through [`crate::attempts`] (one at a time, the
//!   back-off, the record of each result); [`still_confirmed`]: the re-check inside a
//!   change's transaction.

use std::time::Duration;

use crate::store::db::Connection;
use zeroize::Zeroizing;

use super::Ops;
use crate::attempts::{self, Attempt, Purpose, Verdict};
use crate::error::{Error, Result};
use crate::password;
use crate::store::{Store, audit, users};

/// Where a request came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Channel {
    /// `pat-admin` on the command line (the audit log names the OS user).
    Cli,
    /// The platform API (`pat-admin serve --api-listen`), from this client address.
    Api {
        /// The client's address as the service saw it (or as Envoy reported it).
        client: String,
    },
}

/// Who acts: an account (its stored name) and the channel.
#[derive(Debug, Clone)]
pub struct Actor {
    pub(super) account: String,
    pub(super) channel: Channel,
}

impl Actor {
    /// An operator acting for `name` on the command line (any case: the stored name is used).
    pub fn cli(store: &Store, name: &str) -> Result<Self> {
        Ok(Self {
            account: users::require(store.conn(), name)?.name,
            channel: Channel::Cli,
        })
    }

    /// An account signed in to the API (`account` is the stored name a session names).
    pub fn api(account: String, client: String) -> Self {
        Self {
            account,
            channel: Channel::Api { client },
        }
    }

    /// The account's stored name.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The channel.
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// What the audit log's `actor` column says: the OS user for the CLI, `api <address>`
    /// for the API.
    pub fn audit_actor(&self) -> String {
        match &self.channel {
            Channel::Cli => audit::actor(),
            Channel::Api { client } => format!("api {client}"),
        }
    }

    pub(super) fn record(
        &self,
        conn: &Connection,
        action: &str,
        token_id: Option<i64>,
        detail: &str,
    ) -> Result<()> {
        audit::record_by(
            conn,
            &self.audit_actor(),
            Some(&self.account),
            action,
            token_id,
            detail,
        )
    }
}

/// Proof that an account's password was checked: made only by [`Ops::confirm`], and
/// re-checked inside every change's transaction (the password may have changed meanwhile).
#[derive(Debug)]
pub struct Confirmed {
    account: String,
    hash: String,
}

/// Reads the password once the request is checked (the account is given, for a prompt).
type Read<'a> = Box<dyn FnOnce(&users::User) -> Result<Zeroizing<String>> + 'a>;
/// Told of a back-off before the check waits it out: the delay and the failures so far.
type BeforeWait<'a> = Box<dyn FnOnce(Duration, u32) + 'a>;

/// How a change is confirmed.
pub struct Confirmation<'a> {
    how: How<'a>,
    unchanged_too: bool,
}

enum How<'a> {
    Ask {
        read: Read<'a>,
        before_wait: BeforeWait<'a>,
    },
    Confirmed(Confirmed),
    Operator,
}

impl<'a> Confirmation<'a> {
    /// Check this password.
    pub fn password(password: &'a str) -> Self {
        Self::ask(move |_| Ok(Zeroizing::new(password.to_string())))
    }

    /// Check the password `read` gives: it is called only once the request is checked
    /// (so a typo costs no prompt), with the account.
    pub fn ask(read: impl FnOnce(&users::User) -> Result<Zeroizing<String>> + 'a) -> Self {
        Self {
            how: How::Ask {
                read: Box::new(read),
                before_wait: Box::new(|_, _| {}),
            },
            unchanged_too: false,
        }
    }

    /// The same, telling `before_wait` of a back-off first (the delay and the count).
    pub fn announcing(mut self, before_wait: impl FnOnce(Duration, u32) + 'a) -> Self {
        if let How::Ask { before_wait: b, .. } = &mut self.how {
            *b = Box::new(before_wait);
        }
        self
    }

    /// The password is checked even when the change turns out to change nothing (the API's
    /// `EditToken` answers a wrong password the same whatever the values).
    pub fn even_if_unchanged(mut self) -> Self {
        self.unchanged_too = true;
        self
    }

    /// A password confirmed earlier (`user passwd` confirms the current password before it
    /// reads the new one).
    pub fn confirmed(confirmed: Confirmed) -> Self {
        Self {
            how: How::Confirmed(confirmed),
            unchanged_too: false,
        }
    }

    /// No account password: the operator's own emergency action (`revoke-leaked`). Only the
    /// operations that are the operator's accept it.
    pub fn operator() -> Self {
        Self {
            how: How::Operator,
            unchanged_too: false,
        }
    }

    /// Whether a change that changes nothing still checks the password.
    pub(super) fn checks_unchanged(&self) -> bool {
        self.unchanged_too
    }

    pub(super) fn is_operator(&self) -> bool {
        matches!(self.how, How::Operator)
    }
}

impl Ops<'_> {
    /// Confirms the actor's password ([`attempts::check`]): one check at a time per account
    /// (and, from the API, per client address), after the back-off their consecutive
    /// failures call for (`before_wait` is told first, with the delay and the count); a
    /// failure is counted and audited. The counts are the account's and the address's,
    /// shared by every channel.
    pub fn confirm(
        &mut self,
        actor: &Actor,
        password: &str,
        before_wait: impl FnOnce(Duration, u32),
    ) -> Result<Confirmed> {
        let account = users::require(self.store.conn(), &actor.account)?;
        refuse_disabled(&account)?;
        let audit_actor = actor.audit_actor();
        let attempt = Attempt {
            login: &account.name,
            account: Some(&account.name),
            client: match &actor.channel {
                Channel::Cli => None,
                Channel::Api { client } => Some(client),
            },
            actor: &audit_actor,
            purpose: Purpose::Confirmation,
        };
        let platform = self.platform;
        let verify = || match (&account.email, account.platform_uid) {
            (_, None) => Ok(password::verify(password, &account.password_hash)),
            (Some(email), Some(_)) => match platform {
                Some(platform) => platform.check(email, password),
                None => Err(Error::Refused(format!(
                    "{} is a platform account: the platform checks its password, and none is configured (pat-admin config set platform-url URL)",
                    account.display()
                ))),
            },
            (None, Some(_)) => Err(Error::Internal(format!(
                "platform account {} has no email",
                account.name
            ))),
        };
        match attempts::check(self.store, &attempt, before_wait, verify)? {
            Verdict::Right => Ok(Confirmed {
                account: account.name,
                hash: account.password_hash,
            }),
            Verdict::Wrong => Err(Error::WrongPassword(account.name)),
        }
    }

    /// Step 2 of every account's change: the confirmation, made now when it asks for the
    /// password. The operator's confirmation is refused here (an account's change needs the
    /// account's password).
    pub(super) fn confirmed(
        &mut self,
        actor: &Actor,
        confirmation: Confirmation<'_>,
    ) -> Result<Confirmed> {
        match confirmation.how {
            How::Confirmed(confirmed) => Ok(confirmed),
            How::Ask { read, before_wait } => {
                let account = users::require(self.store.conn(), &actor.account)?;
                let password = read(&account)?;
                self.confirm(actor, &password, before_wait)
            }
            How::Operator => Err(Error::Internal(
                "a change of an account's tokens needs the account's password".into(),
            )),
        }
    }

    /// The account `name` as an operator names it.
    pub fn account(&self, name: &str) -> Result<users::User> {
        users::require(self.store.conn(), name)
    }

    /// Inside a change's transaction: `confirmed` is for this actor, and its password is
    /// still the account's.
    pub(super) fn still_confirmed(
        tx: &Connection,
        actor: &Actor,
        confirmed: &Confirmed,
    ) -> Result<()> {
        if !confirmed.account.eq_ignore_ascii_case(&actor.account) {
            return Err(Error::Internal(
                "a password confirmation was used for another account".into(),
            ));
        }
        still_confirmed(tx, &actor.account, &confirmed.hash)
    }
}

/// A disabled account may not change tokens.
pub(super) fn refuse_disabled(account: &users::User) -> Result<()> {
    match &account.disabled {
        None => Ok(()),
        Some(d) => Err(Error::AccountDisabled {
            account: account.display(),
            by: match d.by {
                users::DisabledBy::Operator => "by the operator".into(),
                users::DisabledBy::Platform => "the platform says it is suspended".into(),
            },
            reason: d.reason.clone(),
            hint: match d.by {
                users::DisabledBy::Operator => {
                    format!(" (pat-admin user enable {} enables it)", account.name)
                }
                users::DisabledBy::Platform => {
                    " (it is enabled again when the platform says it is)".into()
                }
            },
        }),
    }
}

/// Inside a change's transaction: the password confirmed earlier (its hash) is still the
/// account's, and the account is not disabled meanwhile.
pub fn still_confirmed(tx: &Connection, user: &str, confirmed_hash: &str) -> Result<()> {
    let account = users::require(tx, user)?;
    refuse_disabled(&account)?;
    if account.password_hash != confirmed_hash {
        return Err(Error::Refused(format!(
            "the password of {user} changed while this command ran; nothing was changed, run it again"
        )));
    }
    Ok(())
}
