//! The account operations: disabling and enabling an account (its tokens leave the edges
//! or come back in one document), changing its password, platform mode's accounts made and
//! kept up to date from what the platform says, and the platform identity edges forward.
//!
//! # Layout
//! - [`AccountChange`]: what an account change did.
//! - [`Ops::switch_account`] (`user disable` / `user enable`), [`Ops::change_password`]
//!   (`user passwd`), [`Ops::platform_account`], [`Ops::set_platform_identity`].

use super::{Actor, Confirmation, Done, Ops, Publishing};
use crate::error::Result;
use crate::snapshot;
use crate::store::snapshots::Published;
use crate::store::{audit, sessions, settings, tokens, users};

/// What an account change did.
#[derive(Debug)]
pub struct AccountChange {
    /// The account as it is now.
    pub account: users::User,
    /// How many of its tokens' records changed at the edges.
    pub tokens: usize,
    /// Whether anything changed at all.
    pub changed: bool,
}

impl Ops<'_> {
    /// `user disable` / `user enable`: the operator's action (`actor`: the audit log's
    /// actor) on account `name`, committed and signed in one transaction, then published
    /// when tokens left or came back to the edges (`publish` is `None` otherwise).
    pub fn switch_account(
        &mut self,
        actor: &str,
        name: &str,
        disabled: Option<users::Disabled>,
        publishing: Publishing<'_>,
    ) -> Result<Done<AccountChange>> {
        let (change, built) = self.set_disabled(actor, name, disabled)?;
        let publish =
            (change.changed && change.tokens > 0).then(|| self.publish_change(built, publishing));
        Ok(Done {
            outcome: change,
            publish,
        })
    }

    /// `user disable` (`disabled`), `user enable` (`None`), and the platform saying an account
    /// is suspended or enabled again: every token of the account leaves the edges (or comes
    /// back) in one document signed in the same transaction; disabling ends its API login
    /// sessions. `actor` is the audit log's actor. Returns the account as it is now, how many
    /// tokens changed, and the document (`None`: nothing changed, or no signing key).
    fn set_disabled(
        &mut self,
        actor: &str,
        name: &str,
        disabled: Option<users::Disabled>,
    ) -> Result<(AccountChange, Option<Published>)> {
        let dir = self.store.location().clone();
        self.store.write(|tx| {
            let account = users::require(tx, name)?;
            if account.disabled.is_some() == disabled.is_some() {
                return Ok((
                    AccountChange {
                        account,
                        tokens: 0,
                        changed: false,
                    },
                    None,
                ));
            }
            let ids = users::set_disabled(tx, &account.name, disabled.as_ref())?;
            for &id in &ids {
                crate::store::snapshots::record_change(tx, id, None)?;
            }
            let detail = match &disabled {
                Some(d) => {
                    let ended = sessions::end_all(tx, &account.name)?;
                    format!(
                        "disabled ({}): {}; {} token(s) leave the edges{}",
                        match d.by {
                            users::DisabledBy::Operator => "by the operator",
                            users::DisabledBy::Platform => "the platform says it is suspended",
                        },
                        d.reason,
                        ids.len(),
                        if ended > 0 {
                            format!("; {ended} login session(s) ended")
                        } else {
                            String::new()
                        }
                    )
                }
                None => format!("enabled; {} token(s) back on the edges", ids.len()),
            };
            audit::record_by(
                tx,
                actor,
                Some(&account.name),
                if disabled.is_some() {
                    "user.disable"
                } else {
                    "user.enable"
                },
                None,
                &detail,
            )?;
            let built = if ids.is_empty() {
                None
            } else {
                snapshot::after_change(tx, &dir)?
            };
            Ok((
                AccountChange {
                    account: users::require(tx, name)?,
                    tokens: ids.len(),
                    changed: true,
                },
                built,
            ))
        })
    }

    /// Platform mode: the store's account for what the platform says of a session's account,
    /// made on first use (named `uid:<uid>`, no password), its email (and, with the `email`
    /// identity, what edges forward) updated when it changed, and disabled when the platform
    /// says it is not enabled (enabled again when it says so, unless an operator disabled
    /// it). What edges forward follows the `platform-identity` setting as it is now. Every
    /// change is audited (actor `actor`) and signed in one transaction.
    pub fn platform_account(
        &mut self,
        actor: &str,
        info: &crate::platform::UserInfo,
        publishing: Publishing<'_>,
    ) -> Result<Done<AccountChange>> {
        let dir = self.store.location().clone();
        let at = self.store.now();
        let (account, mut changes, mut changed) = self.store.write(|tx| {
            // The setting as it is now (`config set platform-identity` may have changed it
            // since this process started).
            let wanted = crate::platform::Identity::from_store(tx)?.of(info.uid, &info.email);
            let mut changes = Vec::new();
            let mut changed = false;
            let account = match users::get_platform(tx, info.uid)? {
                None => {
                    let account = users::add_platform(tx, info.uid, &info.email, &wanted, at)?;
                    audit::record_by(
                        tx,
                        actor,
                        Some(&account.name),
                        "user.add",
                        None,
                        &format!(
                            "platform account uid {} ({}) used for the first time",
                            info.uid, info.email
                        ),
                    )?;
                    changed = true;
                    account
                }
                Some(account) => {
                    if account.email.as_deref() != Some(info.email.as_str())
                        || account.identity.as_deref() != Some(wanted.as_str())
                    {
                        users::set_email(tx, &account.name, &info.email, &wanted)?;
                        if account.email.as_deref() != Some(info.email.as_str()) {
                            audit::record_by(
                                tx,
                                actor,
                                Some(&account.name),
                                "user.email",
                                None,
                                &format!(
                                    "the platform gives a new email: {} (was {})",
                                    info.email,
                                    account.email.as_deref().unwrap_or("none")
                                ),
                            )?;
                        }
                        if account.identity.as_deref() != Some(wanted.as_str()) {
                            // What edges forward changed: every token's record changes.
                            for t in tokens::list(tx, &account.name)? {
                                crate::store::snapshots::record_change(tx, t.id, None)?;
                                changes.push(t.id);
                            }
                        }
                        changed = true;
                    }
                    users::require(tx, &account.name)?
                }
            };
            Ok((account, changes, changed))
        })?;
        let mut built = None;
        if !changes.is_empty() {
            built = self.store.write(|tx| snapshot::after_change(tx, &dir))?;
        }
        let name = account.name.clone();
        let status = match (&account.disabled, info.is_enabled()) {
            (None, false) => Some(Some(users::Disabled {
                at,
                by: users::DisabledBy::Platform,
                reason: format!("the platform says the account is {}", info.status),
            })),
            (Some(d), true) if d.by == users::DisabledBy::Platform => Some(None),
            _ => None,
        };
        let account = match status {
            Some(disabled) => {
                let (change, switched) = self.set_disabled(actor, &name, disabled)?;
                changes.push(0);
                changed = true;
                if switched.is_some() {
                    built = switched;
                }
                change.account
            }
            None => account,
        };
        let change = AccountChange {
            account,
            tokens: changes.len(),
            changed,
        };
        // What the edges hold changed (a suspension, an enabling, an identity): pushed now,
        // as a change is; the origin hands it out all the same.
        let publish = built
            .is_some()
            .then(|| self.publish_change(built, publishing));
        Ok(Done {
            outcome: change,
            publish,
        })
    }

    /// `config set platform-identity`: what edges forward for every platform account's
    /// tokens becomes `identity`; the tokens whose record changes are signed in one
    /// document, audited as `config.set` with `detail`, and published.
    pub fn set_platform_identity(
        &mut self,
        identity: crate::platform::Identity,
        detail: &str,
        publishing: Publishing<'_>,
    ) -> Result<Done<()>> {
        let dir = self.store.location().clone();
        let built = self.store.write(|tx| {
            let mut changed = false;
            for account in users::platform_accounts(tx)? {
                let (Some(uid), Some(email)) = (account.platform_uid, &account.email) else {
                    continue;
                };
                let wanted = identity.of(uid, email);
                if account.identity.as_deref() == Some(wanted.as_str()) {
                    continue;
                }
                users::set_identity(tx, &account.name, &wanted)?;
                for t in tokens::list(tx, &account.name)? {
                    crate::store::snapshots::record_change(tx, t.id, None)?;
                    changed = true;
                }
            }
            settings::set(tx, settings::PLATFORM_IDENTITY, identity.as_str())?;
            audit::record(tx, None, "config.set", None, detail)?;
            if changed {
                snapshot::after_change(tx, &dir)
            } else {
                Ok(None)
            }
        })?;
        let publish = built
            .is_some()
            .then(|| self.publish_change(built, publishing));
        Ok(Done {
            outcome: (),
            publish,
        })
    }

    /// `user passwd`: sets a new password (`new_hash`, argon2id) once the current one is
    /// confirmed (usually [`Confirmation::confirmed`]: before the new one was read), and
    /// ends every login session of the account. Edges hold nothing of it: nothing is
    /// published.
    pub fn change_password(
        &mut self,
        actor: &Actor,
        confirmation: Confirmation<'_>,
        new_hash: &str,
    ) -> Result<()> {
        let confirmed = self.confirmed(actor, confirmation)?;
        self.store.write(|tx| {
            Self::still_confirmed(tx, actor, &confirmed)?;
            users::set_password(tx, &actor.account, new_hash)?;
            let ended = sessions::end_all(tx, &actor.account)?;
            actor.record(
                tx,
                "user.passwd",
                None,
                &if ended == 0 {
                    "password changed".to_string()
                } else {
                    format!("password changed; {ended} login session(s) ended")
                },
            )
        })
    }
}
