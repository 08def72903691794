//! The operator's settings, one definition each: the name `pat-admin config set` takes, the
//! key it is stored under (the store's `meta` table), the default, the allowed values, the
//! flag and environment variable that override it (push timeouts) and the help text. `config
//! set` and `config show`, the store's readers ([`crate::store::settings`]), the operations and
//! the API all read a setting through its entry here, so none can disagree about its
//! default or range.
//!
//! # Layout
//! - [`Setting`]: what every entry says (name, key, help) and how `config set` checks a
//!   value; [`ALL`], every entry in `config show`'s order; [`find`], an entry by name.
//! - One typed kind per shape of value, each with its `get`: [`Count`] (a whole number,
//!   maybe none), [`Seconds`] (a push timeout: flag, variable, setting, default),
//!   [`Window`] (a duration within a range, clamped when read), [`Url`], [`Choice`],
//!   [`Rate`] (a rate limit, maybe none).
//! - [`names`], [`possible_values`]: what `config set` takes, with each one's help.
//! - The entries themselves: [`MAX_TOKENS`] … [`DEFAULT_RATE_LIMIT`].

use std::time::Duration;

use crate::store::db::Connection;

use crate::duration;
use crate::error::{Error, Result};
use crate::store::settings as meta;

/// What `config set NAME VALUE` stores: the value (`None`: unset, the default applies) and
/// how the audit log shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The stored text (`None`: the setting is removed).
    pub stored: Option<String>,
    /// The audit log's rendering.
    pub shown: String,
}

/// One setting.
pub trait Setting: Sync {
    /// The name `config set` takes: `snapshot-lifetime`.
    fn name(&self) -> &'static str;
    /// The key in the store's `meta` table.
    fn key(&self) -> &'static str;
    /// One line of help: the values it takes, its default, what it does.
    fn help(&self) -> String;
    /// Checks a value as `config set` got it (trimmed). Nothing is changed when this fails.
    fn parse(&self, value: &str) -> Result<Parsed>;
}

/// A whole number of at least 1; with `allow_none`, `none` unsets it.
#[derive(Debug)]
pub struct Count {
    name: &'static str,
    key: &'static str,
    allow_none: bool,
    help: &'static str,
}

impl Count {
    /// The stored number, if set and valid.
    pub fn get(&self, conn: &Connection) -> Result<Option<u32>> {
        meta::get_u32(conn, self.key)
    }
}

impl Setting for Count {
    fn name(&self) -> &'static str {
        self.name
    }
    fn key(&self) -> &'static str {
        self.key
    }
    fn help(&self) -> String {
        self.help.into()
    }
    fn parse(&self, value: &str) -> Result<Parsed> {
        match value.parse::<u32>() {
            Ok(n) if n >= 1 => Ok(Parsed {
                stored: Some(n.to_string()),
                shown: n.to_string(),
            }),
            _ if self.allow_none && value == "none" => Ok(Parsed {
                stored: None,
                shown: "none".into(),
            }),
            _ => Err(Error::Invalid(format!(
                "{}: `{value}` is not a whole number of at least 1{}",
                self.name,
                if self.allow_none { " (or none)" } else { "" }
            ))),
        }
    }
}

/// A push timeout in whole seconds (1 to 3600, `none`: the default), overridden by a
/// command-line flag and an environment variable (seconds, fractions allowed).
#[derive(Debug)]
pub struct Seconds {
    name: &'static str,
    key: &'static str,
    /// The command-line flag that overrides it: `--timeout`.
    pub flag: &'static str,
    /// The environment variable that overrides it: `PAT_ADMIN_PUSH_TIMEOUT`.
    pub env: &'static str,
    default: Duration,
    help: &'static str,
}

impl Seconds {
    /// The stored setting, or the default.
    pub fn get(&self, conn: &Connection) -> Result<Duration> {
        Ok(meta::get_u32(conn, self.key)?
            .map_or(self.default, |secs| Duration::from_secs(u64::from(secs))))
    }

    /// What applies: `flag` when given, else the environment variable, else [`Seconds::get`].
    pub fn resolve(&self, conn: &Connection, flag: Option<f64>) -> Result<Duration> {
        if let Some(secs) = flag {
            return timeout(secs, self.flag);
        }
        if let Ok(text) = std::env::var(self.env) {
            let secs = text.trim().parse::<f64>().map_err(|_| {
                Error::Invalid(format!("{}={text}: not a number of seconds", self.env))
            })?;
            return timeout(secs, self.env);
        }
        self.get(conn)
    }
}

/// `secs` as a timeout: more than 0, at most an hour.
fn timeout(secs: f64, what: &str) -> Result<Duration> {
    if secs.is_finite() && secs > 0.0 && secs <= 3600.0 {
        Ok(Duration::from_secs_f64(secs))
    } else {
        Err(Error::Invalid(format!(
            "{what}: {secs} is not a number of seconds between 0 and 3600"
        )))
    }
}

impl Setting for Seconds {
    fn name(&self) -> &'static str {
        self.name
    }
    fn key(&self) -> &'static str {
        self.key
    }
    fn help(&self) -> String {
        format!(
            "SECS|none (1 to 3600; default {}; {} and {} override it): {}",
            self.default.as_secs(),
            self.env,
            self.flag,
            self.help
        )
    }
    fn parse(&self, value: &str) -> Result<Parsed> {
        match value.trim_end_matches('s').parse::<u32>() {
            Ok(n) if (1..=3600).contains(&n) => Ok(Parsed {
                stored: Some(n.to_string()),
                shown: format!("{n}s"),
            }),
            _ if value == "none" => Ok(Parsed {
                stored: None,
                shown: "none (the default)".into(),
            }),
            _ => Err(Error::Invalid(format!(
                "{}: `{value}` is not a whole number of seconds from 1 to 3600 (or none for the default)",
                self.name
            ))),
        }
    }
}

/// A duration in seconds within `min..=max` (`90m`, `24h`, `7d`); a stored value outside
/// the range (written by hand) is clamped into it when read.
#[derive(Debug)]
pub struct Window {
    name: &'static str,
    key: &'static str,
    /// The default, seconds.
    pub default: u64,
    /// The shortest allowed, seconds.
    pub min: u64,
    /// The longest allowed, seconds.
    pub max: u64,
    /// How the range's lower end is shown in a refusal, when not just its duration.
    min_words: Option<&'static str>,
    help: &'static str,
}

impl Window {
    /// The setting, or the default; clamped into the range.
    pub fn get(&self, conn: &Connection) -> Result<u64> {
        Ok(meta::get(conn, self.key)?
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(self.default, |v| v.clamp(self.min, self.max)))
    }
}

impl Setting for Window {
    fn name(&self) -> &'static str {
        self.name
    }
    fn key(&self) -> &'static str {
        self.key
    }
    fn help(&self) -> String {
        format!(
            "DURATION ({} to {}; default {}): {}",
            duration::text(self.min),
            duration::text(self.max),
            duration::text(self.default),
            self.help
        )
    }
    fn parse(&self, value: &str) -> Result<Parsed> {
        let name = self.name;
        let secs = duration::parse(value).map_err(|e| Error::Invalid(format!("{name}: {e}")))?;
        if !(self.min..=self.max).contains(&secs) {
            return Err(Error::Invalid(format!(
                "{name}: {value} is outside the allowed range, {} to {}",
                self.min_words
                    .map_or_else(|| duration::text(self.min), str::to_string),
                duration::text(self.max)
            )));
        }
        Ok(Parsed {
            stored: Some(secs.to_string()),
            shown: duration::text(secs),
        })
    }
}

/// Platform mode's platform URL (`none`: standalone mode).
#[derive(Debug)]
pub struct Url {
    name: &'static str,
    key: &'static str,
    help: &'static str,
}

impl Url {
    /// The stored URL, if any.
    pub fn get(&self, conn: &Connection) -> Result<Option<String>> {
        meta::get(conn, self.key)
    }
}

impl Setting for Url {
    fn name(&self) -> &'static str {
        self.name
    }
    fn key(&self) -> &'static str {
        self.key
    }
    fn help(&self) -> String {
        self.help.into()
    }
    fn parse(&self, value: &str) -> Result<Parsed> {
        if value == "none" {
            return Ok(Parsed {
                stored: None,
                shown: "none (standalone mode)".into(),
            });
        }
        let url = crate::platform::parse_url(value)?;
        Ok(Parsed {
            stored: Some(url.to_string()),
            shown: url.to_string(),
        })
    }
}

/// One of a few words; the first is the default.
#[derive(Debug)]
pub struct Choice {
    name: &'static str,
    key: &'static str,
    /// The words, the default first.
    pub words: &'static [&'static str],
    /// What the refusal of another word says after "is neither …".
    refusal: &'static str,
    help: &'static str,
}

impl Choice {
    /// The stored word when it is one of [`Choice::words`], else the default.
    pub fn get(&self, conn: &Connection) -> Result<&'static str> {
        let stored = meta::get(conn, self.key)?;
        Ok(self
            .words
            .iter()
            .find(|w| stored.as_deref() == Some(**w))
            .copied()
            .unwrap_or(self.words[0]))
    }
}

impl Setting for Choice {
    fn name(&self) -> &'static str {
        self.name
    }
    fn key(&self) -> &'static str {
        self.key
    }
    fn help(&self) -> String {
        self.help.into()
    }
    fn parse(&self, value: &str) -> Result<Parsed> {
        match self.words.iter().find(|w| **w == value) {
            Some(word) => Ok(Parsed {
                stored: Some((*word).to_string()),
                shown: (*word).to_string(),
            }),
            None => Err(Error::Invalid(format!(
                "{}: `{value}` is neither {}",
                self.name, self.refusal
            ))),
        }
    }
}

/// A rate limit, `N/s` or `N/min`; `none` unsets it.
#[derive(Debug)]
pub struct Rate {
    name: &'static str,
    key: &'static str,
    help: &'static str,
}

impl Rate {
    /// The stored limit, if set and valid.
    pub fn get(&self, conn: &Connection) -> Result<Option<pat_core::rate::RateLimit>> {
        Ok(meta::get(conn, self.key)?.and_then(|v| v.parse().ok()))
    }
}

impl Setting for Rate {
    fn name(&self) -> &'static str {
        self.name
    }
    fn key(&self) -> &'static str {
        self.key
    }
    fn help(&self) -> String {
        self.help.into()
    }
    fn parse(&self, value: &str) -> Result<Parsed> {
        if value == "none" {
            return Ok(Parsed {
                stored: None,
                shown: "none".into(),
            });
        }
        let limit = value
            .parse::<pat_core::rate::RateLimit>()
            .map_err(|e| Error::Invalid(format!("{}: {e} (or none)", self.name)))?;
        Ok(Parsed {
            stored: Some(limit.to_string()),
            shown: limit.to_string(),
        })
    }
}

/// `max-tokens-per-account`: tokens one account may have (default: the catalogue's limit).
pub static MAX_TOKENS: Count = Count {
    name: "max-tokens-per-account",
    key: meta::MAX_TOKENS,
    allow_none: false,
    help: "N: tokens one account may have (default: the platform's limit)",
};

/// `max-lifetime-days`: the longest token lifetime (none: tokens may have no expiry).
pub static MAX_LIFETIME_DAYS: Count = Count {
    name: "max-lifetime-days",
    key: meta::MAX_LIFETIME_DAYS,
    allow_none: true,
    help: "N|none: the longest token lifetime in days (none: tokens may have no expiry)",
};

/// `snapshot-lifetime`: how long edges may use a snapshot.
pub static SNAPSHOT_LIFETIME: Window = Window {
    name: "snapshot-lifetime",
    key: meta::SNAPSHOT_LIFETIME,
    default: 24 * 3600,
    min: 60,
    max: 30 * 24 * 3600,
    min_words: None,
    help: "how long edges may use a snapshot; serve re-signs after a quarter of it",
};

/// `push-timeout`: one push attempt to an edge.
pub static PUSH_TIMEOUT: Seconds = Seconds {
    name: "push-timeout",
    key: meta::PUSH_TIMEOUT,
    flag: "--timeout",
    env: "PAT_ADMIN_PUSH_TIMEOUT",
    default: crate::publish::DEFAULT_ATTEMPT,
    help: "one push attempt",
};

/// `push-deadline`: a whole push, retries included.
pub static PUSH_DEADLINE: Seconds = Seconds {
    name: "push-deadline",
    key: meta::PUSH_DEADLINE,
    flag: "--deadline",
    env: "PAT_ADMIN_PUSH_DEADLINE",
    default: crate::publish::DEFAULT_DEADLINE,
    help: "a whole push, retries included",
};

/// `session-idle`: an API login session unused this long ends.
pub static SESSION_IDLE: Window = Window {
    name: "session-idle",
    key: meta::SESSION_IDLE,
    default: 30 * 60,
    min: 60,
    max: 24 * 3600,
    min_words: None,
    help: "an API login session unused this long ends",
};

/// `session-lifetime`: an API login session ends this long after Signin.
pub static SESSION_LIFETIME: Window = Window {
    name: "session-lifetime",
    key: meta::SESSION_LIFETIME,
    default: 12 * 3600,
    min: 5 * 60,
    max: 30 * 24 * 3600,
    min_words: None,
    help: "an API login session ends this long after Signin",
};

/// `max-grace`: the longest grace window a regeneration may give (0: none).
pub static MAX_GRACE: Window = Window {
    name: "max-grace",
    key: meta::MAX_GRACE,
    default: 7 * 24 * 3600,
    min: 0,
    max: 30 * 24 * 3600,
    min_words: Some("0s (no grace windows)"),
    help: "the longest regenerate --grace (0s turns grace windows off)",
};

/// `platform-url`: platform mode's platform API.
pub static PLATFORM_URL: Url = Url {
    name: "platform-url",
    key: meta::PLATFORM_URL,
    help: "URL|none: platform mode's platform API, http://HOST:PORT (serve --platform-url wins)",
};

/// `platform-session-cache`: how long the platform's answer about a session is reused.
pub static PLATFORM_SESSION_CACHE: Window = Window {
    name: "platform-session-cache",
    key: meta::PLATFORM_SESSION_CACHE,
    default: 5,
    min: 0,
    max: 60,
    min_words: None,
    help: "how long the platform's answer about a login session is reused",
};

/// `platform-timeout`: one call to the platform.
pub static PLATFORM_TIMEOUT: Window = Window {
    name: "platform-timeout",
    key: meta::PLATFORM_TIMEOUT,
    default: 5,
    min: 1,
    max: 30,
    min_words: None,
    help: "one call to the platform",
};

/// `platform-password-check`: how a platform account's password is confirmed.
pub static PLATFORM_PASSWORD_CHECK: Choice = Choice {
    name: "platform-password-check",
    key: meta::PLATFORM_PASSWORD_CHECK,
    words: &["signin", "check-password"],
    refusal: "signin (the platform's Signin with the account's email, then Signout) nor check-password (its CheckPassword with the caller's session)",
    help: "signin|check-password (default signin): how a platform account's password is confirmed",
};

/// `platform-identity`: what edges forward for platform accounts' tokens.
pub static PLATFORM_IDENTITY: Choice = Choice {
    name: "platform-identity",
    key: meta::PLATFORM_IDENTITY,
    words: &["uid", "email"],
    refusal: "uid nor email (what edges forward for a platform account's tokens)",
    help: "uid|email (default uid): what edges forward for platform accounts' tokens; a change re-signs them",
};

/// `default-rate-limit`: the rate limit of every token without one of its own.
pub static DEFAULT_RATE_LIMIT: Rate = Rate {
    name: "default-rate-limit",
    key: meta::DEFAULT_RATE_LIMIT,
    help: "N/s|N/min|none (default none): the rate limit of every token without one of its own, per edge; a change re-signs them",
};

/// Every setting, in `config show`'s order.
pub static ALL: [&dyn Setting; 14] = [
    &MAX_TOKENS,
    &MAX_LIFETIME_DAYS,
    &SNAPSHOT_LIFETIME,
    &PUSH_TIMEOUT,
    &PUSH_DEADLINE,
    &SESSION_IDLE,
    &SESSION_LIFETIME,
    &MAX_GRACE,
    &PLATFORM_URL,
    &PLATFORM_SESSION_CACHE,
    &PLATFORM_TIMEOUT,
    &PLATFORM_PASSWORD_CHECK,
    &PLATFORM_IDENTITY,
    &DEFAULT_RATE_LIMIT,
];

/// The names `config set` takes, in [`ALL`]'s order.
pub fn names() -> impl Iterator<Item = &'static str> {
    ALL.iter().map(|s| s.name())
}

/// The names with their help, for the command line (`config set --help` lists them).
pub fn possible_values() -> impl Iterator<Item = clap::builder::PossibleValue> {
    ALL.iter()
        .map(|s| clap::builder::PossibleValue::new(s.name()).help(s.help()))
}

/// The setting named `name`.
pub fn find(name: &str) -> Result<&'static dyn Setting> {
    ALL.iter()
        .copied()
        .find(|s| s.name() == name)
        .ok_or_else(|| Error::Invalid(format!("unknown setting {name}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_keys_are_unique() {
        let mut names: Vec<_> = names().collect();
        let mut keys: Vec<_> = ALL.iter().map(|s| s.key()).collect();
        names.sort_unstable();
        names.dedup();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!((names.len(), keys.len()), (ALL.len(), ALL.len()));
    }

    #[test]
    fn values_are_checked_by_their_entry() {
        assert_eq!(
            SNAPSHOT_LIFETIME.parse("90m").expect("ok"),
            Parsed {
                stored: Some("5400".into()),
                shown: "90m".into()
            }
        );
        let e = SNAPSHOT_LIFETIME.parse("10s").expect_err("too short");
        assert_eq!(
            e.to_string(),
            "snapshot-lifetime: 10s is outside the allowed range, 1m to 30d"
        );
        let e = MAX_GRACE.parse("31d").expect_err("too long");
        assert!(
            e.to_string().contains("0s (no grace windows) to 30d"),
            "{e}"
        );
        assert_eq!(PUSH_TIMEOUT.parse("none").expect("ok").stored, None);
        assert!(MAX_TOKENS.parse("none").is_err());
        assert_eq!(MAX_LIFETIME_DAYS.parse("none").expect("ok").stored, None);
        assert!(PLATFORM_IDENTITY.parse("name").is_err());
        assert_eq!(
            DEFAULT_RATE_LIMIT
                .parse("600/m")
                .expect("ok")
                .stored
                .as_deref(),
            Some("600/min")
        );
        assert_eq!(DEFAULT_RATE_LIMIT.parse("none").expect("ok").stored, None);
        let e = DEFAULT_RATE_LIMIT.parse("10/h").expect_err("bad");
        assert!(
            e.to_string()
                .starts_with("default-rate-limit: `10/h` is not a rate limit"),
            "{e}"
        );
        assert!(find("no-such-setting").is_err());
    }

    #[test]
    fn help_says_the_range_and_default_the_entry_defines() {
        assert_eq!(
            SESSION_IDLE.help(),
            "DURATION (1m to 1d; default 30m): an API login session unused this long ends"
        );
        assert!(
            PUSH_DEADLINE.help().starts_with(
                "SECS|none (1 to 3600; default 30; PAT_ADMIN_PUSH_DEADLINE and --deadline"
            ),
            "{}",
            PUSH_DEADLINE.help()
        );
        let listed: Vec<String> = possible_values()
            .map(|v| v.get_name().to_string())
            .collect();
        assert_eq!(listed, names().collect::<Vec<_>>());
    }

    #[test]
    fn flags_override_settings_and_are_checked() {
        let conn = Connection::sqlite_in_memory().expect("db");
        conn.execute_batch("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
            .expect("table");
        assert_eq!(
            PUSH_TIMEOUT.get(&conn).expect("default"),
            crate::publish::DEFAULT_ATTEMPT
        );
        meta::set(&conn, PUSH_DEADLINE.key(), "12").expect("set");
        assert_eq!(
            PUSH_DEADLINE.resolve(&conn, Some(2.5)).expect("flag"),
            Duration::from_millis(2500)
        );
        let e = PUSH_TIMEOUT.resolve(&conn, Some(0.0)).expect_err("zero");
        assert_eq!(
            e.to_string(),
            "--timeout: 0 is not a number of seconds between 0 and 3600"
        );
        meta::set(&conn, SNAPSHOT_LIFETIME.key(), "1").expect("set");
        assert_eq!(SNAPSHOT_LIFETIME.get(&conn).expect("clamped"), 60);
    }
}
