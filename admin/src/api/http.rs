//! The HTTP layer of the API: the token methods under [`PREFIX`] by GET (query string) or
//! POST (form body), the client's address, the JSON answer (always HTTP 200, as the
//! platform answers; 404 outside [`PREFIX`]).
//!
//! # Layout
//! - [`handle`]: one request, answered on a blocking thread by [`Api::call`].
//! - [`read_params`]: the parameters of a request; [`client_address`]: who asks.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::params::Params;
use super::{Api, ApiError, MAX_BODY, PREFIX, code, page};

fn json_answer(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The client's address: the configured header when Envoy set it, else the peer.
fn client_address(api: &Api, headers: &HeaderMap, peer: SocketAddr) -> String {
    api.config
        .client_address_header
        .as_ref()
        .and_then(|name| headers.get(name))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<std::net::IpAddr>().ok())
        .map_or_else(|| peer.ip().to_string(), |ip| ip.to_string())
}

/// Answers one request.
pub(crate) async fn handle(
    State(api): State<Arc<Api>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let path = uri.path();
    let name = match path.get(..PREFIX.len()) {
        Some(head) if head.eq_ignore_ascii_case(PREFIX) => path[PREFIX.len()..].to_string(),
        _ => {
            return json_answer(
                StatusCode::NOT_FOUND,
                &ApiError::new(
                    code::UNKNOWN_METHOD,
                    format!(
                        "not found: the token methods are under {PREFIX}<method>, the Access Tokens page at {}",
                        page::PATH
                    ),
                )
                .to_json(),
            );
        }
    };
    let answer = match read_params(&method, &uri, &headers, body).await {
        Ok(params) => {
            let client = client_address(&api, &headers, peer);
            let worker = Arc::clone(&api);
            tokio::task::spawn_blocking(move || worker.call(&name, &params, &client))
                .await
                .unwrap_or_else(|e| {
                    eprintln!("pat-admin serve: API: a request failed: {e}");
                    ApiError::new(code::INTERNAL, "the service failed").to_json()
                })
        }
        Err(e) => e.to_json(),
    };
    json_answer(StatusCode::OK, &answer)
}

/// The parameters of a request: its query string, and a form body when there is one.
async fn read_params(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<Params, ApiError> {
    if method != Method::GET && method != Method::POST {
        return Err(ApiError::invalid(format!(
            "{method} is not supported: use GET with a query string or POST with a form body"
        )));
    }
    let mut params = Params::default();
    if let Some(query) = uri.query() {
        params.add_encoded(query.as_bytes(), "the query string")?;
    }
    let body = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        ApiError::invalid(format!(
            "the request body is larger than {MAX_BODY} bytes (or could not be read)"
        ))
    })?;
    if body.is_empty() {
        return Ok(params);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if content_type != "application/x-www-form-urlencoded" {
        return Err(ApiError::invalid(format!(
            "a body of type `{}` is not read: send the parameters in the query string or as application/x-www-form-urlencoded",
            if content_type.is_empty() {
                "none"
            } else {
                &content_type
            }
        )));
    }
    params.add_encoded(&body, "the form body")?;
    Ok(params)
}
