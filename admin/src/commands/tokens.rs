//! Token commands: `generate`, `list`, `show`, `edit`, `regenerate`, `copy`, `remove`.
//!
//! Every change checks its input before asking for the password (a typo costs no password
//! prompt and changes nothing), claims any `--output` file before committing (so the value can
//! never be lost to an existing file), confirms the password, then commits in one transaction
//! that re-checks the password did not change meanwhile and builds, signs and stores the
//! snapshot of the new state (when a signing key is active): what the origin serves is what
//! was committed, even if the process dies before it pushes. The value is shown exactly once.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use pat_core::token::Token;
use serde::Serialize;
use time::OffsetDateTime;

use super::{Ctx, table};
use crate::cli::{CopyArgs, EditArgs, GenerateArgs, RegenerateArgs, RemoveArgs, Scope, TokenRef};
use crate::error::{Error, Result, exit};
use crate::expiry::{self, last_day, rfc3339};
use crate::password::Source;
use crate::snapshot;
use crate::store::{audit, now, settings, tokens, users};

/// Longest description.
const MAX_DESCRIPTION: usize = 200;

/// A token as the commands show it (never its value).
#[derive(Debug, Serialize)]
pub struct View {
    /// Public id.
    pub id: i64,
    /// Account.
    pub user: String,
    /// Description.
    pub description: String,
    /// Scope.
    pub scope: ScopeView,
    /// Last valid day, `DD-MM-YYYY`; `null` = no expiry.
    pub expires_at: Option<String>,
    /// Exclusive end, Unix seconds.
    pub expires_at_unix: Option<u64>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339, if regenerated.
    pub regenerated_at: Option<String>,
    /// `active` or `expired`.
    pub status: &'static str,
}

/// A scope as shown.
#[derive(Debug, Serialize)]
pub struct ScopeView {
    /// Predefined set id, if it came from one.
    pub set: Option<String>,
    /// Its display name.
    pub set_name: Option<String>,
    /// Methods, catalogue spelling.
    pub methods: Vec<String>,
}

impl View {
    fn of(ctx: &Ctx, t: &tokens::Token, at: u64) -> Self {
        let set_name = t
            .scope_set
            .as_deref()
            .and_then(|id| ctx.catalogue.set(id).ok())
            .map(|s| s.name.clone());
        Self {
            id: t.id,
            user: t.user.clone(),
            description: t.description.clone(),
            scope: ScopeView {
                set: t.scope_set.clone(),
                set_name,
                methods: t
                    .methods
                    .iter()
                    .map(|m| ctx.catalogue.display_name(m).to_string())
                    .collect(),
            },
            expires_at: t.expires_at.map(last_day),
            expires_at_unix: t.expires_at,
            created_at: rfc3339(t.created_at),
            regenerated_at: t.regenerated_at.map(rfc3339),
            status: if t.is_expired(at) {
                "expired"
            } else {
                "active"
            },
        }
    }

    fn scope_summary(&self) -> String {
        match (&self.scope.set_name, self.scope.methods.as_slice()) {
            (Some(name), _) => name.clone(),
            (None, [one]) => one.clone(),
            (None, many) => plural(many.len(), "method"),
        }
    }
}

/// A token just created or regenerated: the view plus the value (or where it was written).
#[derive(Debug, Serialize)]
struct Issued {
    #[serde(flatten)]
    view: View,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_file: Option<PathBuf>,
}

/// `1 method`, `3 methods`.
fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

fn description(text: &str) -> Result<String> {
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
    Ok(text.to_string())
}

/// Resolves `--api` / `--method` into (set id, canonical methods); `None` when empty.
fn resolve_scope(ctx: &Ctx, scope: &Scope) -> Result<Option<(Option<String>, Vec<String>)>> {
    if let Some(name) = &scope.api {
        let set = ctx.catalogue.set(name)?;
        let mut methods: Vec<String> = set.methods.iter().map(|m| m.as_str().to_string()).collect();
        methods.sort();
        methods.dedup();
        return Ok(Some((Some(set.id.clone()), methods)));
    }
    if scope.methods.is_empty() {
        return Ok(None);
    }
    let mut methods = Vec::new();
    for name in &scope.methods {
        methods.push(ctx.catalogue.resolve(name)?.canonical.as_str().to_string());
    }
    methods.sort();
    methods.dedup();
    Ok(Some((None, methods)))
}

fn max_lifetime(ctx: &Ctx) -> Result<Option<u32>> {
    settings::get_u32(ctx.store.conn(), settings::MAX_LIFETIME_DAYS)
}

fn max_tokens(ctx: &Ctx) -> Result<u32> {
    Ok(settings::get_u32(ctx.store.conn(), settings::MAX_TOKENS)?
        .unwrap_or(ctx.catalogue.max_tokens_per_account()))
}

/// Parses an optional `--expires-at` against the configured maximum lifetime.
fn expiry(ctx: &Ctx, text: Option<&str>) -> Result<Option<u64>> {
    let max = max_lifetime(ctx)?;
    match text {
        Some(text) => Ok(Some(expiry::parse(text, OffsetDateTime::now_utc(), max)?)),
        None => {
            expiry::check_none(max)?;
            Ok(None)
        }
    }
}

/// Creates `path` exclusively with mode 0600, before anything is committed.
fn claim_output(path: Option<&Path>) -> Result<Option<(PathBuf, File)>> {
    let Some(path) = path else { return Ok(None) };
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Error::FileExists(path.to_path_buf())
            } else {
                Error::io(path, e)
            }
        })?;
    Ok(Some((path.to_path_buf(), file)))
}

/// Removes a claimed output file after a refused change.
fn release_output(claimed: Option<(PathBuf, File)>) {
    if let Some((path, file)) = claimed {
        drop(file);
        let _ = std::fs::remove_file(path);
    }
}

/// Shows a new token's value exactly once: in the claimed file, or on stdout.
fn deliver(
    ctx: &Ctx,
    view: View,
    value: &Token,
    claimed: Option<(PathBuf, File)>,
    verb: &str,
) -> Result<()> {
    let headline = format!(
        "Token {} {verb} for {} ({}, {}).",
        view.id,
        view.user,
        view.scope_summary(),
        view.expires_at
            .as_deref()
            .map_or("no expiry".to_string(), |d| format!("valid through {d}"))
    );
    match claimed {
        Some((path, mut file)) => {
            writeln!(file, "{}", value.expose())
                .and_then(|()| file.sync_all())
                .map_err(|e| Error::io(&path, e))?;
            ctx.note(&format!(
                "{headline}\nThe token was written to {} (mode 0600).",
                path.display()
            ));
            ctx.emit(
                &Issued {
                    view,
                    token: None,
                    token_file: Some(path.clone()),
                },
                String::new,
            )
        }
        None => {
            ctx.note(&format!(
                "{headline}\nCopy it now: it will not be shown again."
            ));
            let shown = value.expose().to_string();
            ctx.emit(
                &Issued {
                    view,
                    token: Some(shown.clone()),
                    token_file: None,
                },
                || format!("{shown}\n"),
            )
        }
    }
}

/// `generate`.
pub fn generate(ctx: &mut Ctx, args: GenerateArgs) -> Result<u8> {
    let description = description(&args.description)?;
    let (scope_set, methods) = resolve_scope(ctx, &args.scope)?.ok_or_else(|| {
        Error::Invalid("choose a scope: --api SET or --method NAME (see pat-admin methods)".into())
    })?;
    let expires_at = expiry(ctx, args.expires_at.as_deref())?;
    users::require(ctx.store.conn(), &args.user)?;
    let claimed = claim_output(args.output.as_deref())?;
    let outcome = (|| {
        let mut source = Source::new(args.confirm.password_stdin);
        let confirmed = ctx.confirm_password(&args.user, &mut source)?;
        let value = Token::generate().map_err(|e| Error::Random(e.to_string()))?;
        let max = max_tokens(ctx)?;
        let mut row = tokens::Token {
            id: 0,
            user: args.user.clone(),
            description,
            hash: value.hash(),
            scope_set,
            methods,
            created_at: now(),
            expires_at,
            regenerated_at: None,
        };
        let dir = ctx.store.dir().to_path_buf();
        let (id, built) = ctx.store.write(|tx| {
            Ctx::still_confirmed(tx, &args.user, &confirmed)?;
            let count = tokens::count(tx, &args.user)?;
            if count >= max {
                return Err(Error::Refused(format!(
                    "{} already has {count} tokens, the maximum; remove some, or raise the limit with: pat-admin config set max-tokens-per-account N",
                    args.user
                )));
            }
            let id = tokens::insert(tx, &row)?;
            audit::record(tx, Some(&args.user), "token.generate", Some(id), &describe(&row))?;
            Ok((id, snapshot::after_change(tx, &dir)?))
        })?;
        row.id = id;
        Ok((row, value, built))
    })();
    let (row, value, built) = match outcome {
        Ok(v) => v,
        Err(e) => {
            release_output(claimed);
            return Err(e);
        }
    };
    let view = View::of(ctx, &row, now());
    deliver(ctx, view, &value, claimed, "created")?;
    ctx.publish_after_change(&args.confirm, built)
}

/// Audit details of a token's parameters (never its value).
fn describe(t: &tokens::Token) -> String {
    format!(
        "description {:?}; scope {}; expires {}",
        t.description,
        t.scope_set.clone().unwrap_or_else(|| t.methods.join(",")),
        t.expires_at.map_or("never".to_string(), last_day)
    )
}

/// `list`.
pub fn list(ctx: &mut Ctx, user: &str) -> Result<u8> {
    users::require(ctx.store.conn(), user)?;
    let at = now();
    let views: Vec<View> = tokens::list(ctx.store.conn(), user)?
        .iter()
        .map(|t| View::of(ctx, t, at))
        .collect();
    ctx.emit(&views, || {
        if views.is_empty() {
            return format!("{user} has no tokens (pat-admin generate --user {user} ...).\n");
        }
        table(
            &["ID", "DESCRIPTION", "SCOPE", "EXPIRES", "CREATED", "STATUS"],
            views
                .iter()
                .map(|v| {
                    vec![
                        v.id.to_string(),
                        v.description.clone(),
                        v.scope_summary(),
                        v.expires_at.clone().unwrap_or_else(|| "never".into()),
                        v.created_at.clone(),
                        v.status.to_string(),
                    ]
                })
                .collect(),
        )
    })?;
    Ok(exit::OK)
}

/// `show`.
pub fn show(ctx: &mut Ctx, args: &TokenRef) -> Result<u8> {
    users::require(ctx.store.conn(), &args.user)?;
    let t = tokens::require(ctx.store.conn(), &args.user, args.id)?;
    let view = View::of(ctx, &t, now());
    ctx.emit(&view, || {
        let mut text = table(
            &["FIELD", "VALUE"],
            vec![
                vec!["id".into(), view.id.to_string()],
                vec!["user".into(), view.user.clone()],
                vec!["description".into(), view.description.clone()],
                vec![
                    "scope".into(),
                    format!(
                        "{} ({})",
                        view.scope_summary(),
                        plural(view.scope.methods.len(), "method")
                    ),
                ],
                vec![
                    "expires".into(),
                    view.expires_at
                        .as_deref()
                        .map_or("never".into(), |d| format!("{d} (end of day, UTC)")),
                ],
                vec!["created".into(), view.created_at.clone()],
                vec![
                    "regenerated".into(),
                    view.regenerated_at
                        .clone()
                        .unwrap_or_else(|| "never".into()),
                ],
                vec!["status".into(), view.status.to_string()],
            ],
        );
        text.push_str("\nMethods:\n");
        for m in &view.scope.methods {
            text.push_str(&format!("  {m}\n"));
        }
        text
    })?;
    Ok(exit::OK)
}

/// `edit`: description, expiry and scope; the value stays the same.
pub fn edit(ctx: &mut Ctx, args: EditArgs) -> Result<u8> {
    let description = args.description.as_deref().map(description).transpose()?;
    let scope = resolve_scope(ctx, &args.scope)?;
    let expires_at = match (&args.expires_at, args.no_expiry) {
        (Some(text), _) => Some(expiry(ctx, Some(text))?),
        (None, true) => Some(expiry(ctx, None)?),
        (None, false) => None,
    };
    if description.is_none() && scope.is_none() && expires_at.is_none() {
        return Err(Error::Invalid(
            "nothing to change: give --description, --expires-at, --no-expiry, --api or --method"
                .into(),
        ));
    }
    let user = args.token.user.clone();
    tokens::require(ctx.store.conn(), &user, args.token.id)?;
    let mut source = Source::new(args.confirm.password_stdin);
    let confirmed = ctx.confirm_password(&user, &mut source)?;
    let dir = ctx.store.dir().to_path_buf();
    let (row, built) = ctx.store.write(|tx| {
        Ctx::still_confirmed(tx, &user, &confirmed)?;
        let mut row = tokens::require(tx, &user, args.token.id)?;
        if let Some(d) = description {
            row.description = d;
        }
        if let Some((set, methods)) = scope {
            row.scope_set = set;
            row.methods = methods;
        }
        if let Some(e) = expires_at {
            row.expires_at = e;
        }
        tokens::update(tx, &row)?;
        audit::record(tx, Some(&user), "token.edit", Some(row.id), &describe(&row))?;
        Ok((row, snapshot::after_change(tx, &dir)?))
    })?;
    let view = View::of(ctx, &row, now());
    ctx.emit(&view, || {
        format!("Token {} of {} updated.\n", view.id, view.user)
    })?;
    ctx.publish_after_change(&args.confirm, built)
}

/// An expiry for a new value (regenerate, copy): the given one, or the kept one if it is
/// still in the future. A new value is a new credential, so a kept expiry (or the lack of
/// one) must fit the maximum lifetime configured now, like any other.
fn fresh_expiry(ctx: &Ctx, given: Option<&str>, kept: Option<u64>, id: i64) -> Result<Option<u64>> {
    match given {
        Some(text) => expiry(ctx, Some(text)),
        None if kept.is_some_and(|at| now() >= at) => Err(Error::Invalid(format!(
            "token {id} expired on {}; give it a new date with --expires-at DD-MM-YYYY",
            kept.map(last_day).unwrap_or_default()
        ))),
        None => {
            expiry(ctx, kept.map(last_day).as_deref())?;
            Ok(kept)
        }
    }
}

/// `regenerate`: a new value, every other parameter kept, the old value dead.
pub fn regenerate(ctx: &mut Ctx, args: RegenerateArgs) -> Result<u8> {
    let user = args.token.user.clone();
    let existing = tokens::require(ctx.store.conn(), &user, args.token.id)?;
    let expires_at = fresh_expiry(
        ctx,
        args.expires_at.as_deref(),
        existing.expires_at,
        existing.id,
    )?;
    let claimed = claim_output(args.output.as_deref())?;
    let outcome = (|| {
        let mut source = Source::new(args.confirm.password_stdin);
        let confirmed = ctx.confirm_password(&user, &mut source)?;
        let value = Token::generate().map_err(|e| Error::Random(e.to_string()))?;
        let dir = ctx.store.dir().to_path_buf();
        let (row, built) = ctx.store.write(|tx| {
            Ctx::still_confirmed(tx, &user, &confirmed)?;
            let mut row = tokens::require(tx, &user, args.token.id)?;
            row.hash = value.hash();
            row.expires_at = expires_at;
            row.regenerated_at = Some(now());
            tokens::update(tx, &row)?;
            audit::record(
                tx,
                Some(&user),
                "token.regenerate",
                Some(row.id),
                &describe(&row),
            )?;
            Ok((row, snapshot::after_change(tx, &dir)?))
        })?;
        Ok((row, value, built))
    })();
    let (row, value, built) = match outcome {
        Ok(v) => v,
        Err(e) => {
            release_output(claimed);
            return Err(e);
        }
    };
    let view = View::of(ctx, &row, now());
    deliver(ctx, view, &value, claimed, "regenerated")?;
    ctx.publish_after_change(&args.confirm, built)
}

/// `copy`: a new token with another one's parameters.
pub fn copy(ctx: &mut Ctx, args: CopyArgs) -> Result<u8> {
    let user = args.token.user.clone();
    let source_token = tokens::require(ctx.store.conn(), &user, args.token.id)?;
    let description = match &args.description {
        Some(d) => description(d)?,
        None => source_token.description.clone(),
    };
    let expires_at = fresh_expiry(
        ctx,
        args.expires_at.as_deref(),
        source_token.expires_at,
        source_token.id,
    )?;
    let claimed = claim_output(args.output.as_deref())?;
    let outcome = (|| {
        let mut source = Source::new(args.confirm.password_stdin);
        let confirmed = ctx.confirm_password(&user, &mut source)?;
        let value = Token::generate().map_err(|e| Error::Random(e.to_string()))?;
        let max = max_tokens(ctx)?;
        let mut row = tokens::Token {
            id: 0,
            description,
            hash: value.hash(),
            created_at: now(),
            expires_at,
            regenerated_at: None,
            ..source_token.clone()
        };
        let dir = ctx.store.dir().to_path_buf();
        let (id, built) = ctx.store.write(|tx| {
            Ctx::still_confirmed(tx, &user, &confirmed)?;
            let count = tokens::count(tx, &user)?;
            if count >= max {
                return Err(Error::Refused(format!(
                    "{user} already has {count} tokens, the maximum; remove some, or raise the limit with: pat-admin config set max-tokens-per-account N"
                )));
            }
            let id = tokens::insert(tx, &row)?;
            audit::record(tx, Some(&user), "token.copy", Some(id), &format!("copy of {}; {}", source_token.id, describe(&row)))?;
            Ok((id, snapshot::after_change(tx, &dir)?))
        })?;
        row.id = id;
        Ok((row, value, built))
    })();
    let (row, value, built) = match outcome {
        Ok(v) => v,
        Err(e) => {
            release_output(claimed);
            return Err(e);
        }
    };
    let view = View::of(ctx, &row, now());
    deliver(ctx, view, &value, claimed, "created")?;
    ctx.publish_after_change(&args.confirm, built)
}

/// `remove`: every id must exist, or nothing is removed.
pub fn remove(ctx: &mut Ctx, args: RemoveArgs) -> Result<u8> {
    let mut ids = args.ids.clone();
    ids.sort_unstable();
    ids.dedup();
    for &id in &ids {
        tokens::require(ctx.store.conn(), &args.user, id)?;
    }
    let mut source = Source::new(args.confirm.password_stdin);
    let confirmed = ctx.confirm_password(&args.user, &mut source)?;
    let dir = ctx.store.dir().to_path_buf();
    let built = ctx.store.write(|tx| {
        Ctx::still_confirmed(tx, &args.user, &confirmed)?;
        for &id in &ids {
            if !tokens::delete(tx, &args.user, id)? {
                return Err(Error::NoSuchToken {
                    user: args.user.clone(),
                    id,
                });
            }
            audit::record(tx, Some(&args.user), "token.remove", Some(id), "removed")?;
        }
        snapshot::after_change(tx, &dir)
    })?;
    #[derive(Serialize)]
    struct Removed<'a> {
        user: &'a str,
        removed: &'a [i64],
    }
    ctx.emit(
        &Removed {
            user: &args.user,
            removed: &ids,
        },
        || {
            let list = ids
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            format!("Removed token(s) {list} of {}.\n", args.user)
        },
    )?;
    ctx.publish_after_change(&args.confirm, built)
}
