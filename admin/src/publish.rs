//! Talking to edges: pushing a signed snapshot to each control listener concurrently, and
//! asking an edge which snapshot it holds. Timeouts everywhere; connection failures, timeouts
//! and 5xx answers (an edge that just restarted answers 503 until it knows the origin's
//! version) are retried a bounded number of times with backoff; 4xx answers are final.
//!
//! A 409 naming a *newer* `current_version` than the one pushed is a success: versions are
//! allocated inside the serialized transaction that builds each snapshot from the committed
//! state, so the edge's newer snapshot was built after this one and includes its change.

use std::time::Duration;

use bytes::Bytes;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The filter's default control path.
pub const DEFAULT_CONTROL_PATH: &str = "/_pat/snapshot";
/// Attempts per edge (the first one included).
const ATTEMPTS: u32 = 3;
/// Backoff before the second attempt; doubled for each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(300);

/// How long to wait for edges.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Establishing the connection.
    pub connect: Duration,
    /// The whole exchange (a 1,000,000-token push is ~57 MB).
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(3),
            request: Duration::from_secs(60),
        }
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
    /// It answered with a refusal.
    Rejected {
        /// HTTP status.
        status: u16,
        /// Its explanation.
        error: String,
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

/// The control endpoint's JSON answers.
#[derive(Debug, Deserialize)]
struct Reply {
    result: i64,
    #[serde(default)]
    version: Option<u64>,
    #[serde(default)]
    tokens: Option<u64>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    current_version: Option<u64>,
    #[serde(default)]
    loaded: Option<bool>,
    #[serde(default)]
    issued_at: Option<u64>,
    #[serde(default)]
    key_id: Option<String>,
}

fn client(timeouts: Timeouts) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(timeouts.connect)
        .timeout(timeouts.request)
        .no_proxy()
        .build()
        .map_err(|e| Error::Invalid(format!("cannot set up the HTTP client: {e}")))
}

/// Pushes `bytes` (version `version`) to every edge at once and reports each result.
pub async fn push_all(
    edges: &[String],
    bytes: Vec<u8>,
    version: u64,
    timeouts: Timeouts,
) -> Result<Vec<EdgeResult>> {
    let client = client(timeouts)?;
    let urls = edges
        .iter()
        .map(|e| control_url(e))
        .collect::<Result<Vec<_>>>()?;
    // Shared, not copied, between edges and attempts (a push can be ~57 MB).
    let body = Bytes::from(bytes);
    let tasks: Vec<_> = edges
        .iter()
        .cloned()
        .zip(urls)
        .map(|(edge, url)| {
            let client = client.clone();
            let body = body.clone();
            tokio::spawn(async move {
                let outcome = push_one(&client, url, body, version).await;
                EdgeResult { edge, outcome }
            })
        })
        .collect();
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(
            task.await
                .map_err(|e| Error::Invalid(format!("a push task failed: {e}")))?,
        );
    }
    Ok(results)
}

async fn push_one(
    client: &reqwest::Client,
    url: reqwest::Url,
    body: Bytes,
    version: u64,
) -> Outcome {
    let mut last_error = String::new();
    for attempt in 1..=ATTEMPTS {
        if attempt > 1 {
            tokio::time::sleep(FIRST_BACKOFF * 2u32.pow(attempt - 2)).await;
        }
        let response = client
            .put(url.clone())
            .header("content-type", "application/octet-stream")
            .body(body.clone())
            .send()
            .await;
        let response = match response {
            Ok(r) => r,
            Err(e) => {
                last_error = describe(&e);
                continue;
            }
        };
        let status = response.status().as_u16();
        let text = match response.text().await {
            Ok(t) => t,
            Err(e) => {
                last_error = describe(&e);
                continue;
            }
        };
        let reply: Option<Reply> = serde_json::from_str(&text).ok();
        if status >= 500 {
            last_error = format!(
                "HTTP {status}: {}",
                reply
                    .and_then(|r| r.error)
                    .unwrap_or_else(|| snippet(&text))
            );
            continue;
        }
        return match (status, reply) {
            (200, Some(r)) if r.result == 0 => Outcome::Accepted {
                version: r.version.unwrap_or(version),
                tokens: r.tokens.unwrap_or(0),
            },
            (409, Some(r)) if r.current_version == Some(version) => {
                Outcome::AlreadyCurrent { version }
            }
            (
                409,
                Some(Reply {
                    current_version: Some(held),
                    ..
                }),
            ) if held > version => Outcome::Superseded {
                version: held,
                pushed: version,
            },
            (_, Some(r)) => Outcome::Rejected {
                status,
                error: r.error.unwrap_or_else(|| format!("result {}", r.result)),
            },
            (_, None) => Outcome::Rejected {
                status,
                error: format!("not a pat-edge control endpoint: {}", snippet(&text)),
            },
        };
    }
    Outcome::Unreachable {
        error: last_error,
        attempts: ATTEMPTS,
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
    /// Its version.
    pub version: u64,
    /// Its token count.
    pub tokens: u64,
    /// When it was issued, Unix seconds.
    pub issued_at: u64,
    /// Key that signed it.
    pub key_id: Option<String>,
    /// Why it could not be asked, if so.
    pub error: Option<String>,
}

/// Asks each edge for its status, concurrently.
pub async fn status_all(edges: &[String], timeouts: Timeouts) -> Result<Vec<EdgeStatus>> {
    let client = client(Timeouts {
        request: Duration::from_secs(10),
        ..timeouts
    })?;
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
            tokio::spawn(async move { status_one(&client, edge, url).await })
        })
        .collect();
    for task in tasks {
        out.push(
            task.await
                .map_err(|e| Error::Invalid(format!("a status task failed: {e}")))?,
        );
    }
    Ok(out)
}

async fn status_one(client: &reqwest::Client, edge: String, url: reqwest::Url) -> EdgeStatus {
    let unreachable = |edge: String, error: String| EdgeStatus {
        edge,
        reachable: false,
        loaded: false,
        version: 0,
        tokens: 0,
        issued_at: 0,
        key_id: None,
        error: Some(error),
    };
    let response = match client.get(url).send().await {
        Ok(r) => r,
        Err(e) => return unreachable(edge, describe(&e)),
    };
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    match serde_json::from_str::<Reply>(&text) {
        Ok(r) if status == 200 && r.result == 0 => EdgeStatus {
            edge,
            reachable: true,
            loaded: r.loaded.unwrap_or(false),
            version: r.version.unwrap_or(0),
            tokens: r.tokens.unwrap_or(0),
            issued_at: r.issued_at.unwrap_or(0),
            key_id: r.key_id,
            error: None,
        },
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
