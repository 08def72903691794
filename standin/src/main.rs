//! `platform-standin`: a stand-in for the platform API, to put behind Envoy in the demo and
//! the end-to-end tests. **It is not the product and not the platform.**
//!
//! It answers every `/1.0/{group}/{class}/rest/{method}` call the way the platform shapes its
//! answers, and says what it received:
//! - with pat-edge identity headers (`x-pat-user`, `x-pat-token-id`): `{"result": 0, ...}`
//!   echoing the method, the user and the token id — the request was authorized at the edge;
//! - with an ordinary `session` (query, form or multipart body) that it was told about
//!   (`--session VALUE=USER`): `{"result": 0, ...}` for that user;
//! - with an unknown session: the platform's own error, `{"result": 701, "error":
//!   "session ... is not valid", "source": "JEL"}`; without any: `authentication required`;
//! - the platform's own accounts for pat-edge's platform mode (`--account
//!   UID:EMAIL:PASSWORD[:STATUS]`): `Signin`, `Signout`, `GetUserInfo`, `CheckPassword`, and
//!   the login sessions Signin makes, valid for every other method too ([`platform`]).
//!
//! Session values are never logged or echoed in full. Every reply and log line counts the
//! token values that reached it anywhere (`token_values_seen`): with `strip_token`, none may.
//! Every reply also echoes the `x-pat-*` headers it received, every value
//! (`identity_headers`), and the names of headers with `_` (`underscore_headers`).
//!
//! # Layout
//! [`main`] parses the options and serves; [`answer`] decides the reply; [`platform`] plays
//! the platform's accounts and sessions.

mod platform;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use clap::Parser;
use pat_core::method::resolve_path;
use pat_core::token::mask;
use serde_json::{Value, json};

/// A stand-in for the platform API (for the pat-edge demo and tests; not the product).
#[derive(Debug, Parser)]
#[command(name = "platform-standin", version)]
struct Opts {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// An ordinary login session it accepts, as VALUE=USER (repeatable).
    #[arg(long = "session", value_name = "VALUE=USER")]
    sessions: Vec<String>,
    /// A platform account (for pat-edge's platform mode), as UID:EMAIL:PASSWORD[:STATUS]
    /// (STATUS: ENABLED, the default, or SUSPENDED; repeatable).
    #[arg(long = "account", value_name = "UID:EMAIL:PASSWORD[:STATUS]")]
    accounts: Vec<String>,
    /// How long a login session made by Signin lasts, seconds.
    #[arg(long, default_value_t = 3600)]
    session_lifetime: u64,
}

/// What the stand-in knows: sessions it was told about, and the platform's accounts.
struct App {
    sessions: HashMap<String, String>,
    accounts: platform::Accounts,
}

type Shared = Arc<App>;

fn main() -> std::process::ExitCode {
    let opts = Opts::parse();
    let mut sessions = HashMap::new();
    for pair in &opts.sessions {
        let Some((value, user)) = pair.split_once('=') else {
            eprintln!("platform-standin: --session takes VALUE=USER, got `{pair}`");
            return std::process::ExitCode::from(2);
        };
        sessions.insert(value.to_string(), user.to_string());
    }
    let accounts = match platform::Accounts::new(
        &opts.accounts,
        std::time::Duration::from_secs(opts.session_lifetime),
    ) {
        Ok(accounts) => accounts,
        Err(e) => {
            eprintln!("platform-standin: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("platform-standin: cannot start: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    let served = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(opts.listen).await?;
        eprintln!(
            "platform-standin: a STAND-IN for the platform API (demo and tests only, not the product) on http://{}",
            opts.listen
        );
        // Uploads can be large: the platform accepts them, so the stand-in does too.
        let app = Router::new()
            .fallback(handle)
            .layer(DefaultBodyLimit::max(1 << 30))
            .with_state(Arc::new(App { sessions, accounts }));
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
    });
    match served {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("platform-standin: {e}");
            std::process::ExitCode::from(1)
        }
    }
}

async fn handle(
    State(app): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some((status, text, delay)) = account_method(&app, &uri, &headers, &body) {
        tokio::time::sleep(delay).await;
        eprintln!("platform-standin: {method} {} -> HTTP {status}", uri.path());
        return (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            [(header::CONTENT_TYPE, "application/json")],
            text,
        )
            .into_response();
    }
    let (status, mut reply) = answer(&app, &method, &uri, &headers, &body);
    // How many token values reached the platform at all (with strip_token: none should).
    let seen = token_values(uri.to_string().as_bytes())
        + headers
            .iter()
            .map(|(_, v)| token_values(v.as_bytes()))
            .sum::<usize>()
        + token_values(&body);
    reply["token_values_seen"] = json!(seen);
    // Header names with `_`, which some servers read as `-` (`x_pat_user` as `x-pat-user`).
    let underscored: Vec<&str> = headers
        .keys()
        .map(|name| name.as_str())
        .filter(|name| name.contains('_'))
        .collect();
    reply["underscore_headers"] = json!(underscored);
    reply["identity_headers"] = identity_headers(&headers);
    eprintln!(
        "platform-standin: {method} {} -> result {}, {seen} token value(s) received",
        uri.path(),
        reply.get("result").and_then(Value::as_i64).unwrap_or(-1)
    );
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        reply.to_string(),
    )
        .into_response()
}

/// The `x-pat-*` headers received, each with every value (the edge's identity headers, and
/// any a client sent that the edge let through): `{"x-pat-user": ["alice"], ...}`.
fn identity_headers(headers: &HeaderMap) -> Value {
    let mut received = serde_json::Map::new();
    for name in headers.keys().filter(|n| n.as_str().starts_with("x-pat-")) {
        let values: Vec<String> = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        received.insert(name.as_str().to_string(), json!(values));
    }
    Value::Object(received)
}

/// The platform's account methods and the test hooks (see [`platform`]); `None` for every
/// other request.
fn account_method(
    app: &App,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<platform::Answer> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            t.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    let query = uri.query().unwrap_or_default().as_bytes().to_vec();
    let body = if form { body.to_vec() } else { Vec::new() };
    let param = move |name: &str| {
        form_urlencoded::parse(&query)
            .chain(form_urlencoded::parse(&body))
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    if uri.path().starts_with("/_standin/") {
        return Some(app.accounts.admin(uri.path(), param));
    }
    let path_and_query = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let method = resolve_path(path_and_query).ok()?;
    app.accounts.answer(method.as_str(), param)
}

/// How many values in token format (prefix and valid checksum) `bytes` contains.
fn token_values(bytes: &[u8]) -> usize {
    let prefix = pat_core::token::PREFIX.as_bytes();
    (0..bytes.len())
        .filter(|&at| {
            bytes[at..].starts_with(prefix)
                && bytes
                    .get(at..at + pat_core::token::TOKEN_LEN)
                    .and_then(|w| std::str::from_utf8(w).ok())
                    .is_some_and(|w| pat_core::token::validate(w).is_ok())
        })
        .count()
}

/// The reply to one request.
fn answer(
    app: &App,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> (StatusCode, Value) {
    let path_and_query = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let Ok(api_method) = resolve_path(path_and_query) else {
        return (
            StatusCode::NOT_FOUND,
            json!({ "result": 404, "error": format!("no API method at {}", uri.path()), "source": "JEL" }),
        );
    };
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = header("content-type")
        .unwrap_or_default()
        .to_ascii_lowercase();

    // What the platform would see: parameter names from the query and a form body, and
    // whether a `session` field reached it (a multipart body is only searched for it).
    let mut params: Vec<String> = Vec::new();
    let mut session: Option<String> = None;
    let mut take = |pairs: form_urlencoded::Parse<'_>| {
        for (name, value) in pairs {
            if name == "session" && session.is_none() {
                session = Some(value.to_string());
            }
            params.push(name.into_owned());
        }
    };
    take(form_urlencoded::parse(
        uri.query().unwrap_or_default().as_bytes(),
    ));
    if content_type.starts_with("application/x-www-form-urlencoded") {
        take(form_urlencoded::parse(body));
    }
    let multipart_session = content_type.starts_with("multipart/form-data")
        && body
            .windows(b"name=\"session\"".len())
            .any(|w| w == b"name=\"session\"");

    let mut reply = json!({
        "result": 0,
        "method": api_method.as_str(),
        "http_method": method.as_str(),
        "params": params,
        "session_received": session.is_some() || multipart_session,
        "body_bytes": body.len(),
    });
    if let (Some(user), Some(token_id)) = (header("x-pat-user"), header("x-pat-token-id")) {
        reply["via"] = json!("token");
        reply["user"] = json!(user);
        reply["token_id"] = json!(token_id);
        return (StatusCode::OK, reply);
    }
    match session {
        Some(value) => match app
            .sessions
            .get(&value)
            .cloned()
            .or_else(|| app.accounts.session_email(&value))
        {
            Some(user) => {
                reply["via"] = json!("session");
                reply["user"] = json!(user);
                (StatusCode::OK, reply)
            }
            None => (
                StatusCode::OK,
                json!({ "result": 701, "error": format!("session [{}] is not valid", mask(&value)), "source": "JEL" }),
            ),
        },
        None if multipart_session => (
            StatusCode::OK,
            json!({ "result": 701, "error": "session is not valid", "source": "JEL" }),
        ),
        None => (
            StatusCode::OK,
            json!({ "result": 701, "error": "authentication required: pass a session", "source": "JEL" }),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(uri: &str, headers: &[(&'static str, &str)], body: &str) -> Value {
        let app = App {
            sessions: HashMap::from([("demo-session".to_string(), "alice".to_string())]),
            accounts: platform::Accounts::new(&[], std::time::Duration::from_secs(60))
                .expect("no accounts"),
        };
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(*k, v.parse().expect("header"));
        }
        answer(
            &app,
            &Method::POST,
            &uri.parse().expect("uri"),
            &map,
            body.as_bytes(),
        )
        .1
    }

    #[test]
    fn identity_headers_are_echoed() {
        let reply = ask(
            "/1.0/env/control/rest/stopenv?envName=x",
            &[("x-pat-user", "alice"), ("x-pat-token-id", "7")],
            "",
        );
        assert_eq!(reply["result"], 0);
        assert_eq!(reply["method"], "environment.control.stopenv");
        assert_eq!(
            (
                reply["user"].as_str(),
                reply["token_id"].as_str(),
                reply["via"].as_str()
            ),
            (Some("alice"), Some("7"), Some("token"))
        );
        assert_eq!(reply["session_received"], false);
        let mut map = HeaderMap::new();
        for (k, v) in [
            ("x-pat-user", "alice"),
            ("x-pat-identity", "id=1"),
            ("x-pat-identity", "id=2"),
            ("accept", "*/*"),
        ] {
            map.append(k, v.parse().expect("header"));
        }
        assert_eq!(
            identity_headers(&map),
            json!({"x-pat-user": ["alice"], "x-pat-identity": ["id=1", "id=2"]})
        );
    }

    #[test]
    fn ordinary_sessions_known_and_unknown() {
        assert_eq!(
            ask("/1.0/a/b/rest/c?session=demo-session", &[], "")["user"],
            "alice"
        );
        let form = ask(
            "/1.0/a/b/rest/c",
            &[("content-type", "application/x-www-form-urlencoded")],
            "session=demo-session&x=1",
        );
        assert_eq!(
            (
                form["via"].as_str(),
                form["params"].as_array().map(Vec::len)
            ),
            (Some("session"), Some(2))
        );
        let unknown = ask("/1.0/a/b/rest/c?session=0123456789abcdefghij", &[], "");
        assert_eq!(unknown["result"], 701);
        assert!(
            !unknown["error"]
                .as_str()
                .expect("text")
                .contains("0123456789abcdefghij"),
            "masked"
        );
        assert_eq!(ask("/1.0/a/b/rest/c", &[], "")["result"], 701);
        assert_eq!(ask("/other", &[], "")["result"], 404);
    }
}
