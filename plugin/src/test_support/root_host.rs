//! A root host over a [`Vm`]: it records the calls the root dispatches and delivers the
//! answers a test gives, as proxy-wasm does (an answer's headers and body are readable only
//! while it is delivered; a call that failed or timed out comes with no headers).

use std::cell::{Cell, RefCell};
use std::time::Duration;

use super::vm::Vm;
use crate::config::Config;
use crate::log::Level;
use crate::replica::Replica;
use crate::root::{Answer, Call, Event, Root, RootHost};
use crate::shared::memory::MemoryStore;
use crate::usage::UsageLog;

/// A call the root dispatched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispatched {
    pub token: u32,
    pub cluster: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub timeout: Duration,
}

impl Dispatched {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `:method` and `:path`.
    pub fn request_line(&self) -> (String, String) {
        (
            self.header(":method").unwrap_or_default().to_string(),
            self.header(":path").unwrap_or_default().to_string(),
        )
    }
}

/// An answer to deliver.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// An answer with this status and body.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// With this header too.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// A root context's host over a [`Vm`].
pub struct FakeRoot<'a> {
    pub vm: &'a Vm,
    /// Every call dispatched, in order.
    pub calls: RefCell<Vec<Dispatched>>,
    /// Calls are refused (as for an unknown cluster).
    pub refuse_calls: Cell<bool>,
    /// The tick period set, and whether setting it fails.
    pub tick_period: Cell<Option<Duration>>,
    pub refuse_tick: Cell<bool>,
    /// What the test answers when asked (`None`: no answer is being delivered).
    delivering: RefCell<Option<Response>>,
    next_token: Cell<u32>,
}

impl<'a> FakeRoot<'a> {
    /// A root host of `vm`.
    pub fn new(vm: &'a Vm) -> Self {
        Self {
            vm,
            calls: RefCell::new(Vec::new()),
            refuse_calls: Cell::new(false),
            tick_period: Cell::new(None),
            refuse_tick: Cell::new(false),
            delivering: RefCell::new(None),
            next_token: Cell::new(1),
        }
    }

    /// The last call dispatched.
    pub fn last_call(&self) -> Dispatched {
        self.calls
            .borrow()
            .last()
            .cloned()
            .expect("a call was dispatched")
    }

    /// How many calls were dispatched.
    pub fn call_count(&self) -> usize {
        self.calls.borrow().len()
    }

    /// Delivers `response` to the call with `token` (`None`: the call failed or timed out,
    /// and comes with no headers).
    pub fn answer(&self, root: &mut Root, config: &Config, token: u32, response: Option<Response>) {
        let answer = Answer {
            token,
            headers: response.as_ref().map_or(0, |r| r.headers.len() + 1),
            body_size: response.as_ref().map_or(0, |r| r.body.len()),
        };
        *self.delivering.borrow_mut() = response;
        root.on_answer(self, config, answer);
        *self.delivering.borrow_mut() = None;
    }

    /// Delivers `response` to the last call dispatched.
    pub fn answer_last(&self, root: &mut Root, config: &Config, response: Option<Response>) {
        let token = self.last_call().token;
        self.answer(root, config, token, response);
    }
}

impl RootHost for FakeRoot<'_> {
    type Store = MemoryStore;

    fn dispatch(&self, call: &Call<'_>) -> Result<u32, String> {
        if self.refuse_calls.get() {
            return Err("BadArgument".into());
        }
        let token = self.next_token.get();
        self.next_token.set(token + 1);
        self.calls.borrow_mut().push(Dispatched {
            token,
            cluster: call.cluster.to_string(),
            headers: call
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: call.body.map(<[u8]>::to_vec),
            timeout: call.timeout,
        });
        Ok(token)
    }

    fn response_header(&self, name: &str) -> Option<String> {
        let delivering = self.delivering.borrow();
        // Reading an answer's map outside its delivery is an error in proxy-wasm: the
        // machine must not.
        let response = delivering
            .as_ref()
            .expect("a response header read while no answer is delivered");
        if name == ":status" {
            return Some(response.status.to_string());
        }
        response
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }

    fn response_body(&self, len: usize) -> Vec<u8> {
        let delivering = self.delivering.borrow();
        let response = delivering
            .as_ref()
            .expect("a response body read while no answer is delivered");
        response.body[..len.min(response.body.len())].to_vec()
    }

    fn set_tick_period(&self, period: Duration) -> bool {
        if self.refuse_tick.get() {
            return false;
        }
        self.tick_period.set(Some(period));
        true
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

    fn vm_active(&self) -> bool {
        self.vm.active.get()
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

    fn log(&self, level: Level, message: &str) {
        self.vm.logs.borrow_mut().push((level, message.to_string()));
    }

    fn count(&self, event: Event) {
        self.vm.root_events.borrow_mut().push(event);
    }
}
