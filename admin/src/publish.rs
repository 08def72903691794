//! Talking to edges: pushing a signed snapshot to each control listener concurrently, and
//! asking an edge which snapshot it holds.
//!
//! Bounded: every attempt has its own timeout ([`Timeouts::attempt`], 10 s by default), and
//! the whole push an overall deadline ([`Timeouts::deadline`], 30 s by default) that no
//! retry, backoff or `retry-after` goes past, so an edge that accepts connections and never
//! answers costs at most the deadline. Connection failures, timeouts and 5xx answers are
//! retried (three attempts, backoff 300 ms doubling); a `503`/`429` with `retry-after`
//! (an edge that just restarted and has not confirmed the origin's version, or a busy one)
//! is retried after that delay, up to [`RETRY_AFTER_ATTEMPTS`], while the deadline allows.
//! 4xx answers are final. A 5xx that outlasts the retries is `rejected` with its status:
//! the edge answered, it is not unreachable.
//!
//! A 409 naming a *newer* `current_version` than the one pushed is a success: versions are
//! allocated inside the serialized transaction that builds each document from the committed
//! state, so the edge's newer state was built after this one and includes its change.
//!
//! A 409 naming an *older* `current_version` means a pushed delta does not apply to what the
//! edge holds: it missed a document, holds another chain, or holds nothing. With a
//! [`CatchUp`] (the store the document came from), that edge gets the origin's answer for
//! the version it holds in a further attempt, within the same deadline: the deltas since
//! that version when the store still has them (and they are smaller than the full answer),
//! else the full snapshot and the deltas after it; and when the deltas do not apply either
//! (another chain at that version), the full answer last.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use pat_core::protocol::control::Reply;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::origin::{self, Answer};
use crate::store::Store;
use crate::store::db::Location;

/// The filter's default control path.
pub const DEFAULT_CONTROL_PATH: &str = pat_core::protocol::control::PATH;
/// Attempts per edge for failures without `retry-after` (the first one included).
const ATTEMPTS: u32 = 3;
/// Attempts per edge while the edge keeps asking to retry after a delay (`retry-after`).
pub const RETRY_AFTER_ATTEMPTS: u32 = 10;
/// Backoff before the second attempt; doubled for each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(300);
/// The longest `retry-after` honoured (longer ones are cut to this, within the deadline).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

/// How long to wait for edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Establishing a connection.
    pub connect: Duration,
    /// One attempt: connecting, sending the snapshot (a 1,000,000-token push is ~57 MB,
    /// 0.5-2 s over loopback) and reading the answer.
    pub attempt: Duration,
    /// Everything, retries included: no edge is waited for longer.
    pub deadline: Duration,
}

/// The default per-attempt timeout.
pub const DEFAULT_ATTEMPT: Duration = Duration::from_secs(10);
/// The default overall deadline.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(3),
            attempt: DEFAULT_ATTEMPT,
            deadline: DEFAULT_DEADLINE,
        }
    }
}

impl Timeouts {
    /// With this per-attempt timeout (the connect timeout never exceeds it).
    pub fn with_attempt(mut self, attempt: Duration) -> Self {
        self.attempt = attempt;
        self.connect = self.connect.min(attempt);
        self
    }
}

/// The control endpoint of an edge URL: the filter's default path unless the URL names one.
pub fn control_url(edge: &str) -> Result<reqwest::Url> {
    let mut url = reqwest::Url::parse(edge.trim()).map_err(|e| {
        Error::Invalid(format!(
            "`{edge}` is not an edge URL ({e}); use e.g. http://127.0.0.1:10001"
        ))
    })?;
    if url.scheme() != "http" {
        return Err(Error::Invalid(format!(
            "`{edge}`: only http:// edge URLs are supported (the control listener belongs on loopback or an internal network)"
        )));
    }
    if url.host_str().is_none() || url.query().is_some() || url.fragment().is_some() {
        return Err(Error::Invalid(format!(
            "`{edge}`: use scheme://host:port[/path], without query or fragment"
        )));
    }
    if url.path() == "/" || url.path().is_empty() {
        url.set_path(DEFAULT_CONTROL_PATH);
    }
    Ok(url)
}

/// The form an edge URL is stored and shown in: `scheme://host:port`, plus the path when it
/// is not the default control path (so `http://h:1` and `http://h:1/_pat/snapshot` are one edge).
pub fn canonical_edge(edge: &str) -> Result<String> {
    let url = control_url(edge)?;
    let base = format!(
        "{}://{}:{}",
        url.scheme(),
        url.host_str().unwrap_or_default(),
        url.port_or_known_default().unwrap_or(80)
    );
    Ok(if url.path() == DEFAULT_CONTROL_PATH {
        base
    } else {
        format!("{base}{}", url.path())
    })
}

/// How an edge that lagged was brought up to date.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CaughtUp {
    /// With the deltas since the version it held.
    Deltas,
    /// With the full snapshot and the deltas after it.
    Full,
}

/// What one edge did with a push.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Verified and applied.
    Accepted {
        /// The version it now serves.
        version: u64,
        /// Its token count.
        tokens: u64,
        /// The pushed delta did not apply to what it held, and the origin's catch-up did
        /// (absent: the pushed document itself was accepted).
        #[serde(skip_serializing_if = "Option::is_none")]
        caught_up: Option<CaughtUp>,
    },
    /// It already holds this version (a resend to an edge that did not restart).
    AlreadyCurrent {
        /// The version it holds.
        version: u64,
    },
    /// It already holds a newer version, which includes everything the pushed one does.
    Superseded {
        /// The version it holds.
        version: u64,
        /// The version that was pushed.
        pushed: u64,
    },
    /// It answered with a refusal (4xx), or kept answering 5xx.
    Rejected {
        /// HTTP status.
        status: u16,
        /// Its explanation.
        error: String,
        /// Attempts made.
        attempts: u32,
    },
    /// It could not be reached or did not answer in time.
    Unreachable {
        /// Why.
        error: String,
        /// Attempts made.
        attempts: u32,
    },
}

impl Outcome {
    /// Did the edge end up with the snapshot?
    pub fn is_ok(&self) -> bool {
        matches!(
            self,
            Self::Accepted { .. } | Self::AlreadyCurrent { .. } | Self::Superseded { .. }
        )
    }

    /// One word for it: `accepted`, `current`, `superseded`, `rejected`, `unreachable`.
    pub fn word(&self) -> &'static str {
        match self {
            Self::Accepted { .. } => "accepted",
            Self::AlreadyCurrent { .. } => "current",
            Self::Superseded { .. } => "superseded",
            Self::Rejected { .. } => "rejected",
            Self::Unreachable { .. } => "unreachable",
        }
    }
}

/// One edge's result.
#[derive(Debug, Clone, Serialize)]
pub struct EdgeResult {
    /// The edge as given.
    pub edge: String,
    /// What happened.
    #[serde(flatten)]
    pub outcome: Outcome,
}

fn client(timeouts: Timeouts) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(timeouts.connect)
        .no_proxy()
        .build()
        .map_err(|e| Error::Internal(format!("cannot set up the HTTP client: {e}")))
}

/// Where catch-ups come from: the origin's answers ([`crate::origin`]) read from a store,
/// each answer read once per push however many edges need it.
#[derive(Debug, Clone)]
pub struct CatchUp {
    dir: Location,
    answers: Arc<Mutex<HashMap<Option<u64>, Found>>>,
}

/// A catch-up answer: the bundle, the version it ends at, and what it is.
type Found = (Bytes, u64, Answer);

impl CatchUp {
    /// Catch-ups from the store in `dir`.
    pub fn new(dir: Location) -> Self {
        Self {
            dir,
            answers: Arc::default(),
        }
    }

    /// The answer to an edge that holds `since` (`None`: the full answer): the bundle, the
    /// version it ends at, and what it is.
    async fn answer(&self, since: Option<u64>) -> Result<Found> {
        if let Some(found) = self
            .answers
            .lock()
            .ok()
            .and_then(|a| a.get(&since).cloned())
        {
            return Ok(found);
        }
        let dir = self.dir.clone();
        let (plan, bytes) = tokio::task::spawn_blocking(move || {
            let mut store = Store::open_reader(&dir)?;
            store.read(|tx| origin::answer(tx, since))
        })
        .await
        .map_err(|e| Error::Internal(format!("a catch-up task failed: {e}")))??
        .ok_or_else(|| Error::Internal("the store has no document to catch up from".into()))?;
        let found = (Bytes::from(bytes), plan.last_version, plan.answer);
        if let Ok(mut answers) = self.answers.lock() {
            answers.insert(since, found.clone());
        }
        Ok(found)
    }
}

/// Pushes `bytes` (version `version`) to every edge at once; an edge that answers that a
/// pushed delta does not apply to what it holds gets the catch-up from `catch_up` (see the
/// module documentation). `done` is called with each edge's result as soon as that edge is
/// finished (for a line per edge while the others are still going); the results come back
/// in the order of `edges`.
pub async fn push_all(
    edges: &[String],
    bytes: Vec<u8>,
    version: u64,
    catch_up: Option<CatchUp>,
    timeouts: Timeouts,
    mut done: impl FnMut(&EdgeResult),
) -> Result<Vec<EdgeResult>> {
    let client = client(timeouts)?;
    let urls = edges
        .iter()
        .map(|e| control_url(e))
        .collect::<Result<Vec<_>>>()?;
    let deadline = Instant::now() + timeouts.deadline;
    // A delta names the version it applies to: an edge at that version that refuses it
    // holds another chain.
    let base = bytes
        .get(..pat_core::snapshot::HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .and_then(|h| pat_core::snapshot::Header::decode(h).ok())
        .filter(|h| h.kind == pat_core::snapshot::Kind::Delta)
        .map(|h| h.base_version);
    // Shared, not copied, between edges and attempts (a push can be ~57 MB).
    let body = Bytes::from(bytes);
    let mut tasks = tokio::task::JoinSet::new();
    for (index, (edge, url)) in edges.iter().cloned().zip(urls).enumerate() {
        let client = client.clone();
        let pushed = Pushed {
            body: body.clone(),
            version,
            base,
        };
        let catch_up = catch_up.clone();
        tasks.spawn(async move {
            let outcome = push_one(&client, url, pushed, catch_up, timeouts, deadline).await;
            (index, EdgeResult { edge, outcome })
        });
    }
    let mut results: Vec<Option<EdgeResult>> = vec![None; edges.len()];
    while let Some(finished) = tasks.join_next().await {
        let (index, result) =
            finished.map_err(|e| Error::Internal(format!("a push task failed: {e}")))?;
        done(&result);
        if let Some(slot) = results.get_mut(index) {
            *slot = Some(result);
        }
    }
    Ok(results.into_iter().flatten().collect())
}

/// What went wrong with the last attempt.
enum Failure {
    /// No usable answer: connection, timeout, broken exchange.
    Network(String),
    /// A 5xx answer.
    Status(u16, String),
}

/// What is pushed: the document (or a catch-up bundle), the version it ends at, and for a
/// delta the version it applies to.
#[derive(Clone)]
struct Pushed {
    body: Bytes,
    version: u64,
    base: Option<u64>,
}

/// Which catch-up comes next after a pushed delta did not apply at an edge holding
/// `current`: the deltas since it, unless it holds nothing or another chain at the delta's
/// own base (then the full answer); after deltas that did not apply, the full answer; after
/// the full answer, nothing.
fn next_catch_up(stage: Option<CaughtUp>, base: Option<u64>, current: u64) -> Option<Option<u64>> {
    match stage {
        None if base.is_none() => None,
        None if current == 0 || Some(current) == base => Some(None),
        None => Some(Some(current)),
        Some(CaughtUp::Deltas) => Some(None),
        Some(CaughtUp::Full) => None,
    }
}

async fn push_one(
    client: &reqwest::Client,
    url: reqwest::Url,
    first: Pushed,
    catch_up: Option<CatchUp>,
    timeouts: Timeouts,
    deadline: Instant,
) -> Outcome {
    let pushed_version = first.version;
    let mut pushed = first;
    // `None`: the document itself; then the catch-ups.
    let mut stage: Option<CaughtUp> = None;
    let mut last = Failure::Network("no attempt was made before the deadline".into());
    let mut attempts = 0;
    // Attempts of the current stage (the retry policy counts these).
    let mut tries = 0;
    let mut wait = Duration::ZERO;
    loop {
        if tries > 0 {
            if Instant::now() + wait >= deadline {
                last = past_deadline(last, timeouts.deadline);
                break;
            }
            tokio::time::sleep(wait).await;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            last = past_deadline(last, timeouts.deadline);
            break;
        }
        attempts += 1;
        tries += 1;
        let limit = timeouts.attempt.min(left);
        let exchange = async {
            let response = client
                .put(url.clone())
                .header("content-type", "application/octet-stream")
                .body(pushed.body.clone())
                .send()
                .await?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let text = response.text().await?;
            Ok::<_, reqwest::Error>((status, retry_after, text))
        };
        let (status, retry_after, text) = match tokio::time::timeout(limit, exchange).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => {
                last = Failure::Network(describe(&e));
                if tries >= ATTEMPTS {
                    break;
                }
                wait = FIRST_BACKOFF * 2u32.pow(tries - 1);
                continue;
            }
            Err(_) => {
                last = Failure::Network(if limit < timeouts.attempt {
                    format!(
                        "no answer before the {} s deadline",
                        timeouts.deadline.as_secs_f64()
                    )
                } else {
                    format!("no answer within {} s", timeouts.attempt.as_secs_f64())
                });
                if tries >= ATTEMPTS {
                    break;
                }
                wait = FIRST_BACKOFF * 2u32.pow(tries - 1);
                continue;
            }
        };
        let reply: Option<Reply> = serde_json::from_str(&text).ok();
        if status >= 500 || (status == 429 && retry_after.is_some()) {
            let error = reply
                .and_then(|r| r.error)
                .unwrap_or_else(|| snippet(&text));
            last = Failure::Status(status, error);
            let backoff = FIRST_BACKOFF * 2u32.pow(tries.min(8) - 1);
            match retry_after {
                Some(delay) if tries < RETRY_AFTER_ATTEMPTS => {
                    wait = delay.min(MAX_RETRY_AFTER).max(backoff);
                }
                None if tries < ATTEMPTS && status >= 500 => wait = backoff,
                _ => break,
            }
            continue;
        }
        let version = pushed.version;
        let refused = |error: Option<String>| Outcome::Rejected {
            status,
            error: error.unwrap_or_else(|| "the pushed document does not apply".into()),
            attempts,
        };
        let (since, error) = match (status, reply) {
            (200, Some(r)) if r.result == 0 => {
                return Outcome::Accepted {
                    version: r.version.unwrap_or(version),
                    tokens: r.tokens.unwrap_or(0),
                    caught_up: stage,
                };
            }
            (409, Some(r)) if r.current_version == Some(version) => {
                return Outcome::AlreadyCurrent { version };
            }
            (
                409,
                Some(Reply {
                    current_version: Some(held),
                    ..
                }),
            ) if held > version => {
                return Outcome::Superseded {
                    version: held,
                    pushed: pushed_version,
                };
            }
            // Older than what was pushed: it lags, holds another chain, or nothing.
            (
                409,
                Some(Reply {
                    current_version: Some(held),
                    error,
                    ..
                }),
            ) => match next_catch_up(stage, pushed.base, held) {
                Some(since) => (since, error),
                None => return refused(error),
            },
            (_, Some(r)) => {
                return Outcome::Rejected {
                    status,
                    error: r.error.unwrap_or_else(|| format!("result {}", r.result)),
                    attempts,
                };
            }
            (_, None) => {
                return Outcome::Rejected {
                    status,
                    error: format!("not a pat-edge control endpoint: {}", snippet(&text)),
                    attempts,
                };
            }
        };
        let Some(source) = &catch_up else {
            return refused(error);
        };
        // Reading the catch-up counts against the deadline like any attempt.
        let left = deadline.saturating_duration_since(Instant::now());
        let read = tokio::time::timeout(left, source.answer(since))
            .await
            .unwrap_or_else(|_| {
                Err(Error::Internal(format!(
                    "not read before the {} s deadline",
                    timeouts.deadline.as_secs_f64()
                )))
            });
        match read {
            Ok((body, last_version, answer)) => {
                stage = Some(match answer {
                    Answer::Since { .. } => CaughtUp::Deltas,
                    Answer::Full { .. } => CaughtUp::Full,
                });
                pushed = Pushed {
                    body,
                    version: last_version,
                    base: None,
                };
                tries = 0;
                wait = Duration::ZERO;
            }
            Err(e) => {
                return refused(Some(format!(
                    "{}; no catch-up could be read from the store: {e}",
                    error.unwrap_or_else(|| "the pushed document does not apply".into())
                )));
            }
        }
    }
    match last {
        Failure::Network(error) => Outcome::Unreachable { error, attempts },
        Failure::Status(status, error) => Outcome::Rejected {
            status,
            error,
            attempts,
        },
    }
}

/// The last failure, noting that the deadline ended the retries.
fn past_deadline(last: Failure, deadline: Duration) -> Failure {
    let note = format!("; not retried: the {} s deadline", deadline.as_secs_f64());
    match last {
        Failure::Network(e) if e.contains("deadline") => Failure::Network(e),
        Failure::Network(e) => Failure::Network(format!("{e}{note}")),
        Failure::Status(s, e) => Failure::Status(s, format!("{e}{note}")),
    }
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        format!("cannot connect ({})", root_cause(e))
    } else {
        root_cause(e)
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

fn snippet(text: &str) -> String {
    let short: String = text.chars().take(120).collect();
    if short.is_empty() {
        "(empty body)".into()
    } else {
        short
    }
}

/// What an edge reports about its snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct EdgeStatus {
    /// The edge as given.
    pub edge: String,
    /// Reachable and answering?
    pub reachable: bool,
    /// A snapshot is loaded.
    pub loaded: bool,
    /// Its version (`null`: none loaded, or not asked).
    pub version: Option<u64>,
    /// Its token count.
    pub tokens: Option<u64>,
    /// When it was issued, RFC 3339.
    pub issued_at: Option<String>,
    /// Key that signed it.
    pub key_id: Option<String>,
    /// It holds an older version than the latest one published (or none at all).
    pub behind: bool,
    /// Why it could not be asked, if so.
    pub error: Option<String>,
}

/// Asks each edge for its status, concurrently, each within the per-attempt timeout.
pub async fn status_all(edges: &[String], timeouts: Timeouts) -> Result<Vec<EdgeStatus>> {
    let client = client(timeouts)?;
    let urls = edges
        .iter()
        .map(|e| control_url(e))
        .collect::<Result<Vec<_>>>()?;
    let mut out = Vec::new();
    let tasks: Vec<_> = edges
        .iter()
        .cloned()
        .zip(urls)
        .map(|(edge, url)| {
            let client = client.clone();
            tokio::spawn(async move { status_one(&client, edge, url, timeouts.attempt).await })
        })
        .collect();
    for task in tasks {
        out.push(
            task.await
                .map_err(|e| Error::Internal(format!("a status task failed: {e}")))?,
        );
    }
    Ok(out)
}

async fn status_one(
    client: &reqwest::Client,
    edge: String,
    url: reqwest::Url,
    limit: Duration,
) -> EdgeStatus {
    let unreachable = |edge: String, error: String| EdgeStatus {
        edge,
        reachable: false,
        loaded: false,
        version: None,
        tokens: None,
        issued_at: None,
        key_id: None,
        behind: false,
        error: Some(error),
    };
    let exchange = async {
        let response = client.get(url).send().await?;
        let status = response.status().as_u16();
        Ok::<_, reqwest::Error>((status, response.text().await?))
    };
    let (status, text) = match tokio::time::timeout(limit, exchange).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => return unreachable(edge, describe(&e)),
        Err(_) => {
            return unreachable(edge, format!("no answer within {} s", limit.as_secs_f64()));
        }
    };
    match serde_json::from_str::<Reply>(&text) {
        Ok(r) if status == 200 && r.result == 0 => {
            let loaded = r.loaded.unwrap_or(false);
            EdgeStatus {
                edge,
                reachable: true,
                loaded,
                version: r.version.filter(|_| loaded),
                tokens: r.tokens.filter(|_| loaded),
                issued_at: r.issued_at.filter(|_| loaded).map(crate::expiry::rfc3339),
                key_id: r.key_id.filter(|_| loaded),
                behind: false,
                error: None,
            }
        }
        Ok(r) => unreachable(
            edge,
            format!("HTTP {status}: {}", r.error.unwrap_or_default()),
        ),
        Err(_) => unreachable(
            edge,
            format!(
                "HTTP {status}: not a pat-edge control endpoint: {}",
                snippet(&text)
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catch_ups_go_from_deltas_to_the_full_answer_and_stop() {
        // A delta on 7 refused by an edge at 5: the deltas since 5.
        assert_eq!(next_catch_up(None, Some(7), 5), Some(Some(5)));
        // By an edge holding nothing, or another state at 7: the full answer.
        assert_eq!(next_catch_up(None, Some(7), 0), Some(None));
        assert_eq!(next_catch_up(None, Some(7), 7), Some(None));
        // A full snapshot is never caught up.
        assert_eq!(next_catch_up(None, None, 5), None);
        // The deltas did not apply either: the full answer, then nothing more.
        assert_eq!(next_catch_up(Some(CaughtUp::Deltas), None, 5), Some(None));
        assert_eq!(next_catch_up(Some(CaughtUp::Full), None, 5), None);
    }

    #[test]
    fn control_urls() {
        assert_eq!(
            control_url("http://127.0.0.1:10001").expect("ok").as_str(),
            "http://127.0.0.1:10001/_pat/snapshot"
        );
        assert_eq!(
            control_url("http://edge:10001/").expect("ok").as_str(),
            "http://edge:10001/_pat/snapshot"
        );
        assert_eq!(
            control_url("http://edge:10001/custom/path")
                .expect("ok")
                .as_str(),
            "http://edge:10001/custom/path"
        );
        for same in [
            "http://edge:10001",
            "http://edge:10001/",
            "http://EDGE:10001/_pat/snapshot",
        ] {
            assert_eq!(
                canonical_edge(same).expect("ok"),
                "http://edge:10001",
                "{same}"
            );
        }
        assert_eq!(canonical_edge("http://edge").expect("ok"), "http://edge:80");
        assert_eq!(
            canonical_edge("http://edge:1/x").expect("ok"),
            "http://edge:1/x"
        );
        for bad in [
            "127.0.0.1:10001",
            "https://edge",
            "ftp://edge",
            "http://edge/?x=1",
            "not a url",
        ] {
            assert!(control_url(bad).is_err(), "{bad}");
        }
    }
}
