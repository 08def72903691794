//! Running a stream: each step asks the current half what is next ([`Half::next`]),
//! calls the guest for it, and hands the decoded answer back to the half; between
//! steps, a requested local reply or reset takes over. The request half completes into
//! the upstream's response, the response half into `on_log` → `on_done` → `on_delete`.

use super::half::{Next, Step};
use super::{Dir, Half, Phase, Stream, too_large};
use crate::exchange::{Action, Callback, CallbackAction, Exchange};
use crate::http::{Request, Response};
use crate::vm::{Crashed, VmInstance, w, wsize};
use std::collections::HashMap;

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

    /// One callback (or one state change) of a half.
    fn step(&mut self, ctx: u32, dir: Dir) -> Result<Step, Crashed> {
        let config = &self.host().shared.config;
        let (limit, allow_stop) = (config.buffer_limit, config.allow_on_headers_stop_iteration);
        let Some(stream) = self.stream_mut(ctx) else {
            return Ok(Step::Paused);
        };
        match stream.half_mut(dir).next(limit) {
            Next::Stop(step) => Ok(step),
            Next::Headers {
                count,
                end_of_stream,
            } => {
                let action = self.call_headers(ctx, dir, count, end_of_stream)?;
                Ok(self.returned(ctx, dir, |half| {
                    half.headers_returned(action, allow_stop);
                    Step::Progress
                }))
            }
            Next::Body {
                size,
                end_of_stream,
            } => {
                let action = self.call_body(ctx, dir, size, end_of_stream)?;
                Ok(self.returned(ctx, dir, |half| half.body_returned(action, limit)))
            }
            Next::Trailers { count } => {
                let action = self.call_trailers(ctx, dir, count)?;
                Ok(self.returned(ctx, dir, |half| {
                    half.trailers_returned(action);
                    Step::Progress
                }))
            }
        }
    }

    /// Hands a callback's answer to its half (the stream may be gone by then).
    fn returned(&mut self, ctx: u32, dir: Dir, f: impl FnOnce(&mut Half) -> Step) -> Step {
        match self.stream_mut(ctx) {
            Some(stream) => f(stream.half_mut(dir)),
            None => Step::Paused,
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

    /// Records what a callback returned, decoded for its kind.
    fn record(&mut self, ctx: u32, callback: Callback, raw: i32) -> Action {
        let action = Action::decode(callback, raw as u32);
        if let Some(stream) = self.stream_mut(ctx) {
            stream
                .exchange
                .lock()
                .actions
                .push(CallbackAction { callback, action });
        }
        action
    }

    fn call_headers(
        &mut self,
        ctx: u32,
        dir: Dir,
        count: usize,
        eos: bool,
    ) -> Result<Action, Crashed> {
        let (func, callback) = match dir {
            Dir::Request => (self.funcs.request_headers.clone(), Callback::RequestHeaders),
            Dir::Response => (
                self.funcs.response_headers.clone(),
                Callback::ResponseHeaders,
            ),
        };
        let Some(func) = func else {
            return Ok(Action::Continue);
        };
        let raw = self.invoke(
            callback.export(),
            ctx,
            &func,
            (w(ctx), wsize(count), i32::from(eos)),
        )?;
        Ok(self.record(ctx, callback, raw))
    }

    fn call_body(&mut self, ctx: u32, dir: Dir, size: usize, eos: bool) -> Result<Action, Crashed> {
        let (func, callback) = match dir {
            Dir::Request => (self.funcs.request_body.clone(), Callback::RequestBody),
            Dir::Response => (self.funcs.response_body.clone(), Callback::ResponseBody),
        };
        let Some(func) = func else {
            return Ok(Action::Continue);
        };
        let raw = self.invoke(
            callback.export(),
            ctx,
            &func,
            (w(ctx), wsize(size), i32::from(eos)),
        )?;
        Ok(self.record(ctx, callback, raw))
    }

    fn call_trailers(&mut self, ctx: u32, dir: Dir, count: usize) -> Result<Action, Crashed> {
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
        let Some(func) = func else {
            return Ok(Action::Continue);
        };
        let raw = self.invoke(callback.export(), ctx, &func, (w(ctx), wsize(count)))?;
        Ok(self.record(ctx, callback, raw))
    }
}
