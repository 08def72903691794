//! Command implementations, one module per group, sharing [`Ctx`]: the open store, the
//! catalogue, the output mode, password confirmation and publishing after a change.

pub mod accounts;
pub mod edges;
pub mod keys;
pub mod leaked;
pub mod man;
pub mod methods;
pub mod settings;
pub mod tokens;

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::catalogue::Catalogue;
use crate::cli::{Command, Confirm, PushOpts};
use crate::error::{Error, Result, exit};
use crate::expiry::rfc3339;
use crate::output::{self, Output};
use crate::password::{self, Source};
use crate::publish::{self, EdgeResult, Outcome, Timeouts};
use crate::snapshot;
use crate::store::settings as store_settings;
use crate::store::snapshots::Published;
use crate::store::{Open, Store, audit, edges as edge_store, now, users};

/// What every command gets.
pub struct Ctx {
    /// The open store.
    pub store: Store,
    /// The built-in catalogue.
    pub catalogue: &'static Catalogue,
    /// The output mode.
    pub out: Output,
}

impl Ctx {
    /// Prints a result: JSON, or the human rendering.
    pub fn emit<T: Serialize>(&self, value: &T, human: impl FnOnce() -> String) -> Result<()> {
        self.out.emit(value, human)
    }

    /// A note for people (stderr, so stdout stays scriptable); silent with `--json`.
    pub fn note(&self, text: &str) {
        self.out.note(text);
    }

    /// The stored name of an account. Names are case-insensitive: `Alice` finds `alice`,
    /// and the name is used as it was created (it is what edges forward as `x-pat-user`).
    pub fn account(&self, user: &str) -> Result<String> {
        Ok(users::require(self.store.conn(), user)?.name)
    }

    /// Confirms an account's password: checks it (after a pause that grows with the
    /// account's consecutive failures, announced on stderr), counts a failure, and returns
    /// the hash it matched so the change can make sure the password did not change meanwhile.
    pub fn confirm_password(&mut self, user: &str, source: &mut Source) -> Result<String> {
        let account = users::require(self.store.conn(), user)?;
        let password = source.read(&format!("Password for {user}: "))?;
        let delay = password::delay_after(account.failed_attempts);
        if !delay.is_zero() {
            self.note(&format!(
                "Checking the password in {} s: {user} had {} wrong password(s) in a row.",
                delay.as_secs_f64(),
                account.failed_attempts
            ));
        }
        std::thread::sleep(delay);
        if password::verify(&password, &account.password_hash) {
            if account.failed_attempts > 0 {
                self.store.write(|tx| users::reset_failures(tx, user))?;
            }
            Ok(account.password_hash)
        } else {
            self.store.write(|tx| {
                users::record_failure(tx, user, now())?;
                audit::record(tx, Some(user), "auth.failed", None, "wrong password")
            })?;
            Err(Error::WrongPassword(user.to_string()))
        }
    }

    /// Inside a change's transaction: the password confirmed earlier is still the account's.
    pub fn still_confirmed(
        tx: &rusqlite::Connection,
        user: &str,
        confirmed_hash: &str,
    ) -> Result<()> {
        if users::require(tx, user)?.password_hash != confirmed_hash {
            return Err(Error::Refused(format!(
                "the password of {user} changed while this command ran; nothing was changed, run it again"
            )));
        }
        Ok(())
    }

    /// The edge timeouts: the flags, else `PAT_ADMIN_PUSH_TIMEOUT` / `PAT_ADMIN_PUSH_DEADLINE`
    /// (seconds), else the store settings `push-timeout` / `push-deadline`, else 10 s / 30 s.
    pub fn timeouts(&self, opts: &PushOpts) -> Result<Timeouts> {
        let conn = self.store.conn();
        let pick =
            |flag: Option<f64>, var: &str, key: &str, default: Duration| -> Result<Duration> {
                if let Some(secs) = flag {
                    return seconds(secs, &format!("--{}", key.trim_start_matches("push-")));
                }
                if let Ok(text) = std::env::var(var) {
                    let secs = text.trim().parse::<f64>().map_err(|_| {
                        Error::Invalid(format!("{var}={text}: not a number of seconds"))
                    })?;
                    return seconds(secs, var);
                }
                let name = if key == "push-timeout" {
                    store_settings::PUSH_TIMEOUT
                } else {
                    store_settings::PUSH_DEADLINE
                };
                Ok(store_settings::get_u32(conn, name)?
                    .map_or(default, |secs| Duration::from_secs(u64::from(secs))))
            };
        let attempt = pick(
            opts.timeout,
            "PAT_ADMIN_PUSH_TIMEOUT",
            "push-timeout",
            publish::DEFAULT_ATTEMPT,
        )?;
        let deadline = pick(
            opts.deadline,
            "PAT_ADMIN_PUSH_DEADLINE",
            "push-deadline",
            publish::DEFAULT_DEADLINE,
        )?;
        let mut timeouts = Timeouts::default().with_attempt(attempt);
        timeouts.deadline = deadline;
        Ok(timeouts)
    }

    /// After a change: pushes the snapshot the change's transaction built (`built`) to the
    /// configured edges unless told not to. Returns what happened (for the change's JSON) and
    /// the exit code: 0, 6 when an edge did not accept, 7 when there was nothing to push
    /// because no signing key is active.
    pub fn publish_after_change(
        &mut self,
        confirm: &Confirm,
        built: Option<Published>,
    ) -> Result<(ChangePublish, u8)> {
        let version = built.as_ref().map(|p| p.stamp.version);
        let skipped = |state| ChangePublish {
            state,
            version,
            edges: Vec::new(),
        };
        if confirm.no_publish {
            return Ok((skipped(PublishState::Skipped), exit::OK));
        }
        let configured = edge_store::list(self.store.conn())?;
        let Some(published) = built else {
            let message = "the change is saved, but not signed: there is no signing key, so no snapshot includes it and nothing was pushed; create a key with pat-admin key generate, then run pat-admin publish";
            if configured.is_empty() {
                self.note(&format!("pat-admin: note: {message}"));
                return Ok((skipped(PublishState::Unsigned), exit::OK));
            }
            self.out.failure(message, exit::UNSIGNED);
            return Ok((skipped(PublishState::Unsigned), exit::UNSIGNED));
        };
        if configured.is_empty() {
            return Ok((skipped(PublishState::NoEdges), exit::OK));
        }
        let timeouts = self.timeouts(&confirm.push)?;
        let report = push(self, &configured, published, true, timeouts, Lines::Stderr)?;
        let failed = report.edges.iter().filter(|e| !e.outcome.is_ok()).count();
        let summary = ChangePublish {
            state: if failed == 0 {
                PublishState::Published
            } else {
                PublishState::NotAccepted
            },
            version: Some(report.version),
            edges: report.edges,
        };
        if failed > 0 {
            self.out.failure(
                &format!(
                    "the change is saved and signed (pat-admin serve hands it to edges that fetch), but {failed} edge(s) did not accept it; retry with: pat-admin publish"
                ),
                exit::EDGE,
            );
            return Ok((summary, exit::EDGE));
        }
        Ok((summary, exit::OK))
    }
}

/// `seconds` as a timeout: more than 0, at most an hour.
fn seconds(secs: f64, what: &str) -> Result<Duration> {
    if secs.is_finite() && secs > 0.0 && secs <= 3600.0 {
        Ok(Duration::from_secs_f64(secs))
    } else {
        Err(Error::Invalid(format!(
            "{what}: {secs} is not a number of seconds between 0 and 3600"
        )))
    }
}

/// What a change did about publishing.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PublishState {
    /// Every configured edge has it.
    Published,
    /// At least one edge did not accept it (exit 6).
    NotAccepted,
    /// `--no-publish`.
    Skipped,
    /// No edges are configured.
    NoEdges,
    /// No signing key: nothing was signed or pushed (exit 7 when edges are configured).
    Unsigned,
}

/// A change's publish result, part of its JSON.
#[derive(Debug, Serialize)]
pub struct ChangePublish {
    /// What happened.
    pub state: PublishState,
    /// The snapshot version that includes the change (`null`: none was signed).
    pub version: Option<u64>,
    /// Per edge (empty when nothing was pushed).
    pub edges: Vec<EdgeResult>,
}

/// A change's JSON: what it did, and its publish result.
#[derive(Debug, Serialize)]
pub struct Changed<T: Serialize> {
    /// What the command reports.
    #[serde(flatten)]
    pub change: T,
    /// What publishing did.
    pub publish: ChangePublish,
}

/// A pushed snapshot and what each edge did with it.
#[derive(Debug, Serialize)]
pub struct PublishReport {
    /// Version.
    pub version: u64,
    /// Token count.
    pub tokens: u64,
    /// Size in bytes.
    pub bytes: usize,
    /// Signing key id.
    pub key_id: String,
    /// When it was issued, RFC 3339.
    pub issued_at: String,
    /// Its signed expiry, RFC 3339.
    pub expires_at: String,
    /// Signed by this command (false: the latest stored snapshot was pushed as it is).
    pub built: bool,
    /// Per edge.
    pub edges: Vec<EdgeResult>,
}

/// Where the per-edge lines go: stdout for `publish`, stderr after a change (stdout has
/// the change's own output, such as a token value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lines {
    Stdout,
    Stderr,
}

/// The snapshot `publish` pushes (the latest one when it is still current, else a new one;
/// with `resend` always the latest), pushed to `edges`.
pub(crate) fn build_and_push(
    ctx: &mut Ctx,
    edges: &[String],
    resend: bool,
    timeouts: Timeouts,
) -> Result<PublishReport> {
    let (published, built) = if resend {
        let latest = crate::store::snapshots::latest(ctx.store.conn())?.ok_or_else(|| {
            Error::Refused("nothing has been published yet: run pat-admin publish".into())
        })?;
        if latest.stamp.expires_at <= now() {
            return Err(Error::Refused(format!(
                "the latest snapshot, version {}, expired at {}: edges refuse it; run pat-admin publish to sign the current state",
                latest.stamp.version,
                rfc3339(latest.stamp.expires_at)
            )));
        }
        (latest, false)
    } else {
        let (published, reason) = snapshot::current(&mut ctx.store)?;
        (published, reason.is_some())
    };
    push(ctx, edges, published, built, timeouts, Lines::Stdout)
}

/// One edge's line: `URL  RESULT  DETAIL`, the URL padded to `width`.
pub(crate) fn edge_line(result: &EdgeResult, width: usize) -> String {
    let (style, detail) = match &result.outcome {
        Outcome::Accepted { version, tokens } => (
            output::GOOD,
            format!("serving version {version} ({tokens} tokens)"),
        ),
        Outcome::AlreadyCurrent { version } => {
            (output::GOOD, format!("already serving version {version}"))
        }
        Outcome::Superseded { version, pushed } => (
            output::GOOD,
            format!("already serving version {version}, newer than {pushed} and including it"),
        ),
        Outcome::Rejected {
            status,
            error,
            attempts,
        } => (
            output::BAD,
            format!(
                "HTTP {status}: {error}{}",
                if *attempts > 1 {
                    format!(" ({attempts} attempts)")
                } else {
                    String::new()
                }
            ),
        ),
        Outcome::Unreachable { error, attempts } => {
            (output::BAD, format!("{error} ({attempts} attempts)"))
        }
    };
    let word = result.outcome.word();
    format!(
        "{:<width$}  {}{}  {detail}\n",
        result.edge,
        output::paint(style, word),
        " ".repeat(11usize.saturating_sub(word.len())),
    )
}

/// Pushes `published` to `edges`, printing each edge's line as it finishes (with a progress
/// bar on a terminal when there are many), and records the outcome in the audit log.
fn push(
    ctx: &mut Ctx,
    edges: &[String],
    published: Published,
    built: bool,
    timeouts: Timeouts,
    lines: Lines,
) -> Result<PublishReport> {
    let stamp = published.stamp;
    let bytes = published.bytes.len();
    let human = !ctx.out.json;
    if human {
        let headline = format!(
            "Snapshot version {} ({} tokens, {} bytes, signed by key {}, expires {}{}).\n",
            stamp.version,
            stamp.tokens,
            bytes,
            stamp.key_id,
            rfc3339(stamp.expires_at),
            if built { "" } else { "; the latest, unchanged" }
        );
        let headline = if edges.is_empty() {
            format!(
                "{headline}No edges to push to; `pat-admin serve` hands it to edges that fetch it.\n"
            )
        } else {
            format!(
                "{headline}Pushing to {} edge(s) (each attempt up to {} s, all within {} s):\n",
                edges.len(),
                timeouts.attempt.as_secs_f64(),
                timeouts.deadline.as_secs_f64()
            )
        };
        match lines {
            Lines::Stdout => output::stdout(&headline)?,
            Lines::Stderr => output::stderr(&headline),
        }
    }
    let results = if edges.is_empty() {
        Vec::new()
    } else {
        let width = edges.iter().map(String::len).max().unwrap_or(0);
        let bar = if human && edges.len() > 3 {
            let bar = indicatif::ProgressBar::new(edges.len() as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {pos}/{len} edges {elapsed}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        } else {
            indicatif::ProgressBar::hidden()
        };
        let mut write_failed = None;
        let results = runtime()?.block_on(publish::push_all(
            edges,
            published.bytes,
            stamp.version,
            timeouts,
            |result| {
                bar.inc(1);
                if human && write_failed.is_none() {
                    let line = edge_line(result, width);
                    bar.suspend(|| match lines {
                        Lines::Stdout => {
                            if let Err(e) = output::stdout(&line) {
                                write_failed = Some(e);
                            }
                        }
                        Lines::Stderr => output::stderr(&line),
                    });
                }
            },
        ));
        bar.finish_and_clear();
        let results = results?;
        record_publish(ctx, stamp.version, &results)?;
        if let Some(e) = write_failed {
            return Err(e);
        }
        results
    };
    if edges.is_empty() {
        record_publish(ctx, stamp.version, &results)?;
    }
    Ok(PublishReport {
        version: stamp.version,
        tokens: stamp.tokens,
        bytes,
        key_id: stamp.key_id,
        issued_at: rfc3339(stamp.issued_at),
        expires_at: rfc3339(stamp.expires_at),
        built,
        edges: results,
    })
}

/// The audit entry of a push.
fn record_publish(ctx: &mut Ctx, version: u64, results: &[EdgeResult]) -> Result<()> {
    let summary = results
        .iter()
        .map(|r| format!("{} {}", r.edge, r.outcome.word()))
        .collect::<Vec<_>>()
        .join(", ");
    ctx.store.write(|tx| {
        audit::record(
            tx,
            None,
            "publish",
            None,
            &format!("version {version}: {summary}"),
        )
    })
}

/// A small multi-threaded runtime for the network commands.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the async runtime: {e}")))
}

/// Whether `command` may create a store: the commands that set one up. Every other command
/// needs an existing store and says so.
fn creates_store(command: &Command) -> bool {
    use crate::cli::{ConfigCommand, EdgeCommand, KeyCommand, UserCommand};
    matches!(
        command,
        Command::User(UserCommand::Add { .. })
            | Command::Key(KeyCommand::Generate { .. })
            | Command::Edge(EdgeCommand::Add { .. })
            | Command::Config(ConfigCommand::Set { .. })
    )
}

/// Runs one command; returns the exit code.
pub fn run(command: Command, store_dir: PathBuf, json: bool) -> Result<u8> {
    let out = Output { json };
    match command {
        Command::Completions { shell } => {
            let mut cmd = <crate::cli::Opts as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, "pat-admin", &mut script);
            output::stdout(&String::from_utf8_lossy(&script))?;
            return Ok(exit::OK);
        }
        Command::Man(args) => return man::run(out, &args),
        Command::Serve(args) => {
            runtime()?.block_on(crate::serve::run(store_dir, &args.listen))?;
            return Ok(exit::OK);
        }
        Command::Methods(args) if !args.only_checked => {
            let catalogue = Catalogue::builtin().map_err(Error::Internal)?;
            return methods::run(out, catalogue, None, args);
        }
        _ => {}
    }
    let catalogue = Catalogue::builtin().map_err(Error::Internal)?;
    let how = if creates_store(&command) {
        Open::Create
    } else {
        Open::Existing
    };
    let store = Store::open_as(&store_dir, how)?;
    for warning in store.warnings() {
        out.warn(warning);
    }
    let mut ctx = Ctx {
        store,
        catalogue,
        out,
    };
    match command {
        Command::User(c) => accounts::run(&mut ctx, c),
        Command::Generate(a) => tokens::generate(&mut ctx, a),
        Command::List(a) => tokens::list(&mut ctx, &a),
        Command::Show(a) => tokens::show(&mut ctx, &a),
        Command::Edit(a) => tokens::edit(&mut ctx, a),
        Command::Regenerate(a) => tokens::regenerate(&mut ctx, a),
        Command::Copy(a) => tokens::copy(&mut ctx, a),
        Command::Remove(a) => tokens::remove(&mut ctx, a),
        Command::Lookup(a) => leaked::lookup(&mut ctx, &a),
        Command::RevokeLeaked(a) => leaked::revoke(&mut ctx, a),
        Command::Methods(a) => methods::run(ctx.out, ctx.catalogue, Some(&ctx.store), a),
        Command::Key(c) => keys::run(&mut ctx, c),
        Command::Edge(c) => edges::run_edge(&mut ctx, c),
        Command::Publish(a) => edges::run_publish(&mut ctx, a),
        Command::Status(a) => edges::run_status(&mut ctx, a),
        Command::Audit(a) => settings::audit(&mut ctx, a),
        Command::Config(c) => settings::run(&mut ctx, c),
        Command::Completions { .. } | Command::Serve(_) | Command::Man(_) => Ok(exit::OK),
    }
}

/// Renders rows as an aligned table.
pub(crate) fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::NOTHING);
    t.set_header(header.iter().map(|h| h.to_string()));
    for row in rows {
        t.add_row(row);
    }
    let mut text = t.to_string();
    // comfy-table pads every line; trailing spaces only get in the way of scripts and diffs.
    // The preset pads each cell by one space; drop the first column's leading one too.
    text = text
        .lines()
        .map(|line| line.strip_prefix(' ').unwrap_or(line).trim_end())
        .collect::<Vec<_>>()
        .join("\n");
    text.push('\n');
    text
}
