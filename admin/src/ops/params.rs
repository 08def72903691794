//! The checked parameters of the operations: a value of these types can only be made by its
//! check, so no front end can skip one.
//!
//! # Layout
//! - [`Description`], [`Scope`], [`Expiry`], [`Networks`], [`Envs`], [`Rate`], [`Grace`]:
//!   one parameter each.
//! - [`Selection`], [`NewToken`], [`Edit`]: what a removal takes, a new token, an edit.
//! - The checks that read settings ([`Ops::expiry_day`], [`Ops::expiry_api`],
//!   [`Ops::grace`]) and the expiry a new value gets (regenerate, copy).

use pat_core::env::EnvList;
use pat_core::net::{MAX_PER_TOKEN, Network};
use pat_core::rate::RateLimit;

use super::{Actor, Channel, Ops};
use crate::catalogue::Catalogue;
use crate::error::{Error, Result};
use crate::expiry::{self, last_day};
use crate::settings;
use crate::store::tokens;

/// Longest description, in characters.
pub const MAX_DESCRIPTION: usize = 200;

/// A checked description: trimmed, not empty, at most [`MAX_DESCRIPTION`] characters, no
/// control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(pub(super) String);

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
    pub(super) set: Option<String>,
    pub(super) methods: Vec<String>,
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
pub struct Expiry(pub(super) Option<u64>);

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
pub struct Networks(pub(super) Vec<Network>);

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

/// A checked environment list: names as the platform allows them (DNS labels), lowercase,
/// sorted, without duplicates, at most [`pat_core::env::MAX_PER_TOKEN`]; `None`: any
/// environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envs(pub(super) Option<EnvList>);

impl Envs {
    /// No limit: any environment.
    pub fn any() -> Self {
        Self(None)
    }

    /// Checks `items` (blank ones are skipped: none at all is any environment); `what` names
    /// the flag or parameter in messages. A bad name is named, and nothing is changed.
    pub fn parse<S: AsRef<str>>(items: &[S], what: &str) -> Result<Self> {
        let names: Vec<&str> = items
            .iter()
            .map(|i| i.as_ref().trim())
            .filter(|i| !i.is_empty())
            .collect();
        EnvList::parse(&names)
            .map(Self)
            .map_err(|e| Error::Invalid(format!("{what}: {e}")))
    }

    /// The list (`None`: any environment).
    pub fn list(&self) -> Option<&EnvList> {
        self.0.as_ref()
    }
}

/// A checked rate limit of a token's own (`10/s`, `600/min`); `None`: none of its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rate(pub(super) Option<RateLimit>);

impl Rate {
    /// No limit of its own.
    pub fn none() -> Self {
        Self(None)
    }

    /// Checks `text`: `N/s` or `N/min`; empty or `none` is no limit of its own. `what`
    /// names the flag or parameter in messages.
    pub fn parse(text: &str, what: &str) -> Result<Self> {
        let text = text.trim();
        if text.is_empty() || text.eq_ignore_ascii_case("none") {
            return Ok(Self(None));
        }
        text.parse::<RateLimit>()
            .map(|r| Self(Some(r)))
            .map_err(|e| Error::Invalid(format!("{what}: {e}")))
    }

    /// The limit, if any.
    pub fn limit(self) -> Option<RateLimit> {
        self.0
    }
}

/// A checked grace window for a regenerated token's previous value: more than 0 seconds,
/// at most the `max-grace` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grace(pub(super) u64);

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
    pub(super) description: Description,
    pub(super) scope: Scope,
    pub(super) expiry: Expiry,
    pub(super) networks: Networks,
    pub(super) envs: Envs,
    pub(super) rate: Rate,
    pub(super) copy_of: Option<i64>,
}

impl NewToken {
    /// A new token with these parameters, usable from any address.
    pub fn new(description: Description, scope: Scope, expiry: Expiry) -> Self {
        Self {
            description,
            scope,
            expiry,
            networks: Networks::any(),
            envs: Envs::any(),
            rate: Rate::none(),
            copy_of: None,
        }
    }

    /// The same, limited to `networks`.
    pub fn with_networks(mut self, networks: Networks) -> Self {
        self.networks = networks;
        self
    }

    /// The same, limited to `envs`.
    pub fn with_envs(mut self, envs: Envs) -> Self {
        self.envs = envs;
        self
    }

    /// The same, with its own rate limit `rate`.
    pub fn with_rate(mut self, rate: Rate) -> Self {
        self.rate = rate;
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
    /// New environments (replacing the list; [`Envs::any`]: any environment).
    pub envs: Option<Envs>,
    /// New rate limit of its own ([`Rate::none`]: none, the default applies).
    pub rate: Option<Rate>,
}

impl Edit {
    /// Nothing to change at all?
    pub fn is_empty(&self) -> bool {
        self.description.is_none()
            && self.scope.is_none()
            && self.expiry.is_none()
            && self.networks.is_none()
            && self.envs.is_none()
            && self.rate.is_none()
    }

    pub(super) fn apply(&self, mut row: tokens::Token) -> tokens::Token {
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
        if let Some(e) = &self.envs {
            row.envs = e.0.clone();
        }
        if let Some(r) = self.rate {
            row.rate_limit = r.0;
        }
        row
    }
}

impl Ops<'_> {
    fn max_lifetime(&self) -> Result<Option<u32>> {
        settings::MAX_LIFETIME_DAYS.get(self.store.conn())
    }

    pub(super) fn max_tokens(&self) -> Result<u32> {
        Ok(settings::MAX_TOKENS
            .get(self.store.conn())?
            .unwrap_or(self.catalogue.max_tokens_per_account()))
    }

    /// An expiry given as a last valid day, `DD-MM-YYYY` (valid through its end, UTC), or
    /// none (refused when a maximum lifetime is configured).
    pub fn expiry_day(&self, text: Option<&str>) -> Result<Expiry> {
        let max = self.max_lifetime()?;
        match text {
            Some(text) => Ok(Expiry(Some(expiry::parse(
                text,
                self.store.clock().utc(),
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
                self.store.clock().utc(),
                max,
            )?))),
            None => {
                expiry::check_none(max)?;
                Ok(Expiry(None))
            }
        }
    }

    /// An expiry as the actor's channel gives it: a last valid day on the command line
    /// ([`Ops::expiry_day`]), the platform's formats from the API ([`Ops::expiry_api`]).
    pub fn expiry_given(&self, actor: &Actor, text: Option<&str>) -> Result<Expiry> {
        match actor.channel {
            Channel::Cli => self.expiry_day(text),
            Channel::Api { .. } => self.expiry_api(text),
        }
    }

    /// A grace window as the actor's channel gives it: `--grace DURATION` (`90m`, `1h`) on
    /// the command line, `grace` in whole seconds from the API; checked by [`Ops::grace`].
    pub fn grace_given(&self, actor: &Actor, text: &str) -> Result<Option<Grace>> {
        match actor.channel {
            Channel::Cli => {
                let secs = crate::duration::parse(text)
                    .map_err(|e| Error::Invalid(format!("--grace: {e}")))?;
                self.grace(actor, secs, "--grace")
            }
            Channel::Api { .. } => {
                let text = text.trim();
                let secs = text
                    .bytes()
                    .all(|b| b.is_ascii_digit())
                    .then(|| text.parse::<u64>().ok())
                    .flatten()
                    .ok_or_else(|| {
                        Error::Invalid(format!(
                            "`grace`: `{}` is not a whole number of seconds (how long the old value keeps working; 0 or absent: it stops at once)",
                            text.chars().take(32).collect::<String>()
                        ))
                    })?;
                self.grace(actor, secs, "grace")
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
        let max = settings::MAX_GRACE.get(self.store.conn())?;
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

    /// An expiry for a new value (regenerate, copy): `given`, or the kept one if it is still
    /// in the future. A new value is a new credential, so a kept expiry (or the lack of one)
    /// must fit the maximum lifetime configured now, like any other.
    pub(super) fn fresh_expiry(
        &self,
        actor: &Actor,
        given: Option<Expiry>,
        kept: Option<u64>,
        id: i64,
    ) -> Result<Expiry> {
        match given {
            Some(e) => Ok(e),
            None if kept.is_some_and(|at| self.store.now() >= at) => Err(Error::Invalid(format!(
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
                        expiry::parse(&last_day(at), self.store.clock().utc(), max)?;
                    }
                    None => expiry::check_none(max)?,
                }
                Ok(Expiry(kept))
            }
        }
    }
}
