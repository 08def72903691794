//! Request hosts over a [`Vm`]: [`FakeRequest`] for tests, [`QuietRequest`] for benchmarks.

use std::cell::{Cell, RefCell};
use std::hint::black_box;

use super::vm::Vm;
use crate::config::Config;
use crate::header_map::HeaderMap;
use crate::log::Level;
use crate::rate_limit::LocalBudgets;
use crate::replica::Replica;
use crate::request::{Action, Event, Request, RequestHost};
use crate::shared::memory::MemoryStore;
use crate::usage::UsageLog;

/// How a fake host fails to give the request's headers.
#[derive(Debug, Clone, Copy)]
pub enum Unreadable {
    /// The call fails.
    Refused,
    /// The map it returns does not add up.
    Truncated,
}

/// A local reply.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u32,
    /// The body as sent...
    pub text: String,
    /// ...parsed (every reply the filter sends is JSON).
    pub body: serde_json::Value,
    pub headers: Vec<(String, String)>,
}

/// What a request's callbacks returned, and the body bytes released to the platform.
#[derive(Debug, Default)]
pub struct Run {
    pub headers: Option<Action>,
    pub body: Vec<Action>,
    pub forwarded: Vec<u8>,
}

/// One request's host, recording: its headers as Envoy keeps them (changes apply to what is
/// forwarded), Envoy's body buffer (a body callback that pauses keeps its bytes buffered for
/// the next one, one that continues releases them, a local reply ends the stream), and every
/// header change, property read and reply.
pub struct FakeRequest<'a> {
    pub vm: &'a Vm,
    pub headers: RefCell<Vec<(String, Vec<u8>)>>,
    pub body: RefCell<Vec<u8>>,
    /// `source.address` and `destination.address` (`ip:port`).
    pub source: &'static str,
    pub destination: &'static str,
    pub property_reads: Cell<usize>,
    /// Calls for the header map, and whether it fails.
    pub header_reads: Cell<usize>,
    pub unreadable_headers: Option<Unreadable>,
    /// Header removals and additions, by name.
    pub removed: RefCell<Vec<String>>,
    pub added: RefCell<Vec<String>>,
    pub replies: RefCell<Vec<Reply>>,
}

impl<'a> FakeRequest<'a> {
    /// A request with these headers (after `:method` and `:path`), from `192.0.2.7` to a
    /// loopback listener.
    pub fn new(vm: &'a Vm, method: &str, path: &str, headers: &[(&str, &str)]) -> Self {
        let mut all = vec![
            (":method".to_string(), method.as_bytes().to_vec()),
            (":path".to_string(), path.as_bytes().to_vec()),
        ];
        all.extend(
            headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())),
        );
        Self {
            vm,
            headers: RefCell::new(all),
            body: RefCell::new(Vec::new()),
            source: "192.0.2.7:50123",
            destination: "127.0.0.1:10001",
            property_reads: Cell::new(0),
            header_reads: Cell::new(0),
            unreadable_headers: None,
            removed: RefCell::new(Vec::new()),
            added: RefCell::new(Vec::new()),
            replies: RefCell::new(Vec::new()),
        }
    }

    /// A `GET` of `path`.
    pub fn get(vm: &'a Vm, path: &str) -> Self {
        Self::new(vm, "GET", path, &[])
    }

    /// A header's first value, as forwarded.
    pub fn header(&self, name: &str) -> Option<Vec<u8>> {
        self.headers
            .borrow()
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    /// A header's first value as text.
    pub fn header_text(&self, name: &str) -> Option<String> {
        self.header(name)
            .map(|v| String::from_utf8(v).expect("utf-8"))
    }

    /// How many values of a header are forwarded.
    pub fn header_count(&self, name: &str) -> usize {
        self.headers
            .borrow()
            .iter()
            .filter(|(k, _)| k == name)
            .count()
    }

    /// The last local reply.
    pub fn reply(&self) -> Option<Reply> {
        self.replies.borrow().last().cloned()
    }

    /// Runs the request with its body in `chunks` and the stream's end (`on_done`).
    pub fn run(&self, request: &mut Request, config: &Config, chunks: &[&[u8]]) -> Run {
        let run = self.deliver(request, config, chunks, true);
        request.on_done(self);
        run
    }

    /// Delivers the headers and `chunks` (the last one ends the body when `ends`).
    pub fn deliver(
        &self,
        request: &mut Request,
        config: &Config,
        chunks: &[&[u8]],
        ends: bool,
    ) -> Run {
        let mut run = Run {
            headers: Some(request.on_headers(self, config, chunks.is_empty() && ends)),
            ..Run::default()
        };
        self.body_chunks(request, config, chunks, ends, &mut run);
        run
    }

    /// Delivers more body chunks to a request whose headers were delivered.
    pub fn body_chunks(
        &self,
        request: &mut Request,
        config: &Config,
        chunks: &[&[u8]],
        ends: bool,
        run: &mut Run,
    ) {
        for (i, chunk) in chunks.iter().enumerate() {
            if !self.replies.borrow().is_empty() {
                break;
            }
            self.body.borrow_mut().extend_from_slice(chunk);
            let size = self.body.borrow().len();
            let action = request.on_body(self, config, size, ends && i + 1 == chunks.len());
            run.body.push(action);
            if action == Action::Continue {
                // Released: Envoy forwards the buffered bytes and keeps none.
                run.forwarded.append(&mut self.body.borrow_mut());
            }
        }
    }
}

impl RequestHost for FakeRequest<'_> {
    type Store = MemoryStore;

    fn request_headers(&self) -> Option<HeaderMap> {
        self.header_reads.set(self.header_reads.get() + 1);
        let headers = self.headers.borrow();
        let map = HeaderMap::serialize(headers.iter().map(|(k, v)| (k.as_str(), v.as_slice())));
        match self.unreadable_headers {
            None => Some(map),
            Some(Unreadable::Refused) => None,
            // The last value's terminator missing: every pair but the last one reads.
            Some(Unreadable::Truncated) => {
                let bytes = map.as_bytes();
                Some(HeaderMap::unchecked(bytes[..bytes.len() - 1].to_vec()))
            }
        }
    }

    fn add_header(&self, name: &str, value: &[u8]) {
        self.added.borrow_mut().push(name.to_string());
        self.headers
            .borrow_mut()
            .push((name.to_string(), value.to_vec()));
    }

    fn set_header(&self, name: &str, value: &[u8]) {
        self.headers.borrow_mut().retain(|(k, _)| k != name);
        self.add_header(name, value);
    }

    fn remove_header(&self, name: &str) {
        // Envoy's remove ignores case.
        self.removed.borrow_mut().push(name.to_string());
        self.headers
            .borrow_mut()
            .retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    }

    fn body(&self, start: usize, len: usize) -> Option<Vec<u8>> {
        self.body
            .borrow()
            .get(start..start + len)
            .map(<[u8]>::to_vec)
    }

    fn replace_body_prefix(&self, len: usize, value: &[u8]) {
        self.body.borrow_mut().splice(..len, value.iter().copied());
    }

    fn drain_body(&self, len: usize) {
        self.body.borrow_mut().drain(..len);
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        self.property_reads.set(self.property_reads.get() + 1);
        match path {
            ["source", "address"] => Some(self.source.as_bytes().to_vec()),
            ["destination", "address"] => Some(self.destination.as_bytes().to_vec()),
            _ => None,
        }
    }

    fn send_json(&self, status: u32, body: &str, extra_headers: &[(&str, &str)]) {
        self.replies.borrow_mut().push(Reply {
            status,
            text: body.to_string(),
            body: serde_json::from_str(body).expect("a JSON body"),
            headers: extra_headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        });
    }

    fn clock_secs(&self, _tick_clock_is_fresh: bool) -> u64 {
        self.vm.now_ms.get() / 1000
    }

    fn now_millis(&self) -> u64 {
        self.vm.now_ms.get()
    }

    fn now_micros(&self) -> u64 {
        self.vm.now_ms.get() * 1000
    }

    fn memory_bytes(&self) -> usize {
        1 << 20
    }

    fn debug_enabled(&self) -> bool {
        true
    }

    fn log(&self, level: Level, message: &str) {
        self.vm.logs.borrow_mut().push((level, message.to_string()));
    }

    fn count(&self, event: Event) {
        self.vm.events.borrow_mut().push(event);
    }

    fn store(&self) -> &MemoryStore {
        &self.vm.store
    }

    fn replica<R>(&self, f: impl FnOnce(&Replica) -> R) -> R {
        f(&self.vm.replica.borrow())
    }

    fn replica_mut<R>(&self, f: impl FnOnce(&mut Replica) -> R) -> R {
        f(&mut self.vm.replica.borrow_mut())
    }

    fn usage<R>(&self, f: impl FnOnce(&mut UsageLog) -> R) -> R {
        f(&mut self.vm.usage.borrow_mut())
    }

    fn rate_budgets<R>(&self, f: impl FnOnce(&mut LocalBudgets) -> R) -> R {
        f(&mut self.vm.rate_budgets.borrow_mut())
    }

    fn vm_active(&self) -> bool {
        self.vm.active.get()
    }

    fn vm_number(&self) -> u64 {
        3
    }

    fn refresh(&self) {
        self.vm.refreshes.set(self.vm.refreshes.get() + 1);
        let _ = self.vm.replica.borrow_mut().refresh(
            &self.vm.store,
            &self.vm.keys,
            self.vm.now_ms.get(),
        );
    }
}

/// A request host whose calls cost next to nothing, for benchmarks: the headers are given
/// serialized (as Envoy hands them to the filter: one allocation per request, the clone),
/// the body is a slice, nothing is logged, and only what the request did is counted (identity
/// headers written, replies sent).
pub struct QuietRequest<'a> {
    pub vm: &'a Vm,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    /// Header writes (identity, a stripped `:path`).
    pub written: Cell<u32>,
    pub replies: Cell<u32>,
}

impl<'a> QuietRequest<'a> {
    /// A request with these headers and body.
    pub fn new(vm: &'a Vm, headers: &'a HeaderMap, body: &'a [u8]) -> Self {
        Self {
            vm,
            headers,
            body,
            written: Cell::new(0),
            replies: Cell::new(0),
        }
    }
}

impl RequestHost for QuietRequest<'_> {
    type Store = MemoryStore;

    fn request_headers(&self) -> Option<HeaderMap> {
        Some(self.headers.clone())
    }

    fn add_header(&self, name: &str, value: &[u8]) {
        black_box((name, value));
        self.written.set(self.written.get() + 1);
    }

    fn set_header(&self, name: &str, value: &[u8]) {
        self.add_header(name, value);
    }

    fn remove_header(&self, name: &str) {
        black_box(name);
    }

    fn body(&self, start: usize, len: usize) -> Option<Vec<u8>> {
        self.body.get(start..start + len).map(<[u8]>::to_vec)
    }

    fn replace_body_prefix(&self, len: usize, value: &[u8]) {
        black_box((len, value));
    }

    fn drain_body(&self, len: usize) {
        black_box(len);
    }

    fn property(&self, _path: &[&str]) -> Option<Vec<u8>> {
        Some(b"192.0.2.7:50123".to_vec())
    }

    fn send_json(&self, _status: u32, body: &str, _extra_headers: &[(&str, &str)]) {
        black_box(body);
        self.replies.set(self.replies.get() + 1);
    }

    fn clock_secs(&self, _tick_clock_is_fresh: bool) -> u64 {
        self.vm.now_ms.get() / 1000
    }

    fn now_millis(&self) -> u64 {
        self.vm.now_ms.get()
    }

    fn now_micros(&self) -> u64 {
        self.vm.now_ms.get() * 1000
    }

    fn memory_bytes(&self) -> usize {
        1 << 20
    }

    fn debug_enabled(&self) -> bool {
        false
    }

    fn log(&self, _level: Level, message: &str) {
        black_box(message);
    }

    fn count(&self, event: Event) {
        black_box(event);
    }

    fn store(&self) -> &MemoryStore {
        &self.vm.store
    }

    fn replica<R>(&self, f: impl FnOnce(&Replica) -> R) -> R {
        f(&self.vm.replica.borrow())
    }

    fn replica_mut<R>(&self, f: impl FnOnce(&mut Replica) -> R) -> R {
        f(&mut self.vm.replica.borrow_mut())
    }

    fn usage<R>(&self, f: impl FnOnce(&mut UsageLog) -> R) -> R {
        f(&mut self.vm.usage.borrow_mut())
    }

    fn rate_budgets<R>(&self, f: impl FnOnce(&mut LocalBudgets) -> R) -> R {
        f(&mut self.vm.rate_budgets.borrow_mut())
    }

    fn vm_active(&self) -> bool {
        self.vm.active.get()
    }

    fn vm_number(&self) -> u64 {
        1
    }

    fn refresh(&self) {}
}
