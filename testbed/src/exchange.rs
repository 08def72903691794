//! The result of sending a request: a live handle on what happened to it.

use crate::http::{Headers, HttpMessage};
use std::sync::{Arc, Mutex, MutexGuard};

/// Where an exchange stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamStatus {
    /// The filter paused it (waiting for an HTTP call, a tick, `continue_stream`...).
    Paused,
    /// Done: the request went upstream and the response went back to the client.
    Forwarded,
    /// Done: a local response answered the client (from the filter, a 413, or a 503 after a trap).
    LocalResponse,
    /// Done: the stream was reset (`proxy_close_stream`).
    Reset,
}

/// A local response (`proxy_send_local_response`, or one Envoy generated).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalResponse {
    /// HTTP status.
    pub status: u32,
    /// Response code details (`wasm_fail_stream`, `request_payload_too_large`...).
    pub details: String,
    /// Body.
    pub body: Vec<u8>,
    /// The additional headers the filter passed (keys lowercased).
    pub headers: Headers,
    /// gRPC status, if the filter set one (-1 / out of range means none).
    pub grpc_status: Option<i32>,
}

impl LocalResponse {
    /// The body as UTF-8 (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// First value of one of the filter's headers.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }
}

/// The HTTP-stream callbacks whose return value matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Callback {
    /// `proxy_on_request_headers`
    RequestHeaders,
    /// `proxy_on_request_body`
    RequestBody,
    /// `proxy_on_request_trailers`
    RequestTrailers,
    /// `proxy_on_response_headers`
    ResponseHeaders,
    /// `proxy_on_response_body`
    ResponseBody,
    /// `proxy_on_response_trailers`
    ResponseTrailers,
}

impl Callback {
    pub(crate) fn export(self) -> &'static str {
        match self {
            Callback::RequestHeaders => "proxy_on_request_headers",
            Callback::RequestBody => "proxy_on_request_body",
            Callback::RequestTrailers => "proxy_on_request_trailers",
            Callback::ResponseHeaders => "proxy_on_response_headers",
            Callback::ResponseBody => "proxy_on_response_body",
            Callback::ResponseTrailers => "proxy_on_response_trailers",
        }
    }

    fn is_body(self) -> bool {
        matches!(self, Callback::RequestBody | Callback::ResponseBody)
    }
}

/// A callback's return value, decoded for its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// 0
    Continue,
    /// 1 from headers/trailers (`Action::Pause` in the Rust SDK).
    StopIteration,
    /// 1 from a body callback (`Action::Pause` in the Rust SDK).
    StopIterationAndBuffer,
    /// 2 from a body callback.
    StopIterationAndWatermark,
    /// 3 from a body callback.
    StopIterationNoBuffer,
    /// Anything else.
    Other(u32),
}

impl Action {
    pub(crate) fn decode(callback: Callback, raw: u32) -> Action {
        match (raw, callback.is_body()) {
            (0, _) => Action::Continue,
            (1, false) => Action::StopIteration,
            (1, true) => Action::StopIterationAndBuffer,
            (2, true) => Action::StopIterationAndWatermark,
            (3, true) => Action::StopIterationNoBuffer,
            (raw, _) => Action::Other(raw),
        }
    }
}

/// One callback and what it returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallbackAction {
    /// The callback.
    pub callback: Callback,
    /// Its decoded return value.
    pub action: Action,
}

pub(crate) struct ExchangeRecord {
    pub(crate) vm: usize,
    pub(crate) context_id: u32,
    pub(crate) plugin: String,
    pub(crate) status: StreamStatus,
    pub(crate) forwarded: Option<HttpMessage>,
    pub(crate) local_response: Option<LocalResponse>,
    pub(crate) response: Option<HttpMessage>,
    pub(crate) actions: Vec<CallbackAction>,
}

/// What happened to one request. Cheap to clone; it stays live while the stream
/// is paused, so inspect it again after answering an HTTP call or advancing time.
#[derive(Clone)]
pub struct Exchange {
    record: Arc<Mutex<ExchangeRecord>>,
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = self.lock();
        f.debug_struct("Exchange")
            .field("vm", &r.vm)
            .field("context_id", &r.context_id)
            .field("plugin", &r.plugin)
            .field("status", &r.status)
            .field("forwarded", &r.forwarded)
            .field("local_response", &r.local_response)
            .field("response", &r.response)
            .field("actions", &r.actions)
            .finish()
    }
}

impl Exchange {
    pub(crate) fn new(vm: usize, context_id: u32, plugin: &str) -> Self {
        Exchange {
            record: Arc::new(Mutex::new(ExchangeRecord {
                vm,
                context_id,
                plugin: plugin.to_string(),
                status: StreamStatus::Paused,
                forwarded: None,
                local_response: None,
                response: None,
                actions: Vec::new(),
            })),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, ExchangeRecord> {
        self.record
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Current status.
    pub fn status(&self) -> StreamStatus {
        self.lock().status
    }

    /// The request reached the upstream (all of it, end of stream included).
    pub fn is_forwarded(&self) -> bool {
        self.lock().forwarded.is_some()
    }

    /// The filter is holding the stream.
    pub fn is_paused(&self) -> bool {
        self.status() == StreamStatus::Paused
    }

    /// The stream was reset.
    pub fn is_reset(&self) -> bool {
        self.status() == StreamStatus::Reset
    }

    /// The request as the upstream received it (headers as they were when released).
    pub fn forwarded(&self) -> Option<HttpMessage> {
        self.lock().forwarded.clone()
    }

    /// The local response, if one answered the client.
    pub fn local_response(&self) -> Option<LocalResponse> {
        self.lock().local_response.clone()
    }

    /// The response the client received (after the filter's response callbacks).
    pub fn response(&self) -> Option<HttpMessage> {
        self.lock().response.clone()
    }

    /// Shorthand: the client-visible `:status`.
    pub fn response_status(&self) -> Option<u16> {
        self.lock().response.as_ref().and_then(HttpMessage::status)
    }

    /// Every stream callback that ran, with its return value, in order.
    pub fn actions(&self) -> Vec<CallbackAction> {
        self.lock().actions.clone()
    }

    /// Actions of one callback kind.
    pub fn actions_of(&self, callback: Callback) -> Vec<Action> {
        self.lock()
            .actions
            .iter()
            .filter(|a| a.callback == callback)
            .map(|a| a.action)
            .collect()
    }

    /// The stream's context id in its VM.
    pub fn context_id(&self) -> u32 {
        self.lock().context_id
    }

    /// The VM that served it.
    pub fn vm(&self) -> usize {
        self.lock().vm
    }

    /// The plugin (root id) it went through.
    pub fn plugin(&self) -> String {
        self.lock().plugin.clone()
    }
}
