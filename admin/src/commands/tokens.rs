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

use super::{Changed, Ctx, table};
use crate::cli::{
    CopyArgs, EditArgs, GenerateArgs, ListArgs, RegenerateArgs, RemoveArgs, Scope, TokenRef,
};
use crate::error::{Error, Result, exit};
use crate::expiry::{self, last_day, rfc3339};
use crate::password::Source;
use crate::snapshot;
use crate::store::{audit, now, settings, tokens};

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
    /// When it stops working (the end of its last valid day), RFC 3339; `null` = never.
    pub expires_at: Option<String>,
    /// Its last valid day (UTC) as `--expires-at` takes it, `DD-MM-YYYY`; `null` = never.
    pub valid_through: Option<String>,
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
            expires_at: t.expires_at.map(rfc3339),
            valid_through: t.expires_at.map(last_day),
            created_at: rfc3339(t.created_at),
            regenerated_at: t.regenerated_at.map(rfc3339),
            status: if t.is_expired(at) {
                "expired"
            } else {
                "active"
            },
        }
    }

    /// `5d 3h`, `40m`, `expired`, `never`.
    fn expires_in(&self, expires_at: Option<u64>, at: u64) -> String {
        match expires_at {
            None => "never".into(),
            Some(end) if end <= at => "expired".into(),
            Some(end) => remaining(end - at),
        }
    }

    /// The scope with its size, once: `IDE Plugins (14 methods)`, `environment.Control.StopEnv`
    /// (1 method), `2 methods`.
    fn scope_detail(&self) -> String {
        match (&self.scope.set_name, self.scope.methods.as_slice()) {
            (None, [one]) => format!("{one} (1 method)"),
            (None, many) => plural(many.len(), "method"),
            (Some(name), methods) => format!("{name} ({})", plural(methods.len(), "method")),
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

/// Shows a new token's value exactly once: writes it to the claimed file, or (for people)
/// prints it on stdout now, before publishing can take any time. Returns what the change's
/// JSON reports (with the value when it went to no file), printed after publishing.
fn deliver(
    ctx: &Ctx,
    view: View,
    value: &Token,
    claimed: Option<(PathBuf, File)>,
    verb: &str,
) -> Result<Issued> {
    let headline = format!(
        "Token {} {verb} for {} ({}, {}).",
        view.id,
        view.user,
        view.scope_summary(),
        view.valid_through
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
            Ok(Issued {
                view,
                token: None,
                token_file: Some(path.clone()),
            })
        }
        None => {
            let id = view.id;
            let user = view.user.clone();
            if !ctx.out.json {
                ctx.note(&format!(
                    "{headline}\nCopy it now: it will not be shown again."
                ));
                crate::output::stdout(&format!("{}\n", value.expose())).map_err(|e| {
                    Error::Internal(format!(
                        "token {id} of {user} was saved, but its value could not be written to standard output ({e}); nobody has it: remove the token with pat-admin remove --user {user} {id}, or regenerate it with --output FILE"
                    ))
                })?;
            }
            Ok(Issued {
                view,
                token: Some(value.expose().to_string()),
                token_file: None,
            })
        }
    }
}

/// After a change was committed (and, for people, reported): publish it, then print the
/// change's JSON with the publish result. Returns the exit code.
fn finish<T: Serialize>(
    ctx: &mut Ctx,
    confirm: &crate::cli::Confirm,
    built: Option<crate::store::snapshots::Published>,
    change: T,
) -> Result<u8> {
    let (publish, code) = ctx.publish_after_change(confirm, built)?;
    ctx.out.json_only(&Changed { change, publish })?;
    Ok(code)
}

/// `3d 4h`, `5h 10m`, `12m`: a remaining time, two units at most.
fn remaining(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3_600, secs % 3_600 / 60);
    match (d, h, m) {
        (0, 0, m) => format!("{}m", m.max(1)),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// `generate`.
pub fn generate(ctx: &mut Ctx, args: GenerateArgs) -> Result<u8> {
    let description = description(&args.description)?;
    let (scope_set, methods) = resolve_scope(ctx, &args.scope)?.ok_or_else(|| {
        Error::Invalid("choose a scope: --api SET or --method NAME (see pat-admin methods)".into())
    })?;
    let expires_at = expiry(ctx, args.expires_at.as_deref())?;
    let user = ctx.account(&args.user)?;
    let claimed = claim_output(args.output.as_deref())?;
    let outcome = (|| {
        let mut source = Source::new(args.confirm.password_stdin);
        let confirmed = ctx.confirm_password(&user, &mut source)?;
        let value = Token::generate().map_err(|e| Error::Random(e.to_string()))?;
        let max = max_tokens(ctx)?;
        let mut row = tokens::Token {
            id: 0,
            user: user.clone(),
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
            Ctx::still_confirmed(tx, &user, &confirmed)?;
            let count = tokens::count(tx, &user)?;
            if count >= max {
                return Err(Error::Refused(format!(
                    "{} already has {count} tokens, the maximum; remove some, or raise the limit with: pat-admin config set max-tokens-per-account N",
                    user
                )));
            }
            let id = tokens::insert(tx, &row)?;
            audit::record(tx, Some(&user), "token.generate", Some(id), &describe(&row))?;
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
    let issued = deliver(ctx, view, &value, claimed, "created")?;
    finish(ctx, &args.confirm, built, issued)
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

/// `list`: one account's tokens or every account's, optionally only the active ones that
/// expire within a duration (exit 8 when there are any: for cron and monitoring).
pub fn list(ctx: &mut Ctx, args: &ListArgs) -> Result<u8> {
    let window = args
        .expiring_within
        .as_deref()
        .map(|text| {
            crate::duration::parse(text)
                .map_err(|e| Error::Invalid(format!("--expiring-within: {e}")))
        })
        .transpose()?;
    let user = args.user.as_deref().map(|u| ctx.account(u)).transpose()?;
    let at = now();
    let rows = match &user {
        Some(user) => tokens::list(ctx.store.conn(), user)?,
        None => tokens::list_all(ctx.store.conn())?,
    };
    let rows: Vec<tokens::Token> = rows
        .into_iter()
        .filter(|t| {
            window.is_none_or(|w| {
                !t.is_expired(at) && t.expires_at.is_some_and(|end| end <= at.saturating_add(w))
            })
        })
        .collect();
    let views: Vec<View> = rows.iter().map(|t| View::of(ctx, t, at)).collect();
    ctx.emit(&views, || {
        if views.is_empty() {
            return match (&user, &args.expiring_within) {
                (_, Some(w)) => format!("No active token expires within {w}.\n"),
                (Some(user), None) => {
                    format!("{user} has no tokens (pat-admin generate --user {user} ...).\n")
                }
                (None, None) => "No tokens yet (pat-admin generate --user USER ...).\n".into(),
            };
        }
        let mut header = vec!["ID"];
        if user.is_none() {
            header.push("USER");
        }
        header.extend([
            "DESCRIPTION",
            "SCOPE",
            "EXPIRES",
            "EXPIRES IN",
            "CREATED",
            "STATUS",
        ]);
        table(
            &header,
            views
                .iter()
                .zip(&rows)
                .map(|(v, t)| {
                    let mut row = vec![v.id.to_string()];
                    if user.is_none() {
                        row.push(v.user.clone());
                    }
                    let expires_in = v.expires_in(t.expires_at, at);
                    let soon = t
                        .expires_at
                        .is_some_and(|end| end > at && end - at <= 14 * 86_400);
                    row.extend([
                        v.description.clone(),
                        v.scope_summary(),
                        v.valid_through.clone().unwrap_or_else(|| "never".into()),
                        if soon {
                            crate::output::paint(crate::output::WARN, &expires_in)
                        } else {
                            expires_in
                        },
                        v.created_at.clone(),
                        status_cell(v.status),
                    ]);
                    row
                })
                .collect(),
        )
    })?;
    if window.is_some() && !views.is_empty() {
        ctx.out.failure(
            &format!(
                "{} active token(s) expire within {}",
                views.len(),
                args.expiring_within.as_deref().unwrap_or_default()
            ),
            exit::EXPIRING,
        );
        return Ok(exit::EXPIRING);
    }
    Ok(exit::OK)
}

/// `active` in green, `expired` in red (on a terminal).
fn status_cell(status: &str) -> String {
    let style = if status == "active" {
        crate::output::GOOD
    } else {
        crate::output::BAD
    };
    crate::output::paint(style, status)
}

/// `show`.
pub fn show(ctx: &mut Ctx, args: &TokenRef) -> Result<u8> {
    let user = ctx.account(&args.user)?;
    let t = tokens::require(ctx.store.conn(), &user, args.id)?;
    let view = View::of(ctx, &t, now());
    ctx.emit(&view, || {
        let mut text = table(
            &["FIELD", "VALUE"],
            vec![
                vec!["id".into(), view.id.to_string()],
                vec!["user".into(), view.user.clone()],
                vec!["description".into(), view.description.clone()],
                vec!["scope".into(), view.scope_detail()],
                vec![
                    "expires".into(),
                    match view.valid_through.as_deref() {
                        None => "never".into(),
                        Some(d) => format!(
                            "{d} (end of day, UTC; {})",
                            match view.expires_in(t.expires_at, now()).as_str() {
                                "expired" => "expired".to_string(),
                                left => format!("in {left}"),
                            }
                        ),
                    },
                ],
                vec!["created".into(), view.created_at.clone()],
                vec![
                    "regenerated".into(),
                    view.regenerated_at
                        .clone()
                        .unwrap_or_else(|| "never".into()),
                ],
                vec!["status".into(), status_cell(view.status)],
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
    let user = ctx.account(&args.token.user)?;
    let apply = |mut row: tokens::Token| {
        if let Some(d) = &description {
            row.description = d.clone();
        }
        if let Some((set, methods)) = &scope {
            row.scope_set = set.clone();
            row.methods = methods.clone();
        }
        if let Some(e) = expires_at {
            row.expires_at = e;
        }
        row
    };
    let current = tokens::require(ctx.store.conn(), &user, args.token.id)?;
    if apply(current.clone()) == current {
        // Nothing would change: no password, no audit entry, no new snapshot.
        let view = View::of(ctx, &current, now());
        #[derive(Serialize)]
        struct Unchanged {
            #[serde(flatten)]
            view: View,
            changed: bool,
        }
        let text = format!(
            "Token {} of {} unchanged: it already has these values.\n",
            view.id, view.user
        );
        ctx.note(text.trim_end());
        ctx.out.json_only(&Unchanged {
            view,
            changed: false,
        })?;
        return Ok(exit::OK);
    }
    let mut source = Source::new(args.confirm.password_stdin);
    let confirmed = ctx.confirm_password(&user, &mut source)?;
    let dir = ctx.store.dir().to_path_buf();
    let (row, built) = ctx.store.write(|tx| {
        Ctx::still_confirmed(tx, &user, &confirmed)?;
        let before = tokens::require(tx, &user, args.token.id)?;
        let row = apply(before.clone());
        if row == before {
            return Ok((row, None));
        }
        tokens::update(tx, &row)?;
        audit::record(tx, Some(&user), "token.edit", Some(row.id), &describe(&row))?;
        Ok((row, snapshot::after_change(tx, &dir)?))
    })?;
    let view = View::of(ctx, &row, now());
    ctx.note(&format!("Token {} of {} updated.", view.id, view.user));
    #[derive(Serialize)]
    struct Edited {
        #[serde(flatten)]
        view: View,
        changed: bool,
    }
    finish(
        ctx,
        &args.confirm,
        built,
        Edited {
            view,
            changed: true,
        },
    )
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
    let user = ctx.account(&args.token.user)?;
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
    let issued = deliver(ctx, view, &value, claimed, "regenerated")?;
    finish(ctx, &args.confirm, built, issued)
}

/// `copy`: a new token with another one's parameters.
pub fn copy(ctx: &mut Ctx, args: CopyArgs) -> Result<u8> {
    let user = ctx.account(&args.token.user)?;
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
    let issued = deliver(ctx, view, &value, claimed, "created")?;
    finish(ctx, &args.confirm, built, issued)
}

/// `remove`: every id must exist, or nothing is removed.
pub fn remove(ctx: &mut Ctx, args: RemoveArgs) -> Result<u8> {
    let user = ctx.account(&args.user)?;
    let mut ids = args.ids.clone();
    ids.sort_unstable();
    ids.dedup();
    for &id in &ids {
        tokens::require(ctx.store.conn(), &user, id)?;
    }
    let mut source = Source::new(args.confirm.password_stdin);
    let confirmed = ctx.confirm_password(&user, &mut source)?;
    let dir = ctx.store.dir().to_path_buf();
    let built = ctx.store.write(|tx| {
        Ctx::still_confirmed(tx, &user, &confirmed)?;
        for &id in &ids {
            if !tokens::delete(tx, &user, id)? {
                return Err(Error::NoSuchToken {
                    user: user.clone(),
                    id,
                });
            }
            audit::record(tx, Some(&user), "token.remove", Some(id), "removed")?;
        }
        snapshot::after_change(tx, &dir)
    })?;
    #[derive(Serialize)]
    struct Removed {
        user: String,
        removed: Vec<i64>,
    }
    if !ctx.out.json {
        let list = ids
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        crate::output::stdout(&format!("Removed token(s) {list} of {user}.\n"))?;
    }
    finish(ctx, &args.confirm, built, Removed { user, removed: ids })
}
