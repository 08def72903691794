//! The per-request state machine, in Envoy's filter-manager order:
//! `on_context_create` → request headers → body chunks → trailers → (upstream
//! answers) → response headers → body → trailers → `on_log` → `on_done` →
//! `on_delete`.
//!
//! Each direction is a [`Half`]. Callbacks run until the filter holds something
//! and no input is left to deliver; the exchange is then *paused* until a host
//! call (`continue_stream`, `send_local_response`, `close_stream`) changes the
//! stream, after which the VM pumps it again.

use crate::exchange::{Action, Callback, CallbackAction, Exchange, LocalResponse, StreamStatus};
use crate::http::{Headers, HttpMessage, Request, Response};
use crate::vm::{Crashed, VmInstance, w, wsize};
use std::collections::{HashMap, VecDeque};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dir {
    Request,
    Response,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HalfState {
    /// Headers not delivered yet.
    Headers,
    /// Headers returned StopIteration, turned into StopAllIterationAndWatermark:
    /// nothing is delivered until `continue_stream`.
    StoppedAll,
    /// Delivering body chunks and trailers.
    Body,
    /// Everything passed on.
    Complete,
}

/// One direction of a stream.
pub(crate) struct Half {
    pub(crate) headers: Headers,
    pub(crate) trailers: Option<Headers>,
    pending: VecDeque<Vec<u8>>,
    trailers_pending: bool,
    state: HalfState,
    /// The filter holds headers or data back.
    held: bool,
    /// The body data the filter can see (the buffered body while buffering).
    pub(crate) buffer: Vec<u8>,
    /// The last body callback asked to buffer.
    pub(crate) buffering: bool,
    /// A body callback for this half is running.
    pub(crate) in_body: bool,
    pub(crate) body_eos: bool,
    /// Envoy keeps a pointer to the header map until it is released.
    pub(crate) headers_open: bool,
    pub(crate) trailers_open: bool,
    /// `continue_stream` was called.
    pub(crate) resume: bool,
    out_headers: Option<Headers>,
    out_body: Vec<u8>,
}

impl Half {
    fn new(headers: Headers, chunks: Vec<Vec<u8>>, trailers: Option<Headers>) -> Self {
        Half {
            trailers_pending: trailers.is_some(),
            headers,
            trailers,
            pending: chunks.into(),
            state: HalfState::Headers,
            held: false,
            buffer: Vec::new(),
            buffering: false,
            in_body: false,
            body_eos: false,
            headers_open: false,
            trailers_open: false,
            resume: false,
            out_headers: None,
            out_body: Vec::new(),
        }
    }

    fn empty() -> Self {
        Self::new(Headers::new(), Vec::new(), None)
    }

    /// The filter's data is visible: during its body callback, or while buffered.
    pub(crate) fn body_visible(&self) -> bool {
        self.in_body || self.buffering
    }

    /// Passes the headers (once) and the current data on.
    fn release(&mut self) {
        if self.out_headers.is_none() {
            self.out_headers = Some(self.headers.clone());
        }
        self.out_body.extend_from_slice(&self.buffer);
        self.buffer.clear();
        self.buffering = false;
    }

    fn apply_resume(&mut self) {
        match self.state {
            HalfState::Headers | HalfState::Complete => {}
            HalfState::StoppedAll => {
                self.release();
                // Everything that arrived while stopped is delivered in one callback.
                if self.pending.len() > 1 {
                    let joined = self.pending.drain(..).collect::<Vec<_>>().concat();
                    self.pending.push_back(joined);
                }
                self.state = HalfState::Body;
                self.held = false;
            }
            HalfState::Body => {
                self.release();
                self.held = false;
            }
        }
        self.headers_open = false;
        self.trailers_open = false;
    }

    fn message(&self) -> HttpMessage {
        HttpMessage {
            headers: self
                .out_headers
                .clone()
                .unwrap_or_else(|| self.headers.clone()),
            body: self.out_body.clone(),
            trailers: self.trailers.clone().unwrap_or_default(),
        }
    }
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

enum Step {
    Progress,
    Paused,
    Complete,
    Overflow,
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

impl VmInstance {
    /// Creates the stream context for `request` and runs it as far as the filter lets it.
    pub(crate) fn start_stream(
        &mut self,
        plugin: usize,
        mut request: Request,
    ) -> Result<Exchange, (Exchange, Crashed)> {
        let shared = self.shared();
        let host = self.host_mut();
        let ctx = host.alloc_context_id();
        let root = host.roots[plugin];
        let plugin_id = &shared.config.plugins[plugin].root_id;
        let exchange = Exchange::new(host.vm, ctx, plugin_id);
        let stream = Stream {
            root,
            plugin,
            exchange: exchange.clone(),
            phase: Phase::Request,
            request: Half::new(
                request.header_map(),
                std::mem::take(&mut request.chunks),
                request.trailer_map(),
            ),
            response: Half::empty(),
            upstream: request.upstream,
            local_reply: None,
            local_sent: false,
            reset: false,
            log_phase: false,
            properties: HashMap::new(),
            source_address: request
                .source_address
                .unwrap_or_else(|| shared.config.source_address.clone()),
            destination_address: request
                .destination_address
                .unwrap_or_else(|| shared.config.destination_address.clone()),
        };
        host.streams.insert(ctx, stream);
        let run = |vm: &mut Self| {
            vm.call_context_create(ctx, root)?;
            vm.pump(ctx)?;
            vm.pump_dirty()
        };
        match run(self) {
            Ok(()) => Ok(exchange),
            Err(crashed) => Err((exchange, crashed)),
        }
    }

    fn stream_mut(&mut self, ctx: u32) -> Option<&mut Stream> {
        self.host_mut().streams.get_mut(&ctx)
    }

    /// Runs the stream until it pauses or ends.
    pub(crate) fn pump(&mut self, ctx: u32) -> Result<(), Crashed> {
        loop {
            let Some(stream) = self.stream_mut(ctx) else {
                return Ok(());
            };
            if stream.reset && stream.phase != Phase::Finishing {
                stream.phase = Phase::Finishing;
            }
            if let Some(local) = stream.local_reply.take() {
                stream.apply_local_reply(local);
                continue;
            }
            let dir = match stream.phase {
                Phase::Request => Dir::Request,
                Phase::Response => Dir::Response,
                Phase::Finishing => return self.finish(ctx),
            };
            match self.step(ctx, dir)? {
                Step::Progress => {}
                Step::Paused => return Ok(()),
                Step::Overflow => {
                    if let Some(stream) = self.stream_mut(ctx) {
                        if stream.local_sent {
                            // A response is already on its way: Envoy can only reset.
                            stream.reset = true;
                        } else {
                            stream.local_reply = Some(too_large(dir));
                        }
                    }
                }
                Step::Complete => self.complete(ctx, dir),
            }
        }
    }

    fn complete(&mut self, ctx: u32, dir: Dir) {
        let upstream = self.shared().config.upstream.clone();
        let Some(stream) = self.stream_mut(ctx) else {
            return;
        };
        match dir {
            Dir::Request => {
                let forwarded = stream.request.message();
                let mut response = stream
                    .upstream
                    .take()
                    .or_else(|| upstream.map(|f| f(&forwarded)))
                    .unwrap_or_else(|| Response::new(200));
                stream.exchange.lock().forwarded = Some(forwarded);
                stream.response = Half::new(
                    response.header_map(),
                    std::mem::take(&mut response.chunks),
                    response.trailer_map(),
                );
                stream.phase = Phase::Response;
            }
            Dir::Response => {
                stream.exchange.lock().response = Some(stream.response.message());
                stream.phase = Phase::Finishing;
            }
        }
    }

    /// `on_log` → `on_done` → `on_delete` (Envoy 1.40's order), then the record is final.
    fn finish(&mut self, ctx: u32) -> Result<(), Crashed> {
        self.call_log(ctx)?;
        self.call_done_delete(ctx)?;
        if let Some(stream) = self.host_mut().streams.remove(&ctx) {
            let status = stream.final_status();
            stream.exchange.lock().status = status;
        }
        Ok(())
    }

    fn record(&mut self, ctx: u32, callback: Callback, raw: i32) {
        if let Some(stream) = self.stream_mut(ctx) {
            stream.exchange.lock().actions.push(CallbackAction {
                callback,
                action: Action::decode(callback, raw as u32),
            });
        }
    }

    fn call_headers(
        &mut self,
        ctx: u32,
        dir: Dir,
        count: usize,
        eos: bool,
    ) -> Result<u32, Crashed> {
        let (func, callback) = match dir {
            Dir::Request => (self.funcs.request_headers.clone(), Callback::RequestHeaders),
            Dir::Response => (
                self.funcs.response_headers.clone(),
                Callback::ResponseHeaders,
            ),
        };
        let Some(func) = func else { return Ok(0) };
        let raw = self.invoke(
            callback.export(),
            ctx,
            &func,
            (w(ctx), wsize(count), i32::from(eos)),
        )?;
        self.record(ctx, callback, raw);
        Ok(raw as u32)
    }

    fn call_body(&mut self, ctx: u32, dir: Dir, size: usize, eos: bool) -> Result<u32, Crashed> {
        let (func, callback) = match dir {
            Dir::Request => (self.funcs.request_body.clone(), Callback::RequestBody),
            Dir::Response => (self.funcs.response_body.clone(), Callback::ResponseBody),
        };
        let Some(func) = func else { return Ok(0) };
        let raw = self.invoke(
            callback.export(),
            ctx,
            &func,
            (w(ctx), wsize(size), i32::from(eos)),
        )?;
        self.record(ctx, callback, raw);
        Ok(raw as u32)
    }

    fn call_trailers(&mut self, ctx: u32, dir: Dir, count: usize) -> Result<u32, Crashed> {
        let (func, callback) = match dir {
            Dir::Request => (
                self.funcs.request_trailers.clone(),
                Callback::RequestTrailers,
            ),
            Dir::Response => (
                self.funcs.response_trailers.clone(),
                Callback::ResponseTrailers,
            ),
        };
        let Some(func) = func else { return Ok(0) };
        let raw = self.invoke(callback.export(), ctx, &func, (w(ctx), wsize(count)))?;
        self.record(ctx, callback, raw);
        Ok(raw as u32)
    }

    /// One callback (or one state change) of a half.
    fn step(&mut self, ctx: u32, dir: Dir) -> Result<Step, Crashed> {
        let config = &self.host().shared.config;
        let (limit, allow_stop) = (config.buffer_limit, config.allow_on_headers_stop_iteration);
        let Some(stream) = self.stream_mut(ctx) else {
            return Ok(Step::Paused);
        };
        let half = stream.half_mut(dir);
        if half.resume {
            half.resume = false;
            half.apply_resume();
        }
        match half.state {
            HalfState::Headers => {
                let count = half.headers.len();
                let eos = half.pending.is_empty() && !half.trailers_pending;
                half.headers_open = true;
                let raw = self.call_headers(ctx, dir, count, eos)?;
                let Some(stream) = self.stream_mut(ctx) else {
                    return Ok(Step::Paused);
                };
                let half = stream.half_mut(dir);
                if raw == 0 {
                    half.release();
                    half.headers_open = false;
                    half.state = HalfState::Body;
                } else if raw == 1 && allow_stop {
                    half.held = true;
                    half.state = HalfState::Body;
                } else {
                    half.held = true;
                    half.state = HalfState::StoppedAll;
                }
                Ok(Step::Progress)
            }
            HalfState::StoppedAll => Ok(Step::Paused),
            HalfState::Body => {
                if let Some(chunk) = half.pending.pop_front() {
                    let eos = half.pending.is_empty() && !half.trailers_pending;
                    if half.buffering {
                        half.buffer.extend_from_slice(&chunk);
                        if half.buffer.len() > limit {
                            return Ok(Step::Overflow);
                        }
                    } else {
                        half.buffer = chunk;
                    }
                    half.in_body = true;
                    half.body_eos = eos;
                    let size = half.buffer.len();
                    let result = self.call_body(ctx, dir, size, eos);
                    let Some(stream) = self.stream_mut(ctx) else {
                        return result.map(|_| Step::Paused);
                    };
                    let half = stream.half_mut(dir);
                    half.in_body = false;
                    match result? {
                        0 => {
                            half.release();
                            half.held = false;
                        }
                        1 | 2 => {
                            half.buffering = true;
                            half.held = true;
                            if half.buffer.len() > limit {
                                return Ok(Step::Overflow);
                            }
                        }
                        _ => {
                            // StopIterationNoBuffer: the chunk is not kept.
                            half.buffering = false;
                            half.buffer.clear();
                            half.held = true;
                        }
                    }
                    Ok(Step::Progress)
                } else if half.trailers_pending {
                    half.trailers_pending = false;
                    half.trailers_open = true;
                    let count = half.trailers.as_ref().map_or(0, Headers::len);
                    let raw = self.call_trailers(ctx, dir, count)?;
                    let Some(stream) = self.stream_mut(ctx) else {
                        return Ok(Step::Paused);
                    };
                    let half = stream.half_mut(dir);
                    if raw == 0 {
                        half.release();
                        half.trailers_open = false;
                        half.held = false;
                    } else {
                        half.held = true;
                    }
                    Ok(Step::Progress)
                } else if half.held {
                    Ok(Step::Paused)
                } else {
                    half.release();
                    half.state = HalfState::Complete;
                    Ok(Step::Complete)
                }
            }
            HalfState::Complete => Ok(Step::Complete),
        }
    }
}
