//! `pat-admin serve`: the origin edges fetch signed documents from (an edge that starts or
//! restarts has nothing: shared data dies with Envoy; one that missed a push catches up),
//! where they send their usage reports, and the re-signer and compactor that keep it fresh.
//!
//! - `GET /snapshot/head`: the latest document's signed head (its first `BODY_OFFSET`
//!   bytes: header and signature), a cheap, verifiable "latest version" statement edges poll.
//!   `Cache-Control: max-age=1`: a cache in front of the origin answers a fleet's polls from
//!   one origin request a second.
//! - `GET /snapshot`: a bundle of the latest full snapshot and every delta after it.
//! - `GET /snapshot?since=V`: a bundle of the deltas `V+1..=latest` when the store still has
//!   them all and they are smaller than the full answer, else the full answer; an empty
//!   bundle when `V` is the latest. A malformed `since` is 400.
//!
//!   Both answers carry an `ETag` naming what they hold (`"since-V-L-<digest>"`,
//!   `"full-F-L-<digest>"`: the range and a digest of the signed heads at its ends) and
//!   `Cache-Control: no-cache`: a cache stores them and revalidates each time (a `304` when
//!   nothing moved), since the answer for one URL changes whenever the latest version
//!   does. Every answer names the version it ends at in `x-pat-snapshot-version`.
//! - `POST /usage`: an edge's signed usage report ([`crate::usage`]): 200 when merged, 403
//!   for a key that is not registered or a bad signature, 400 malformed or stale, 413 too
//!   large.
//!
//! `404` (JSON) before anything is published, `503` when the store cannot be read. The edge
//! verifies every document itself, so the origin (and any cache in front of it) is trusted
//! for availability only. Every request reads the store, so a change or publish from another
//! process is served at once; a small in-memory cache keeps the last few answers' bytes (a
//! full answer is ~57 MB at 1,000,000 tokens) for edges that ask for the same thing.
//!
//! A background thread looks at the latest document's metadata every [`RESIGN_CHECK`]
//! (`--check-every`; its clock is the store's, [`crate::clock`]) and
//! builds and stores a new one (one write transaction) when it is due for re-signing (a
//! quarter of its lifetime has passed: an empty delta), when token changes were committed
//! without one (no key was active), or when another key is active (a full snapshot); then it
//! compacts the chain when that is due ([`crate::snapshot::compact_if_due`]: built without
//! holding the write lock). Edges that cannot reach pat-admin otherwise still get a fresh
//! document long before the one they hold expires. A store that is briefly locked only
//! delays it.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use pat_core::protocol::origin as wire;
use pat_core::protocol::{ErrorReply, JSON};

use crate::cli::ServeArgs;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::expiry::rfc3339;
use crate::origin::{self, Plan};
use crate::snapshot;
use crate::store::db::Location;
use crate::store::pool::{self, Pool};
use crate::store::{Open, Store, snapshots};
use crate::usage;

/// The path edges fetch documents from.
pub const SNAPSHOT_PATH: &str = wire::SNAPSHOT_PATH;
/// The path of the latest document's signed head.
pub const HEAD_PATH: &str = wire::HEAD_PATH;
/// The path edges send usage reports to.
pub const USAGE_PATH: &str = wire::USAGE_PATH;
/// How often the re-signer looks at the latest document by default (`serve --check-every`).
pub const RESIGN_CHECK: Duration = Duration::from_secs(2);
/// `Cache-Control` of the head: a cache may answer polls for a second.
pub const HEAD_CACHE_CONTROL: &str = "max-age=1";
/// `Cache-Control` of bundles: stored, revalidated every time.
pub const BUNDLE_CACHE_CONTROL: &str = "no-cache";
/// How many answers' bytes the origin keeps in memory...
const CACHED_ANSWERS: usize = 4;
/// ...and how many bytes at most (two full answers at 1,000,000 tokens).
const CACHED_BYTES: usize = 128 * 1024 * 1024;

/// Runs the origin and the re-signer until the process is interrupted.
pub async fn run(store_dir: Location, listen: &str) -> Result<()> {
    run_with(
        store_dir,
        &ServeArgs {
            listen: Some(listen.to_string()),
            api_listen: None,
            client_address_header: None,
            platform_url: None,
            module: Vec::new(),
            check_every: None,
        },
        Clock::system(),
    )
    .await
}

/// Runs what `args` asks for — the origin (`--listen`), the token API (`--api-listen`), or
/// both in one process on one store — and the re-signer, until the process is interrupted.
/// Every store connection it opens reads the time from `clock`.
pub async fn run_with(store_dir: Location, args: &ServeArgs, clock: Clock) -> Result<()> {
    let check_every = check_interval(args.check_every.as_deref())?;
    // Fail early on an unusable store (and migrate it before anything reads it). The origin
    // may create the store: it writes (re-signs), and it starts before anything is published.
    let store = Store::open_as(store_dir.clone(), Open::Create)?.with_clock(clock.clone());
    for warning in store.warnings() {
        eprintln!("pat-admin serve: warning: {warning}");
    }
    // Returns the address actually bound: port 0 picks a free one, and the lines below name
    // it, so tests and supervisors need not pick ports themselves.
    let bind = |addr: SocketAddr, flag: &'static str| async move {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            Error::Internal(format!(
                "cannot listen on {addr}: {e}; stop what uses that address or choose another with {flag}"
            ))
        })?;
        let bound = listener.local_addr().map_err(|e| {
            Error::Internal(format!("cannot read the address bound for {flag}: {e}"))
        })?;
        Ok::<_, Error>((bound, listener))
    };
    let origin = match &args.listen {
        Some(listen) => {
            let addr = resolve(listen).await?;
            Some(bind(addr, "--listen").await?)
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
            let platform =
                crate::platform::Settings::from_store(store.conn(), args.platform_url.as_deref())?;
            let service = crate::api::Api::new(
                store_dir.clone(),
                crate::api::Config {
                    client_address_header: header,
                    platform,
                    clock: clock.clone(),
                },
            )?;
            let (bound, listener) = bind(addr, "--api-listen").await?;
            Some((bound, listener, service))
        }
        None => None,
    };
    let modules = crate::module::Modules::read(&args.module)?;
    let origin = match origin {
        Some((addr, listener)) => Some((
            addr,
            listener,
            Origin::new(store_dir.clone(), clock.clone())?,
        )),
        None => None,
    };
    spawn_resigner(store, check_every)?;
    let mut servers = tokio::task::JoinSet::new();
    if let Some((addr, listener, state)) = origin {
        let app = Router::new()
            .route(SNAPSHOT_PATH, get(bundle))
            .route(HEAD_PATH, get(head))
            .route(USAGE_PATH, post(usage_report))
            .route(wire::HEALTH_PATH, get(health))
            .fallback(not_found)
            .with_state(Arc::new(state))
            .merge(crate::module::router(modules.clone()));
        for line in modules.describe(&format!("http://{addr}")) {
            eprintln!("{line}");
        }
        eprintln!(
            "pat-admin: serving signed snapshots on http://{addr}{SNAPSHOT_PATH} (head: {HEAD_PATH}, catch-ups: {SNAPSHOT_PATH}?since=VERSION, health: {}) and taking usage reports on {USAGE_PATH}; re-signing before expiry, compacting long chains (checked every {})",
            wire::HEALTH_PATH,
            crate::duration::text(check_every.as_secs())
        );
        servers.spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown())
                .await
                .map_err(|e| Error::Internal(format!("the origin server failed: {e}")))
        });
    }
    if let Some((addr, listener, service)) = api {
        let mode = service.mode();
        let app = std::sync::Arc::new(service).router();
        eprintln!(
            "pat-admin: serving the token API (users.Authentication) on http://{addr}{}<method>; {mode}",
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

/// `GET /healthz`: see [`crate::health`].
async fn health(State(origin): State<Arc<Origin>>) -> axum::response::Response {
    crate::health::check(origin.dir.engine().to_string(), origin.readers.clone()).await
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

/// The re-signer's interval: `--check-every` (a duration, at least a second), or
/// [`RESIGN_CHECK`].
pub fn check_interval(given: Option<&str>) -> Result<Duration> {
    let Some(text) = given else {
        return Ok(RESIGN_CHECK);
    };
    match crate::duration::parse(text) {
        Ok(0) => Err(Error::Invalid(format!("--check-every {text}: at least 1s"))),
        Ok(secs) => Ok(Duration::from_secs(secs)),
        Err(e) => Err(Error::Invalid(format!("--check-every: {e}"))),
    }
}

/// Starts the re-signer thread: every `every`, re-signing, then compacting when due. It logs
/// one line per document it signs, and a failure once until it changes or clears; it never
/// stops the server.
fn spawn_resigner(mut store: Store, every: Duration) -> Result<()> {
    std::thread::Builder::new()
        .name("pat-admin-resign".into())
        .spawn(move || {
            let mut failing: Option<String> = None;
            loop {
                let round = snapshot::resign_if_needed(&mut store).and_then(|signed| {
                    let compacted = snapshot::compact_if_due(&mut store)?;
                    Ok((signed, compacted))
                });
                match round {
                    Ok((signed, compacted)) => {
                        if failing.take().is_some() {
                            eprintln!("pat-admin serve: the store is usable again");
                        }
                        if let Some((stamp, reason)) = signed {
                            eprintln!(
                                "pat-admin serve: signed snapshot version {} ({}, {} tokens, {} bytes, key {}, expires {}): {reason}",
                                stamp.version,
                                snapshots::kind_word(stamp.kind),
                                stamp.tokens,
                                stamp.len,
                                stamp.key_id,
                                rfc3339(stamp.expires_at)
                            );
                        }
                        if let Some((stamp, why)) = compacted {
                            eprintln!(
                                "pat-admin serve: compacted version {} into a full snapshot ({} tokens, {} bytes, expires {}): {why}",
                                stamp.version,
                                stamp.tokens,
                                stamp.len,
                                rfc3339(stamp.expires_at)
                            );
                        }
                    }
                    Err(e) => {
                        let message = e.to_string();
                        if failing.as_deref() != Some(message.as_str()) {
                            eprintln!(
                                "pat-admin serve: cannot re-sign or compact: {message}; trying again every {} s",
                                every.as_secs()
                            );
                            failing = Some(message);
                        }
                    }
                }
                std::thread::sleep(every);
            }
        })
        .map(drop)
        .map_err(|e| Error::Internal(format!("cannot start the re-signing thread: {e}")))
}

/// The origin's shared state: the store directory, a writer for usage reports, and the
/// last few answers' bytes.
struct Origin {
    dir: Location,
    /// The clock of every store connection it opens.
    clock: Clock,
    writer: Mutex<Store>,
    /// Read-only connections for heads, bundles and health checks.
    readers: Arc<Pool>,
    answers: Mutex<VecDeque<(String, Bytes)>>,
    last_refusal: Mutex<Option<String>>,
}

impl Origin {
    fn new(dir: Location, clock: Clock) -> Result<Self> {
        let writer = Store::open_as(dir.clone(), Open::Existing)?.with_clock(clock.clone());
        let (location, reader_clock) = (dir.clone(), clock.clone());
        let keep = pool::readers_to_keep(dir.engine(), 4);
        let readers = Arc::new(Pool::new(keep, move || {
            Ok(Store::open_reader(&location)?.with_clock(reader_clock.clone()))
        }));
        Ok(Self {
            readers,
            dir,
            clock,
            writer: Mutex::new(writer),
            answers: Mutex::new(VecDeque::new()),
            last_refusal: Mutex::new(None),
        })
    }

    fn cached(&self, etag: &str) -> Option<Bytes> {
        let answers = self.answers.lock().ok()?;
        answers
            .iter()
            .find(|(tag, _)| tag == etag)
            .map(|(_, bytes)| bytes.clone())
    }

    fn remember(&self, etag: &str, bytes: Bytes) {
        if bytes.len() > CACHED_BYTES {
            return;
        }
        if let Ok(mut answers) = self.answers.lock() {
            answers.retain(|(tag, _)| tag != etag);
            answers.push_front((etag.to_string(), bytes));
            answers.truncate(CACHED_ANSWERS);
            while answers.iter().map(|(_, b)| b.len()).sum::<usize>() > CACHED_BYTES {
                answers.pop_back();
            }
        }
    }
}

fn json_error(status: StatusCode, message: &str) -> Response {
    let body = ErrorReply::new(i64::from(status.as_u16()), message, wire::SOURCE);
    (
        status,
        [
            (header::CONTENT_TYPE, JSON),
            (header::CACHE_CONTROL, "no-store"),
        ],
        serde_json::to_string(&body).unwrap_or_default(),
    )
        .into_response()
}

async fn not_found() -> Response {
    json_error(
        StatusCode::NOT_FOUND,
        "not found: documents are at /snapshot (catch-ups: /snapshot?since=VERSION), the signed head at /snapshot/head, usage reports go to POST /usage",
    )
}

const NOTHING_PUBLISHED: &str = "nothing has been published yet (pat-admin key generate, then a token change or pat-admin publish)";

/// `"<version>-<first 16 hex of the body digest>"`, from a document or its head alone (a
/// document and its head carry the same tag).
pub fn etag(version: u64, bytes: &[u8]) -> String {
    let digest = bytes
        .get(..pat_core::snapshot::HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .and_then(|h| pat_core::snapshot::Header::decode(h).ok())
        .map(|h| pat_core::hex::encode(&h.body_digest[..8]));
    format!("\"{version}-{}\"", digest.unwrap_or_default())
}

/// `since` from the query string: `None` without one; refused when it is not a version
/// (digits), given twice, or next to anything else ([`wire::parse_since`]).
pub fn parse_since(query: Option<&str>) -> std::result::Result<Option<u64>, String> {
    wire::parse_since(query).map_err(|e| e.to_string())
}

fn if_none_match(headers: &HeaderMap, tag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"))
}

/// Headers every document answer carries.
fn document_headers(response: &mut Response, tag: &str, version: u64, cache_control: &'static str) {
    let h = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(tag) {
        h.insert(header::ETAG, value);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    if let Ok(value) = HeaderValue::from_str(&version.to_string()) {
        h.insert(wire::VERSION_HEADER, value);
    }
}

fn octets(body: Bytes) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        )],
        body,
    )
        .into_response()
}

/// What a bundle request found.
enum Found {
    Nothing,
    NotModified(Plan),
    Body(Plan, Bytes),
}

/// `GET /snapshot` and `GET /snapshot?since=V`.
async fn bundle(State(origin): State<Arc<Origin>>, uri: Uri, headers: HeaderMap) -> Response {
    let since = match parse_since(uri.query()) {
        Ok(since) => since,
        Err(message) => return json_error(StatusCode::BAD_REQUEST, &message),
    };
    let found = tokio::task::spawn_blocking(move || -> Result<Found> {
        let mut store = origin.readers.get()?;
        store.read(|tx| {
            let Some(plan) = origin::plan(tx, since)? else {
                return Ok(Found::Nothing);
            };
            if if_none_match(&headers, &plan.etag) {
                return Ok(Found::NotModified(plan));
            }
            if let Some(bytes) = origin.cached(&plan.etag) {
                return Ok(Found::Body(plan, bytes));
            }
            let bytes = Bytes::from(origin::load(tx, &plan)?);
            origin.remember(&plan.etag, bytes.clone());
            Ok(Found::Body(plan, bytes))
        })
    })
    .await;
    let (mut response, plan) = match found {
        Ok(Ok(Found::Nothing)) => return json_error(StatusCode::NOT_FOUND, NOTHING_PUBLISHED),
        Ok(Ok(Found::NotModified(plan))) => (StatusCode::NOT_MODIFIED.into_response(), plan),
        Ok(Ok(Found::Body(plan, bytes))) => (octets(bytes), plan),
        Ok(Err(e)) => return json_error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
        Err(e) => return json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    document_headers(
        &mut response,
        &plan.etag,
        plan.last_version,
        BUNDLE_CACHE_CONTROL,
    );
    response
}

/// `GET /snapshot/head`.
async fn head(State(origin): State<Arc<Origin>>, headers: HeaderMap) -> Response {
    let latest = tokio::task::spawn_blocking(move || -> Result<_> {
        let store = origin.readers.get()?;
        snapshots::latest_head(store.conn())
    })
    .await;
    let (version, head) = match latest {
        Ok(Ok(Some(found))) => found,
        Ok(Ok(None)) => return json_error(StatusCode::NOT_FOUND, NOTHING_PUBLISHED),
        Ok(Err(e)) => return json_error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
        Err(e) => return json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let tag = etag(version, &head);
    let mut response = if if_none_match(&headers, &tag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        octets(Bytes::from(head))
    };
    document_headers(&mut response, &tag, version, HEAD_CACHE_CONTROL);
    response
}

/// `POST /usage`: an edge's signed usage report.
async fn usage_report(
    State(origin): State<Arc<Origin>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let too_large = || {
        json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &usage::Refusal::TooLarge.to_string(),
        )
    };
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > usage::MAX_REPORT_BYTES as u64) {
        return too_large();
    }
    // The only way reading a body this small fails is its length (or a client gone).
    let Ok(bytes) = axum::body::to_bytes(body, usage::MAX_REPORT_BYTES).await else {
        return too_large();
    };
    let state = origin.clone();
    let merged = tokio::task::spawn_blocking(move || {
        let now_ms = state.clock.now_ms();
        let mut store = state
            .writer
            .lock()
            .map_err(|_| Error::Internal("the usage writer failed earlier".into()))?;
        usage::receive(&mut store, &bytes, now_ms)
    })
    .await;
    match merged {
        Ok(Ok(Ok(merged))) => {
            if let Ok(mut last) = origin.last_refusal.lock() {
                *last = None;
            }
            let body = wire::UsageAccepted {
                result: 0,
                edge: merged.edge.into(),
                uses: merged.uses as u64,
                updated: merged.updated as u64,
            };
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, JSON)],
                serde_json::to_string(&body).unwrap_or_default(),
            )
                .into_response()
        }
        Ok(Ok(Err(refusal))) => {
            let message = refusal.to_string();
            if let Ok(mut last) = origin.last_refusal.lock()
                && last.as_deref() != Some(message.as_str())
            {
                eprintln!("pat-admin serve: a usage report was refused: {message}");
                *last = Some(message.clone());
            }
            json_error(
                StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::BAD_REQUEST),
                &message,
            )
        }
        Ok(Err(e)) => json_error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
        Err(e) => json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_interval_is_a_duration_of_a_second_or_more() {
        assert_eq!(check_interval(None).ok(), Some(RESIGN_CHECK));
        assert_eq!(
            check_interval(Some("1s")).ok(),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            check_interval(Some("1m")).ok(),
            Some(Duration::from_secs(60))
        );
        for bad in ["0s", "0m", "2", "1.5s", "fast", ""] {
            assert!(
                matches!(check_interval(Some(bad)), Err(Error::Invalid(m)) if m.contains("--check-every")),
                "{bad}"
            );
        }
    }

    #[test]
    fn since_is_a_version_or_nothing() {
        assert_eq!(parse_since(None), Ok(None));
        assert_eq!(parse_since(Some("")), Ok(None));
        assert_eq!(parse_since(Some("since=7")), Ok(Some(7)));
        assert_eq!(parse_since(Some("since=0")), Ok(Some(0)));
        for bad in [
            "since=",
            "since",
            "since=-1",
            "since=1.5",
            "since=x",
            "since=1&since=1",
            "since=99999999999999999999",
            "since=%31",
            "other=1",
            "since=1&x=2",
        ] {
            assert!(parse_since(Some(bad)).is_err(), "{bad}");
        }
    }
}
