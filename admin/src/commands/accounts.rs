//! `user add`, `user passwd`, `user list`.

use pat_core::user::validate_user_name;
use serde::Serialize;

use super::{Ctx, table};
use crate::cli::UserCommand;
use crate::error::{Error, Result, exit};
use crate::expiry::rfc3339;
use crate::password::{self, Source};
use crate::store::{audit, now, users};

/// Runs a `user` subcommand.
pub fn run(ctx: &mut Ctx, command: UserCommand) -> Result<u8> {
    match command {
        UserCommand::Add { user, confirm } => {
            validate_user_name(&user)
                .map_err(|e| Error::Invalid(format!("account name `{user}`: {e}")))?;
            if let Some(existing) = users::get(ctx.store.conn(), &user)? {
                return Err(Error::Refused(if existing.name == user {
                    format!("an account named {user} already exists")
                } else {
                    format!(
                        "an account named {} already exists (account names are case-insensitive)",
                        existing.name
                    )
                }));
            }
            let mut source = Source::new(confirm.password_stdin);
            let new = source.read_new(&user)?;
            let hash = password::hash(&new)?;
            let created_at = now();
            ctx.store.write(|tx| {
                users::add(tx, &user, &hash, created_at)?;
                audit::record(tx, Some(&user), "user.add", None, "account created")
            })?;
            #[derive(Serialize)]
            struct Added<'a> {
                user: &'a str,
                created_at: String,
            }
            ctx.emit(
                &Added {
                    user: &user,
                    created_at: rfc3339(created_at),
                },
                || format!("Account {user} created.\n"),
            )?;
            Ok(exit::OK)
        }
        UserCommand::Passwd { user, confirm } => {
            let actor = ctx.actor(&user)?;
            let user = actor.account().to_string();
            let mut source = Source::new(confirm.password_stdin);
            let confirmed = ctx.confirm(&actor, &mut source)?;
            let new = source.read_new(&user)?;
            let hash = password::hash(&new)?;
            ctx.ops().change_password(&actor, &confirmed, &hash)?;
            #[derive(Serialize)]
            struct Changed<'a> {
                user: &'a str,
                password_changed: bool,
            }
            ctx.emit(
                &Changed {
                    user: &user,
                    password_changed: true,
                },
                || format!("Password of {user} changed.\n"),
            )?;
            Ok(exit::OK)
        }
        UserCommand::List => {
            #[derive(Serialize)]
            struct Account {
                name: String,
                /// RFC 3339.
                created_at: String,
                tokens: u32,
            }
            let list: Vec<Account> = users::list(ctx.store.conn())?
                .into_iter()
                .map(|u| Account {
                    name: u.name,
                    created_at: rfc3339(u.created_at),
                    tokens: u.tokens,
                })
                .collect();
            ctx.emit(&list, || {
                if list.is_empty() {
                    return "No accounts yet (pat-admin user add USER).\n".into();
                }
                table(
                    &["USER", "TOKENS", "CREATED"],
                    list.iter()
                        .map(|u| vec![u.name.clone(), u.tokens.to_string(), u.created_at.clone()])
                        .collect(),
                )
            })?;
            Ok(exit::OK)
        }
    }
}
