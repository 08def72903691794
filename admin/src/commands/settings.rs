//! `config show`, `config set`, `audit`.

use serde::Serialize;

use super::{Ctx, table};
use crate::cli::{AuditArgs, ConfigCommand};
use crate::error::{Error, Result, exit};
use crate::expiry::rfc3339;
use crate::store::{audit, settings};

#[derive(Debug, Serialize)]
struct Settings {
    max_tokens_per_account: u32,
    max_lifetime_days: Option<u32>,
    last_version: u64,
}

/// Runs a `config` subcommand.
pub fn run(ctx: &mut Ctx, command: ConfigCommand) -> Result<u8> {
    if let ConfigCommand::Set { key, value } = &command {
        let value = value.trim();
        let (stored, shown) = match (key.as_str(), value) {
            ("max-lifetime-days", "none") => (None, "none".to_string()),
            (_, v) => match v.parse::<u32>() {
                Ok(n) if n >= 1 => (Some(n.to_string()), n.to_string()),
                _ => {
                    return Err(Error::Invalid(format!(
                        "{key}: `{value}` is not a whole number of at least 1{}",
                        if key == "max-lifetime-days" {
                            " (or none)"
                        } else {
                            ""
                        }
                    )));
                }
            },
        };
        let name = if key == "max-lifetime-days" {
            settings::MAX_LIFETIME_DAYS
        } else {
            settings::MAX_TOKENS
        };
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
                    "last published version".into(),
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
