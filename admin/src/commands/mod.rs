//! Command implementations, one module per group, sharing [`Ctx`]: the open store, the
//! catalogue, the output mode, password confirmation and publishing after a change.

pub mod accounts;
pub mod edges;
pub mod keys;
pub mod leaked;
pub mod man;
pub mod methods;
pub mod settings;
pub mod store_copy;
pub mod tokens;

use std::cell::RefCell;
use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use serde::Serialize;

use crate::catalogue::Catalogue;
use crate::cli::{Command, PushOpts};
use crate::error::{Error, Result, exit};
use crate::expiry::rfc3339;
use crate::ops::publishing;
use crate::ops::{Actor, Confirmation, Confirmed, Ops, PublishEvent, Publishing};
pub use crate::ops::{ChangePublish, PublishState};
use crate::output::{self, Output};
use crate::password::Source;
use crate::publish::{self, EdgeResult, Outcome, Timeouts};
use crate::snapshot;
use crate::store::db::Location;
use crate::store::snapshots::Published;
use crate::store::{Open, Store, users};

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

    /// The account `user` acting on the command line.
    pub fn actor(&self, user: &str) -> Result<Actor> {
        Actor::cli(&self.store, user)
    }

    /// The operations ([`crate::ops`]) on this store.
    pub fn ops(&mut self) -> Ops<'_> {
        Ops::new(&mut self.store, self.catalogue)
    }

    /// Runs `f` with the operations on this store, confirming `actor`'s password with the
    /// platform when it is a platform account (`config set platform-url`).
    pub fn with_ops<T>(
        &mut self,
        actor: &Actor,
        f: impl FnOnce(Ops<'_>) -> Result<T>,
    ) -> Result<T> {
        let account = users::require(self.store.conn(), actor.account())?;
        if account.platform_uid.is_none() {
            return f(self.ops());
        }
        // A platform account: the platform checks its password.
        let runtime = runtime()?;
        let platform = crate::platform::Settings::from_store(self.store.conn(), None)?
            .map(|settings| crate::platform::Platform::new(settings, runtime.handle().clone()))
            .transpose()?;
        let checker = platform
            .as_ref()
            .map(|p| p as &dyn crate::ops::PlatformPasswords);
        f(Ops::new(&mut self.store, self.catalogue).with_platform(checker))
    }

    /// How a change confirms the actor's password on the command line: read (prompt or
    /// `--password-stdin`) only once the request is checked, after `before` (claiming an
    /// `--output` file), with the back-off announced on stderr when there is one.
    pub fn confirmation<'a>(
        &self,
        source: &'a mut Source,
        before: impl FnOnce() -> Result<()> + 'a,
    ) -> Confirmation<'a> {
        let out = self.out;
        let user = std::rc::Rc::new(std::cell::RefCell::new(String::new()));
        let shown = std::rc::Rc::clone(&user);
        Confirmation::ask(move |account| {
            before()?;
            let name = account.display();
            *shown.borrow_mut() = name.clone();
            source.read(&format!("Password for {name}: "))
        })
        .announcing(move |delay: Duration, failures: u32| {
            out.note(&format!(
                "Checking the password in {} s: {} had {failures} wrong password(s) in a row.",
                delay.as_secs_f64(),
                user.borrow()
            ));
        })
    }

    /// Confirms the actor's password now ([`Ops::confirm`]): `user passwd` confirms the
    /// current password before it reads the new one.
    pub fn confirm(&mut self, actor: &Actor, source: &mut Source) -> Result<Confirmed> {
        let account = users::require(self.store.conn(), actor.account())?;
        let user = account.display();
        let password = source.read(&format!("Password for {user}: "))?;
        let out = self.out;
        let announce = |delay: Duration, failures: u32| {
            out.note(&format!(
                "Checking the password in {} s: {user} had {failures} wrong password(s) in a row.",
                delay.as_secs_f64(),
            ));
        };
        self.with_ops(actor, |mut ops| ops.confirm(actor, &password, announce))
    }

    /// The edge timeouts: the flags, else `PAT_ADMIN_PUSH_TIMEOUT` / `PAT_ADMIN_PUSH_DEADLINE`
    /// (seconds), else the store settings `push-timeout` / `push-deadline`, else 10 s / 30 s.
    pub fn timeouts(&self, opts: &PushOpts) -> Result<Timeouts> {
        publishing::timeouts(self.store.conn(), opts.timeout, opts.deadline)
    }

    /// How a change is published from the command line: unless `skip` (`--no-publish`), to
    /// every configured edge with the `--timeout`/`--deadline` flags, each edge's line on
    /// stderr as it finishes (stdout has the change's own output, such as a token value).
    pub fn publishing(&self, skip: bool, push: &PushOpts) -> Result<Publishing<'static>> {
        Ok(Publishing::quiet()
            .skip(skip)
            .flags(push.timeout, push.deadline)
            .watched(watcher(self.out, true, Lines::Stderr, None)))
    }

    /// What a change's publish result means on the command line: a note or a failure line,
    /// and the exit code: 0, 6 when an edge did not accept it (or pushing failed), 7 when
    /// there was nothing to push because no signing key is active and edges wait.
    pub fn report_publish(&self, publish: &ChangePublish) -> u8 {
        if let Some(error) = &publish.error {
            self.out.failure(
                &format!(
                    "the change is saved and signed (pat-admin serve hands it to edges that fetch), but publishing it failed: {error}; retry with: pat-admin publish"
                ),
                exit::EDGE,
            );
            return exit::EDGE;
        }
        match publish.state {
            PublishState::Unsigned => {
                let message = "the change is saved, but not signed: there is no signing key, so no snapshot includes it and nothing was pushed; create a key with pat-admin key generate, then run pat-admin publish";
                if !publish.edges_configured {
                    self.note(&format!("pat-admin: note: {message}"));
                    return exit::OK;
                }
                self.out.failure(message, exit::UNSIGNED);
                exit::UNSIGNED
            }
            PublishState::NotAccepted => {
                let failed = publish.failed_edges();
                self.out.failure(
                    &format!(
                        "the change is saved and signed (pat-admin serve hands it to edges that fetch), but {failed} edge(s) did not accept it; retry with: pat-admin publish"
                    ),
                    exit::EDGE,
                );
                exit::EDGE
            }
            PublishState::Published | PublishState::Skipped | PublishState::NoEdges => exit::OK,
        }
    }
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

/// A pushed document and what each edge did with it.
#[derive(Debug, Serialize)]
pub struct PublishReport {
    /// Version.
    pub version: u64,
    /// `delta` or `full`.
    pub kind: &'static str,
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
enum Lines {
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
        if latest.stamp.expires_at <= ctx.store.now() {
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
    let report = push(ctx, edges, published, built, timeouts)?;
    if !resend {
        // The pushed delta went out first; compacting a long chain can take a while.
        if let Some((stamp, why)) = snapshot::compact_if_due(&mut ctx.store)? {
            ctx.note(&format!(
                "Compacted version {} into a full snapshot ({} tokens, {} bytes) for edges that start from nothing: {why}.",
                stamp.version, stamp.tokens, stamp.len
            ));
        }
    }
    Ok(report)
}

/// One edge's line: `URL  RESULT  DETAIL`, the URL padded to `width`.
pub(crate) fn edge_line(result: &EdgeResult, width: usize) -> String {
    let (style, detail) = match &result.outcome {
        Outcome::Accepted {
            version,
            tokens,
            caught_up,
        } => (
            output::GOOD,
            format!(
                "serving version {version} ({tokens} tokens{})",
                match caught_up {
                    None => "",
                    Some(publish::CaughtUp::Deltas) =>
                        "; it lagged: caught up with the deltas since its version",
                    Some(publish::CaughtUp::Full) =>
                        "; it lagged or held another chain: caught up with the full snapshot",
                }
            ),
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

/// A watcher of a push that shows it to people (nothing with `--json`): the headline, a
/// progress bar on a terminal when there are many edges, each edge's line as it finishes
/// (on `lines`). A failure to write stdout is kept in `write_failed` (the push goes on).
fn watcher(
    out: Output,
    built: bool,
    lines: Lines,
    write_failed: Option<Rc<RefCell<Option<Error>>>>,
) -> impl FnMut(PublishEvent<'_>) {
    let human = !out.json;
    let mut width = 0;
    let mut bar = indicatif::ProgressBar::hidden();
    let write = move |text: &str| match lines {
        Lines::Stdout => {
            if let Err(e) = output::stdout(text)
                && let Some(failed) = &write_failed
            {
                failed.borrow_mut().get_or_insert(e);
            }
        }
        Lines::Stderr => output::stderr(text),
    };
    move |event| match event {
        PublishEvent::Start {
            stamp,
            bytes,
            edges,
            timeouts,
        } => {
            width = edges.iter().map(String::len).max().unwrap_or(0);
            if !human {
                return;
            }
            let headline = format!(
                "Snapshot version {} ({} tokens, {} bytes, {}, signed by key {}, expires {}{}).\n",
                stamp.version,
                stamp.tokens,
                bytes,
                match stamp.kind {
                    pat_core::snapshot::Kind::Delta => "a delta",
                    pat_core::snapshot::Kind::Full => "a full snapshot",
                },
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
            write(&headline);
            if edges.len() > 3 {
                bar = indicatif::ProgressBar::new(edges.len() as u64);
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{spinner} {pos}/{len} edges {elapsed}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                bar.enable_steady_tick(Duration::from_millis(120));
            }
        }
        PublishEvent::Edge(result) => {
            bar.inc(1);
            if human {
                let line = edge_line(result, width);
                bar.suspend(|| write(&line));
            }
        }
        PublishEvent::Done => bar.finish_and_clear(),
    }
}

/// Pushes `published` to `edges` for `pat-admin publish`, printing each edge's line on
/// stdout as it finishes (with a progress bar on a terminal when there are many), and
/// records the outcome in the audit log ([`publishing::push`]).
fn push(
    ctx: &mut Ctx,
    edges: &[String],
    published: Published,
    built: bool,
    timeouts: Timeouts,
) -> Result<PublishReport> {
    let stamp = published.stamp.clone();
    let bytes = published.bytes.len();
    let kind = crate::store::snapshots::kind_word(stamp.kind);
    let write_failed = Rc::new(RefCell::new(None));
    let mut publishing = Publishing::quiet().timeouts(timeouts).watched(watcher(
        ctx.out,
        built,
        Lines::Stdout,
        Some(Rc::clone(&write_failed)),
    ));
    let results = publishing::push(&mut ctx.store, edges, published, &mut publishing)?;
    if let Some(e) = write_failed.borrow_mut().take() {
        return Err(e);
    }
    Ok(PublishReport {
        version: stamp.version,
        kind,
        tokens: stamp.tokens,
        bytes,
        key_id: stamp.key_id,
        issued_at: rfc3339(stamp.issued_at),
        expires_at: rfc3339(stamp.expires_at),
        built,
        edges: results,
    })
}

/// A small multi-threaded runtime for the network commands.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    publishing::runtime()
}

/// Whether `command` may create a store: the commands that set one up. Every other command
/// needs an existing store and says so.
fn creates_store(command: &Command) -> bool {
    use crate::cli::{ConfigCommand, EdgeCommand, EdgeKeyCommand, KeyCommand, UserCommand};
    matches!(
        command,
        Command::User(UserCommand::Add { .. })
            | Command::Key(KeyCommand::Generate { .. })
            | Command::Edge(EdgeCommand::Add { .. })
            | Command::Edge(EdgeCommand::Key(EdgeKeyCommand::Generate { .. }))
            | Command::Config(ConfigCommand::Set { .. })
    )
}

/// Runs one command; returns the exit code.
pub fn run(command: Command, store_dir: Location, json: bool) -> Result<u8> {
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
            runtime()?.block_on(crate::serve::run_with(
                store_dir,
                &args,
                crate::clock::Clock::system(),
            ))?;
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
    let store = Store::open_as(store_dir, how)?;
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
        Command::Store(c) => store_copy::run(&mut ctx, c),
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

/// Creates `path` for a secret (a token, a signing or edge key): mode 0600, created
/// exclusively, so an existing file is never overwritten (`Error::FileExists`).
pub(crate) fn create_secret_file(path: &Path) -> Result<File> {
    std::fs::OpenOptions::new()
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
        })
}
