//! `config show`, `config set` (each setting checked and read by its entry in
//! [`crate::settings`]), `audit`.

use serde::Serialize;

use super::{Ctx, table};
use crate::cli::{AuditArgs, ConfigCommand};
use crate::duration;
use crate::error::{Error, Result, exit};
use crate::expiry::rfc3339;
use crate::settings::{self as registry, Setting};
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
    /// The rate limit of every token without one of its own (`10/s`, `600/min`); `null`:
    /// none.
    default_rate_limit: Option<String>,
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

/// Runs a `config` subcommand.
pub fn run(ctx: &mut Ctx, command: ConfigCommand) -> Result<u8> {
    let mut code = exit::OK;
    if let ConfigCommand::Set { key, value } = &command {
        let setting = registry::find(key)?;
        let parsed = setting.parse(value.trim())?;
        let shown = &parsed.shown;
        if setting.key() == registry::PLATFORM_IDENTITY.key() {
            // Every platform account's tokens carry the new identity to the edges: one
            // signed document, published like a change.
            let identity = parsed
                .stored
                .as_deref()
                .and_then(crate::platform::Identity::parse)
                .unwrap_or(crate::platform::Identity::Uid);
            let publishing = ctx.publishing(false, &crate::cli::PushOpts::default())?;
            let audit_line = format!("{key} = {shown}");
            let change = ctx
                .ops()
                .set_platform_identity(identity, &audit_line, publishing)?;
            if let Some(publish) = change.publish {
                code = ctx.report_publish(&publish);
            }
        } else if setting.key() == registry::DEFAULT_RATE_LIMIT.key() {
            // Every token without a limit of its own gets the new one at the edges: a full
            // snapshot, published like a change.
            let limit = parsed
                .stored
                .as_deref()
                .map(str::parse::<pat_core::rate::RateLimit>)
                .transpose()
                .map_err(|e| Error::Invalid(format!("{key}: {e}")))?;
            let publishing = ctx.publishing(false, &crate::cli::PushOpts::default())?;
            let audit_line = format!("{key} = {shown}");
            let change = ctx
                .ops()
                .set_default_rate_limit(limit, &audit_line, publishing)?;
            if let Some(publish) = change.publish {
                code = ctx.report_publish(&publish);
            }
        } else {
            ctx.store.write(|tx| {
                match &parsed.stored {
                    Some(v) => settings::set(tx, setting.key(), v)?,
                    None => settings::unset(tx, setting.key())?,
                }
                audit::record(tx, None, "config.set", None, &format!("{key} = {shown}"))
            })?;
        }
    }
    let conn = ctx.store.conn();
    let current = Settings {
        max_tokens_per_account: registry::MAX_TOKENS
            .get(conn)?
            .unwrap_or(ctx.catalogue.max_tokens_per_account()),
        max_lifetime_days: registry::MAX_LIFETIME_DAYS.get(conn)?,
        snapshot_lifetime_secs: registry::SNAPSHOT_LIFETIME.get(conn)?,
        push_timeout_secs: registry::PUSH_TIMEOUT.get(conn)?.as_secs(),
        push_deadline_secs: registry::PUSH_DEADLINE.get(conn)?.as_secs(),
        last_version: settings::get(conn, settings::LAST_VERSION)?.and_then(|v| v.parse().ok()),
        session_idle_secs: registry::SESSION_IDLE.get(conn)?,
        session_lifetime_secs: registry::SESSION_LIFETIME.get(conn)?,
        max_grace_secs: registry::MAX_GRACE.get(conn)?,
        platform_url: registry::PLATFORM_URL.get(conn)?,
        platform_session_cache_secs: registry::PLATFORM_SESSION_CACHE.get(conn)?,
        platform_timeout_secs: registry::PLATFORM_TIMEOUT.get(conn)?,
        platform_password_check: registry::PLATFORM_PASSWORD_CHECK.get(conn)?.into(),
        platform_identity: registry::PLATFORM_IDENTITY.get(conn)?.into(),
        default_rate_limit: registry::DEFAULT_RATE_LIMIT
            .get(conn)?
            .map(|r| r.to_string()),
    };
    ctx.emit(&current, || {
        table(
            &["SETTING", "VALUE"],
            vec![
                vec![
                    registry::MAX_TOKENS.name().into(),
                    current.max_tokens_per_account.to_string(),
                ],
                vec![
                    registry::MAX_LIFETIME_DAYS.name().into(),
                    current
                        .max_lifetime_days
                        .map_or("none (tokens may have no expiry)".into(), |d| d.to_string()),
                ],
                vec![
                    registry::SNAPSHOT_LIFETIME.name().into(),
                    format!(
                        "{} (pat-admin serve re-signs every {})",
                        duration::text(current.snapshot_lifetime_secs),
                        duration::text(current.snapshot_lifetime_secs / 4)
                    ),
                ],
                vec![
                    registry::PUSH_TIMEOUT.name().into(),
                    format!(
                        "{}s (one push attempt; PAT_ADMIN_PUSH_TIMEOUT and --timeout override it)",
                        current.push_timeout_secs
                    ),
                ],
                vec![
                    registry::PUSH_DEADLINE.name().into(),
                    format!(
                        "{}s (a whole push; PAT_ADMIN_PUSH_DEADLINE and --deadline override it)",
                        current.push_deadline_secs
                    ),
                ],
                vec![
                    registry::SESSION_IDLE.name().into(),
                    format!(
                        "{} (an API login session unused this long ends)",
                        duration::text(current.session_idle_secs)
                    ),
                ],
                vec![
                    registry::SESSION_LIFETIME.name().into(),
                    format!(
                        "{} (an API login session ends this long after Signin)",
                        duration::text(current.session_lifetime_secs)
                    ),
                ],
                vec![
                    registry::MAX_GRACE.name().into(),
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
                    registry::PLATFORM_URL.name().into(),
                    current.platform_url.clone().unwrap_or_else(|| {
                        "none (standalone mode, unless serve --platform-url)".into()
                    }),
                ],
                vec![
                    registry::PLATFORM_SESSION_CACHE.name().into(),
                    format!(
                        "{} (the platform's answer about a login session is reused this long)",
                        duration::text(current.platform_session_cache_secs)
                    ),
                ],
                vec![
                    registry::PLATFORM_TIMEOUT.name().into(),
                    format!(
                        "{} (one call to the platform)",
                        duration::text(current.platform_timeout_secs)
                    ),
                ],
                vec![
                    registry::PLATFORM_PASSWORD_CHECK.name().into(),
                    current.platform_password_check.clone(),
                ],
                vec![
                    registry::PLATFORM_IDENTITY.name().into(),
                    format!(
                        "{} (what edges forward for platform accounts' tokens)",
                        current.platform_identity
                    ),
                ],
                vec![
                    registry::DEFAULT_RATE_LIMIT.name().into(),
                    match &current.default_rate_limit {
                        Some(limit) => format!(
                            "{limit} (on each edge, for every token without a rate limit of its own)"
                        ),
                        None => "none (only tokens with a rate limit of their own are limited)"
                            .into(),
                    },
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
