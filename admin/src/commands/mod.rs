//! Command implementations, one module per group, sharing [`Ctx`]: the open store, the
//! catalogue, the output mode, password confirmation and publishing after a change.

pub mod accounts;
pub mod edges;
pub mod keys;
pub mod methods;
pub mod settings;
pub mod tokens;

use std::path::PathBuf;

use serde::Serialize;

use crate::catalogue::Catalogue;
use crate::cli::{Command, Confirm};
use crate::error::{Error, Result, exit};
use crate::expiry::rfc3339;
use crate::password::{self, Source};
use crate::publish::{self, EdgeResult, Timeouts};
use crate::snapshot;
use crate::store::snapshots::Published;
use crate::store::{Store, audit, edges as edge_store, now, users};

/// What every command gets.
pub struct Ctx {
    /// The open store.
    pub store: Store,
    /// The built-in catalogue.
    pub catalogue: &'static Catalogue,
    /// JSON output.
    pub json: bool,
    /// Edge timeouts (tests shorten them).
    pub timeouts: Timeouts,
}

impl Ctx {
    /// Prints a result: JSON, or the human rendering.
    pub fn emit<T: Serialize>(&self, value: &T, human: impl FnOnce() -> String) -> Result<()> {
        if self.json {
            let text = serde_json::to_string_pretty(value)
                .map_err(|e| Error::Invalid(format!("cannot encode JSON: {e}")))?;
            println!("{text}");
        } else {
            print!("{}", human());
        }
        Ok(())
    }

    /// A note for people (stderr, so stdout stays scriptable); silent with `--json`.
    pub fn note(&self, text: &str) {
        if !self.json {
            eprintln!("{text}");
        }
    }

    /// Confirms an account's password: checks it (after a pause that grows with the
    /// account's consecutive failures), counts a failure, and returns the hash it matched so
    /// the change can make sure the password did not change meanwhile.
    pub fn confirm_password(&mut self, user: &str, source: &mut Source) -> Result<String> {
        let account = users::require(self.store.conn(), user)?;
        let password = source.read(&format!("Password for {user}: "))?;
        std::thread::sleep(password::delay_after(account.failed_attempts));
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

    /// After a change: pushes the snapshot the change's transaction built (`built`) to the
    /// configured edges unless told not to. Returns the exit code to use (6 when an edge did
    /// not accept).
    pub fn publish_after_change(
        &mut self,
        confirm: &Confirm,
        built: Option<Published>,
    ) -> Result<u8> {
        if confirm.no_publish {
            return Ok(exit::OK);
        }
        let configured = edge_store::list(self.store.conn())?;
        if configured.is_empty() {
            return Ok(exit::OK);
        }
        let Some(published) = built else {
            return Err(Error::Refused(
                "the change is saved, but there is no signing key to sign a snapshot with: create one with pat-admin key generate, then run pat-admin publish"
                    .into(),
            ));
        };
        let report = push(self, &configured, published, true)?;
        let failed = report.edges.iter().filter(|e| !e.outcome.is_ok()).count();
        if !self.json {
            eprint!("{}", edges::render_publish(&report));
        }
        if failed > 0 {
            eprintln!(
                "pat-admin: the change is saved and signed (pat-admin serve hands it to edges that fetch), but {failed} edge(s) did not accept it; retry with: pat-admin publish"
            );
            return Ok(exit::EDGE);
        }
        Ok(exit::OK)
    }
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
    /// When it was issued, Unix seconds.
    pub issued_at: u64,
    /// Its signed expiry, Unix seconds.
    pub expires_at: u64,
    /// Signed by this command (false: the latest stored snapshot was pushed as it is).
    pub built: bool,
    /// Per edge.
    pub edges: Vec<EdgeResult>,
}

/// The snapshot `publish` pushes (the latest one when it is still current, else a new one;
/// with `resend` always the latest), pushed to `edges`.
pub(crate) fn build_and_push(
    ctx: &mut Ctx,
    edges: &[String],
    resend: bool,
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
    push(ctx, edges, published, built)
}

/// Pushes `published` to `edges` and records the outcome in the audit log.
fn push(
    ctx: &mut Ctx,
    edges: &[String],
    published: Published,
    built: bool,
) -> Result<PublishReport> {
    let stamp = published.stamp;
    let bytes = published.bytes.len();
    let results = if edges.is_empty() {
        Vec::new()
    } else {
        runtime()?.block_on(publish::push_all(
            edges,
            published.bytes,
            stamp.version,
            ctx.timeouts,
        ))?
    };
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
            &format!("version {}: {summary}", stamp.version),
        )
    })?;
    Ok(PublishReport {
        version: stamp.version,
        tokens: stamp.tokens,
        bytes,
        key_id: stamp.key_id,
        issued_at: stamp.issued_at,
        expires_at: stamp.expires_at,
        built,
        edges: results,
    })
}

/// A small multi-threaded runtime for the network commands.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Invalid(format!("cannot start the async runtime: {e}")))
}

/// Runs one command; returns the exit code.
pub fn run(command: Command, store_dir: PathBuf, json: bool) -> Result<u8> {
    if let Command::Completions { shell } = command {
        let mut cmd = <crate::cli::Opts as clap::CommandFactory>::command();
        clap_complete::generate(shell, &mut cmd, "pat-admin", &mut std::io::stdout());
        return Ok(exit::OK);
    }
    if let Command::Serve(args) = command {
        runtime()?.block_on(crate::serve::run(store_dir, args.listen))?;
        return Ok(exit::OK);
    }
    let catalogue = Catalogue::builtin().map_err(Error::Invalid)?;
    let mut ctx = Ctx {
        store: Store::open(&store_dir)?,
        catalogue,
        json,
        timeouts: timeouts_from_env(),
    };
    match command {
        Command::User(c) => accounts::run(&mut ctx, c),
        Command::Generate(a) => tokens::generate(&mut ctx, a),
        Command::List(a) => tokens::list(&mut ctx, &a.user),
        Command::Show(a) => tokens::show(&mut ctx, &a),
        Command::Edit(a) => tokens::edit(&mut ctx, a),
        Command::Regenerate(a) => tokens::regenerate(&mut ctx, a),
        Command::Copy(a) => tokens::copy(&mut ctx, a),
        Command::Remove(a) => tokens::remove(&mut ctx, a),
        Command::Methods(a) => methods::run(&mut ctx, a),
        Command::Key(c) => keys::run(&mut ctx, c),
        Command::Edge(c) => edges::run_edge(&mut ctx, c),
        Command::Publish(a) => edges::run_publish(&mut ctx, a),
        Command::Status(a) => edges::run_status(&mut ctx, a),
        Command::Audit(a) => settings::audit(&mut ctx, a),
        Command::Config(c) => settings::run(&mut ctx, c),
        Command::Completions { .. } | Command::Serve(_) => Ok(exit::OK),
    }
}

/// `PAT_ADMIN_EDGE_TIMEOUT_MS` shortens the per-request edge timeout (tests, slow networks).
fn timeouts_from_env() -> Timeouts {
    let mut timeouts = Timeouts::default();
    if let Some(ms) = std::env::var("PAT_ADMIN_EDGE_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        timeouts.request = std::time::Duration::from_millis(ms);
        timeouts.connect = timeouts.connect.min(timeouts.request);
    }
    timeouts
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
