//! The edge's control endpoint: `pat-admin publish` `PUT`s a signed document (or a bundle:
//! a catch-up) to it, and `pat-admin status` `GET`s what the edge serves from.
//!
//! Answers use real HTTP statuses (an operator API) and JSON bodies: `200`
//! [`Accepted`] for a push, `200` [`Status`] for a `GET`; errors are an
//! [`ErrorReply`](super::ErrorReply) with `result` equal to the status and `source`
//! [`SOURCE`], and a `409` (not newer, does not apply) adds the version the edge holds
//! ([`Refused::current_version`]); a `503` (restarted and waiting for the origin, busy)
//! carries [`RETRY_AFTER`]. A publisher reads any of them as a [`Reply`].

use std::borrow::Cow;

use serde::de::{self, Deserializer};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

/// The control path (the filter's default `push.path`; pat-admin's default for an edge URL
/// without a path).
pub const PATH: &str = "/_pat/snapshot";
/// `source` of the control endpoint's errors.
pub const SOURCE: &str = "pat-edge";
/// The header a `503` says when to retry in (seconds).
pub const RETRY_AFTER: &str = "retry-after";
/// What a `503` asks to wait, in seconds.
pub const RETRY_AFTER_SECS: &str = "1";

/// A push accepted: the version the edge now holds and its token count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    /// Always 0.
    pub result: i64,
    /// The version the edge holds now.
    pub version: u64,
    /// Its tokens.
    pub tokens: u64,
    /// When the document was issued, Unix seconds.
    pub issued_at: u64,
}

/// A push refused because of the version the edge holds (`409`): not newer, or a delta whose
/// base is not that version. The error shape plus `current_version`, so a publisher can tell
/// "already current" and "superseded" from "behind: catch it up".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refused<'a> {
    /// The HTTP status (409).
    pub result: i64,
    /// Why.
    #[serde(borrow)]
    pub error: Cow<'a, str>,
    /// [`SOURCE`].
    #[serde(borrow)]
    pub source: Cow<'a, str>,
    /// The version the edge holds (0: none).
    pub current_version: u64,
}

/// What `GET` on the control path reports: the snapshot this Envoy serves from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Always 0.
    pub result: i64,
    /// Whether a snapshot is loaded.
    pub loaded: bool,
    /// Its version (0 when none).
    pub version: u64,
    /// Its token count.
    pub tokens: u64,
    /// When it was issued, Unix seconds (0 when none).
    pub issued_at: u64,
    /// Its signed expiry, Unix seconds (0 when none).
    pub expires_at: u64,
    /// Id of the key that signed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The version floor learnt from the origin; absent without an origin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor: Option<Floor>,
}

/// The version floor in a [`Status`]: a version, or `"pending"` until the origin answered
/// after a start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Floor {
    /// The origin has not answered yet.
    Pending,
    /// The origin's version, as last seen.
    Version(u64),
}

/// How [`Floor::Pending`] is written.
const PENDING: &str = "pending";

impl Serialize for Floor {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Pending => serializer.serialize_str(PENDING),
            Self::Version(v) => serializer.serialize_u64(*v),
        }
    }
}

impl<'de> Deserialize<'de> for Floor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = Floor;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "a version or \"{PENDING}\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Floor, E> {
                Ok(Floor::Version(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Floor, E> {
                if v == PENDING {
                    Ok(Floor::Pending)
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(v), &self))
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Any control answer, as a publisher reads it: every field the answers above may carry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Reply {
    /// 0 on success, else the HTTP status.
    pub result: i64,
    /// [`Accepted::version`], [`Status::version`].
    #[serde(default)]
    pub version: Option<u64>,
    /// [`Accepted::tokens`], [`Status::tokens`].
    #[serde(default)]
    pub tokens: Option<u64>,
    /// An error's message.
    #[serde(default)]
    pub error: Option<String>,
    /// [`Refused::current_version`].
    #[serde(default)]
    pub current_version: Option<u64>,
    /// [`Status::loaded`].
    #[serde(default)]
    pub loaded: Option<bool>,
    /// [`Accepted::issued_at`], [`Status::issued_at`].
    #[serde(default)]
    pub issued_at: Option<u64>,
    /// [`Status::key_id`].
    #[serde(default)]
    pub key_id: Option<String>,
}
