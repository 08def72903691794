//! `GET /healthz` on both of `serve`'s listeners: `200` with the store's engine and latest
//! snapshot version while this replica can read its store, `503` with the reason when it
//! cannot (PostgreSQL down or unreachable, the SQLite file gone). Envoy's active health
//! checks of the `pat_origin` and `pat_api` clusters ask it, so edges and clients stop
//! sending to a replica that cannot serve and come back when it can.
//!
//! Each check reads the store on a connection from the listener's pool
//! ([`crate::store::pool`]; a PostgreSQL connection closed by a restart is reopened), off the
//! async threads, within [`TIMEOUT`]; nothing about the store beyond the engine and a version
//! number is shown.

use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use std::sync::Arc;

use crate::store::pool::Pool;
use crate::store::snapshots;

/// How long a check may take before the replica counts as unhealthy.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// Answers one health check of a store (`engine` names it) on a connection from `pool`.
pub async fn check(engine: String, pool: Arc<Pool>) -> Response {
    let read = tokio::task::spawn_blocking(move || -> crate::error::Result<Option<u64>> {
        let store = pool.get()?;
        Ok(snapshots::latest_stamp(store.conn())?.map(|s| s.version))
    });
    let status = match tokio::time::timeout(TIMEOUT, read).await {
        Ok(Ok(Ok(version))) => Ok(version),
        Ok(Ok(Err(e))) => Err(e.to_string()),
        Ok(Err(e)) => Err(format!("the check failed: {e}")),
        Err(_) => Err(format!(
            "the store did not answer within {} s",
            TIMEOUT.as_secs()
        )),
    };
    match status {
        Ok(version) => answer(
            StatusCode::OK,
            json!({"status": "ok", "store": engine, "version": version}),
        ),
        Err(error) => answer(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "unavailable", "store": engine, "error": error}),
        ),
    }
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, pat_core::protocol::JSON)],
        body.to_string(),
    )
        .into_response()
}
