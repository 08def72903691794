//! `edge add|remove|list`, `publish`, `status`.

use serde::Serialize;

use super::{Ctx, build_and_push, runtime, table};
use crate::cli::{EdgeCommand, PublishArgs, PushOpts, StatusArgs};
use crate::error::{Error, Result, exit};
use crate::output::{self, paint};
use crate::publish;
use crate::store::{audit, edges, now, snapshots};

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
                    return Err(Error::NoSuchEdge(url.clone()));
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

/// Runs `publish`: the current snapshot (building one if the latest is not current) or,
/// with `--resend`, the latest one, to the configured edges or those given. Each edge's
/// line is printed as that edge finishes.
pub fn run_publish(ctx: &mut Ctx, args: PublishArgs) -> Result<u8> {
    let targets = if args.edges.is_empty() {
        edges::list(ctx.store.conn())?
    } else {
        args.edges.clone()
    };
    for edge in &targets {
        publish::control_url(edge)?;
    }
    let timeouts = ctx.timeouts(&args.push)?;
    let report = build_and_push(ctx, &targets, args.resend, timeouts)?;
    ctx.out.json_only(&report)?;
    let failed = report.edges.iter().filter(|e| !e.outcome.is_ok()).count();
    if failed > 0 {
        return Err(Error::Edges(format!(
            "{failed} of {} edge(s) did not accept snapshot version {}; the snapshot is stored, `pat-admin serve` hands it to edges that fetch; retry with: pat-admin publish",
            report.edges.len(),
            report.version
        )));
    }
    Ok(exit::OK)
}

#[derive(Serialize)]
struct StatusReport {
    /// The latest stored snapshot's version (`null`: nothing published yet).
    latest_version: Option<u64>,
    edges: Vec<publish::EdgeStatus>,
}

/// Runs `status`: each edge's snapshot, and whether it is behind the latest one published.
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
    let timeouts = ctx.timeouts(&PushOpts {
        timeout: args.timeout,
        deadline: None,
    })?;
    let latest = snapshots::latest_stamp(ctx.store.conn())?.map(|s| s.version);
    let mut statuses = runtime()?.block_on(publish::status_all(&targets, timeouts))?;
    for s in &mut statuses {
        s.behind =
            s.reachable && latest.is_some_and(|latest| s.version.is_none_or(|held| held < latest));
    }
    let report = StatusReport {
        latest_version: latest,
        edges: statuses,
    };
    ctx.emit(&report, || {
        let mut text = table(
            &["EDGE", "VERSION", "TOKENS", "ISSUED", "KEY"],
            report
                .edges
                .iter()
                .map(|s| {
                    let version = match (&s.error, s.version) {
                        (Some(e), _) => paint(output::BAD, &format!("unreachable: {e}")),
                        (None, None) => paint(output::WARN, "none loaded"),
                        (None, Some(v)) if s.behind => paint(
                            output::WARN,
                            &format!("{v} (behind: latest is {})", latest.unwrap_or(v)),
                        ),
                        (None, Some(v)) => v.to_string(),
                    };
                    vec![
                        s.edge.clone(),
                        version,
                        s.tokens.map(|t| t.to_string()).unwrap_or_default(),
                        s.issued_at.clone().unwrap_or_default(),
                        s.key_id.clone().unwrap_or_default(),
                    ]
                })
                .collect(),
        );
        if let Some(v) = latest {
            text.push_str(&format!("Latest published version: {v}.\n"));
        }
        text
    })?;
    let unreachable = report.edges.iter().filter(|s| !s.reachable).count();
    let behind = report.edges.iter().filter(|s| s.behind).count();
    if unreachable + behind > 0 {
        let mut parts = Vec::new();
        if unreachable > 0 {
            parts.push(format!("{unreachable} edge(s) could not be asked"));
        }
        if behind > 0 {
            parts.push(format!(
                "{behind} edge(s) are behind version {}; push it with: pat-admin publish",
                latest.unwrap_or_default()
            ));
        }
        return Err(Error::Edges(parts.join("; ")));
    }
    Ok(exit::OK)
}
