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
    last_version: u64,
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
        other => Err(Error::Invalid(format!("unknown setting {other}"))),
    }
}

/// Runs a `config` subcommand.
pub fn run(ctx: &mut Ctx, command: ConfigCommand) -> Result<u8> {
    if let ConfigCommand::Set { key, value } = &command {
        let (name, stored, shown) = parse_setting(key, value.trim())?;
        ctx.store.write(|tx| {
            match &stored {
                Some(v) => settings::set(tx, name, v)?,
                None => settings::unset(tx, name)?,
            }
            audit::record(tx, None, "config.set", None, &format!("{key} = {shown}"))
        })?;
    }
    let conn = ctx.store.conn();
    let current = Settings {
        max_tokens_per_account: settings::get_u32(conn, settings::MAX_TOKENS)?
            .unwrap_or(ctx.catalogue.max_tokens_per_account()),
        max_lifetime_days: settings::get_u32(conn, settings::MAX_LIFETIME_DAYS)?,
        snapshot_lifetime_secs: settings::snapshot_lifetime(conn)?,
        last_version: settings::get(conn, settings::LAST_VERSION)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
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
                    "last snapshot version".into(),
                    current.last_version.to_string(),
                ],
            ],
        )
    })?;
    Ok(exit::OK)
}

/// Runs `audit`.
pub fn audit(ctx: &mut Ctx, args: AuditArgs) -> Result<u8> {
    let entries = audit::list(ctx.store.conn(), args.user.as_deref(), args.limit)?;
    ctx.emit(&entries, || {
        if entries.is_empty() {
            return "The audit log is empty.\n".into();
        }
        table(
            &["AT", "ACTOR", "ACCOUNT", "ACTION", "TOKEN", "DETAIL"],
            entries
                .iter()
                .map(|e| {
                    vec![
                        rfc3339(e.at),
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
