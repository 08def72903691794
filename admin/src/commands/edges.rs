//! `edge add|remove|list`, `edge key generate|list|remove`, `publish`, `status`.

use std::io::Write;
use std::path::Path;

use pat_core::keys::SigningKey;
use serde::Serialize;

use super::{Ctx, build_and_push, create_secret_file, runtime, table};
use crate::cli::{EdgeCommand, EdgeKeyCommand, PublishArgs, PushOpts, StatusArgs};
use crate::error::{Error, Result, exit};
use crate::expiry::rfc3339;
use crate::output::{self, paint};
use crate::publish;
use crate::store::{audit, edge_keys, edges, snapshots};

/// Runs an `edge` subcommand.
pub fn run_edge(ctx: &mut Ctx, command: EdgeCommand) -> Result<u8> {
    match command {
        EdgeCommand::Key(command) => return run_edge_key(ctx, command),
        EdgeCommand::Add { url } => {
            let url = publish::canonical_edge(&url)?;
            ctx.store.write(|tx| {
                edges::add(tx, &url, tx.now())?;
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

/// An edge key as the commands show it (never the secret).
#[derive(Debug, Serialize)]
struct EdgeKeyView {
    id: String,
    name: String,
    public_key: String,
    /// RFC 3339.
    created_at: String,
    /// RFC 3339; `null`: no report yet.
    last_report_at: Option<String>,
    /// Where the secret was written (generate only).
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<std::path::PathBuf>,
}

impl EdgeKeyView {
    fn of(k: &edge_keys::EdgeKey) -> Self {
        Self {
            id: k.id.clone(),
            name: k.name.clone(),
            public_key: k.public_key.clone(),
            created_at: rfc3339(k.created_at),
            last_report_at: k.last_report_at.map(rfc3339),
            file: None,
        }
    }
}

/// An edge's name: 1 to 64 ASCII letters, digits and `. _ -`.
fn edge_name(name: &str) -> Result<String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !ok {
        return Err(Error::Invalid(format!(
            "--name {:?}: use 1 to 64 letters, digits and . _ - (e.g. edge-1 or eu-west.envoy-3)",
            name.chars().take(80).collect::<String>()
        )));
    }
    Ok(name.to_string())
}

/// Writes `secret` to a new file (0600, created exclusively: never overwritten).
fn write_secret(path: &Path, secret: &SigningKey) -> Result<()> {
    let mut file = create_secret_file(path)?;
    let written = file
        .write_all(secret.to_secret_text().as_bytes())
        .and_then(|()| file.sync_all());
    if let Err(e) = written {
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(Error::io(path, e));
    }
    Ok(())
}

/// Runs an `edge key` subcommand.
fn run_edge_key(ctx: &mut Ctx, command: EdgeKeyCommand) -> Result<u8> {
    match command {
        EdgeKeyCommand::Generate { name, output } => {
            let name = edge_name(&name)?;
            // Refused before any file is written when the name is taken.
            if edge_keys::list(ctx.store.conn())?
                .iter()
                .any(|k| k.name.eq_ignore_ascii_case(&name))
            {
                return Err(Error::Refused(format!(
                    "an edge key named {name} is already registered; choose another name, or remove it first (pat-admin edge key list)"
                )));
            }
            let secret = SigningKey::generate().map_err(|e| Error::Random(e.to_string()))?;
            let public = secret.public_key();
            let row = edge_keys::EdgeKey {
                id: public.id().to_string(),
                name: name.clone(),
                public_key: public.to_string(),
                created_at: ctx.store.now(),
                last_report_at: None,
            };
            write_secret(&output, &secret)?;
            let saved = ctx.store.write(|tx| {
                edge_keys::add(tx, &row)?;
                audit::record(
                    tx,
                    None,
                    "edge-key.generate",
                    None,
                    &format!("edge key {} for {name}", row.id),
                )
            });
            if let Err(e) = saved {
                let _ = std::fs::remove_file(&output);
                return Err(e);
            }
            let mut view = EdgeKeyView::of(&row);
            view.file = Some(output.clone());
            ctx.emit(&view, || {
                format!(
                    "Edge key {} created for {name}; its secret is in {} (mode 0600). Give it to that edge's Envoy as PAT_EDGE_KEY (its usage reports are signed with it), then delete the file or keep it as safe as the edge's other secrets. Public key:\n{}\n",
                    row.id,
                    output.display(),
                    row.public_key
                )
            })?;
        }
        EdgeKeyCommand::List => {
            let list: Vec<EdgeKeyView> = edge_keys::list(ctx.store.conn())?
                .iter()
                .map(EdgeKeyView::of)
                .collect();
            ctx.emit(&list, || {
                if list.is_empty() {
                    return "No edge keys yet (pat-admin edge key generate --name NAME --output FILE).\n".into();
                }
                table(
                    &["ID", "NAME", "PUBLIC KEY", "CREATED", "LAST REPORT"],
                    list.iter()
                        .map(|k| {
                            vec![
                                k.id.clone(),
                                k.name.clone(),
                                k.public_key.clone(),
                                k.created_at.clone(),
                                k.last_report_at.clone().unwrap_or_else(|| "never".into()),
                            ]
                        })
                        .collect(),
                )
            })?;
        }
        EdgeKeyCommand::Remove { id } => {
            let removed = ctx.store.write(|tx| {
                let removed = edge_keys::remove(tx, &id)?.ok_or_else(|| {
                    Error::NotFound(format!("no edge key {id} (see: pat-admin edge key list)"))
                })?;
                audit::record(
                    tx,
                    None,
                    "edge-key.remove",
                    None,
                    &format!("edge key {} of {}", removed.id, removed.name),
                )?;
                Ok(removed)
            })?;
            let view = EdgeKeyView::of(&removed);
            ctx.emit(&view, || {
                format!(
                    "Edge key {} of {} removed: usage reports signed with it are refused from now on.\n",
                    view.id, view.name
                )
            })?;
        }
    }
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
