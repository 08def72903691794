//! The filter's own work per request, natively: the request state machine (`pat_plugin::request`)
//! over a host whose calls cost next to nothing, at 1,000,000 tokens. Wall time per request
//! for each kind of request; under callgrind (`valgrind --tool=callgrind`, see
//! `scripts/bench-notes.md`) the same run is a profile of where the filter's instructions go.
//! What Envoy's host calls cost is measured in real Envoy by `scripts/bench` instead.
//!
//! `cargo bench -p pat-plugin --bench request_path` (`PAT_BENCH_REQUESTS`, default 200,000
//! per kind; `PAT_BENCH_KIND`: only the kinds whose label starts so).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

use pat_core::keys::{SigningKey, TrustedKeys};
use pat_core::method::MethodName;
use pat_core::snapshot::{SnapshotBuilder, Stamp, StateOf, TokenSpec};
use pat_core::token::{Token, TokenHash};
use pat_plugin::config::Config;
use pat_plugin::edge::{Clock, Edge};
use pat_plugin::header_map::HeaderMap;
use pat_plugin::request::{Action, Event, Level, Request, RequestHost};
use pat_plugin::shared::{SharedStore, StoreError, ensure_pointer};
use pat_plugin::usage::UsageLog;

const START: u64 = 1_795_780_800;
const TOKENS: u64 = 1_000_000;

#[derive(Default)]
struct Store(RefCell<HashMap<String, (Vec<u8>, u32)>>);

impl SharedStore for Store {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        Ok(self.0.borrow().get(key).cloned())
    }

    fn set(&self, key: &str, value: &[u8], _cas: u32) -> Result<(), StoreError> {
        let mut map = self.0.borrow_mut();
        let cas = map.get(key).map_or(1, |(_, c)| c + 1);
        map.insert(key.to_string(), (value.to_vec(), cas));
        Ok(())
    }
}

struct Vm {
    store: Store,
    edge: RefCell<Edge>,
    usage: RefCell<UsageLog>,
}

/// One request's host: its headers (serialized once, as Envoy hands them to the filter: one
/// allocation in the VM per request), its body, and what the filter did.
struct Host<'a> {
    vm: &'a Vm,
    headers: &'a HeaderMap,
    body: &'a [u8],
    replies: Cell<u32>,
    allowed: Cell<u32>,
}

/// The headers of a request as Envoy passes them to the filter (a typical client's).
fn headers(method: &str, path: &str, extra: &[(&str, &str)]) -> HeaderMap {
    let mut headers = vec![
        (":authority", "api.paas.example.com"),
        (":path", path),
        (":method", method),
        (":scheme", "http"),
        ("user-agent", "python-requests/2.32.3"),
        ("accept-encoding", "gzip, deflate"),
        ("accept", "*/*"),
        ("x-forwarded-proto", "http"),
        ("x-request-id", "6d1c3f0e-7a5b-4c2d-9e8f-0a1b2c3d4e5f"),
    ];
    headers.extend_from_slice(extra);
    HeaderMap::serialize(headers.iter().map(|(k, v)| (*k, v.as_bytes())))
}

impl RequestHost for Host<'_> {
    type Store = Store;

    fn request_headers(&self) -> Option<HeaderMap> {
        Some(self.headers.clone())
    }

    fn add_header(&self, name: &str, value: &[u8]) {
        if name.starts_with("x-pat") {
            self.allowed.set(self.allowed.get() + 1);
        }
        black_box(value);
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

    fn replace_body_prefix(&self, _len: usize, _value: &[u8]) {}

    fn drain_body(&self, _len: usize) {}

    fn property(&self, _path: &[&str]) -> Option<Vec<u8>> {
        Some(b"192.0.2.7:50123".to_vec())
    }

    fn send_json(&self, _status: u32, body: &str, _extra_headers: &[(&str, &str)]) {
        black_box(body);
        self.replies.set(self.replies.get() + 1);
    }

    fn clock_secs(&self, _tick_clock_is_fresh: bool) -> u64 {
        START + 60
    }

    fn now_millis(&self) -> u64 {
        (START + 60) * 1000
    }

    fn now_micros(&self) -> u64 {
        (START + 60) * 1_000_000
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

    fn store(&self) -> &Store {
        &self.vm.store
    }

    fn edge<R>(&self, f: impl FnOnce(&Edge) -> R) -> R {
        f(&self.vm.edge.borrow())
    }

    fn edge_mut<R>(&self, f: impl FnOnce(&mut Edge) -> R) -> R {
        f(&mut self.vm.edge.borrow_mut())
    }

    fn usage<R>(&self, f: impl FnOnce(&mut UsageLog) -> R) -> R {
        f(&mut self.vm.usage.borrow_mut())
    }

    fn vm_active(&self) -> bool {
        true
    }

    fn vm_number(&self) -> u64 {
        1
    }

    fn refresh(&self) {}
}

/// A kind of request to time.
struct Kind {
    label: &'static str,
    method: &'static str,
    path: String,
    extra: &'static [(&'static str, &'static str)],
}

fn main() {
    let requests: u32 = std::env::var("PAT_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let key = SigningKey::generate().expect("rng");
    let keys = TrustedKeys::new([key.public_key()]);
    let token = Token::generate().expect("rng");
    let stopenv = [MethodName::parse("environment.Control.StopEnv").expect("method")];
    let mut builder = SnapshotBuilder::new();
    builder
        .add(TokenSpec {
            hash: token.hash(),
            id: 1,
            user: "alice@example.com",
            expires_at: None,
            scope: &stopenv,
            networks: &[],
        })
        .expect("token");
    for id in 2..=TOKENS {
        builder
            .add(TokenSpec {
                hash: TokenHash(*blake3::hash(&id.to_le_bytes()).as_bytes()),
                id,
                user: "bob@example.com",
                expires_at: None,
                scope: &stopenv,
                networks: &[],
            })
            .expect("token");
    }
    let bytes = builder
        .build(Stamp::lasting(1, START, 7 * 86_400), StateOf::Genesis, &key)
        .expect("build")
        .bytes;
    let vm = Vm {
        store: Store::default(),
        edge: RefCell::new(Edge::default()),
        usage: RefCell::new(UsageLog::default()),
    };
    ensure_pointer(&vm.store).expect("store");
    let clock = Clock {
        now_ms: (START + 60) * 1000,
        max_age_ms: 86_400_000,
    };
    vm.edge
        .borrow_mut()
        .accept(&vm.store, &keys, bytes, clock, true)
        .expect("accepted");
    let config = Config::parse(b"{}", |name| {
        (name == "PAT_PUBLIC_KEYS").then(|| key.public_key().to_string())
    })
    .expect("configuration");
    let value = token.expose();
    let unknown = Token::generate().expect("rng");
    let stopenv = "/1.0/environment/control/rest/stopenv";
    let get = |label, path: String| Kind {
        label,
        method: "GET",
        path,
        extra: &[],
    };
    let kinds = [
        get(
            "allowed GET",
            format!("{stopenv}?envName=my-project&session={value}"),
        ),
        get(
            "denied GET: unknown token",
            format!("{stopenv}?envName=my-project&session={}", unknown.expose()),
        ),
        get(
            "denied GET: wrong scope",
            format!("/1.0/environment/control/rest/deleteenv?envName=my-project&session={value}"),
        ),
        get(
            "passed through GET: no token",
            format!("{stopenv}?envName=my-project"),
        ),
        Kind {
            label: "allowed POST form",
            method: "POST",
            path: stopenv.to_string(),
            extra: &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("content-length", "71"),
            ],
        },
    ];
    println!("| request (1,000,000 tokens) | ns/request |");
    println!("| --- | ---: |");
    let form = format!("envName=my-project&session={value}");
    let only = std::env::var("PAT_BENCH_KIND").unwrap_or_default();
    for Kind {
        label,
        method,
        path,
        extra,
    } in kinds.iter().filter(|k| k.label.starts_with(&only))
    {
        let map = headers(method, path, extra);
        let started = Instant::now();
        let mut outcome = (0, 0);
        for i in 0..requests {
            let host = Host {
                vm: &vm,
                headers: &map,
                body: form.as_bytes(),
                replies: Cell::new(0),
                allowed: Cell::new(0),
            };
            one_request(&host, &config, i, *method == "GET");
            outcome = (host.allowed.get(), host.replies.get());
        }
        let ns = started.elapsed().as_nanos() as f64 / f64::from(requests);
        println!("| {label} | {ns:.0} |");
        eprintln!(
            "  {label}: identity headers {}, replies {}",
            outcome.0, outcome.1
        );
    }
}

/// One request's callbacks, as the filter's glue makes them (kept out of line: a profile
/// collects exactly this).
#[inline(never)]
fn one_request(host: &Host, config: &Config, context_id: u32, end_of_stream: bool) {
    let mut request = Request::new(context_id);
    if request.on_headers(host, config, end_of_stream) == Action::Pause {
        request.on_body(host, config, host.body.len(), true);
    }
    request.on_done(host);
}
