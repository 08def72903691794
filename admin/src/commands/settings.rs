//! `config show`, `config set`, `audit`.

use serde::Serialize;

use super::{Ctx, table};
use crate::cli::{AuditArgs, ConfigCommand};
use crate::duration;
use crate::error::{Error, Result, exit};
use crate::expiry::rfc3339;
use crate::store::{audit, settings};

#[derive(Debug, Serialize)]
struct Settings {
    max_tokens_per_account: u32,
    max_lifetime_days: Option<u32>,
    snapshot_lifetime_secs: u64,
    /// Per-attempt push timeout, seconds.
    push_timeout_secs: u64,
    /// Overall push deadline, seconds.
    push_deadline_secs: u64,
    /// `null`: no snapshot was ever signed.
    last_version: Option<u64>,
    /// How long an API login session may go unused, seconds.
    session_idle_secs: u64,
    /// How long an API login session lives at most, seconds.
    session_lifetime_secs: u64,
    /// The longest grace window `regenerate --grace` may give, seconds (0: none).
    max_grace_secs: u64,
    /// Platform mode's platform API (`null`: standalone mode, unless `serve --platform-url`).
    platform_url: Option<String>,
    /// How long the platform's answer about a session is reused, seconds.
    platform_session_cache_secs: u64,
    /// How long one call to the platform may take, seconds.
    platform_timeout_secs: u64,
    /// `signin` or `check-password`.
    platform_password_check: String,
    /// What edges forward for platform accounts: `uid` or `email`.
    platform_identity: String,
}

/// An audit entry as shown.
#[derive(Debug, Serialize)]
struct EntryView {
    id: i64,
    /// RFC 3339.
    at: String,
    actor: String,
    account: Option<String>,
    action: String,
    token_id: Option<i64>,
    detail: String,
}

/// What `config set KEY VALUE` stores: the meta key, the value (`None`: unset) and how the
/// audit log shows it. Nothing is changed when this fails.
fn parse_setting(key: &str, value: &str) -> Result<(&'static str, Option<String>, String)> {
    let whole = |name: &'static str, allow_none: bool| match value.parse::<u32>() {
        Ok(n) if n >= 1 => Ok((name, Some(n.to_string()), n.to_string())),
        _ if allow_none && value == "none" => Ok((name, None, "none".to_string())),
        _ => Err(Error::Invalid(format!(
            "{key}: `{value}` is not a whole number of at least 1{}",
            if allow_none { " (or none)" } else { "" }
        ))),
    };
    match key {
        "max-tokens-per-account" => whole(settings::MAX_TOKENS, false),
        "max-lifetime-days" => whole(settings::MAX_LIFETIME_DAYS, true),
        "push-timeout" | "push-deadline" => {
            let name = if key == "push-timeout" {
                settings::PUSH_TIMEOUT
            } else {
                settings::PUSH_DEADLINE
            };
            match value.trim_end_matches('s').parse::<u32>() {
                Ok(n) if (1..=3600).contains(&n) => {
                    Ok((name, Some(n.to_string()), format!("{n}s")))
                }
                _ if value == "none" => Ok((name, None, "none (the default)".to_string())),
                _ => Err(Error::Invalid(format!(
                    "{key}: `{value}` is not a whole number of seconds from 1 to 3600 (or none for the default)"
                ))),
            }
        }
        "snapshot-lifetime" => {
            let secs = duration::parse(value).map_err(|e| Error::Invalid(format!("{key}: {e}")))?;
            if !(settings::MIN_SNAPSHOT_LIFETIME..=settings::MAX_SNAPSHOT_LIFETIME).contains(&secs)
            {
                return Err(Error::Invalid(format!(
                    "{key}: {value} is outside the allowed range, {} to {}",
                    duration::text(settings::MIN_SNAPSHOT_LIFETIME),
                    duration::text(settings::MAX_SNAPSHOT_LIFETIME)
                )));
            }
            Ok((
                settings::SNAPSHOT_LIFETIME,
                Some(secs.to_string()),
                duration::text(secs),
            ))
        }
        "session-idle" | "session-lifetime" => {
            let (name, (min, max)) = if key == "session-idle" {
                (settings::SESSION_IDLE, settings::SESSION_IDLE_RANGE)
            } else {
                (settings::SESSION_LIFETIME, settings::SESSION_LIFETIME_RANGE)
            };
            let secs = duration::parse(value).map_err(|e| Error::Invalid(format!("{key}: {e}")))?;
            if !(min..=max).contains(&secs) {
                return Err(Error::Invalid(format!(
                    "{key}: {value} is outside the allowed range, {} to {}",
                    duration::text(min),
                    duration::text(max)
                )));
            }
            Ok((name, Some(secs.to_string()), duration::text(secs)))
        }
        "platform-url" => {
            if value == "none" {
                return Ok((
                    settings::PLATFORM_URL,
                    None,
                    "none (standalone mode)".into(),
                ));
            }
            let url = crate::platform::parse_url(value)?;
            Ok((
                settings::PLATFORM_URL,
                Some(url.to_string()),
                url.to_string(),
            ))
        }
        "platform-session-cache" | "platform-timeout" => {
            let (name, (min, max)) = if key == "platform-timeout" {
                (settings::PLATFORM_TIMEOUT, settings::PLATFORM_TIMEOUT_RANGE)
            } else {
                (
                    settings::PLATFORM_SESSION_CACHE,
                    settings::PLATFORM_SESSION_CACHE_RANGE,
                )
            };
            let secs = duration::parse(value).map_err(|e| Error::Invalid(format!("{key}: {e}")))?;
            if !(min..=max).contains(&secs) {
                return Err(Error::Invalid(format!(
                    "{key}: {value} is outside the allowed range, {} to {}",
                    duration::text(min),
                    duration::text(max)
                )));
            }
            Ok((name, Some(secs.to_string()), duration::text(secs)))
        }
        "platform-password-check" => match crate::platform::PasswordCheck::parse(value) {
            Some(check) => Ok((
                settings::PLATFORM_PASSWORD_CHECK,
                Some(check.as_str().into()),
                check.as_str().into(),
            )),
            None => Err(Error::Invalid(format!(
                "{key}: `{value}` is neither signin (the platform's Signin with the account's email, then Signout) nor check-password (its CheckPassword with the caller's session)"
            ))),
        },
        "platform-identity" => match crate::platform::Identity::parse(value) {
            Some(identity) => Ok((
                settings::PLATFORM_IDENTITY,
                Some(identity.as_str().into()),
                identity.as_str().into(),
            )),
            None => Err(Error::Invalid(format!(
                "{key}: `{value}` is neither uid nor email (what edges forward for a platform account's tokens)"
            ))),
        },
        "max-grace" => {
            let secs = duration::parse(value).map_err(|e| Error::Invalid(format!("{key}: {e}")))?;
            if secs > settings::MAX_MAX_GRACE {
                return Err(Error::Invalid(format!(
                    "{key}: {value} is outside the allowed range, 0s (no grace windows) to {}",
                    duration::text(settings::MAX_MAX_GRACE)
                )));
            }
            Ok((
                settings::MAX_GRACE,
                Some(secs.to_string()),
                duration::text(secs),
            ))
        }
        other => Err(Error::Invalid(format!("unknown setting {other}"))),
    }
}

/// Runs a `config` subcommand.
pub fn run(ctx: &mut Ctx, command: ConfigCommand) -> Result<u8> {
    let mut code = exit::OK;
    if let ConfigCommand::Set { key, value } = &command {
        let (name, stored, shown) = parse_setting(key, value.trim())?;
        if name == settings::PLATFORM_IDENTITY {
            // Every platform account's tokens carry the new identity to the edges: one
            // signed document, published like a change.
            let identity = stored
                .as_deref()
                .and_then(crate::platform::Identity::parse)
                .unwrap_or(crate::platform::Identity::Uid);
            let built = ctx.ops().set_platform_identity(identity)?;
            ctx.store.write(|tx| {
                audit::record(tx, None, "config.set", None, &format!("{key} = {shown}"))
            })?;
            if built.is_some() {
                let confirm = crate::cli::Confirm {
                    password_stdin: false,
                    no_publish: false,
                    push: crate::cli::PushOpts::default(),
                };
                code = ctx.publish_after_change(&confirm, built)?.1;
            }
        } else {
            ctx.store.write(|tx| {
                match &stored {
                    Some(v) => settings::set(tx, name, v)?,
                    None => settings::unset(tx, name)?,
                }
                audit::record(tx, None, "config.set", None, &format!("{key} = {shown}"))
            })?;
        }
    }
    let conn = ctx.store.conn();
    let current = Settings {
        max_tokens_per_account: settings::get_u32(conn, settings::MAX_TOKENS)?
            .unwrap_or(ctx.catalogue.max_tokens_per_account()),
        max_lifetime_days: settings::get_u32(conn, settings::MAX_LIFETIME_DAYS)?,
        snapshot_lifetime_secs: settings::snapshot_lifetime(conn)?,
        push_timeout_secs: settings::get_u32(conn, settings::PUSH_TIMEOUT)?
            .map_or(crate::publish::DEFAULT_ATTEMPT.as_secs(), u64::from),
        push_deadline_secs: settings::get_u32(conn, settings::PUSH_DEADLINE)?
            .map_or(crate::publish::DEFAULT_DEADLINE.as_secs(), u64::from),
        last_version: settings::get(conn, settings::LAST_VERSION)?.and_then(|v| v.parse().ok()),
        session_idle_secs: settings::session_idle(conn)?,
        session_lifetime_secs: settings::session_lifetime(conn)?,
        max_grace_secs: settings::max_grace(conn)?,
        platform_url: settings::get(conn, settings::PLATFORM_URL)?,
        platform_session_cache_secs: settings::platform_session_cache(conn)?,
        platform_timeout_secs: settings::platform_timeout(conn)?,
        platform_password_check: settings::get(conn, settings::PLATFORM_PASSWORD_CHECK)?
            .unwrap_or_else(|| "signin".into()),
        platform_identity: crate::platform::Identity::from_store(conn)?.as_str().into(),
    };
    ctx.emit(&current, || {
        table(
            &["SETTING", "VALUE"],
            vec![
                vec![
                    "max-tokens-per-account".into(),
                    current.max_tokens_per_account.to_string(),
                ],
                vec![
                    "max-lifetime-days".into(),
                    current
                        .max_lifetime_days
                        .map_or("none (tokens may have no expiry)".into(), |d| d.to_string()),
                ],
                vec![
                    "snapshot-lifetime".into(),
                    format!(
                        "{} (pat-admin serve re-signs every {})",
                        duration::text(current.snapshot_lifetime_secs),
                        duration::text(current.snapshot_lifetime_secs / 4)
                    ),
                ],
                vec![
                    "push-timeout".into(),
                    format!(
                        "{}s (one push attempt; PAT_ADMIN_PUSH_TIMEOUT and --timeout override it)",
                        current.push_timeout_secs
                    ),
                ],
                vec![
                    "push-deadline".into(),
                    format!(
                        "{}s (a whole push; PAT_ADMIN_PUSH_DEADLINE and --deadline override it)",
                        current.push_deadline_secs
                    ),
                ],
                vec![
                    "session-idle".into(),
                    format!(
                        "{} (an API login session unused this long ends)",
                        duration::text(current.session_idle_secs)
                    ),
                ],
                vec![
                    "session-lifetime".into(),
                    format!(
                        "{} (an API login session ends this long after Signin)",
                        duration::text(current.session_lifetime_secs)
                    ),
                ],
                vec![
                    "max-grace".into(),
                    if current.max_grace_secs == 0 {
                        "0s (regenerate --grace is refused)".to_string()
                    } else {
                        format!(
                            "{} (the longest regenerate --grace)",
                            duration::text(current.max_grace_secs)
                        )
                    },
                ],
                vec![
                    "platform-url".into(),
                    current.platform_url.clone().unwrap_or_else(|| {
                        "none (standalone mode, unless serve --platform-url)".into()
                    }),
                ],
                vec![
                    "platform-session-cache".into(),
                    format!(
                        "{} (the platform's answer about a login session is reused this long)",
                        duration::text(current.platform_session_cache_secs)
                    ),
                ],
                vec![
                    "platform-timeout".into(),
                    format!(
                        "{} (one call to the platform)",
                        duration::text(current.platform_timeout_secs)
                    ),
                ],
                vec![
                    "platform-password-check".into(),
                    current.platform_password_check.clone(),
                ],
                vec![
                    "platform-identity".into(),
                    format!(
                        "{} (what edges forward for platform accounts' tokens)",
                        current.platform_identity
                    ),
                ],
                vec![
                    "last snapshot version".into(),
                    current
                        .last_version
                        .map_or("none yet".into(), |v| v.to_string()),
                ],
            ],
        )
    })?;
    Ok(code)
}

/// Runs `audit`.
pub fn audit(ctx: &mut Ctx, args: AuditArgs) -> Result<u8> {
    // Entries of a name that is not an account (any more) still show; a name that never
    // was one is a typo, not an empty log.
    let account = match args.user.as_deref() {
        Some(user) => Some(match crate::store::users::get(ctx.store.conn(), user)? {
            Some(u) => u.name,
            None => user.to_string(),
        }),
        None => None,
    };
    let entries: Vec<EntryView> = audit::list(ctx.store.conn(), account.as_deref(), args.limit)?
        .into_iter()
        .map(|e| EntryView {
            id: e.id,
            at: rfc3339(e.at),
            actor: e.actor,
            account: e.account,
            action: e.action,
            token_id: e.token_id,
            detail: e.detail,
        })
        .collect();
    if let Some(user) = &account
        && entries.is_empty()
        && crate::store::users::get(ctx.store.conn(), user)?.is_none()
    {
        return Err(Error::NoSuchUser(user.clone()));
    }
    ctx.emit(&entries, || {
        if entries.is_empty() {
            return match &account {
                Some(user) => format!("No audit entries for {user}.\n"),
                None => "The audit log is empty.\n".into(),
            };
        }
        table(
            &["AT", "ACTOR", "ACCOUNT", "ACTION", "TOKEN", "DETAIL"],
            entries
                .iter()
                .map(|e| {
                    vec![
                        e.at.clone(),
                        e.actor.clone(),
                        e.account.clone().unwrap_or_default(),
                        e.action.clone(),
                        e.token_id.map(|id| id.to_string()).unwrap_or_default(),
                        e.detail.clone(),
                    ]
                })
                .collect(),
        )
    })?;
    Ok(exit::OK)
}
