//! The host side of one HTTP stream, in Envoy's filter-manager order:
//! `on_context_create` → request headers → body chunks → trailers → (upstream
//! answers) → response headers → body → trailers → `on_log` → `on_done` →
//! `on_delete`.
//!
//! # Layout
//! - `half`: one direction ([`Half`]) as pure transitions: what to deliver next and
//!   what the filter's answer does (unit-tested without a guest).
//! - `pump`: runs a stream: calls the guest for what each half says is next, feeds the
//!   answers back, and moves from request to response to the end. Callbacks run until
//!   the filter holds something and no input is left to deliver; the exchange is then
//!   *paused* until a host call (`continue_stream`, `send_local_response`,
//!   `close_stream`) changes the stream, after which the VM pumps it again.
//! - here: the [`Stream`] itself, local replies, and failing a stream when its VM dies.

mod half;
mod pump;

pub(crate) use half::Half;

use crate::exchange::{Exchange, LocalResponse, StreamStatus};
use crate::http::{Headers, HttpMessage, Request, Response};
use std::collections::HashMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dir {
    Request,
    Response,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Request,
    Response,
    Finishing,
}

/// The host side of one HTTP stream context.
pub(crate) struct Stream {
    pub(crate) root: u32,
    pub(crate) plugin: usize,
    pub(crate) exchange: Exchange,
    pub(crate) phase: Phase,
    pub(crate) request: Half,
    pub(crate) response: Half,
    upstream: Option<Response>,
    /// Requested by the filter, applied after its callback returns.
    pub(crate) local_reply: Option<LocalResponse>,
    local_sent: bool,
    pub(crate) reset: bool,
    /// `on_log` is running: header maps are read-only views.
    pub(crate) log_phase: bool,
    pub(crate) properties: HashMap<Vec<u8>, Vec<u8>>,
    pub(crate) source_address: String,
    pub(crate) destination_address: String,
}

impl Stream {
    pub(crate) fn half(&self, dir: Dir) -> &Half {
        match dir {
            Dir::Request => &self.request,
            Dir::Response => &self.response,
        }
    }

    pub(crate) fn half_mut(&mut self, dir: Dir) -> &mut Half {
        match dir {
            Dir::Request => &mut self.request,
            Dir::Response => &mut self.response,
        }
    }

    /// The response headers Envoy builds for a local reply.
    fn local_reply_message(local: &LocalResponse) -> (Headers, Vec<u8>) {
        let mut headers = Headers::new();
        headers.add(":status", local.status.to_string());
        for (k, v) in local.headers.iter_bytes() {
            headers.add_bytes(k, v);
        }
        if !local.body.is_empty() {
            headers.replace("content-length", local.body.len().to_string());
            if !headers.contains("content-type") {
                headers.add("content-type", "text/plain");
            }
        }
        (headers, local.body.clone())
    }

    /// Applies the first local reply: before the response started it goes through
    /// the response callbacks; afterwards it replaces the response directly.
    fn apply_local_reply(&mut self, local: LocalResponse) {
        if self.local_sent {
            return;
        }
        self.local_sent = true;
        let (headers, body) = Self::local_reply_message(&local);
        self.exchange.lock().local_response = Some(local);
        match self.phase {
            Phase::Request => {
                let chunks = if body.is_empty() { vec![] } else { vec![body] };
                self.response = Half::new(headers, chunks, None);
                self.phase = Phase::Response;
            }
            Phase::Response => {
                self.exchange.lock().response = Some(HttpMessage {
                    headers,
                    body,
                    trailers: Headers::new(),
                });
                self.phase = Phase::Finishing;
            }
            Phase::Finishing => {}
        }
    }

    fn final_status(&self) -> StreamStatus {
        if self.reset {
            StreamStatus::Reset
        } else if self.exchange.lock().local_response.is_some() {
            StreamStatus::LocalResponse
        } else {
            StreamStatus::Forwarded
        }
    }

    /// The VM died under this stream.
    pub(crate) fn fail(self) {
        fail_exchange(&self.exchange);
    }
}

/// The VM failed (or had failed) under this exchange: Envoy's `failStream` answers
/// 503 `wasm_fail_stream` unless the client already got a response.
pub(crate) fn fail_exchange(exchange: &Exchange) {
    let mut record = exchange.lock();
    if record.response.is_none() {
        let local = LocalResponse {
            status: 503,
            details: "wasm_fail_stream".to_string(),
            body: Vec::new(),
            headers: Headers::new(),
            grpc_status: Some(14),
        };
        let (headers, body) = Stream::local_reply_message(&local);
        record.response = Some(HttpMessage {
            headers,
            body,
            trailers: Headers::new(),
        });
        record.local_response = Some(local);
        record.status = StreamStatus::LocalResponse;
    } else if record.status == StreamStatus::Paused {
        record.status = if record.local_response.is_some() {
            StreamStatus::LocalResponse
        } else {
            StreamStatus::Forwarded
        };
    }
}

/// The local reply Envoy sends when a buffer exceeds the limit.
fn too_large(dir: Dir) -> LocalResponse {
    let (status, details, body) = match dir {
        Dir::Request => (413, "request_payload_too_large", "Payload Too Large"),
        Dir::Response => (500, "response_payload_too_large", "Internal Server Error"),
    };
    LocalResponse {
        status,
        details: details.to_string(),
        body: body.as_bytes().to_vec(),
        headers: Headers::new(),
        grpc_status: None,
    }
}

/// The answer the upstream gives to a request that bypasses the filter (fail-open).
pub(crate) fn bypass(exchange: &Exchange, request: Request, upstream: Option<&crate::UpstreamFn>) {
    let forwarded = HttpMessage {
        headers: request.header_map(),
        body: request.chunks.concat(),
        trailers: request.trailer_map().unwrap_or_default(),
    };
    let response = request
        .upstream
        .clone()
        .or_else(|| upstream.map(|f| f(&forwarded)))
        .unwrap_or_else(|| Response::new(200));
    let mut record = exchange.lock();
    record.response = Some(HttpMessage {
        headers: response.header_map(),
        body: response.body_bytes(),
        trailers: response.trailer_map().unwrap_or_default(),
    });
    record.forwarded = Some(forwarded);
    record.status = StreamStatus::Forwarded;
}
