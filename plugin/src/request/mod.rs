//! One request through the filter, as a state machine behind a host trait
//! ([`RequestHost`]): `glue` forwards the proxy-wasm callbacks to a [`Request`] and
//! implements the trait over the host calls; the unit tests drive it with a fake host.
//!
//! Headers (read in one host call): identity headers are removed from every request first. A control-path request
//! goes to the control endpoint. Otherwise the `session` is looked for in the query, and
//! token-format values anywhere else in the path or query refuse the request. When the body
//! can carry fields (form or multipart), the headers are held and the body is read too,
//! whether or not the query had a session: a form body whole (up to `max_body_bytes`), a
//! multipart body up to its first file part. The verdict is then applied: identity headers
//! added (and the token optionally removed), or a platform-shaped JSON denial sent. The rest
//! of a multipart body is still read as it streams to the platform; a token in a later part
//! ends the request with a denial before that part is forwarded.
//!
//! A push on the control path is checked on its signed head as soon as the head arrives,
//! and takes the edge's push lease, before the rest of its body is buffered.
//!
//! # Layout
//! - `host`: the [`RequestHost`] trait, the [`Event`]s it counts, log [`Level`]s.
//! - `headers`: the request headers: identity headers, the query, which body to read.
//! - `body`: form and multipart bodies.
//! - `verdict`: deciding and applying the verdict (identity headers, stripping, denials,
//!   usage).
//! - `endpoint`: the control endpoint's headers: the status, the start of a push.
//! - `push`: a push's body: the early signed-head check, the lease, acceptance, refusals.

mod body;
mod endpoint;
mod headers;
mod host;
mod push;
mod verdict;

#[cfg(test)]
mod tests;

pub use host::{Event, Level, RequestHost};

use std::ops::Range;

use crate::config::Config;
use crate::env_name::EnvFinding;
use crate::header_map::HeaderMap;
use crate::multipart::Scanner;
use crate::session::SessionFinding;

use push::PushState;

/// What the callback returns to the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Go on: release what is held.
    Continue,
    /// Hold (headers: stop iteration; body: stop and buffer), or answered here.
    Pause,
}

enum Stage {
    /// Waiting for request headers.
    Headers,
    /// Headers held; buffering a form body to its end.
    Form { query: SessionFinding },
    /// Headers held; reading a multipart body up to its first file part.
    MultipartHead {
        query: SessionFinding,
        scanner: Box<Scanner>,
    },
    /// Headers released; reading the rest of a multipart body as it streams past.
    MultipartTail { scanner: Box<Scanner> },
    /// Headers held; buffering a snapshot push.
    Push(PushState),
    /// Decided (forwarded or answered).
    Done,
}

/// One request (one HTTP context).
pub struct Request {
    /// The HTTP context's id (with the VM's number, a push lease holder).
    context_id: u32,
    stage: Stage,
    /// The request headers as the host gave them, and where `:path` and `:method` are in
    /// them (read in place, not copied).
    headers: HeaderMap,
    path: Range<usize>,
    method: Range<usize>,
    /// The request's `content-length`, when present and numeric (kept up to date when the
    /// filter changes the body).
    content_length: Option<u64>,
    /// Request body bytes buffered so far (from the last body callback).
    buffered: usize,
    /// The request's `envName`, found by the same pass as its `session`: the query's once
    /// the headers are read, with the body's merged in before the verdict, and with a later
    /// multipart part's when one changes it.
    env: EnvFinding,
    /// Allowed with a token limited to some environments (its masked value): a later
    /// multipart part that changes `env` ends the request.
    env_limited: Option<String>,
}

impl Request {
    /// A request in HTTP context `context_id`, before its headers.
    pub fn new(context_id: u32) -> Self {
        Self {
            context_id,
            stage: Stage::Headers,
            headers: HeaderMap::default(),
            path: 0..0,
            method: 0..0,
            content_length: None,
            buffered: 0,
            env: EnvFinding::Absent,
            env_limited: None,
        }
    }

    /// The request's `envName` as found so far (see the field's description): when the
    /// verdict is computed, the one it is decided on.
    pub fn env(&self) -> &EnvFinding {
        &self.env
    }

    /// `:path` (empty before the headers, or when there is none).
    fn path(&self) -> &[u8] {
        self.headers
            .as_bytes()
            .get(self.path.clone())
            .unwrap_or_default()
    }

    /// `:method`.
    fn method(&self) -> &[u8] {
        self.headers
            .as_bytes()
            .get(self.method.clone())
            .unwrap_or_default()
    }

    /// The request headers arrived.
    pub fn on_headers(
        &mut self,
        host: &impl RequestHost,
        config: &Config,
        end_of_stream: bool,
    ) -> Action {
        self.headers(host, config, end_of_stream)
    }

    /// Body bytes arrived: `body_size` bytes are buffered now.
    pub fn on_body(
        &mut self,
        host: &impl RequestHost,
        config: &Config,
        body_size: usize,
        end_of_stream: bool,
    ) -> Action {
        self.buffered = body_size;
        self.body(host, config, body_size, end_of_stream)
    }

    /// Trailers arrived: they end the body, so decide with what was buffered.
    pub fn on_trailers(&mut self, host: &impl RequestHost, config: &Config) -> Action {
        let size = match self.stage {
            // Their bytes were all taken from the buffer in body callbacks already.
            Stage::MultipartTail { .. } | Stage::Push(_) => 0,
            _ => self.buffered,
        };
        self.body(host, config, size, true)
    }

    /// The stream ended: a push whose client went away gives its lease back.
    pub fn on_done(&mut self, host: &impl RequestHost) {
        self.release_lease(host);
    }

    fn body(
        &mut self,
        host: &impl RequestHost,
        config: &Config,
        size: usize,
        end_of_stream: bool,
    ) -> Action {
        match std::mem::replace(&mut self.stage, Stage::Done) {
            Stage::Form { query } => self.form_body(host, config, query, size, end_of_stream),
            Stage::MultipartHead { query, scanner } => {
                self.multipart_head(host, config, query, scanner, size, end_of_stream)
            }
            Stage::MultipartTail { scanner } => {
                self.multipart_tail(host, config, scanner, size, end_of_stream)
            }
            Stage::Push(state) => {
                self.stage = Stage::Push(state);
                self.push_body(host, config, size, end_of_stream)
            }
            Stage::Headers | Stage::Done => Action::Continue,
        }
    }
}
