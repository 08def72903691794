//! `edge add|remove|list`, `publish`, `status`.

use serde::Serialize;

use super::{Ctx, PublishReport, build_and_push, runtime, table};
use crate::cli::{EdgeCommand, PublishArgs, StatusArgs};
use crate::error::{Error, Result, exit};
use crate::expiry::rfc3339;
use crate::publish::{self, Outcome};
use crate::store::{audit, edges, now};

/// Runs an `edge` subcommand.
pub fn run_edge(ctx: &mut Ctx, command: EdgeCommand) -> Result<u8> {
    match command {
        EdgeCommand::Add { url } => {
            let url = publish::canonical_edge(&url)?;
            ctx.store.write(|tx| {
                edges::add(tx, &url, now())?;
                audit::record(tx, None, "edge.add", None, &url)
            })?;
        }
        EdgeCommand::Remove { url } => {
            let url = publish::canonical_edge(&url)?;
            ctx.store.write(|tx| {
                if !edges::remove(tx, &url)? {
                    return Err(Error::Invalid(format!(
                        "{url} is not a configured edge (see pat-admin edge list)"
                    )));
                }
                audit::record(tx, None, "edge.remove", None, &url)
            })?;
        }
        EdgeCommand::List => {}
    }
    let list = edges::list(ctx.store.conn())?;
    ctx.emit(&list, || {
        if list.is_empty() {
            "No edges configured (pat-admin edge add http://HOST:PORT).\n".into()
        } else {
            list.iter().map(|e| format!("{e}\n")).collect()
        }
    })?;
    Ok(exit::OK)
}

/// Pushes the current snapshot (building one if the latest is not current) or, with
/// `resend`, the latest one, to `edges`.
pub fn publish(ctx: &mut Ctx, edges: &[String], resend: bool) -> Result<PublishReport> {
    build_and_push(ctx, edges, resend)
}

/// A publish report for people.
pub fn render_publish(report: &PublishReport) -> String {
    let mut text = format!(
        "Snapshot version {} ({} tokens, {} bytes, signed by key {}, expires {}{}).\n",
        report.version,
        report.tokens,
        report.bytes,
        report.key_id,
        rfc3339(report.expires_at),
        if report.built {
            ""
        } else {
            "; the latest, unchanged"
        }
    );
    if report.edges.is_empty() {
        text.push_str("No edges to push to; `pat-admin serve` hands it to edges that fetch it.\n");
        return text;
    }
    let rows = report
        .edges
        .iter()
        .map(|r| {
            let detail = match &r.outcome {
                Outcome::Accepted { version, tokens } => {
                    format!("serving version {version} ({tokens} tokens)")
                }
                Outcome::AlreadyCurrent { version } => {
                    format!("already serving version {version}")
                }
                Outcome::Superseded { version, pushed } => format!(
                    "already serving version {version}, newer than {pushed} and including it"
                ),
                Outcome::Rejected { status, error } => format!("HTTP {status}: {error}"),
                Outcome::Unreachable { error, attempts } => {
                    format!("{error} ({attempts} attempts)")
                }
            };
            vec![r.edge.clone(), r.outcome.word().into(), detail]
        })
        .collect();
    text.push_str(&table(&["EDGE", "RESULT", "DETAIL"], rows));
    text
}

/// Runs `publish`.
pub fn run_publish(ctx: &mut Ctx, args: PublishArgs) -> Result<u8> {
    let targets = if args.edges.is_empty() {
        edges::list(ctx.store.conn())?
    } else {
        args.edges.clone()
    };
    for edge in &targets {
        publish::control_url(edge)?;
    }
    let report = publish(ctx, &targets, args.resend)?;
    ctx.emit(&report, || render_publish(&report))?;
    let failed = report.edges.iter().filter(|e| !e.outcome.is_ok()).count();
    if failed > 0 {
        return Err(Error::Edges(format!(
            "{failed} of {} edge(s) did not accept snapshot version {}",
            report.edges.len(),
            report.version
        )));
    }
    Ok(exit::OK)
}

#[derive(Serialize)]
struct StatusReport {
    edges: Vec<publish::EdgeStatus>,
}

/// Runs `status`.
pub fn run_status(ctx: &mut Ctx, args: StatusArgs) -> Result<u8> {
    let targets = if args.edges.is_empty() {
        edges::list(ctx.store.conn())?
    } else {
        args.edges.clone()
    };
    if targets.is_empty() {
        return Err(Error::Invalid(
            "no edge to ask: give --edge URL or configure one with pat-admin edge add".into(),
        ));
    }
    let statuses = runtime()?.block_on(publish::status_all(&targets, ctx.timeouts))?;
    let report = StatusReport { edges: statuses };
    ctx.emit(&report, || {
        table(
            &["EDGE", "VERSION", "TOKENS", "ISSUED", "KEY"],
            report
                .edges
                .iter()
                .map(|s| match &s.error {
                    Some(e) => vec![
                        s.edge.clone(),
                        format!("unreachable: {e}"),
                        String::new(),
                        String::new(),
                        String::new(),
                    ],
                    None if !s.loaded => vec![
                        s.edge.clone(),
                        "none loaded".into(),
                        String::new(),
                        String::new(),
                        String::new(),
                    ],
                    None => vec![
                        s.edge.clone(),
                        s.version.to_string(),
                        s.tokens.to_string(),
                        rfc3339(s.issued_at),
                        s.key_id.clone().unwrap_or_default(),
                    ],
                })
                .collect(),
        )
    })?;
    let unreachable = report.edges.iter().filter(|s| !s.reachable).count();
    if unreachable > 0 {
        return Err(Error::Edges(format!(
            "{unreachable} edge(s) could not be asked"
        )));
    }
    Ok(exit::OK)
}
