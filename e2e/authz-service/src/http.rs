//! `ext_authz` over HTTP: Envoy sends each request's method and path (under a prefix); a `200`
//! allows it, its `x-pat-token-id` and `x-pat-user` going on to the upstream; any other status
//! is the answer the client gets.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::check::{Tokens, Verdict, denial_body};

/// The prefix Envoy puts before the checked path (`http_service.path_prefix`).
const PREFIX: &str = "/check";

/// Serves until the process ends.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    tokens: Arc<Tokens>,
) -> std::io::Result<()> {
    let app = Router::new().fallback(check).with_state(tokens);
    axum::serve(listener, app).await
}

async fn check(State(tokens): State<Arc<Tokens>>, uri: Uri) -> Response {
    let target = uri.path_and_query().map_or("", |p| p.as_str());
    let path = target.strip_prefix(PREFIX).unwrap_or(target);
    match tokens.check(path) {
        Verdict::Pass => StatusCode::OK.into_response(),
        Verdict::Allow(entry) => (
            StatusCode::OK,
            [
                ("x-pat-token-id", entry.id.as_str()),
                ("x-pat-user", &*entry.user),
            ],
        )
            .into_response(),
        Verdict::Deny(code, message) => (
            StatusCode::FORBIDDEN,
            [("content-type", "application/json")],
            denial_body(code, message),
        )
            .into_response(),
    }
}
