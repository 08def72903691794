//! Token commands: `generate`, `list`, `show`, `edit`, `regenerate`, `copy`, `remove`:
//! argument handling and output; the operations themselves are [`crate::ops`], shared with
//! the platform API.
//!
//! Every change checks its input before asking for the password (a typo costs no password
//! prompt and changes nothing), claims any `--output` file before committing (so the value can
//! never be lost to an existing file), confirms the password, then commits in one transaction
//! that re-checks the password did not change meanwhile and builds, signs and stores the
//! snapshot of the new state (when a signing key is active): what the origin serves is what
//! was committed, even if the process dies before it pushes. The value is shown exactly once.

use std::cell::RefCell;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use pat_core::token::Token;
use serde::Serialize;

use super::{ChangePublish, Changed, Ctx, PublishState, create_secret_file, table};
use crate::catalogue::Catalogue;
use crate::cli::{
    Confirm, CopyArgs, EditArgs, GenerateArgs, Limits, ListArgs, RegenerateArgs, RemoveArgs, Scope,
    TokenRef,
};
use crate::error::{Error, Result, exit};
use crate::expiry::{last_day, rfc3339};
use crate::ops::{
    self, Actor, CopyOf, Description, Edit, Envs, Networks, NewToken, Rate, Regeneration, Selection,
};
use crate::output::Output;
use crate::password::Source;
use crate::settings::DEFAULT_RATE_LIMIT;
use crate::store::{tokens, users};
use pat_core::rate::RateLimit;

/// A token as the commands show it (never its value).
#[derive(Debug, Serialize)]
pub struct View {
    /// Public id.
    pub id: i64,
    /// Account.
    pub user: String,
    /// A platform account's email, as the platform last said (`null`: a local account).
    pub email: Option<String>,
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
    /// When an edge last let it through (usage reports), RFC 3339; `null` = never.
    pub last_used_at: Option<String>,
    /// The client address of that use, if the edge knew it.
    pub last_used_ip: Option<String>,
    /// The client networks it is accepted from (CIDRs); empty: any address.
    pub allowed_ips: Vec<String>,
    /// The environments it may act on (lowercase, sorted); `null`: any.
    pub envs: Option<Vec<String>>,
    /// Its own rate limit (`10/s`, `600/min`); `null`: none of its own.
    pub rate_limit: Option<String>,
    /// The rate limit edges enforce: its own, else the `default-rate-limit` setting's;
    /// `null`: none.
    pub effective_rate_limit: Option<String>,
    /// Until when its previous value still works (a regeneration's grace window), RFC 3339;
    /// `null` when no previous value works.
    pub old_value_expires_at: Option<String>,
    /// `active`, `expired`, or `suspended` (its account is disabled: on no edge).
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
    fn of(ctx: &Ctx, t: &tokens::Token, at: u64, default_rate: Option<RateLimit>) -> Self {
        let email = crate::store::users::get(ctx.store.conn(), &t.user)
            .ok()
            .flatten()
            .and_then(|u| u.email);
        Self::build(ctx.catalogue, email, t, at, default_rate)
    }

    /// The view of `t` of the account with `email` (while the store is busy with a change),
    /// `default_rate` the `default-rate-limit` setting's.
    fn build(
        catalogue: &Catalogue,
        email: Option<String>,
        t: &tokens::Token,
        at: u64,
        default_rate: Option<RateLimit>,
    ) -> Self {
        let set_name = t
            .scope_set
            .as_deref()
            .and_then(|id| catalogue.set(id).ok())
            .map(|s| s.name.clone());
        Self {
            id: t.id,
            user: t.user.clone(),
            email,
            description: t.description.clone(),
            scope: ScopeView {
                set: t.scope_set.clone(),
                set_name,
                methods: t
                    .methods
                    .iter()
                    .map(|m| catalogue.display_name(m).to_string())
                    .collect(),
            },
            expires_at: t.expires_at.map(rfc3339),
            valid_through: t.expires_at.map(last_day),
            created_at: rfc3339(t.created_at),
            regenerated_at: t.regenerated_at.map(rfc3339),
            last_used_at: t.last_used_at.map(rfc3339),
            last_used_ip: t.last_used_ip.clone(),
            allowed_ips: t.networks.iter().map(ToString::to_string).collect(),
            envs: t.envs.as_ref().map(|e| e.names().to_vec()),
            rate_limit: t.rate_limit.map(|r| r.to_string()),
            effective_rate_limit: t.rate_limit.or(default_rate).map(|r| r.to_string()),
            old_value_expires_at: t.old_value_until(at).map(rfc3339),
            status: if t.suspended {
                "suspended"
            } else if t.is_expired(at) {
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

    /// `any`, `127.0.0.2/32`, `10.0.0.0/8 +2`.
    fn ips_summary(&self) -> String {
        match self.allowed_ips.as_slice() {
            [] => "any".into(),
            [one] => one.clone(),
            [first, rest @ ..] => format!("{first} +{}", rest.len()),
        }
    }

    /// `any`, `my-app`, `my-app +2`.
    fn envs_summary(&self) -> String {
        match self.envs.as_deref() {
            None | Some([]) => "any".into(),
            Some([one]) => one.clone(),
            Some([first, rest @ ..]) => format!("{first} +{}", rest.len()),
        }
    }

    /// `10/s`, `600/min (default)`, `none`.
    fn rate_summary(&self) -> String {
        match (&self.rate_limit, &self.effective_rate_limit) {
            (Some(own), _) => own.clone(),
            (None, Some(default)) => format!("{default} (default)"),
            (None, None) => "none".into(),
        }
    }

    /// The account as shown: the name, and a platform account's email.
    fn user_detail(&self) -> String {
        match &self.email {
            Some(email) => format!("{} ({email})", self.user),
            None => self.user.clone(),
        }
    }

    /// The status, with the previous value's end when one still works.
    fn status_detail(&self) -> String {
        if self.status == "suspended" {
            return status_cell("suspended (account disabled)");
        }
        match &self.old_value_expires_at {
            Some(end) => format!("{}; old value until {end}", status_cell(self.status)),
            None => status_cell(self.status),
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

/// `--api` / `--method` as a checked scope; `None` when neither was given.
fn resolve_scope(ctx: &Ctx, scope: &Scope) -> Result<Option<ops::Scope>> {
    if let Some(name) = &scope.api {
        return Ok(Some(ops::Scope::set(ctx.catalogue, name)?));
    }
    if scope.methods.is_empty() {
        return Ok(None);
    }
    Ok(Some(ops::Scope::methods(ctx.catalogue, &scope.methods)?))
}

/// Creates `path` exclusively with mode 0600, before anything is committed.
fn claim_output(path: Option<&Path>) -> Result<Option<(PathBuf, File)>> {
    let Some(path) = path else { return Ok(None) };
    let file = create_secret_file(path)?;
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
    out: Output,
    view: View,
    value: &Token,
    claimed: Option<(PathBuf, File)>,
    verb: &str,
) -> Result<Issued> {
    let mut headline = format!(
        "Token {} {verb} for {} ({}, {}).",
        view.id,
        view.user,
        view.scope_summary(),
        view.valid_through
            .as_deref()
            .map_or("no expiry".to_string(), |d| format!("valid through {d}"))
    );
    if !view.allowed_ips.is_empty() {
        headline.push_str(&format!(
            "\nAccepted only from {}.",
            view.allowed_ips.join(", ")
        ));
    }
    if let Some(envs) = &view.envs {
        headline.push_str(&format!(
            "\nLimited to the environment(s) {}.",
            envs.join(", ")
        ));
    }
    if let Some(rate) = &view.effective_rate_limit {
        headline.push_str(&format!(
            "\nAt most {rate} on each edge{}.",
            if view.rate_limit.is_none() {
                " (the default rate limit)"
            } else {
                ""
            }
        ));
    }
    if let Some(end) = &view.old_value_expires_at {
        headline.push_str(&format!("\nThe old value keeps working until {end}."));
    }
    match claimed {
        Some((path, mut file)) => {
            writeln!(file, "{}", value.expose())
                .and_then(|()| file.sync_all())
                .map_err(|e| Error::io(&path, e))?;
            out.note(&format!(
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
            if !out.json {
                out.note(&format!(
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

/// After a change was committed (and, for people, reported) and published: what
/// publishing did (a note or a failure line), then the change's JSON with the publish
/// result. Returns the exit code.
fn finish<T: Serialize>(ctx: &Ctx, publish: Option<ChangePublish>, change: T) -> Result<u8> {
    let publish = publish.unwrap_or_else(|| ChangePublish::unpushed(PublishState::Skipped, None));
    let code = ctx.report_publish(&publish);
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
    let description = Description::parse(&args.description)?;
    let scope = resolve_scope(ctx, &args.scope)?.ok_or_else(|| {
        Error::Invalid("choose a scope: --api SET or --method NAME (see pat-admin methods)".into())
    })?;
    let expiry = ctx.ops().expiry_day(args.expires_at.as_deref())?;
    let networks = Networks::parse(&args.allow_ip, "--allow-ip")?;
    let envs = Envs::parse(&args.env, "--env")?;
    let rate = args
        .rate_limit
        .as_deref()
        .map(rate_flag)
        .transpose()?
        .unwrap_or_default();
    let actor = ctx.actor(&args.user)?;
    let new = NewToken::new(description, scope, expiry)
        .with_networks(networks)
        .with_envs(envs)
        .with_rate(rate);
    issue(
        ctx,
        &actor,
        NewValue::Create(new),
        args.output.as_deref(),
        &args.confirm,
        "created",
    )
}

/// `--rate-limit N/s|N/min`, checked (no limit is `--no-rate-limit`, not a value).
fn rate_flag(text: &str) -> Result<Rate> {
    let rate = Rate::parse(text, "--rate-limit")?;
    if rate.limit().is_none() {
        return Err(Error::Invalid(format!(
            "--rate-limit: `{}` is not a rate limit: write it as N/s or N/min, e.g. 10/s or 600/min (to drop one: --no-rate-limit)",
            text.trim()
        )));
    }
    Ok(rate)
}

/// `--env`/`--any-env` and `--rate-limit`/`--no-rate-limit`, checked: `None` for each not
/// given (kept).
fn limits(args: &Limits) -> Result<(Option<Envs>, Option<Rate>)> {
    let envs = if args.any_env {
        Some(Envs::any())
    } else if args.env.is_empty() {
        None
    } else {
        let envs = Envs::parse(&args.env, "--env")?;
        if envs.list().is_none() {
            return Err(Error::Invalid(
                "--env: no environment name given (to allow any environment: --any-env)".into(),
            ));
        }
        Some(envs)
    };
    let rate = if args.no_rate_limit {
        Some(Rate::none())
    } else {
        args.rate_limit.as_deref().map(rate_flag).transpose()?
    };
    Ok((envs, rate))
}

/// The change that issues a new value.
enum NewValue<'a> {
    Create(NewToken),
    Copy(CopyOf<'a>),
    Regenerate(Regeneration<'a>),
}

/// Issues a new value: checks, claims any `--output` file before the password is read (so
/// the value can never be lost to an existing file; released again when the change is
/// refused), confirms, commits, shows the value once (before publishing can take any
/// time), publishes.
fn issue(
    ctx: &mut Ctx,
    actor: &Actor,
    change: NewValue<'_>,
    output: Option<&Path>,
    confirm: &Confirm,
    verb: &str,
) -> Result<u8> {
    let (catalogue, out) = (ctx.catalogue, ctx.out);
    let clock = ctx.store.clock().clone();
    let email = users::get(ctx.store.conn(), actor.account())?.and_then(|u| u.email);
    let default_rate = DEFAULT_RATE_LIMIT.get(ctx.store.conn())?;
    let claimed = RefCell::new(None);
    let mut source = Source::new(confirm.password_stdin);
    let publishing = ctx.publishing(confirm.no_publish, &confirm.push)?;
    let confirmation = ctx.confirmation(&mut source, || {
        *claimed.borrow_mut() = claim_output(output)?;
        Ok(())
    });
    let mut shown = None;
    let committed = |issued: &ops::Issued| -> Result<()> {
        let view = View::build(
            catalogue,
            email.clone(),
            &issued.token,
            clock.now(),
            default_rate,
        );
        let taken = claimed.borrow_mut().take();
        shown = Some(deliver(out, view, &issued.value, taken, verb)?);
        Ok(())
    };
    let done = ctx.with_ops(actor, |mut ops| match change {
        NewValue::Create(new) => ops.create(actor, new, confirmation, publishing, committed),
        NewValue::Copy(copy) => ops.copy_token(actor, copy, confirmation, publishing, committed),
        NewValue::Regenerate(regeneration) => {
            ops.regenerate_token(actor, regeneration, confirmation, publishing, committed)
        }
    });
    let done = match done {
        Ok(done) => done,
        Err(e) => {
            release_output(claimed.borrow_mut().take());
            return Err(e);
        }
    };
    let shown = shown.ok_or_else(|| Error::Internal("a new value was not shown".into()))?;
    finish(ctx, done.publish, shown)
}

/// `list`: one account's tokens or every account's, optionally only the active ones that
/// expire within a duration, or that no edge reported a use of for a duration (exit 8 when
/// there are any: for cron and monitoring).
pub fn list(ctx: &mut Ctx, args: &ListArgs) -> Result<u8> {
    let parse = |flag: &str, text: Option<&str>| {
        text.map(|text| {
            crate::duration::parse(text).map_err(|e| Error::Invalid(format!("--{flag}: {e}")))
        })
        .transpose()
    };
    let window = parse("expiring-within", args.expiring_within.as_deref())?;
    let unused = parse("unused-for", args.unused_for.as_deref())?;
    let user = args.user.as_deref().map(|u| ctx.account(u)).transpose()?;
    let at = ctx.store.now();
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
        .filter(|t| {
            // Never used: counted from its creation.
            unused.is_none_or(|w| {
                !t.is_expired(at) && t.last_used_at.unwrap_or(t.created_at) <= at.saturating_sub(w)
            })
        })
        .collect();
    let default_rate = DEFAULT_RATE_LIMIT.get(ctx.store.conn())?;
    let views: Vec<View> = rows
        .iter()
        .map(|t| View::of(ctx, t, at, default_rate))
        .collect();
    ctx.emit(&views, || {
        if views.is_empty() {
            return match (&user, &args.expiring_within) {
                (_, Some(w)) if args.unused_for.is_some() => format!(
                    "No active token expires within {w} and went unused for {}.\n",
                    args.unused_for.as_deref().unwrap_or_default()
                ),
                (_, Some(w)) => format!("No active token expires within {w}.\n"),
                (_, None) if args.unused_for.is_some() => format!(
                    "Every active token was used within {}.\n",
                    args.unused_for.as_deref().unwrap_or_default()
                ),
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
            "ALLOWED IPS",
            "ENVIRONMENTS",
            "RATE LIMIT",
            "EXPIRES",
            "EXPIRES IN",
            "CREATED",
            "LAST USED",
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
                        row.push(v.user_detail());
                    }
                    let expires_in = v.expires_in(t.expires_at, at);
                    let soon = t
                        .expires_at
                        .is_some_and(|end| end > at && end - at <= 14 * 86_400);
                    row.extend([
                        v.description.clone(),
                        v.scope_summary(),
                        v.ips_summary(),
                        v.envs_summary(),
                        v.rate_summary(),
                        v.valid_through.clone().unwrap_or_else(|| "never".into()),
                        if soon {
                            crate::output::paint(crate::output::WARN, &expires_in)
                        } else {
                            expires_in
                        },
                        v.created_at.clone(),
                        v.last_used_at.clone().unwrap_or_else(|| "never".into()),
                        v.status_detail(),
                    ]);
                    row
                })
                .collect(),
        )
    })?;
    if (window.is_some() || unused.is_some()) && !views.is_empty() {
        let mut what = Vec::new();
        if let Some(w) = &args.expiring_within {
            what.push(format!("expire within {w}"));
        }
        if let Some(w) = &args.unused_for {
            what.push(format!("went unused for {w}"));
        }
        ctx.out.failure(
            &format!("{} active token(s) {}", views.len(), what.join(" and ")),
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
    let actor = ctx.actor(&args.user)?;
    let t = ctx.ops().show(&actor, args.id)?;
    let default_rate = DEFAULT_RATE_LIMIT.get(ctx.store.conn())?;
    let view = View::of(ctx, &t, ctx.store.now(), default_rate);
    ctx.emit(&view, || {
        let mut rows: Vec<Vec<String>> = vec![
            vec!["id".into(), view.id.to_string()],
            vec!["user".into(), view.user_detail()],
            vec!["description".into(), view.description.clone()],
            vec!["scope".into(), view.scope_detail()],
            vec![
                "allowed IPs".into(),
                if view.allowed_ips.is_empty() {
                    "any address".into()
                } else {
                    view.allowed_ips.join(", ")
                },
            ],
            vec![
                "environments".into(),
                match &view.envs {
                    None => "any environment".into(),
                    Some(envs) => envs.join(", "),
                },
            ],
            vec![
                "rate limit".into(),
                match (&view.rate_limit, &view.effective_rate_limit) {
                    (Some(own), _) => format!("{own} on each edge"),
                    (None, Some(default)) => {
                        format!("{default} on each edge (the default rate limit)")
                    }
                    (None, None) => "none".into(),
                },
            ],
            vec![
                "expires".into(),
                match view.valid_through.as_deref() {
                    None => "never".into(),
                    Some(d) => format!(
                        "{d} (end of day, UTC; {})",
                        match view.expires_in(t.expires_at, ctx.store.now()).as_str() {
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
            vec![
                "last used".into(),
                match (&view.last_used_at, &view.last_used_ip) {
                    (None, _) => "never".into(),
                    (Some(at), None) => at.clone(),
                    (Some(at), Some(ip)) => format!("{at} from {ip}"),
                },
            ],
            vec!["status".into(), view.status_detail()],
        ];
        if let (Some(end), Some(at)) = (
            &view.old_value_expires_at,
            t.old_value_until(ctx.store.now()),
        ) {
            rows.push(vec![
                "old value".into(),
                format!(
                    "works until {end} (in {})",
                    remaining(at.saturating_sub(ctx.store.now()))
                ),
            ]);
        }
        let mut text = table(&["FIELD", "VALUE"], rows);
        text.push_str("\nMethods:\n");
        for m in &view.scope.methods {
            text.push_str(&format!("  {m}\n"));
        }
        text
    })?;
    Ok(exit::OK)
}

/// `edit`: description, expiry, scope, allowed networks, environments and rate limit; the
/// value stays the same (a previous value in its grace window too).
pub fn edit(ctx: &mut Ctx, args: EditArgs) -> Result<u8> {
    let description = args
        .description
        .as_deref()
        .map(Description::parse)
        .transpose()?;
    let scope = resolve_scope(ctx, &args.scope)?;
    let expiry = match (&args.expires_at, args.no_expiry) {
        (Some(text), _) => Some(ctx.ops().expiry_day(Some(text))?),
        (None, true) => Some(ctx.ops().expiry_day(None)?),
        (None, false) => None,
    };
    let networks = if args.no_ip_limit {
        Some(Networks::any())
    } else if args.allow_ip.is_empty() {
        None
    } else {
        Some(Networks::parse(&args.allow_ip, "--allow-ip")?)
    };
    let (envs, rate) = limits(&args.limits)?;
    let edit = Edit {
        description,
        scope,
        expiry,
        networks,
        envs,
        rate,
    };
    if edit.is_empty() {
        return Err(Error::Invalid(
            "nothing to change: give --description, --expires-at, --no-expiry, --api, --method, --allow-ip, --no-ip-limit, --env, --any-env, --rate-limit or --no-rate-limit"
                .into(),
        ));
    }
    let actor = ctx.actor(&args.token.user)?;
    #[derive(Serialize)]
    struct Edited {
        #[serde(flatten)]
        view: View,
        changed: bool,
    }
    let (catalogue, out) = (ctx.catalogue, ctx.out);
    let email = users::get(ctx.store.conn(), actor.account())?.and_then(|u| u.email);
    let default_rate = DEFAULT_RATE_LIMIT.get(ctx.store.conn())?;
    let mut source = Source::new(args.confirm.password_stdin);
    let publishing = ctx.publishing(args.confirm.no_publish, &args.confirm.push)?;
    let confirmation = ctx.confirmation(&mut source, || Ok(()));
    let done = ctx.with_ops(&actor, |mut ops| {
        ops.edit_token(
            &actor,
            args.token.id,
            &edit,
            confirmation,
            publishing,
            |edited| {
                out.note(&format!(
                    "Token {} of {} updated.",
                    edited.token.id, edited.token.user
                ));
                Ok(())
            },
        )
    })?;
    let view = View::build(
        catalogue,
        email,
        &done.outcome.token,
        ctx.store.now(),
        default_rate,
    );
    if !done.outcome.changed {
        // Nothing would change: no password, no audit entry, no new snapshot.
        ctx.note(&format!(
            "Token {} of {} unchanged: it already has these values.",
            view.id, view.user
        ));
        ctx.out.json_only(&Edited {
            view,
            changed: false,
        })?;
        return Ok(exit::OK);
    }
    finish(
        ctx,
        done.publish,
        Edited {
            view,
            changed: true,
        },
    )
}

/// `regenerate`: a new value, every other parameter kept; the old value stops working at
/// once, or at the end of `--grace`.
pub fn regenerate(ctx: &mut Ctx, args: RegenerateArgs) -> Result<u8> {
    let actor = ctx.actor(&args.token.user)?;
    let regeneration = Regeneration {
        id: args.token.id,
        expires_at: args.expires_at.as_deref(),
        grace: args.grace.as_deref(),
    };
    issue(
        ctx,
        &actor,
        NewValue::Regenerate(regeneration),
        args.output.as_deref(),
        &args.confirm,
        "regenerated",
    )
}

/// `copy`: a new token with another one's parameters.
pub fn copy(ctx: &mut Ctx, args: CopyArgs) -> Result<u8> {
    let (envs, rate) = limits(&args.limits)?;
    let actor = ctx.actor(&args.token.user)?;
    let copy = CopyOf {
        id: args.token.id,
        description: args.description.as_deref(),
        expires_at: args.expires_at.as_deref(),
        envs,
        rate,
    };
    issue(
        ctx,
        &actor,
        NewValue::Copy(copy),
        args.output.as_deref(),
        &args.confirm,
        "created",
    )
}

/// `remove`: every id must exist, or nothing is removed.
pub fn remove(ctx: &mut Ctx, args: RemoveArgs) -> Result<u8> {
    let actor = ctx.actor(&args.user)?;
    let user = actor.account().to_string();
    let out = ctx.out;
    let mut source = Source::new(args.confirm.password_stdin);
    let publishing = ctx.publishing(args.confirm.no_publish, &args.confirm.push)?;
    let confirmation = ctx.confirmation(&mut source, || Ok(()));
    let done = ctx.with_ops(&actor, |mut ops| {
        ops.remove_tokens(
            &actor,
            Selection::Ids(args.ids.clone()),
            confirmation,
            publishing,
            |removed| {
                if out.json {
                    return Ok(());
                }
                let list = removed
                    .ids
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                crate::output::stdout(&format!("Removed token(s) {list} of {user}.\n"))
            },
        )
    })?;
    #[derive(Serialize)]
    struct Removed {
        user: String,
        removed: Vec<i64>,
    }
    finish(
        ctx,
        done.publish,
        Removed {
            user,
            removed: done.outcome.ids,
        },
    )
}
