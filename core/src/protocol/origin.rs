//! What `pat-admin serve` answers edges (the filter's `origin` and `usage` settings default
//! to these paths).
//!
//! - `GET` [`HEAD_PATH`]: the latest document's signed head (its first
//!   [`BODY_OFFSET`](crate::snapshot::BODY_OFFSET) bytes), which edges poll.
//! - `GET` [`SNAPSHOT_PATH`]: a bundle of the latest full snapshot and the deltas after it;
//!   `?since=V` ([`catch_up_path`], [`parse_since`]): the deltas after the version an edge
//!   holds (or the full answer when that is smaller; an empty bundle when `V` is the latest).
//!   Both carry an [`ETAG`] and answer [`IF_NONE_MATCH`] with `304`.
//! - `POST` [`USAGE_PATH`]: an edge's signed usage report: `200` [`UsageAccepted`].
//!
//! Document answers are [`OCTET_STREAM`](super::OCTET_STREAM) and name the version they end
//! at in [`VERSION_HEADER`]; errors are an [`ErrorReply`](super::ErrorReply) with `source`
//! [`SOURCE`].

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// Where edges fetch documents.
pub const SNAPSHOT_PATH: &str = "/snapshot";
/// The latest document's signed head.
pub const HEAD_PATH: &str = "/snapshot/head";
/// Where edges send usage reports.
pub const USAGE_PATH: &str = "/usage";
/// The catch-up parameter: the version the edge holds.
pub const SINCE: &str = "since";
/// The version a document answer ends at.
pub const VERSION_HEADER: &str = "x-pat-snapshot-version";
/// The tag of a document answer.
pub const ETAG: &str = "etag";
/// The tag an edge already holds.
pub const IF_NONE_MATCH: &str = "if-none-match";
/// `source` of the origin's errors.
pub const SOURCE: &str = "pat-admin";

/// The catch-up path for an edge that holds `held` (0: nothing, the full answer):
/// `path?since=held`.
pub fn catch_up_path(path: &str, held: u64) -> String {
    if held == 0 {
        path.to_string()
    } else {
        format!("{path}?{SINCE}={held}")
    }
}

/// Why a snapshot request's query is refused (`400`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinceError {
    /// Another parameter than [`SINCE`].
    #[error("unknown parameter {0:?}: the only one is since=VERSION")]
    Unknown(String),
    /// [`SINCE`] twice.
    #[error("since is given twice")]
    Twice,
    /// Not a version.
    #[error("since={0:?} is not a version: give the version the edge holds, digits only")]
    NotAVersion(String),
}

/// `since` from a snapshot request's query string (`None`: no query, or an empty one):
/// refused when it is not a version (digits, at most a `u64`), is given twice, or is next to
/// anything else.
pub fn parse_since(query: Option<&str>) -> Result<Option<u64>, SinceError> {
    let shown = |text: &str| text.chars().take(40).collect::<String>();
    let mut since = None;
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if name != SINCE {
            return Err(SinceError::Unknown(shown(name)));
        }
        if since.is_some() {
            return Err(SinceError::Twice);
        }
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SinceError::NotAVersion(shown(value)));
        }
        since = Some(
            value
                .parse::<u64>()
                .map_err(|_| SinceError::NotAVersion(shown(value)))?,
        );
    }
    Ok(since)
}

/// A usage report merged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageAccepted<'a> {
    /// Always 0.
    pub result: i64,
    /// The name of the edge key that signed it.
    #[serde(borrow)]
    pub edge: Cow<'a, str>,
    /// Uses in the report.
    pub uses: u64,
    /// Tokens whose "last used" moved.
    pub updated: u64,
}

/// Health of a `pat-admin serve` replica (on the origin's and the API's listeners): `200`
/// while it can read its store, `503` when it cannot; what Envoy's active health checks of
/// the `pat_origin` and `pat_api` clusters ask.
pub const HEALTH_PATH: &str = "/healthz";
