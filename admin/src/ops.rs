//! The token operations, one implementation for every front end: the command line
//! ([`crate::commands::tokens`]) and the platform API ([`crate::api`]) both call these, so
//! the two can never drift: the same limits, expiry rules, audit entries, password back-off,
//! signing in the change's transaction, and publishing.
//!
//! Every change comes in two steps. A `prepare_*`/`check` step validates the request and
//! reads what it needs, without a password: a typo costs no password and changes nothing.
//! Then the caller confirms the account's password ([`Ops::confirm`], with the back-off that
//! grows with consecutive failures, whoever made them), and the change step commits in one
//! transaction that re-checks the password did not change meanwhile and builds, signs and
//! stores the snapshot of the new state (when a signing key is active). The typed values in
//! between ([`Description`], [`Scope`], [`Expiry`], [`Networks`], [`Grace`],
//! [`Confirmed`]) can only be made by the checks, so no front end can skip one.
//!
//! A token may be limited to client networks ([`Networks`]: generate, edit, kept by copy
//! and regenerate), and a regeneration may keep the previous value working for a grace
//! window ([`Grace`], at most `max-grace`): the previous hash stays a second record of the
//! token in every document until the window ends (or the token's own expiry, if sooner),
//! and a later regeneration or a removal ends it at once.
//!
//! Who acts is an [`Actor`]: an account and the channel it came through (the CLI, run by an
//! OS user, or the API, from a client address), which the audit log records.

use std::time::Duration;

use crate::store::db::Connection;
use pat_core::net::{MAX_PER_TOKEN, Network};
use pat_core::token::{Token, TokenHash};
use serde::Serialize;
use time::OffsetDateTime;

use crate::attempts::{self, Attempt, Purpose, Verdict};
use crate::catalogue::Catalogue;
use crate::error::{Error, Result};
use crate::expiry::{self, last_day, rfc3339};
use crate::password;
use crate::publish::{self, EdgeResult, Timeouts};
use crate::snapshot;
use crate::store::snapshots::Published;
use crate::store::{Store, audit, edges as edge_store, now, sessions, settings, tokens, users};

/// Longest description, in characters.
pub const MAX_DESCRIPTION: usize = 200;

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
    account: String,
    channel: Channel,
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

    fn record(
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

/// A checked description: trimmed, not empty, at most [`MAX_DESCRIPTION`] characters, no
/// control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    /// Checks `text`.
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        if text.is_empty() {
            return Err(Error::Invalid(
                "the description is empty; say what the token is for".into(),
            ));
        }
        if text.chars().count() > MAX_DESCRIPTION {
            return Err(Error::Invalid(format!(
                "the description is longer than {MAX_DESCRIPTION} characters"
            )));
        }
        if text.chars().any(char::is_control) {
            return Err(Error::Invalid(
                "the description contains control characters".into(),
            ));
        }
        Ok(Self(text.to_string()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A checked scope: a predefined set's methods, or a list of catalogue methods (canonical,
/// sorted, without duplicates), never `users.Authentication.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    set: Option<String>,
    methods: Vec<String>,
}

impl Scope {
    /// A predefined set by id (`ide-plugins`) or name (`IDE Plugins`), any case.
    pub fn set(catalogue: &Catalogue, name: &str) -> Result<Self> {
        let set = catalogue.set(name)?;
        let mut methods: Vec<String> = set.methods.iter().map(|m| m.as_str().to_string()).collect();
        methods.sort();
        methods.dedup();
        Ok(Self {
            set: Some(set.id.clone()),
            methods,
        })
    }

    /// A list of methods (any case, `env.` alias; unknown names get "did you mean").
    pub fn methods<S: AsRef<str>>(catalogue: &Catalogue, names: &[S]) -> Result<Self> {
        if names.is_empty() {
            return Err(Error::Invalid(
                "the method list is empty: name at least one API method".into(),
            ));
        }
        let mut methods = Vec::with_capacity(names.len());
        for name in names {
            methods.push(
                catalogue
                    .resolve(name.as_ref())?
                    .canonical
                    .as_str()
                    .to_string(),
            );
        }
        methods.sort();
        methods.dedup();
        Ok(Self { set: None, methods })
    }

    /// The predefined set's id, if it came from one.
    pub fn set_id(&self) -> Option<&str> {
        self.set.as_deref()
    }

    /// The canonical method names.
    pub fn method_names(&self) -> &[String] {
        &self.methods
    }
}

/// A checked expiry: the exclusive end instant (Unix seconds), or none; within the
/// configured maximum lifetime, not in the past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiry(Option<u64>);

impl Expiry {
    /// The exclusive end, Unix seconds; `None` = never.
    pub fn at(self) -> Option<u64> {
        self.0
    }
}

/// A checked list of allowed client networks: each entry an IPv4 or IPv6 CIDR (a bare
/// address is its own /32 or /128; host bits below the prefix are refused), normalized
/// (IPv4-mapped IPv6 networks written as IPv4), sorted, without duplicates, at most
/// [`MAX_PER_TOKEN`]. Empty: any address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Networks(Vec<Network>);

impl Networks {
    /// No limit: any address.
    pub fn any() -> Self {
        Self(Vec::new())
    }

    /// Checks `items` (blank ones are skipped); `what` names the flag or parameter in
    /// messages. A bad entry is named, and nothing is changed.
    pub fn parse<S: AsRef<str>>(items: &[S], what: &str) -> Result<Self> {
        let mut list = Vec::with_capacity(items.len());
        for item in items {
            let text = item.as_ref().trim();
            if text.is_empty() {
                continue;
            }
            let network: Network = text
                .parse()
                .map_err(|e| Error::Invalid(format!("{what}: {e}")))?;
            list.push(unmapped(network));
        }
        list.sort();
        list.dedup();
        if list.len() > MAX_PER_TOKEN {
            return Err(Error::Invalid(format!(
                "{what}: {} networks, more than the {MAX_PER_TOKEN} one token may be limited to; use wider networks",
                list.len()
            )));
        }
        Ok(Self(list))
    }

    /// The networks.
    pub fn as_slice(&self) -> &[Network] {
        &self.0
    }

    /// No limit?
    pub fn is_any(&self) -> bool {
        self.0.is_empty()
    }
}

/// An IPv4-mapped IPv6 network (`::ffff:10.0.0.0/104`) as the IPv4 network it means: edges
/// match an IPv4-mapped client address as IPv4.
fn unmapped(network: Network) -> Network {
    match network.addr() {
        std::net::IpAddr::V6(v6) if network.prefix() >= 96 => v6
            .to_ipv4_mapped()
            .and_then(|v4| Network::new(v4.into(), network.prefix() - 96))
            .unwrap_or(network),
        _ => network,
    }
}

/// A checked grace window for a regenerated token's previous value: more than 0 seconds,
/// at most the `max-grace` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grace(u64);

impl Grace {
    /// Its length, seconds.
    pub fn secs(self) -> u64 {
        self.0
    }
}

/// Which tokens a removal takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// These ids (each must be the caller's).
    Ids(Vec<i64>),
    /// Every token of the caller (`*` in the API).
    All,
}

/// A new token, checked, waiting for the password: `generate`, `copy`, `CreateToken`.
#[derive(Debug, Clone)]
pub struct NewToken {
    description: Description,
    scope: Scope,
    expiry: Expiry,
    networks: Networks,
    copy_of: Option<i64>,
}

impl NewToken {
    /// A new token with these parameters, usable from any address.
    pub fn new(description: Description, scope: Scope, expiry: Expiry) -> Self {
        Self {
            description,
            scope,
            expiry,
            networks: Networks::any(),
            copy_of: None,
        }
    }

    /// The same, limited to `networks`.
    pub fn with_networks(mut self, networks: Networks) -> Self {
        self.networks = networks;
        self
    }
}

/// An edit, checked: the fields to change (`None`: keep).
#[derive(Debug, Clone, Default)]
pub struct Edit {
    /// New description.
    pub description: Option<Description>,
    /// New scope.
    pub scope: Option<Scope>,
    /// New expiry.
    pub expiry: Option<Expiry>,
    /// New allowed networks (replacing the list; empty: any address).
    pub networks: Option<Networks>,
}

impl Edit {
    /// Nothing to change at all?
    pub fn is_empty(&self) -> bool {
        self.description.is_none()
            && self.scope.is_none()
            && self.expiry.is_none()
            && self.networks.is_none()
    }

    fn apply(&self, mut row: tokens::Token) -> tokens::Token {
        if let Some(d) = &self.description {
            row.description = d.0.clone();
        }
        if let Some(scope) = &self.scope {
            row.scope_set = scope.set.clone();
            row.methods = scope.methods.clone();
        }
        if let Some(e) = self.expiry {
            row.expires_at = e.0;
        }
        if let Some(n) = &self.networks {
            row.networks = n.0.clone();
        }
        row
    }
}

/// A regeneration, checked: the token, the expiry the new value gets, and how long the
/// previous value keeps working (`None`: it stops at once).
#[derive(Debug, Clone)]
pub struct Regenerate {
    id: i64,
    expiry: Expiry,
    grace: Option<Grace>,
}

/// A removal, checked: the ids (sorted, each the caller's when checked).
#[derive(Debug, Clone)]
pub struct Removal {
    ids: Vec<i64>,
}

impl Removal {
    /// The ids.
    pub fn ids(&self) -> &[i64] {
        &self.ids
    }
}

/// A token with a new value: the row, the value (shown once), and the snapshot the change's
/// transaction signed (`None`: no signing key).
pub struct Issued {
    /// The row as committed.
    pub token: tokens::Token,
    /// The value: shown once, never stored.
    pub value: Token,
    /// The signed snapshot of the new state.
    pub built: Option<Published>,
}

/// An edit's result.
pub struct Edited {
    /// The row as it is now.
    pub token: tokens::Token,
    /// Whether anything changed (an edit to the same values changes nothing and signs
    /// nothing).
    pub changed: bool,
    /// The signed snapshot of the new state, when something changed.
    pub built: Option<Published>,
}

/// A removal's result.
pub struct Removed {
    /// The ids removed.
    pub ids: Vec<i64>,
    /// The signed snapshot of the new state (`None`: nothing removed, or no signing key).
    pub built: Option<Published>,
}

/// How a platform account's password is checked (platform mode): by the platform.
pub trait PlatformPasswords {
    /// Is `password` the password of the platform account with `email`? An error when the
    /// platform gave no usable answer (nothing is counted then).
    fn check(&self, email: &str, password: &str) -> Result<bool>;
}

/// The operations over one open store.
pub struct Ops<'a> {
    store: &'a mut Store,
    catalogue: &'a Catalogue,
    platform: Option<&'a dyn PlatformPasswords>,
}

impl<'a> Ops<'a> {
    /// The operations on `store` with `catalogue`.
    pub fn new(store: &'a mut Store, catalogue: &'a Catalogue) -> Self {
        Self {
            store,
            catalogue,
            platform: None,
        }
    }

    /// The same, confirming platform accounts' passwords with `platform`.
    pub fn with_platform(mut self, platform: Option<&'a dyn PlatformPasswords>) -> Self {
        self.platform = platform;
        self
    }

    /// The catalogue.
    pub fn catalogue(&self) -> &Catalogue {
        self.catalogue
    }

    fn max_lifetime(&self) -> Result<Option<u32>> {
        settings::get_u32(self.store.conn(), settings::MAX_LIFETIME_DAYS)
    }

    fn max_tokens(&self) -> Result<u32> {
        Ok(settings::get_u32(self.store.conn(), settings::MAX_TOKENS)?
            .unwrap_or(self.catalogue.max_tokens_per_account()))
    }

    /// An expiry given as a last valid day, `DD-MM-YYYY` (valid through its end, UTC), or
    /// none (refused when a maximum lifetime is configured).
    pub fn expiry_day(&self, text: Option<&str>) -> Result<Expiry> {
        let max = self.max_lifetime()?;
        match text {
            Some(text) => Ok(Expiry(Some(expiry::parse(
                text,
                OffsetDateTime::now_utc(),
                max,
            )?))),
            None => {
                expiry::check_none(max)?;
                Ok(Expiry(None))
            }
        }
    }

    /// An expiry as the platform API sends it: `yyyy-MM-dd HH:mm:ss` (UTC, that instant) or
    /// the dashboard's `dd-mm-yyyy` (valid through that day), or none.
    pub fn expiry_api(&self, text: Option<&str>) -> Result<Expiry> {
        let max = self.max_lifetime()?;
        match text {
            Some(text) => Ok(Expiry(Some(expiry::parse_api(
                text,
                OffsetDateTime::now_utc(),
                max,
            )?))),
            None => {
                expiry::check_none(max)?;
                Ok(Expiry(None))
            }
        }
    }

    /// A grace window of `secs` seconds for a regeneration's previous value (`what` names
    /// the flag or parameter in messages): `None` for 0 (the previous value stops at once);
    /// refused beyond the `max-grace` setting (default 7 days).
    pub fn grace(&self, actor: &Actor, secs: u64, what: &str) -> Result<Option<Grace>> {
        if secs == 0 {
            return Ok(None);
        }
        let max = settings::max_grace(self.store.conn())?;
        let hint = match actor.channel {
            Channel::Cli => " (pat-admin config set max-grace DURATION)",
            Channel::Api { .. } => "",
        };
        if max == 0 {
            return Err(Error::Refused(format!(
                "{what}: grace windows are turned off here; regenerate without one{hint}"
            )));
        }
        if secs > max {
            return Err(Error::Refused(format!(
                "{what}: {} is longer than the longest grace window allowed, {}{hint}",
                crate::duration::text(secs),
                crate::duration::text(max)
            )));
        }
        Ok(Some(Grace(secs)))
    }

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

    /// The account `name` as an operator names it.
    pub fn account(&self, name: &str) -> Result<users::User> {
        users::require(self.store.conn(), name)
    }

    /// `user disable` (`disabled`), `user enable` (`None`), and the platform saying an account
    /// is suspended or enabled again: every token of the account leaves the edges (or comes
    /// back) in one document signed in the same transaction; disabling ends its API login
    /// sessions. `actor` is the audit log's actor. Returns the account as it is now, how many
    /// tokens changed, and the document (`None`: nothing changed, or no signing key).
    pub fn set_disabled(
        &mut self,
        actor: &str,
        name: &str,
        disabled: Option<users::Disabled>,
    ) -> Result<AccountChange> {
        let dir = self.store.location().clone();
        self.store.write(|tx| {
            let account = users::require(tx, name)?;
            if account.disabled.is_some() == disabled.is_some() {
                return Ok(AccountChange {
                    account,
                    tokens: 0,
                    built: None,
                    changed: false,
                });
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
            Ok(AccountChange {
                account: users::require(tx, name)?,
                tokens: ids.len(),
                built,
                changed: true,
            })
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
    ) -> Result<AccountChange> {
        let dir = self.store.location().clone();
        let at = now();
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
                let change = self.set_disabled(actor, &name, disabled)?;
                changes.push(0);
                changed = true;
                if change.built.is_some() {
                    built = change.built;
                }
                change.account
            }
            None => account,
        };
        Ok(AccountChange {
            account,
            tokens: changes.len(),
            built,
            changed,
        })
    }

    /// `config set platform-identity`: what edges forward for every platform account's
    /// tokens becomes `identity`; the tokens whose record changes are signed in one
    /// document.
    pub fn set_platform_identity(
        &mut self,
        identity: crate::platform::Identity,
    ) -> Result<Option<Published>> {
        let dir = self.store.location().clone();
        self.store.write(|tx| {
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
            if changed {
                snapshot::after_change(tx, &dir)
            } else {
                Ok(None)
            }
        })
    }

    /// Inside a change's transaction: `confirmed` is for this actor, and its password is
    /// still the account's.
    fn still_confirmed(tx: &Connection, actor: &Actor, confirmed: &Confirmed) -> Result<()> {
        if !confirmed.account.eq_ignore_ascii_case(&actor.account) {
            return Err(Error::Internal(
                "a password confirmation was used for another account".into(),
            ));
        }
        still_confirmed(tx, &actor.account, &confirmed.hash)
    }

    /// Sets a new password (`new_hash`, argon2id) after the current one was confirmed, and
    /// ends every login session of the account.
    pub fn change_password(
        &mut self,
        actor: &Actor,
        confirmed: &Confirmed,
        new_hash: &str,
    ) -> Result<()> {
        self.store.write(|tx| {
            Self::still_confirmed(tx, actor, confirmed)?;
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

    /// One of the actor's tokens (another account's id is "not found").
    pub fn show(&self, actor: &Actor, id: i64) -> Result<tokens::Token> {
        tokens::require(self.store.conn(), &actor.account, id)
    }

    /// The actor's tokens, by id.
    pub fn list(&self, actor: &Actor) -> Result<Vec<tokens::Token>> {
        tokens::list(self.store.conn(), &actor.account)
    }

    /// `generate` / `CreateToken` / `copy`: a new token with a new value.
    pub fn generate(
        &mut self,
        actor: &Actor,
        confirmed: &Confirmed,
        new: NewToken,
    ) -> Result<Issued> {
        let value = Token::generate().map_err(|e| Error::Random(e.to_string()))?;
        let max = self.max_tokens()?;
        let mut row = tokens::Token {
            id: 0,
            user: actor.account.clone(),
            description: new.description.0,
            hash: value.hash(),
            scope_set: new.scope.set,
            methods: new.scope.methods,
            created_at: now(),
            expires_at: new.expiry.0,
            regenerated_at: None,
            last_used_at: None,
            last_used_ip: None,
            networks: new.networks.0,
            old_value: None,
            suspended: false,
        };
        let dir = self.store.location().clone();
        let (id, built) = self.store.write(|tx| {
            Self::still_confirmed(tx, actor, confirmed)?;
            let count = tokens::count(tx, &actor.account)?;
            if count >= max {
                return Err(Error::Refused(format!(
                    "{} already has {count} tokens, the maximum; remove some, or raise the limit with: pat-admin config set max-tokens-per-account N",
                    actor.account
                )));
            }
            let id = tokens::insert(tx, &row)?;
            match new.copy_of {
                Some(source) => actor.record(
                    tx,
                    "token.copy",
                    Some(id),
                    &format!("copy of {source}; {}", describe(&row)),
                )?,
                None => actor.record(tx, "token.generate", Some(id), &describe(&row))?,
            }
            Ok((id, snapshot::after_change(tx, &dir)?))
        })?;
        row.id = id;
        Ok(Issued {
            token: row,
            value,
            built,
        })
    }

    /// What an edit would make of the token, without changing anything: `None` when the
    /// token already has these values (no password is needed, nothing is audited or signed).
    pub fn prepare_edit(&self, actor: &Actor, id: i64, edit: &Edit) -> Result<EditPlan> {
        let current = tokens::require(self.store.conn(), &actor.account, id)?;
        let after = edit.apply(current.clone());
        Ok(if after == current {
            EditPlan::Unchanged(Box::new(current))
        } else {
            EditPlan::Change
        })
    }

    /// `edit` / `EditToken`.
    pub fn edit(
        &mut self,
        actor: &Actor,
        confirmed: &Confirmed,
        id: i64,
        edit: &Edit,
    ) -> Result<Edited> {
        let dir = self.store.location().clone();
        let (token, changed, built) = self.store.write(|tx| {
            Self::still_confirmed(tx, actor, confirmed)?;
            let before = tokens::require(tx, &actor.account, id)?;
            let row = edit.apply(before.clone());
            if row == before {
                return Ok((row, false, None));
            }
            tokens::update(tx, &row)?;
            actor.record(tx, "token.edit", Some(row.id), &describe(&row))?;
            Ok((row, true, snapshot::after_change(tx, &dir)?))
        })?;
        Ok(Edited {
            token,
            changed,
            built,
        })
    }

    /// An expiry for a new value (regenerate, copy): `given`, or the kept one if it is still
    /// in the future. A new value is a new credential, so a kept expiry (or the lack of one)
    /// must fit the maximum lifetime configured now, like any other.
    fn fresh_expiry(
        &self,
        actor: &Actor,
        given: Option<Expiry>,
        kept: Option<u64>,
        id: i64,
    ) -> Result<Expiry> {
        match given {
            Some(e) => Ok(e),
            None if kept.is_some_and(|at| now() >= at) => Err(Error::Invalid(format!(
                "token {id} expired on {}; give it a new date with {}",
                kept.map(last_day).unwrap_or_default(),
                match actor.channel {
                    Channel::Cli => "--expires-at DD-MM-YYYY",
                    Channel::Api { .. } => "expiresAt",
                }
            ))),
            None => {
                let max = self.max_lifetime()?;
                match kept {
                    // The kept instant, against the maximum as a last valid day.
                    Some(at) => {
                        expiry::parse(&last_day(at), OffsetDateTime::now_utc(), max)?;
                    }
                    None => expiry::check_none(max)?,
                }
                Ok(Expiry(kept))
            }
        }
    }

    /// Checks a regeneration: the token is the actor's, the new value's expiry, and the
    /// previous value's grace window (checked with [`Ops::grace`]).
    pub fn prepare_regenerate(
        &self,
        actor: &Actor,
        id: i64,
        given: Option<Expiry>,
        grace: Option<Grace>,
    ) -> Result<Regenerate> {
        let existing = tokens::require(self.store.conn(), &actor.account, id)?;
        let expiry = self.fresh_expiry(actor, given, existing.expires_at, existing.id)?;
        Ok(Regenerate { id, expiry, grace })
    }

    /// `regenerate` / `RegenerateToken`: a new value, every other parameter kept (allowed
    /// networks included). The previous value stops working at once, or with a grace window
    /// at its end (or the token's expiry, if sooner); a previous value still in an earlier
    /// window stops now. The audit entry names both values by [`value_id`].
    pub fn regenerate(
        &mut self,
        actor: &Actor,
        confirmed: &Confirmed,
        plan: Regenerate,
    ) -> Result<Issued> {
        let value = Token::generate().map_err(|e| Error::Random(e.to_string()))?;
        let dir = self.store.location().clone();
        let (token, built) = self.store.write(|tx| {
            Self::still_confirmed(tx, actor, confirmed)?;
            let mut row = tokens::require(tx, &actor.account, plan.id)?;
            let at = now();
            let ended = row
                .old_value
                .zip(row.old_value_until(at))
                .map(|(old, end)| (old.hash, end));
            let previous = row.hash;
            let old_until = plan
                .grace
                .map(|g| at.saturating_add(g.0))
                .map(|end| row.expires_at.map_or(end, |e| e.min(end)))
                .filter(|&end| end > at);
            row.old_value = old_until.map(|until| tokens::OldValue {
                hash: previous,
                until,
            });
            row.hash = value.hash();
            row.expires_at = plan.expiry.0;
            row.regenerated_at = Some(at);
            tokens::update(tx, &row)?;
            let mut detail = format!(
                "value {} replaced by {}; {}",
                value_id(&previous),
                value_id(&row.hash),
                match row.old_value_until(at) {
                    Some(end) => format!("the old value works until {}", rfc3339(end)),
                    None => "the old value stops working now".to_string(),
                }
            );
            if let Some((hash, end)) = ended {
                detail.push_str(&format!(
                    "; the earlier old value {} (until {}) stops working now",
                    value_id(&hash),
                    rfc3339(end)
                ));
            }
            detail.push_str(&format!("; {}", describe(&row)));
            actor.record(tx, "token.regenerate", Some(row.id), &detail)?;
            Ok((row, snapshot::after_change(tx, &dir)?))
        })?;
        Ok(Issued {
            token,
            value,
            built,
        })
    }

    /// Checks a copy: a new token with another one's scope, its description unless given,
    /// and its expiry unless given (refused when that has passed).
    pub fn prepare_copy(
        &self,
        actor: &Actor,
        id: i64,
        description: Option<Description>,
        given: Option<Expiry>,
    ) -> Result<NewToken> {
        let source = tokens::require(self.store.conn(), &actor.account, id)?;
        let expiry = self.fresh_expiry(actor, given, source.expires_at, source.id)?;
        Ok(NewToken {
            description: description.unwrap_or(Description(source.description.clone())),
            scope: Scope {
                set: source.scope_set.clone(),
                methods: source.methods.clone(),
            },
            expiry,
            networks: Networks(source.networks.clone()),
            copy_of: Some(source.id),
        })
    }

    /// Checks a removal: every id is the actor's (or, for [`Selection::All`], whatever the
    /// actor has now).
    pub fn prepare_remove(&self, actor: &Actor, selection: Selection) -> Result<Removal> {
        let mut ids = match selection {
            Selection::Ids(ids) => {
                if ids.is_empty() {
                    return Err(Error::Invalid("no token ids given".into()));
                }
                ids
            }
            Selection::All => self.list(actor)?.into_iter().map(|t| t.id).collect(),
        };
        ids.sort_unstable();
        ids.dedup();
        for &id in &ids {
            tokens::require(self.store.conn(), &actor.account, id)?;
        }
        Ok(Removal { ids })
    }

    /// `remove` / `DeleteTokens`: every id must still exist, or nothing is removed.
    pub fn remove(
        &mut self,
        actor: &Actor,
        confirmed: &Confirmed,
        removal: Removal,
    ) -> Result<Removed> {
        let dir = self.store.location().clone();
        let built = self.store.write(|tx| {
            Self::still_confirmed(tx, actor, confirmed)?;
            if removal.ids.is_empty() {
                return Ok(None);
            }
            let at = now();
            for &id in &removal.ids {
                let old = tokens::get(tx, &actor.account, id)?.and_then(|t| {
                    t.old_value
                        .zip(t.old_value_until(at))
                        .map(|(o, end)| (o.hash, end))
                });
                if !tokens::delete(tx, &actor.account, id)? {
                    return Err(Error::NoSuchToken {
                        user: actor.account.clone(),
                        id,
                    });
                }
                let detail = match old {
                    Some((hash, end)) => format!(
                        "removed; its old value {} (until {}) stops working with it",
                        value_id(&hash),
                        rfc3339(end)
                    ),
                    None => "removed".to_string(),
                };
                actor.record(tx, "token.remove", Some(id), &detail)?;
            }
            snapshot::after_change(tx, &dir)
        })?;
        Ok(Removed {
            ids: removal.ids,
            built,
        })
    }
}

/// What [`Ops::prepare_edit`] found.
#[derive(Debug)]
pub enum EditPlan {
    /// The token already has these values (here it is).
    Unchanged(Box<tokens::Token>),
    /// Something changes: confirm the password, then [`Ops::edit`].
    Change,
}

/// A disabled account may not change tokens.
fn refuse_disabled(account: &users::User) -> Result<()> {
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

/// What an account change did.
#[derive(Debug)]
pub struct AccountChange {
    /// The account as it is now.
    pub account: users::User,
    /// How many of its tokens' records changed at the edges.
    pub tokens: usize,
    /// The document that carries them (`None`: none changed, or no signing key).
    pub built: Option<Published>,
    /// Whether anything changed at all.
    pub changed: bool,
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

/// Audit details of a token's parameters (never its value).
pub fn describe(t: &tokens::Token) -> String {
    format!(
        "description {:?}; scope {}; expires {}; allowed IPs {}",
        t.description,
        t.scope_set.clone().unwrap_or_else(|| t.methods.join(",")),
        t.expires_at.map_or("never".to_string(), last_day),
        if t.networks.is_empty() {
            "any".to_string()
        } else {
            tokens::networks_text(&t.networks).replace(' ', ",")
        }
    )
}

/// A value's public id in the audit log: `sha256:` and the first 12 hex digits of its
/// SHA-256 (the store keeps only the hash; this says which value without being one).
pub fn value_id(hash: &TokenHash) -> String {
    let hex: String = hash.0[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

// ---------------------------------------------------------------------------------------
// Publishing after a change.

/// What a change did about publishing.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PublishState {
    /// Every configured edge has it.
    Published,
    /// At least one edge did not accept it (exit 6).
    NotAccepted,
    /// `--no-publish`.
    Skipped,
    /// No edges are configured.
    NoEdges,
    /// No signing key: nothing was signed or pushed (exit 7 when edges are configured).
    Unsigned,
}

/// A change's publish result, part of its JSON (CLI and API alike).
#[derive(Debug, Clone, Serialize)]
pub struct ChangePublish {
    /// What happened.
    pub state: PublishState,
    /// The snapshot version that includes the change (`null`: none was signed).
    pub version: Option<u64>,
    /// Per edge (empty when nothing was pushed).
    pub edges: Vec<EdgeResult>,
}

/// What to do about publishing a change.
pub enum PublishPlan {
    /// Nothing to push: here is the result. `edges_configured` tells an unsigned change that
    /// edges are waiting for it (the CLI's exit 7).
    Done {
        /// The result.
        result: ChangePublish,
        /// Whether edges are configured.
        edges_configured: bool,
    },
    /// Push `published` to `edges`, then [`record_push`].
    Push {
        /// The configured edges.
        edges: Vec<String>,
        /// The snapshot the change's transaction signed.
        published: Published,
    },
}

/// Decides how to publish a change whose transaction signed `built` (`skip`: the caller
/// asked not to push).
pub fn plan_publish(
    conn: &Connection,
    built: Option<Published>,
    skip: bool,
) -> Result<PublishPlan> {
    let version = built.as_ref().map(|p| p.stamp.version);
    let done = |state, edges_configured| PublishPlan::Done {
        result: ChangePublish {
            state,
            version,
            edges: Vec::new(),
        },
        edges_configured,
    };
    if skip {
        return Ok(done(PublishState::Skipped, false));
    }
    let edges = edge_store::list(conn)?;
    let Some(published) = built else {
        return Ok(done(PublishState::Unsigned, !edges.is_empty()));
    };
    if edges.is_empty() {
        return Ok(done(PublishState::NoEdges, false));
    }
    Ok(PublishPlan::Push { edges, published })
}

/// After a push: audits it and sums it up.
pub fn record_push(
    store: &mut Store,
    version: u64,
    results: Vec<EdgeResult>,
) -> Result<ChangePublish> {
    record_publish(store, version, &results)?;
    let failed = results.iter().any(|e| !e.outcome.is_ok());
    Ok(ChangePublish {
        state: if failed {
            PublishState::NotAccepted
        } else {
            PublishState::Published
        },
        version: Some(version),
        edges: results,
    })
}

/// The audit entry of a push.
pub fn record_publish(store: &mut Store, version: u64, results: &[EdgeResult]) -> Result<()> {
    let summary = results
        .iter()
        .map(|r| format!("{} {}", r.edge, r.outcome.word()))
        .collect::<Vec<_>>()
        .join(", ");
    store.write(|tx| {
        audit::record(
            tx,
            None,
            "publish",
            None,
            &format!("version {version}: {summary}"),
        )
    })
}

/// The push timeouts: `attempt`/`deadline` when given (command-line flags), else
/// `PAT_ADMIN_PUSH_TIMEOUT` / `PAT_ADMIN_PUSH_DEADLINE` (seconds), else the store settings
/// `push-timeout` / `push-deadline`, else 10 s / 30 s.
pub fn timeouts(
    conn: &Connection,
    attempt: Option<f64>,
    deadline: Option<f64>,
) -> Result<Timeouts> {
    let pick = |flag: Option<f64>, var: &str, key: &str, default: Duration| -> Result<Duration> {
        if let Some(secs) = flag {
            return seconds(secs, &format!("--{}", key.trim_start_matches("push-")));
        }
        if let Ok(text) = std::env::var(var) {
            let secs = text
                .trim()
                .parse::<f64>()
                .map_err(|_| Error::Invalid(format!("{var}={text}: not a number of seconds")))?;
            return seconds(secs, var);
        }
        let name = if key == "push-timeout" {
            settings::PUSH_TIMEOUT
        } else {
            settings::PUSH_DEADLINE
        };
        Ok(settings::get_u32(conn, name)?
            .map_or(default, |secs| Duration::from_secs(u64::from(secs))))
    };
    let attempt = pick(
        attempt,
        "PAT_ADMIN_PUSH_TIMEOUT",
        "push-timeout",
        publish::DEFAULT_ATTEMPT,
    )?;
    let deadline = pick(
        deadline,
        "PAT_ADMIN_PUSH_DEADLINE",
        "push-deadline",
        publish::DEFAULT_DEADLINE,
    )?;
    let mut timeouts = Timeouts::default().with_attempt(attempt);
    timeouts.deadline = deadline;
    Ok(timeouts)
}

/// `seconds` as a timeout: more than 0, at most an hour.
fn seconds(secs: f64, what: &str) -> Result<Duration> {
    if secs.is_finite() && secs > 0.0 && secs <= 3600.0 {
        Ok(Duration::from_secs_f64(secs))
    } else {
        Err(Error::Invalid(format!(
            "{what}: {secs} is not a number of seconds between 0 and 3600"
        )))
    }
}
