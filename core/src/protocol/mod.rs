//! The wire contract between the edge (the pat-edge filter in Envoy) and pat-admin, defined
//! once: the paths each side serves, the query parameter and header names, and the JSON
//! answers as serde types. The filter writes the control answers and reads the origin's;
//! pat-admin writes the origin's and reads the control answers; the test fakes on both sides
//! use the same definitions.
//!
//! # Layout
//! - [`control`]: the edge's control endpoint (`PUT` a signed document, `GET` the status),
//!   where `pat-admin publish` pushes: its path and answers.
//! - [`origin`]: what `pat-admin serve` answers edges: the signed head, the snapshot and its
//!   catch-ups (`?since=V`), usage reports.
//! - [`ErrorReply`]: the platform's error shape, `{"result", "error", "source"}`, which both
//!   sides answer failures with (and the filter its denials).

pub mod control;
pub mod origin;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// `content-type` of signed documents, bundles and usage reports.
pub const OCTET_STREAM: &str = "application/octet-stream";
/// `content-type` of every JSON answer.
pub const JSON: &str = "application/json";

/// An error in the platform's shape: `{"result": code, "error": message, "source": source}`
/// (a control endpoint or origin error has `result` equal to its HTTP status).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply<'a> {
    /// A non-zero code.
    pub result: i64,
    /// What went wrong, for people.
    #[serde(borrow)]
    pub error: Cow<'a, str>,
    /// Who answered (`pat-edge`, `pat-admin`, the platform's `JEL`).
    #[serde(borrow)]
    pub source: Cow<'a, str>,
}

impl<'a> ErrorReply<'a> {
    /// An error with this code, message and source.
    pub fn new(result: i64, error: &'a str, source: &'a str) -> Self {
        Self {
            result,
            error: Cow::Borrowed(error),
            source: Cow::Borrowed(source),
        }
    }
}
