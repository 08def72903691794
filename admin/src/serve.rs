//! `pat-admin serve`: a read-only origin for the last published snapshot, so an edge that
//! starts or restarts (shared data dies with Envoy) fetches it without anyone re-running
//! `publish`.
//!
//! `GET /snapshot` answers the signed bytes with an `ETag` naming the version and digest, and
//! `304 Not Modified` to a matching `If-None-Match`; the edge verifies the signature itself,
//! so the origin is trusted for availability only. Every request reads the store, so a
//! `publish` from another process is served at once.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::error::{Error, Result};
use crate::store::{Store, snapshots};

/// The path edges fetch.
pub const SNAPSHOT_PATH: &str = "/snapshot";

/// Runs the origin until the process is interrupted.
pub async fn run(store_dir: PathBuf, listen: SocketAddr) -> Result<()> {
    // Fail early on an unusable store.
    Store::open(&store_dir)?;
    let app = Router::new()
        .route(SNAPSHOT_PATH, get(snapshot))
        .fallback(not_found)
        .with_state(store_dir);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| Error::Invalid(format!("cannot listen on {listen}: {e}")))?;
    eprintln!("pat-admin: serving the last published snapshot on http://{listen}{SNAPSHOT_PATH}");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| Error::Invalid(format!("the origin server failed: {e}")))
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
        "not found: the snapshot is at /snapshot",
    )
}

/// `"<version>-<first 16 hex of the body digest>"`.
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

async fn snapshot(State(dir): State<PathBuf>, headers: HeaderMap) -> Response {
    let latest = tokio::task::spawn_blocking(move || -> Result<_> {
        let store = Store::open(&dir)?;
        snapshots::latest(store.conn())
    })
    .await;
    let published = match latest {
        Ok(Ok(Some(p))) => p,
        Ok(Ok(None)) => {
            return json_error(
                StatusCode::NOT_FOUND,
                "nothing has been published yet (pat-admin publish)",
            );
        }
        Ok(Err(e)) => return json_error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
        Err(e) => return json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let tag = etag(published.version, &published.bytes);
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
            published.bytes,
        )
            .into_response()
    };
    let h = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, value);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(&published.version.to_string()) {
        h.insert("x-pat-snapshot-version", value);
    }
    response
}
