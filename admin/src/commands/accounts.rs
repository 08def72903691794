//! `user add`, `user passwd`, `user list`, `user disable`, `user enable`.

use pat_core::user::validate_user_name;
use serde::Serialize;

use super::{Ctx, table};
use crate::cli::UserCommand;
use crate::error::{Error, Result, exit};
use crate::expiry::rfc3339;
use crate::ops::Confirmation;
use crate::password::{self, Source};
use crate::store::{audit, users};

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
            let created_at = ctx.store.now();
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
            ctx.ops()
                .change_password(&actor, Confirmation::confirmed(confirmed), &hash)?;
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
                /// A platform account's uid (`null`: a local account).
                platform_uid: Option<i64>,
                /// A platform account's email, as the platform last said.
                email: Option<String>,
                /// What edges forward for its tokens (`x-pat-user`).
                identity: String,
                /// `null` while enabled.
                disabled: Option<DisabledView>,
            }
            #[derive(Serialize)]
            struct DisabledView {
                /// RFC 3339.
                at: String,
                by: users::DisabledBy,
                reason: String,
            }
            let list: Vec<Account> = users::list(ctx.store.conn())?
                .into_iter()
                .map(|s| Account {
                    identity: s.user.edge_identity().to_string(),
                    name: s.user.name,
                    created_at: rfc3339(s.user.created_at),
                    tokens: s.tokens,
                    platform_uid: s.user.platform_uid,
                    email: s.user.email,
                    disabled: s.user.disabled.map(|d| DisabledView {
                        at: rfc3339(d.at),
                        by: d.by,
                        reason: d.reason,
                    }),
                })
                .collect();
            ctx.emit(&list, || {
                if list.is_empty() {
                    return "No accounts yet (pat-admin user add USER; in platform mode, accounts appear on first use).\n".into();
                }
                table(
                    &["USER", "EMAIL", "IDENTITY", "TOKENS", "CREATED", "STATUS"],
                    list.iter()
                        .map(|u| {
                            vec![
                                u.name.clone(),
                                u.email.clone().unwrap_or_else(|| "-".into()),
                                u.identity.clone(),
                                u.tokens.to_string(),
                                u.created_at.clone(),
                                match &u.disabled {
                                    None => "enabled".into(),
                                    Some(d) => format!(
                                        "disabled since {} ({})",
                                        d.at,
                                        d.reason
                                    ),
                                },
                            ]
                        })
                        .collect(),
                )
            })?;
            Ok(exit::OK)
        }
        UserCommand::Disable {
            user,
            reason,
            no_publish,
            push,
        } => {
            let reason = reason.trim().to_string();
            if reason.is_empty()
                || reason.chars().count() > 200
                || reason.chars().any(char::is_control)
            {
                return Err(Error::Invalid(
                    "--reason: say why in at most 200 characters, without control characters"
                        .into(),
                ));
            }
            let disabled = users::Disabled {
                at: ctx.store.now(),
                by: users::DisabledBy::Operator,
                reason,
            };
            switch(ctx, &user, Some(disabled), no_publish, push)
        }
        UserCommand::Enable {
            user,
            no_publish,
            push,
        } => switch(ctx, &user, None, no_publish, push),
    }
}

/// `user disable` / `user enable`: the change, signed, then published like a token change
/// (exit 0, 6 or 7).
fn switch(
    ctx: &mut Ctx,
    user: &str,
    disabled: Option<users::Disabled>,
    no_publish: bool,
    push: crate::cli::PushOpts,
) -> Result<u8> {
    let disabling = disabled.is_some();
    let publishing = ctx.publishing(no_publish, &push)?;
    let done = ctx
        .ops()
        .switch_account(&audit::actor(), user, disabled, publishing)?;
    let change = done.outcome;
    let name = change.account.display();
    if !change.changed {
        ctx.note(&format!(
            "{name} is already {}; nothing was changed.",
            if disabling { "disabled" } else { "enabled" }
        ));
    }
    let (publish, code) = match done.publish {
        Some(publish) => {
            let code = ctx.report_publish(&publish);
            (publish, code)
        }
        None => (
            super::ChangePublish::unpushed(super::PublishState::Skipped, None),
            exit::OK,
        ),
    };
    #[derive(Serialize)]
    struct Switched {
        user: String,
        disabled: bool,
        changed: bool,
        /// Tokens that left (or came back to) the edges.
        tokens: usize,
        publish: super::ChangePublish,
    }
    let report = Switched {
        user: change.account.name.clone(),
        disabled: disabling,
        changed: change.changed,
        tokens: change.tokens,
        publish,
    };
    ctx.emit(&report, || {
        if !report.changed {
            return String::new();
        }
        format!(
            "{name} {}: {} token(s) {}.\n",
            if disabling { "disabled" } else { "enabled" },
            report.tokens,
            if disabling {
                "left the edges"
            } else {
                "are back on the edges"
            }
        )
    })?;
    Ok(code)
}
