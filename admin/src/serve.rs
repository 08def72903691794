//! `pat-admin serve`: a read-only origin for the latest signed snapshot, so an edge that
//! starts or restarts (shared data dies with Envoy) fetches it without anyone re-running
//! `publish`, and the re-signer that keeps it fresh.
//!
//! - `GET /snapshot`: the signed bytes, with an `ETag` naming the version and digest, and
//!   `304 Not Modified` to a matching `If-None-Match`.
//! - `GET /snapshot/head`: the signed head alone (the first `BODY_OFFSET` bytes: header and
//!   signature), the same `ETag`: a cheap, verifiable "latest version" statement.
//!
//! Both answer `404` before any snapshot exists and `503` when the store cannot be read.
//! The edge verifies the signature itself, so the origin is trusted for availability only.
//! Every request reads the store, so a change or publish from another process is served at
//! once.
//!
//! A background thread looks at the latest snapshot's metadata every [`RESIGN_CHECK`] and
//! builds and stores a new one (one write transaction) when it is due for re-signing (a
//! quarter of its lifetime has passed), when token changes were committed without one (no
//! key was active), or when another key is active: edges that cannot reach pat-admin
//! otherwise still get a fresh snapshot long before the one they hold expires. A store that
//! is briefly locked only delays it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::cli::ServeArgs;
use crate::error::{Error, Result};
use crate::expiry::rfc3339;
use crate::snapshot;
use crate::store::{Store, snapshots};

/// The path edges fetch the snapshot from.
pub const SNAPSHOT_PATH: &str = "/snapshot";
/// The path of the latest snapshot's signed head.
pub const HEAD_PATH: &str = "/snapshot/head";
/// How often the re-signer looks at the latest snapshot.
pub const RESIGN_CHECK: Duration = Duration::from_secs(2);

/// Runs the origin and the re-signer until the process is interrupted.
pub async fn run(store_dir: PathBuf, listen: &str) -> Result<()> {
    run_with(
        store_dir,
        &ServeArgs {
            listen: Some(listen.to_string()),
            api_listen: None,
            client_address_header: None,
        },
    )
    .await
}

/// Runs what `args` asks for — the origin (`--listen`), the token API (`--api-listen`), or
/// both in one process on one store — and the re-signer, until the process is interrupted.
pub async fn run_with(store_dir: PathBuf, args: &ServeArgs) -> Result<()> {
    // Fail early on an unusable store (and migrate it before anything reads it). The origin
    // may create the store: it writes (re-signs), and it starts before anything is published.
    let store = Store::open_as(&store_dir, crate::store::Open::Create)?;
    for warning in store.warnings() {
        eprintln!("pat-admin serve: warning: {warning}");
    }
    let bind = |addr: SocketAddr, flag: &'static str| async move {
        tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            Error::Internal(format!(
                "cannot listen on {addr}: {e}; stop what uses that address or choose another with {flag}"
            ))
        })
    };
    let origin = match &args.listen {
        Some(listen) => {
            let addr = resolve(listen).await?;
            Some((addr, bind(addr, "--listen").await?))
        }
        None => None,
    };
    let api = match &args.api_listen {
        Some(listen) => {
            let addr = resolve(listen).await.map_err(|e| {
                Error::Invalid(e.to_string().replacen("--listen", "--api-listen", 1))
            })?;
            let header = args
                .client_address_header
                .as_deref()
                .map(|name| {
                    axum::http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                        Error::Invalid(format!("--client-address-header {name}: not a header name"))
                    })
                })
                .transpose()?;
            let service = crate::api::Api::new(
                store_dir.clone(),
                crate::api::Config {
                    client_address_header: header,
                },
            )?;
            Some((addr, bind(addr, "--api-listen").await?, service))
        }
        None => None,
    };
    spawn_resigner(store)?;
    let mut servers = tokio::task::JoinSet::new();
    if let Some((addr, listener)) = origin {
        let app = Router::new()
            .route(SNAPSHOT_PATH, get(full))
            .route(HEAD_PATH, get(head))
            .fallback(not_found)
            .with_state(store_dir.clone());
        eprintln!(
            "pat-admin: serving the latest signed snapshot on http://{addr}{SNAPSHOT_PATH} (head: {HEAD_PATH}), re-signing it before it expires"
        );
        servers.spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown())
                .await
                .map_err(|e| Error::Internal(format!("the origin server failed: {e}")))
        });
    }
    if let Some((addr, listener, service)) = api {
        let app = std::sync::Arc::new(service).router();
        eprintln!(
            "pat-admin: serving the token API (users.Authentication) on http://{addr}{}<method>",
            crate::api::PREFIX
        );
        servers.spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(shutdown())
            .await
            .map_err(|e| Error::Internal(format!("the API server failed: {e}")))
        });
    }
    while let Some(done) = servers.join_next().await {
        done.map_err(|e| Error::Internal(format!("a server task failed: {e}")))??;
    }
    Ok(())
}

async fn shutdown() {
    let _ = tokio::signal::ctrl_c().await;
}

/// The address to listen on: `127.0.0.1:10002`, `[::1]:10002`, or `localhost:10002` (a host
/// name resolved once, the first address it names).
pub async fn resolve(listen: &str) -> Result<SocketAddr> {
    if let Ok(addr) = listen.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let invalid = |why: String| {
        Error::Invalid(format!(
            "--listen {listen}: {why}; use HOST:PORT, e.g. 127.0.0.1:10002 or localhost:10002"
        ))
    };
    match listen.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {}
        _ => return Err(invalid("not an address".into())),
    }
    let mut addrs = tokio::net::lookup_host(listen)
        .await
        .map_err(|e| invalid(format!("cannot resolve it ({e})")))?;
    addrs
        .next()
        .ok_or_else(|| invalid("the host name has no address".into()))
}

/// Starts the re-signer thread. It logs one line per snapshot it signs, and a failure once
/// until it changes or clears; it never stops the server.
fn spawn_resigner(mut store: Store) -> Result<()> {
    std::thread::Builder::new()
        .name("pat-admin-resign".into())
        .spawn(move || {
            let mut failing: Option<String> = None;
            loop {
                match snapshot::resign_if_needed(&mut store) {
                    Ok(signed) => {
                        if failing.take().is_some() {
                            eprintln!("pat-admin serve: the store is usable again");
                        }
                        if let Some((stamp, reason)) = signed {
                            eprintln!(
                                "pat-admin serve: signed snapshot version {} ({} tokens, key {}, expires {}): {reason}",
                                stamp.version,
                                stamp.tokens,
                                stamp.key_id,
                                rfc3339(stamp.expires_at)
                            );
                        }
                    }
                    Err(e) => {
                        let message = e.to_string();
                        if failing.as_deref() != Some(message.as_str()) {
                            eprintln!(
                                "pat-admin serve: cannot re-sign the snapshot: {message}; trying again every {} s",
                                RESIGN_CHECK.as_secs()
                            );
                            failing = Some(message);
                        }
                    }
                }
                std::thread::sleep(RESIGN_CHECK);
            }
        })
        .map(drop)
        .map_err(|e| Error::Internal(format!("cannot start the re-signing thread: {e}")))
}

fn json_error(status: StatusCode, message: &str) -> Response {
    let body =
        serde_json::json!({ "result": status.as_u16(), "error": message, "source": "pat-admin" });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn not_found() -> Response {
    json_error(
        StatusCode::NOT_FOUND,
        "not found: the snapshot is at /snapshot, its signed head at /snapshot/head",
    )
}

/// `"<version>-<first 16 hex of the body digest>"`, from the snapshot or its head alone (the
/// snapshot and its head carry the same tag).
pub fn etag(version: u64, bytes: &[u8]) -> String {
    let digest = bytes
        .get(..pat_core::snapshot::HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .and_then(|h| pat_core::snapshot::Header::decode(h).ok())
        .map(|h| {
            h.body_digest[..8]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        });
    format!("\"{version}-{}\"", digest.unwrap_or_default())
}

async fn full(State(dir): State<PathBuf>, headers: HeaderMap) -> Response {
    let latest = tokio::task::spawn_blocking(move || -> Result<_> {
        let store = Store::open_reader(&dir)?;
        Ok(snapshots::latest(store.conn())?.map(|p| (p.stamp.version, p.bytes)))
    })
    .await;
    answer(latest, &headers)
}

async fn head(State(dir): State<PathBuf>, headers: HeaderMap) -> Response {
    let latest = tokio::task::spawn_blocking(move || -> Result<_> {
        let store = Store::open_reader(&dir)?;
        snapshots::latest_head(store.conn())
    })
    .await;
    answer(latest, &headers)
}

/// What a request read from the store: the version and the bytes to send, if any.
type Read = std::result::Result<Result<Option<(u64, Vec<u8>)>>, tokio::task::JoinError>;

/// The answer to a GET of the snapshot or its head: `bytes` of `version`, or why not.
fn answer(latest: Read, headers: &HeaderMap) -> Response {
    let (version, bytes) = match latest {
        Ok(Ok(Some(found))) => found,
        Ok(Ok(None)) => {
            return json_error(
                StatusCode::NOT_FOUND,
                "nothing has been published yet (pat-admin key generate, then a token change or pat-admin publish)",
            );
        }
        Ok(Err(e)) => return json_error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
        Err(e) => return json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let tag = etag(version, &bytes);
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            )],
            bytes,
        )
            .into_response()
    };
    let h = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, value);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(&version.to_string()) {
        h.insert("x-pat-snapshot-version", value);
    }
    response
}
