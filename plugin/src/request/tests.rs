//! The request machine driven natively by a recording fake host. The fake buffers the body
//! as Envoy does: a body callback that pauses keeps its bytes buffered for the next one, one
//! that continues releases them (they are "forwarded"), and a local reply ends the stream.

use std::cell::{Cell, RefCell};

use pat_core::keys::{SigningKey, TrustedKeys};
use pat_core::method::MethodName;
use pat_core::net::Network;
use pat_core::snapshot::{SnapshotBuilder, Stamp, StateOf, TokenSpec};
use pat_core::token::Token;

use super::{Action, Event, Level, Request, RequestHost};
use crate::config::Config;
use crate::decide::Reason;
use crate::edge::{Clock, Edge, PUSH_HEAD_LEN};
use crate::header_map::HeaderMap;
use crate::push_lease::LEASE_KEY;
use crate::shared::ensure_pointer;
use crate::shared::tests::MemoryStore;
use crate::usage::UsageLog;

/// Snapshots are issued here (Unix seconds); the VM's clock reads a minute later.
const START: u64 = 1_795_780_800;
const STOPENV: &str = "/1.0/environment/control/rest/stopenv";
const UPLOAD: &str = "/1.0/storage/uploader/rest/upload";
const CONTROL: &str = "/_pat/snapshot";
const FORM: &str = "application/x-www-form-urlencoded";
const BOUNDARY: &str = "----pat-edge-unit";

/// One VM: its shared data, snapshot, usage log, clock, and what it logged and counted.
struct Vm {
    key: SigningKey,
    keys: TrustedKeys,
    store: MemoryStore,
    edge: RefCell<Edge>,
    usage: RefCell<UsageLog>,
    now_ms: Cell<u64>,
    active: bool,
    events: RefCell<Vec<Event>>,
    logs: RefCell<Vec<(Level, String)>>,
    refreshes: Cell<usize>,
}

impl Vm {
    fn new() -> Self {
        let key = SigningKey::generate().expect("rng");
        let keys = TrustedKeys::new([key.public_key()]);
        let store = MemoryStore::default();
        ensure_pointer(&store).expect("store");
        Self {
            key,
            keys,
            store,
            edge: RefCell::new(Edge::default()),
            usage: RefCell::new(UsageLog::default()),
            now_ms: Cell::new((START + 60) * 1000),
            active: true,
            events: RefCell::new(Vec::new()),
            logs: RefCell::new(Vec::new()),
            refreshes: Cell::new(0),
        }
    }

    /// A configuration with these extra JSON fields, trusting the VM's key.
    fn config(&self, fields: &str) -> Config {
        let edge_key = SigningKey::generate().expect("rng");
        Config::parse(format!("{{{fields}}}").as_bytes(), |name| match name {
            "PAT_PUBLIC_KEYS" => Some(self.key.public_key().to_string()),
            "PAT_EDGE_KEY" => Some(edge_key.to_secret_text().to_string()),
            _ => None,
        })
        .expect("a valid configuration")
    }

    /// A full snapshot of `tokens` at `version`, signed by the VM's key.
    fn snapshot(&self, version: u64, tokens: &[&Minted]) -> Vec<u8> {
        let mut builder = SnapshotBuilder::new();
        for t in tokens {
            builder
                .add(TokenSpec {
                    hash: t.token.hash(),
                    id: t.id,
                    user: "alice",
                    expires_at: None,
                    scope: &t.scope,
                    networks: &t.networks,
                })
                .expect("valid token");
        }
        builder
            .build(
                Stamp::lasting(version, START, 7 * 86_400),
                StateOf::Genesis,
                &self.key,
            )
            .expect("build")
            .bytes
    }

    /// Publishes a snapshot from another VM of this Envoy: this one holds nothing until it
    /// refreshes.
    fn publish_elsewhere(&self, bytes: Vec<u8>) {
        let clock = Clock {
            now_ms: self.now_ms.get(),
            max_age_ms: 86_400_000,
        };
        Edge::default()
            .accept(&self.store, &self.keys, bytes, clock, false)
            .expect("published");
    }

    fn events(&self) -> Vec<Event> {
        self.events.borrow().clone()
    }

    fn take_events(&self) -> Vec<Event> {
        std::mem::take(&mut self.events.borrow_mut())
    }

    fn logged(&self, level: Level, part: &str) -> bool {
        self.logs
            .borrow()
            .iter()
            .any(|(l, m)| *l == level && m.contains(part))
    }
}

/// A token the snapshot holds.
struct Minted {
    token: Token,
    id: u64,
    scope: Vec<MethodName>,
    networks: Vec<Network>,
}

impl Minted {
    fn new(id: u64, scope: &str) -> Self {
        Self {
            token: Token::generate().expect("rng"),
            id,
            scope: vec![MethodName::parse(scope).expect("method")],
            networks: Vec::new(),
        }
    }

    fn limited_to(mut self, network: &str) -> Self {
        self.networks = vec![network.parse().expect("network")];
        self
    }

    fn value(&self) -> &str {
        self.token.expose()
    }
}

/// How a fake host fails to give the request's headers.
#[derive(Debug, Clone, Copy)]
enum Unreadable {
    /// The call fails.
    Refused,
    /// The map it returns does not add up.
    Truncated,
}

/// A local reply.
#[derive(Debug, Clone)]
struct Reply {
    status: u32,
    body: serde_json::Value,
    headers: Vec<(String, String)>,
}

/// One request's host: its headers and Envoy's body buffer, over a [`Vm`].
struct Fake<'a> {
    vm: &'a Vm,
    headers: RefCell<Vec<(String, Vec<u8>)>>,
    body: RefCell<Vec<u8>>,
    source: &'static str,
    destination: &'static str,
    property_reads: Cell<usize>,
    /// Calls for the header map, and whether it fails.
    header_reads: Cell<usize>,
    unreadable_headers: Option<Unreadable>,
    /// Header removals and additions, by name.
    removed: RefCell<Vec<String>>,
    added: RefCell<Vec<String>>,
    replies: RefCell<Vec<Reply>>,
}

impl<'a> Fake<'a> {
    fn new(vm: &'a Vm, method: &str, path: &str, headers: &[(&str, &str)]) -> Self {
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

    fn get(vm: &'a Vm, path: &str) -> Self {
        Self::new(vm, "GET", path, &[])
    }

    fn header(&self, name: &str) -> Option<Vec<u8>> {
        self.headers
            .borrow()
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    fn header_text(&self, name: &str) -> Option<String> {
        self.header(name)
            .map(|v| String::from_utf8(v).expect("utf-8"))
    }

    fn header_count(&self, name: &str) -> usize {
        self.headers
            .borrow()
            .iter()
            .filter(|(k, _)| k == name)
            .count()
    }

    fn reply(&self) -> Option<Reply> {
        self.replies.borrow().last().cloned()
    }

    /// Runs the request with its body in `chunks` and the stream's end (`on_done`).
    fn run(&self, request: &mut Request, config: &Config, chunks: &[&[u8]]) -> Run {
        let run = self.deliver(request, config, chunks, true);
        request.on_done(self);
        run
    }

    /// Delivers the headers and `chunks` (the last one ends the body when `ends`).
    fn deliver(&self, request: &mut Request, config: &Config, chunks: &[&[u8]], ends: bool) -> Run {
        let mut run = Run {
            headers: Some(request.on_headers(self, config, chunks.is_empty() && ends)),
            ..Run::default()
        };
        self.body_chunks(request, config, chunks, ends, &mut run);
        run
    }

    /// Delivers more body chunks to a request whose headers were delivered.
    fn body_chunks(
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

/// What a request's callbacks returned, and the body bytes released to the platform.
#[derive(Debug, Default)]
struct Run {
    headers: Option<Action>,
    body: Vec<Action>,
    forwarded: Vec<u8>,
}

impl RequestHost for Fake<'_> {
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
        self.vm.active
    }

    fn vm_number(&self) -> u64 {
        3
    }

    fn refresh(&self) {
        self.vm.refreshes.set(self.vm.refreshes.get() + 1);
        let _ =
            self.vm
                .edge
                .borrow_mut()
                .refresh(&self.vm.store, &self.vm.keys, self.vm.now_ms.get());
    }
}

fn with_session(path: &str, session: &str) -> String {
    format!("{path}?envName=x&session={session}")
}

/// A multipart body: `fields`, then a file part, then `late` fields.
fn multipart(fields: &[(&str, &str)], file: &[u8], late: &[(&str, &str)]) -> Vec<u8> {
    let field = |body: &mut Vec<u8>, (name, value): &(&str, &str)| {
        body.extend(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .bytes(),
        );
    };
    let mut body = Vec::new();
    for f in fields {
        field(&mut body, f);
    }
    body.extend(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"app.war\"\r\n\r\n"
        )
        .bytes(),
    );
    body.extend_from_slice(file);
    body.extend(b"\r\n");
    for f in late {
        field(&mut body, f);
    }
    body.extend(format!("--{BOUNDARY}--\r\n").bytes());
    body
}

fn multipart_type() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

// ---------------------------------------------------------------------------------------
// GET: allowed, denied, passed through.

#[test]
fn an_allowed_get_carries_the_identity_and_nothing_the_client_claimed() {
    let vm = Vm::new();
    let config = vm.config("");
    let t = Minted::new(5, "environment.Control.StopEnv");
    vm.publish_elsewhere(vm.snapshot(1, &[&t]));
    let path = with_session(STOPENV, t.value());
    let host = Fake::new(
        &vm,
        "GET",
        &path,
        &[("x-pat-user", "mallory"), ("x-pat-token-id", "1")],
    );
    let run = host.run(&mut Request::new(1), &config, &[]);
    assert_eq!(run.headers, Some(Action::Continue));
    assert_eq!(host.header_text("x-pat-user").as_deref(), Some("alice"));
    assert_eq!(host.header_text("x-pat-token-id").as_deref(), Some("5"));
    assert_eq!(host.header_count("x-pat-user"), 1);
    assert_eq!(host.header_count("x-pat-token-id"), 1);
    // Without strip_token the query is forwarded as sent.
    assert_eq!(host.header_text(":path"), Some(path));
    assert!(host.reply().is_none());
    assert_eq!(vm.events(), [Event::Allowed]);
    // The first token request loaded the snapshot; the address was never read.
    assert_eq!(vm.refreshes.get(), 1);
    assert_eq!(host.property_reads.get(), 0);

    // The next one serves from what this VM holds.
    let host = Fake::get(&vm, &with_session(STOPENV, t.value()));
    host.run(&mut Request::new(2), &config, &[]);
    assert_eq!(vm.refreshes.get(), 1);
    assert_eq!(vm.events(), [Event::Allowed, Event::Allowed]);
}

#[test]
fn the_headers_are_read_once_and_only_claimed_identity_is_removed() {
    let vm = Vm::new();
    let config = vm.config("");
    let t = Minted::new(5, "environment.Control.StopEnv");
    vm.publish_elsewhere(vm.snapshot(1, &[&t]));
    let path = with_session(STOPENV, t.value());
    // No identity claimed: one read of the map, no removal.
    let host = Fake::get(&vm, &path);
    host.run(&mut Request::new(1), &config, &[]);
    assert_eq!(host.header_reads.get(), 1);
    assert!(host.removed.borrow().is_empty(), "{:?}", host.removed);
    // Both claimed, one of them twice: each name removed once, every value gone.
    let host = Fake::new(
        &vm,
        "GET",
        &path,
        &[
            ("x-pat-token-id", "1"),
            ("x-pat-user", "mallory"),
            ("x-pat-token-id", "2"),
        ],
    );
    host.run(&mut Request::new(2), &config, &[]);
    assert_eq!(host.header_reads.get(), 1);
    assert_eq!(*host.removed.borrow(), ["x-pat-token-id", "x-pat-user"]);
    assert_eq!(host.header_text("x-pat-token-id").as_deref(), Some("5"));
    assert_eq!(host.header_count("x-pat-token-id"), 1);
    // Configured names are looked for, and the documented ones still.
    let config = vm.config(r#""identity_headers":{"token_id":"x-id","user":"x-who"}"#);
    let host = Fake::new(
        &vm,
        "GET",
        &path,
        &[("x-who", "mallory"), ("x-pat-user", "a")],
    );
    host.run(&mut Request::new(3), &config, &[]);
    assert_eq!(*host.removed.borrow(), ["x-who", "x-pat-user"]);
    assert_eq!(host.header_text("x-who").as_deref(), Some("alice"));
    assert_eq!(host.header_count("x-pat-user"), 0);
}

#[test]
fn one_combined_identity_header_when_configured() {
    let vm = Vm::new();
    let config = vm.config(r#""identity_headers":{"combined":"x-pat-identity"}"#);
    let t = Minted::new(5, "environment.Control.StopEnv");
    vm.publish_elsewhere(vm.snapshot(1, &[&t]));
    let path = with_session(STOPENV, t.value());
    let host = Fake::new(
        &vm,
        "GET",
        &path,
        &[
            ("x-pat-identity", "id=1, user=\"mallory\""),
            ("x-pat-user", "mallory"),
        ],
    );
    let run = host.run(&mut Request::new(1), &config, &[]);
    assert_eq!(run.headers, Some(Action::Continue));
    assert_eq!(
        host.header_text("x-pat-identity").as_deref(),
        Some(r#"id=5, user="alice""#)
    );
    assert_eq!(host.header_count("x-pat-identity"), 1);
    // The two-header form is neither added nor let through from the client.
    assert_eq!(host.header_count("x-pat-user"), 0);
    assert_eq!(host.header_count("x-pat-token-id"), 0);
    // A passed-through request loses a claimed combined header too.
    let host = Fake::new(&vm, "GET", STOPENV, &[("x-pat-identity", "id=1")]);
    host.run(&mut Request::new(2), &config, &[]);
    assert!(host.reply().is_none());
    assert_eq!(host.header_count("x-pat-identity"), 0);
    assert_eq!(vm.events(), [Event::Allowed, Event::PassedThrough]);
}

#[test]
fn every_identity_header_the_filter_can_set_is_removed_whatever_the_configuration() {
    let vm = Vm::new();
    let t = Minted::new(5, "environment.Control.StopEnv");
    vm.publish_elsewhere(vm.snapshot(1, &[&t]));
    let claimed = [
        ("x-pat-identity", "id=1, user=\"mallory\""),
        ("X-Pat-Token-Id", "1"),
        ("x-pat-user", "mallory"),
        ("x-id", "1"),
        ("x-who", "mallory"),
        ("x-both", "id=1"),
    ];
    let all = [
        "x-pat-identity",
        "x-pat-token-id",
        "x-pat-user",
        "x-id",
        "x-who",
        "x-both",
    ];
    // The configuration; the headers an allowed request gets; the client's it keeps (names
    // the filter never sets with it).
    for (fields, added, kept) in [
        // The default: the combined header is off, and a client's still goes.
        (
            "",
            &["x-pat-token-id", "x-pat-user"][..],
            &["x-id", "x-who", "x-both"][..],
        ),
        (
            r#""identity_headers":{"combined":"x-pat-identity"}"#,
            &["x-pat-identity"],
            &["x-id", "x-who", "x-both"],
        ),
        // Other names configured: the documented names of both forms go too.
        (
            r#""identity_headers":{"token_id":"x-id","user":"x-who"}"#,
            &["x-id", "x-who"],
            &["x-both"],
        ),
        (
            r#""identity_headers":{"token_id":"x-id","user":"x-who","combined":"x-both"}"#,
            &["x-both"],
            &[],
        ),
    ] {
        let config = vm.config(fields);
        for path in [with_session(STOPENV, t.value()), STOPENV.to_string()] {
            let host = Fake::new(&vm, "GET", &path, &claimed);
            host.run(&mut Request::new(1), &config, &[]);
            assert!(host.reply().is_none(), "{fields}: {path}");
            let allowed = path.contains("session");
            for name in all {
                let expected =
                    usize::from(kept.contains(&name) || (allowed && added.contains(&name)));
                assert_eq!(
                    host.headers
                        .borrow()
                        .iter()
                        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                        .count(),
                    expected,
                    "{fields}: {path}: {name}"
                );
            }
            // Each claimed name removed once; one read of the map.
            assert_eq!(
                host.removed.borrow().len(),
                all.len() - kept.len(),
                "{fields}"
            );
            assert_eq!(host.header_reads.get(), 1);
        }
    }
    // Nothing claimed: no removal at all.
    let config = vm.config(r#""identity_headers":{"token_id":"x-id","user":"x-who"}"#);
    let host = Fake::get(&vm, &with_session(STOPENV, t.value()));
    host.run(&mut Request::new(2), &config, &[]);
    assert!(host.removed.borrow().is_empty(), "{:?}", host.removed);
}

#[test]
fn identity_is_found_whatever_its_case_and_two_content_types_are_refused() {
    let vm = Vm::new();
    let config = vm.config("");
    let t = Minted::new(5, "environment.Control.StopEnv");
    vm.publish_elsewhere(vm.snapshot(1, &[&t]));
    let host = Fake::new(&vm, "GET", STOPENV, &[("X-Pat-User", "mallory")]);
    host.run(&mut Request::new(1), &config, &[]);
    assert!(host.reply().is_none(), "passed through");
    assert_eq!(*host.removed.borrow(), ["x-pat-user"]);
    assert_eq!(host.header_count("X-Pat-User"), 0);

    // Which content type would the platform read? Neither is guessed.
    let body = format!("envName=x&session={}", t.value());
    let host = Fake::new(
        &vm,
        "POST",
        STOPENV,
        &[("content-type", "application/json"), ("content-type", FORM)],
    );
    let run = host.run(&mut Request::new(2), &config, &[body.as_bytes()]);
    assert_eq!(run.headers, Some(Action::Pause));
    let reply = host.reply().expect("a denial");
    assert!(
        reply.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("more than one content-type")),
        "{:?}",
        reply.body
    );
    assert!(run.forwarded.is_empty());
    assert_eq!(
        vm.events(),
        [Event::PassedThrough, Event::Denied(Reason::UnparseableBody)]
    );
}

#[test]
fn a_request_whose_headers_cannot_be_read_is_refused() {
    let vm = Vm::new();
    let config = vm.config("");
    let t = Minted::new(5, "environment.Control.StopEnv");
    vm.publish_elsewhere(vm.snapshot(1, &[&t]));
    let paths = [with_session(STOPENV, t.value()), STOPENV.to_string()];
    let cases = [Unreadable::Refused, Unreadable::Truncated];
    for (path, how) in paths.iter().flat_map(|p| cases.map(|c| (p, c))) {
        // The forged identity header comes last: a truncated map never shows it.
        let mut host = Fake::new(&vm, "GET", path, &[("x-pat-user", "mallory")]);
        host.unreadable_headers = Some(how);
        let run = host.run(&mut Request::new(1), &config, &[]);
        assert_eq!(run.headers, Some(Action::Pause), "{path} {how:?}");
        let reply = host.reply().expect("a denial");
        assert!(
            reply.body["error"]
                .as_str()
                .is_some_and(|e| e.contains("headers could not be read")),
            "{:?}",
            reply.body
        );
        assert!(
            host.added.borrow().is_empty(),
            "nothing forwarded, no identity added"
        );
    }
    assert_eq!(vm.events(), [Event::Denied(Reason::UnparseableBody); 4]);
}

#[test]
fn a_denied_get_is_answered_in_the_platforms_shape() {
    let vm = Vm::new();
    let config = vm.config("");
    let t = Minted::new(5, "environment.Control.StopEnv");
    let unknown = Token::generate().expect("rng");
    vm.publish_elsewhere(vm.snapshot(1, &[&t]));
    let host = Fake::new(
        &vm,
        "GET",
        &with_session(STOPENV, unknown.expose()),
        &[("x-pat-user", "mallory")],
    );
    let run = host.run(&mut Request::new(1), &config, &[]);
    assert_eq!(run.headers, Some(Action::Pause));
    let reply = host.reply().expect("a denial");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["result"], 701);
    assert_eq!(reply.body["source"], "JEL");
    let error = reply.body["error"].as_str().expect("error text");
    assert!(!error.contains(unknown.expose()), "{error}");
    assert_eq!(vm.events(), [Event::Denied(Reason::UnknownToken)]);
    assert!(vm.logged(Level::Debug, "denied (unknown_token)"));
    // The client's identity header is gone all the same, and none was added.
    assert_eq!(host.header_count("x-pat-user"), 0);
    assert_eq!(host.header_count("x-pat-token-id"), 0);

    // Out of scope: forbidden.
    let host = Fake::get(
        &vm,
        &with_session("/1.0/environment/control/rest/startenv", t.value()),
    );
    host.run(&mut Request::new(2), &config, &[]);
    assert_eq!(host.reply().expect("a denial").body["result"], 702);
    assert_eq!(vm.take_events()[1], Event::Denied(Reason::OutOfScope));
}

#[test]
fn without_a_snapshot_token_requests_fail_closed() {
    let vm = Vm::new();
    let config = vm.config("");
    let t = Minted::new(5, "environment.Control.StopEnv");
    let host = Fake::get(&vm, &with_session(STOPENV, t.value()));
    host.run(&mut Request::new(1), &config, &[]);
    assert_eq!(vm.refreshes.get(), 1, "it tried to load one first");
    assert_eq!(host.reply().expect("a denial").body["result"], 701);
    assert_eq!(vm.events(), [Event::Denied(Reason::NoSnapshot)]);
}

#[test]
fn requests_without_tokens_pass_through_untouched() {
    let vm = Vm::new();
    let config = vm.config("");
    for path in [
        STOPENV.to_string(),
        with_session(STOPENV, "an-ordinary-login-session"),
    ] {
        let host = Fake::new(&vm, "GET", &path, &[("x-pat-user", "mallory")]);
        let run = host.run(&mut Request::new(1), &config, &[]);
        assert_eq!(run.headers, Some(Action::Continue), "{path}");
        assert!(host.reply().is_none());
        assert_eq!(host.header_text(":path"), Some(path));
        assert_eq!(host.header_count("x-pat-user"), 0, "identity stripped");
    }
    assert_eq!(vm.events(), [Event::PassedThrough, Event::PassedThrough]);
    assert_eq!(vm.refreshes.get(), 0, "no token, no snapshot needed");

    let strict = vm.config(r#""missing_session":"deny","ordinary_sessions":"deny""#);
    let host = Fake::get(&vm, STOPENV);
    host.run(&mut Request::new(2), &strict, &[]);
    assert_eq!(host.reply().expect("a denial").body["result"], 701);
    assert_eq!(
        vm.take_events().last(),
        Some(&Event::Denied(Reason::MissingSession))
    );
}

#[test]
fn stray_tokens_in_the_path_or_query_are_refused_before_any_body() {
    let vm = Vm::new();
    let config = vm.config("");
    let t = Minted::new(5, "environment.Control.StopEnv");
    let host = Fake::new(
        &vm,
        "POST",
        &format!("{STOPENV}?Session={}", t.value()),
        &[("content-type", FORM)],
    );
    let run = host.run(&mut Request::new(1), &config, &[b"envName=x"]);
    assert_eq!(run.headers, Some(Action::Pause));
    assert!(run.body.is_empty(), "answered on the headers");
    assert_eq!(host.reply().expect("a denial").body["result"], 703);
    assert_eq!(vm.events(), [Event::Denied(Reason::StrayToken)]);
}

#[test]
fn session_in_another_case_beside_a_token_is_refused_in_the_query() {
    let vm = Vm::new();
    let config = vm.config(r#""strip_token":true"#);
    let t = Minted::new(5, "environment.Control.StopEnv");
    vm.publish_elsewhere(vm.snapshot(1, &[&t]));
    let t = t.value();
    for path in [
        format!("{STOPENV}?session={t}&Session=x"),
        format!("{STOPENV}?SESSION=x&envName=e&session={t}"),
        format!("{STOPENV}?session={t}&sess%49on=legacy"),
        format!("{STOPENV}?session={t}&Session="),
    ] {
        let host = Fake::get(&vm, &path);
        let run = host.run(&mut Request::new(1), &config, &[]);
        assert_eq!(run.headers, Some(Action::Pause), "{path}");
        let reply = host.reply().expect("a denial");
        assert_eq!(reply.body["result"], 703, "{path}");
        assert_eq!(
            vm.take_events(),
            [Event::Denied(Reason::ConflictingSessions)],
            "{path}"
        );
        assert_eq!(host.header_count("x-pat-user"), 0);
    }
    // Without a token the request is the platform's, untouched.
    for path in [
        format!("{STOPENV}?session=legacy&Session=x"),
        format!("{STOPENV}?Session=x"),
        format!("{STOPENV}?SESSION=x&session=legacy"),
    ] {
        let host = Fake::get(&vm, &path);
        let run = host.run(&mut Request::new(1), &config, &[]);
        assert_eq!(run.headers, Some(Action::Continue), "{path}");
        assert!(host.reply().is_none(), "{path}");
        assert_eq!(host.header_text(":path"), Some(path.clone()));
        assert_eq!(vm.take_events(), [Event::PassedThrough], "{path}");
    }
}

#[test]
fn session_in_another_case_beside_a_token_is_refused_in_bodies() {
    let vm = Vm::new();
    let config = vm.config(r#""strip_token":true"#);
    let up = Minted::new(6, "storage.Uploader.Upload");
    let stop = Minted::new(5, "environment.Control.StopEnv");
    vm.publish_elsewhere(vm.snapshot(1, &[&up, &stop]));
    let (u, s) = (up.value(), stop.value());
    let refused = |host: &Fake, run: &Run, what: &str| {
        assert_eq!(
            host.reply().expect("a denial").body["result"],
            703,
            "{what}"
        );
        assert_eq!(
            vm.take_events().last(),
            Some(&Event::Denied(Reason::ConflictingSessions)),
            "{what}"
        );
        let forwarded = String::from_utf8_lossy(&run.forwarded);
        assert!(!forwarded.contains("=\"Session\""), "{what}: {forwarded}");
        assert!(!forwarded.contains("SESSION"), "{what}: {forwarded}");
    };

    // Form bodies: in the body beside a token, or merged with the query.
    for (query, body) in [
        (String::new(), format!("session={s}&SESSION=x")),
        (format!("?session={s}"), "envName=e&SESSION=x".to_string()),
        ("?Session=x".to_string(), format!("session={s}")),
        (format!("?session={s}"), "sess%49on=legacy".to_string()),
    ] {
        let host = Fake::new(
            &vm,
            "POST",
            &format!("{STOPENV}{query}"),
            &[("content-type", FORM)],
        );
        let run = host.run(&mut Request::new(1), &config, &[body.as_bytes()]);
        refused(&host, &run, &format!("{query} {body}"));
        assert!(run.forwarded.is_empty());
        assert_eq!(host.header_count("x-pat-user"), 0);
    }

    // Multipart: before and after the file part, with the token in the head or the query.
    let file = vec![b'F'; 10_000];
    for (query, head, late) in [
        ("", vec![("session", u), ("Session", "x")], vec![]),
        ("", vec![("SESSION", ""), ("session", u)], vec![]),
        ("", vec![("session", u)], vec![("Session", "x")]),
        ("?session=", vec![("Session", "x")], vec![]),
        ("?session=", vec![], vec![("SESSION", "x")]),
        // The exact name after the file, beside the query's token: as ambiguous.
        ("?session=", vec![], vec![("session", "legacy")]),
    ] {
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("{query}{u}")
        };
        let body = multipart(&head, &file, &late);
        let host = Fake::new(
            &vm,
            "POST",
            &format!("{UPLOAD}{query}"),
            &[("content-type", &multipart_type())],
        );
        let chunks: Vec<&[u8]> = body.chunks(1000).collect();
        let run = host.run(&mut Request::new(1), &config, &chunks);
        refused(&host, &run, &format!("{query} {head:?} {late:?}"));
        assert!(run.forwarded.len() < body.len() - 100);
    }

    // Without a token: forwarded untouched.
    let body = b"session=legacy&Session=x";
    let host = Fake::new(&vm, "POST", STOPENV, &[("content-type", FORM)]);
    let run = host.run(&mut Request::new(1), &config, &[body]);
    assert_eq!(run.forwarded, body);
    let body = multipart(&[("Session", "x")], &file, &[("SESSION", "y")]);
    let host = Fake::new(&vm, "POST", UPLOAD, &[("content-type", &multipart_type())]);
    let run = host.run(&mut Request::new(1), &config, &[&body]);
    assert_eq!(run.forwarded, body);
    assert_eq!(
        vm.take_events(),
        [Event::PassedThrough, Event::PassedThrough]
    );
}

#[test]
fn the_client_address_is_read_only_for_address_limited_tokens() {
    let vm = Vm::new();
    let config = vm.config("");
    let open = Minted::new(5, "environment.Control.StopEnv");
    let limited = Minted::new(6, "environment.Control.StopEnv").limited_to("192.0.2.0/24");
    let elsewhere = Minted::new(7, "environment.Control.StopEnv").limited_to("10.0.0.0/8");
    vm.publish_elsewhere(vm.snapshot(1, &[&open, &limited, &elsewhere]));
    let reads = |t: &Minted| {
        let host = Fake::get(&vm, &with_session(STOPENV, t.value()));
        host.run(&mut Request::new(1), &config, &[]);
        host.property_reads.get()
    };
    assert_eq!(reads(&open), 0);
    assert_eq!(reads(&limited), 1);
    assert_eq!(reads(&elsewhere), 1);
    assert_eq!(
        vm.events(),
        [
            Event::Allowed,
            Event::Allowed,
            Event::Denied(Reason::AddressNotAllowed)
        ]
    );
}

#[test]
fn usage_is_recorded_with_the_address_once_per_window() {
    let vm = Vm::new();
    let config = vm.config(r#""usage":{}"#);
    assert!(config.usage.is_some());
    let t = Minted::new(5, "environment.Control.StopEnv");
    vm.publish_elsewhere(vm.snapshot(1, &[&t]));
    let mut reads = Vec::new();
    for i in 0..3 {
        let host = Fake::get(&vm, &with_session(STOPENV, t.value()));
        host.run(&mut Request::new(i), &config, &[]);
        reads.push(host.property_reads.get());
    }
    assert_eq!(reads, [1, 0, 0], "the address is read the first time only");
    let uses = vm
        .usage
        .borrow_mut()
        .take_due(u64::MAX, std::time::Duration::ZERO)
        .expect("a report is due");
    assert_eq!(uses.len(), 1);
    assert_eq!(uses[0].token_id, 5);
    assert_eq!(uses[0].address, "192.0.2.7".parse().ok());
}

// ---------------------------------------------------------------------------------------
// Bodies.

#[test]
fn a_form_body_is_read_across_chunks_with_the_headers_held() {
    let vm = Vm::new();
    let config = vm.config("");
    let t = Minted::new(5, "environment.Control.StopEnv");
    vm.publish_elsewhere(vm.snapshot(1, &[&t]));
    let body = format!("envName=my-project&session={}&x=1", t.value());
    let chunks: Vec<&[u8]> = body.as_bytes().chunks(7).collect();
    let host = Fake::new(&vm, "POST", STOPENV, &[("content-type", FORM)]);
    let run = host.run(&mut Request::new(1), &config, &chunks);
    assert_eq!(run.headers, Some(Action::Pause), "headers held");
    let (last, before) = run.body.split_last().expect("body callbacks");
    assert!(before.iter().all(|a| *a == Action::Pause), "{:?}", run.body);
    assert_eq!(*last, Action::Continue);
    assert_eq!(run.forwarded, body.as_bytes(), "forwarded intact");
    assert_eq!(host.header_text("x-pat-token-id").as_deref(), Some("5"));
    assert_eq!(vm.events(), [Event::Allowed]);
}

#[test]
fn the_token_is_stripped_from_the_query_and_a_form_body() {
    let vm = Vm::new();
    let config = vm.config(r#""strip_token":true"#);
    let t = Minted::new(5, "environment.Control.StopEnv");
    vm.publish_elsewhere(vm.snapshot(1, &[&t]));

    let host = Fake::get(&vm, &format!("{STOPENV}?session={}&envName=x", t.value()));
    host.run(&mut Request::new(1), &config, &[]);
    assert_eq!(
        host.header_text(":path"),
        Some(format!("{STOPENV}?envName=x"))
    );

    let body = format!("envName=x&session={}", t.value());
    let host = Fake::new(
        &vm,
        "POST",
        STOPENV,
        &[
            ("content-type", FORM),
            ("content-length", &body.len().to_string()),
        ],
    );
    let run = host.run(&mut Request::new(2), &config, &[body.as_bytes()]);
    assert_eq!(run.forwarded, b"envName=x");
    assert_eq!(host.header_text("content-length").as_deref(), Some("9"));
    assert_eq!(vm.events(), [Event::Allowed, Event::Allowed]);
}

#[test]
fn an_oversized_form_body_is_refused_when_it_passes_the_cap() {
    let vm = Vm::new();
    let config = vm.config(r#""max_body_bytes":1024"#);
    let chunk = [b'a'; 400];
    let host = Fake::new(&vm, "POST", STOPENV, &[("content-type", FORM)]);
    let run = host.run(
        &mut Request::new(1),
        &config,
        &[&chunk, &chunk, &chunk, &chunk],
    );
    assert_eq!(
        run.body,
        [Action::Pause, Action::Pause, Action::Pause],
        "refused on the third chunk (1200 bytes), the fourth never delivered"
    );
    assert_eq!(host.reply().expect("a denial").body["result"], 703);
    assert_eq!(vm.events(), [Event::Denied(Reason::BodyTooLarge)]);
    assert!(run.forwarded.is_empty());
}

#[test]
fn a_multipart_head_decides_and_the_tail_streams() {
    let vm = Vm::new();
    let config = vm.config(r#""strip_token":true"#);
    let t = Minted::new(6, "storage.Uploader.Upload");
    vm.publish_elsewhere(vm.snapshot(1, &[&t]));
    let file = vec![b'F'; 10_000];
    let body = multipart(
        &[("envName", "x"), ("session", t.value())],
        &file,
        &[("comment", "fine")],
    );
    let host = Fake::new(
        &vm,
        "POST",
        UPLOAD,
        &[
            ("content-type", &multipart_type()),
            ("content-length", &body.len().to_string()),
        ],
    );
    let chunks: Vec<&[u8]> = body.chunks(100).collect();
    let run = host.run(&mut Request::new(1), &config, &chunks);
    assert_eq!(run.headers, Some(Action::Pause));
    // Held until the file part's headers, then released chunk by chunk.
    let first_continue = run
        .body
        .iter()
        .position(|a| *a == Action::Continue)
        .expect("released");
    assert!(first_continue < 5, "{:?}", run.body);
    assert!(
        run.body[first_continue..]
            .iter()
            .all(|a| *a == Action::Continue)
    );
    assert_eq!(run.body.len(), chunks.len());
    // The session part is gone from what was forwarded, and content-length says so.
    let forwarded = String::from_utf8_lossy(&run.forwarded);
    assert!(!forwarded.contains(t.value()), "stripped");
    assert!(forwarded.contains("name=\"envName\"") && forwarded.contains("name=\"comment\""));
    assert_eq!(
        host.header_text("content-length"),
        Some(run.forwarded.len().to_string())
    );
    assert_eq!(host.header_text("x-pat-user").as_deref(), Some("alice"));
    assert_eq!(vm.events(), [Event::Allowed]);
}

#[test]
fn a_late_token_in_the_tail_ends_the_upload() {
    let vm = Vm::new();
    let config = vm.config("");
    let t = Minted::new(6, "storage.Uploader.Upload");
    let other = Minted::new(7, "storage.Uploader.Upload");
    vm.publish_elsewhere(vm.snapshot(1, &[&t, &other]));
    let file = vec![b'F'; 10_000];
    for (late, reason) in [
        (("session", other.value()), Reason::StrayToken),
        (("comment", other.value()), Reason::StrayToken),
        (("session", "legacy-login"), Reason::ConflictingSessions),
    ] {
        let body = multipart(&[("session", t.value())], &file, &[late]);
        let host = Fake::new(&vm, "POST", UPLOAD, &[("content-type", &multipart_type())]);
        let chunks: Vec<&[u8]> = body.chunks(1000).collect();
        let run = host.run(&mut Request::new(1), &config, &chunks);
        // The head went on; the chunk with the late part was refused, not forwarded.
        assert_eq!(run.body.first(), Some(&Action::Continue));
        assert_eq!(run.body.last(), Some(&Action::Pause));
        assert!(run.forwarded.len() < body.len() - 100);
        assert_eq!(host.reply().expect("a denial").body["result"], 703);
        assert_eq!(
            vm.take_events(),
            [Event::Allowed, Event::Denied(reason)],
            "{late:?}"
        );
        assert!(vm.logged(Level::Info, "after its head was forwarded"));
    }
}

#[test]
fn a_multipart_head_that_does_not_end_within_the_cap_is_too_large() {
    let vm = Vm::new();
    let config = vm.config(r#""max_body_bytes":1024"#);
    let field = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"big\"\r\n\r\n{}",
        "x".repeat(3000)
    );
    let host = Fake::new(&vm, "POST", UPLOAD, &[("content-type", &multipart_type())]);
    let chunks: Vec<&[u8]> = field.as_bytes().chunks(500).collect();
    let run = host.run(&mut Request::new(1), &config, &chunks);
    assert_eq!(
        run.body,
        [Action::Pause, Action::Pause, Action::Pause],
        "refused once 1024 bytes were read without a decision"
    );
    assert_eq!(vm.events(), [Event::Denied(Reason::BodyTooLarge)]);

    // A multipart content type without a boundary cannot be read at all.
    let host = Fake::new(
        &vm,
        "POST",
        UPLOAD,
        &[("content-type", "multipart/form-data")],
    );
    let run = host.run(&mut Request::new(2), &config, &[b"x"]);
    assert_eq!(run.headers, Some(Action::Pause));
    assert!(run.body.is_empty());
    assert_eq!(
        vm.take_events().last(),
        Some(&Event::Denied(Reason::UnparseableBody))
    );
}

#[test]
fn trailers_end_the_body() {
    let vm = Vm::new();
    let config = vm.config("");
    let t = Minted::new(5, "environment.Control.StopEnv");
    vm.publish_elsewhere(vm.snapshot(1, &[&t]));
    let body = format!("session={}", t.value());
    let host = Fake::new(&vm, "POST", STOPENV, &[("content-type", FORM)]);
    let mut request = Request::new(1);
    let mut run = host.deliver(&mut request, &config, &[], false);
    host.body_chunks(&mut request, &config, &[body.as_bytes()], false, &mut run);
    assert_eq!(run.body, [Action::Pause], "waiting for the end of the body");
    assert_eq!(request.on_trailers(&host, &config), Action::Continue);
    assert_eq!(vm.events(), [Event::Allowed]);
}

// ---------------------------------------------------------------------------------------
// The control endpoint.

fn control(vm: &Vm) -> Config {
    vm.config(&format!(
        r#""push":{{"path":"{CONTROL}","max_bytes":1048576}}"#
    ))
}

fn put<'a>(vm: &'a Vm, len: usize) -> Fake<'a> {
    Fake::new(vm, "PUT", CONTROL, &[("content-length", &len.to_string())])
}

#[test]
fn the_status_says_what_this_envoy_serves() {
    let vm = Vm::new();
    let config = control(&vm);
    let host = Fake::get(&vm, CONTROL);
    let run = host.run(&mut Request::new(1), &config, &[]);
    assert_eq!(run.headers, Some(Action::Pause));
    let reply = host.reply().expect("the status");
    assert_eq!((reply.status, &reply.body["loaded"]), (200, &false.into()));

    let t = Minted::new(5, "environment.Control.StopEnv");
    vm.publish_elsewhere(vm.snapshot(4, &[&t]));
    let host = Fake::new(&vm, "HEAD", CONTROL, &[]);
    host.run(&mut Request::new(2), &config, &[]);
    let body = host.reply().expect("the status").body;
    assert_eq!(body["loaded"], true);
    assert_eq!(body["version"], 4);
    assert_eq!(body["tokens"], 1);
    assert_eq!(body["key_id"], vm.key.public_key().id().to_string());
    assert!(body.get("floor").is_none(), "no origin, no floor");
    assert!(vm.events().is_empty());
}

#[test]
fn the_control_endpoint_refuses_what_it_does_not_serve() {
    let vm = Vm::new();
    let config = control(&vm);

    let mut public = Fake::get(&vm, CONTROL);
    public.destination = "203.0.113.9:10000";
    public.run(&mut Request::new(1), &config, &[]);
    assert_eq!(public.reply().expect("refused").status, 403);
    assert!(vm.logged(Level::Warn, "not on loopback"));

    let post = Fake::new(&vm, "POST", CONTROL, &[]);
    post.run(&mut Request::new(2), &config, &[b"x"]);
    let reply = post.reply().expect("refused");
    assert_eq!(reply.status, 405);
    assert_eq!(reply.headers, [("allow".into(), "GET, HEAD, PUT".into())]);

    let too_big = put(&vm, 2 * 1048576);
    let run = too_big.run(&mut Request::new(3), &config, &[b"x"]);
    assert!(run.body.is_empty(), "refused on its content-length");
    assert_eq!(too_big.reply().expect("refused").status, 413);

    let empty = Fake::new(&vm, "PUT", CONTROL, &[]);
    empty.run(&mut Request::new(4), &config, &[]);
    assert_eq!(empty.reply().expect("refused").status, 400);

    assert_eq!(
        vm.events(),
        [
            Event::Push { accepted: false },
            Event::Push { accepted: false }
        ]
    );
}

#[test]
fn a_push_in_chunks_is_checked_at_its_head_and_published() {
    let vm = Vm::new();
    let config = control(&vm);
    let t = Minted::new(5, "environment.Control.StopEnv");
    let bytes = vm.snapshot(2, &[&t]);
    let chunk = PUSH_HEAD_LEN.div_ceil(3);
    let chunks: Vec<&[u8]> = bytes.chunks(chunk).collect();
    assert!(chunks.len() > 3);
    let host = put(&vm, bytes.len());
    let mut request = Request::new(9);
    let mut run = host.deliver(&mut request, &config, &chunks[..2], false);
    assert_eq!(run.headers, Some(Action::Pause));
    assert!(host.body.borrow().is_empty(), "moved out of Envoy's buffer");
    assert!(
        vm.store.value(LEASE_KEY).is_none(),
        "the head is not complete"
    );
    // The third makes the head: it was checked and the lease taken by this request.
    host.body_chunks(&mut request, &config, &chunks[2..3], false, &mut run);
    assert_eq!(run.body, [Action::Pause; 3]);
    let lease = vm.store.value(LEASE_KEY).expect("a lease");
    assert_eq!(lease[..8], ((3u64 << 32) | 9).to_le_bytes());

    host.body_chunks(&mut request, &config, &chunks[3..], true, &mut run);
    assert_eq!(run.body.last(), Some(&Action::Pause), "answered here");
    let reply = host.reply().expect("accepted");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        (&reply.body["version"], &reply.body["tokens"]),
        (&2.into(), &1.into())
    );
    assert_eq!(
        vm.events(),
        [
            Event::Push { accepted: true },
            Event::Serving {
                version: 2,
                tokens: 1,
                apply_ms: 0
            }
        ]
    );
    assert!(vm.logged(Level::Info, "push accepted: full snapshot version 2"));
    // The lease is given back, and this (active) VM serves the new snapshot.
    assert_eq!(vm.store.value(LEASE_KEY), Some(Vec::new()), "released");
    assert_eq!(vm.edge.borrow().version(), Some(2));
    request.on_done(&host);
}

#[test]
fn a_forged_push_is_refused_at_its_head_before_the_rest_arrives() {
    let vm = Vm::new();
    let config = control(&vm);
    let other = Vm::new();
    let t = Minted::new(5, "environment.Control.StopEnv");
    let forged = other.snapshot(2, &[&t]);
    let chunks: Vec<&[u8]> = forged.chunks(PUSH_HEAD_LEN.div_ceil(2)).collect();
    let host = put(&vm, forged.len());
    let run = host.run(&mut Request::new(1), &config, &chunks);
    assert_eq!(run.body.len(), 2, "refused when the head was complete");
    assert_eq!(host.reply().expect("refused").status, 403);
    assert_eq!(vm.events(), [Event::Push { accepted: false }]);
    assert!(vm.logged(Level::Warn, "push rejected"));
    assert!(vm.store.value(LEASE_KEY).is_none(), "no lease taken");
}

#[test]
fn a_replayed_push_is_stale() {
    let vm = Vm::new();
    let config = control(&vm);
    let t = Minted::new(5, "environment.Control.StopEnv");
    let bytes = vm.snapshot(3, &[&t]);
    vm.publish_elsewhere(bytes.clone());
    let host = put(&vm, bytes.len());
    host.run(&mut Request::new(1), &config, &[&bytes]);
    let reply = host.reply().expect("refused");
    assert_eq!(reply.status, 409);
    assert_eq!(reply.body["current_version"], 3, "{}", reply.body);
}

#[test]
fn one_push_at_a_time_and_a_vanished_client_gives_the_lease_back() {
    let vm = Vm::new();
    let config = control(&vm);
    let t = Minted::new(5, "environment.Control.StopEnv");
    let first = vm.snapshot(2, &[&t]);
    let head = &first[..PUSH_HEAD_LEN];

    // A push that sent its head and then stalls holds the lease.
    let stalled = put(&vm, first.len());
    let mut stalled_request = Request::new(1);
    stalled.deliver(&mut stalled_request, &config, &[head], false);
    assert!(stalled.reply().is_none());

    let second = vm.snapshot(3, &[&t]);
    let busy = put(&vm, second.len());
    busy.run(&mut Request::new(2), &config, &[&second]);
    let reply = busy.reply().expect("refused");
    assert_eq!(reply.status, 503);
    assert_eq!(reply.headers, [("retry-after".into(), "1".into())]);

    // The stalled client goes away: on_done releases the lease, and a push goes through.
    stalled_request.on_done(&stalled);
    let retry = put(&vm, second.len());
    retry.run(&mut Request::new(3), &config, &[&second]);
    assert_eq!(retry.reply().expect("accepted").status, 200);
    assert_eq!(
        vm.events(),
        [
            Event::Push { accepted: false },
            Event::Push { accepted: true },
            Event::Serving {
                version: 3,
                tokens: 1,
                apply_ms: 0
            }
        ]
    );
}

#[test]
fn a_push_longer_than_its_signed_length_is_refused() {
    let vm = Vm::new();
    let config = control(&vm);
    let t = Minted::new(5, "environment.Control.StopEnv");
    let mut bytes = vm.snapshot(2, &[&t]);
    bytes.extend_from_slice(b"trailing garbage");
    let host = Fake::new(&vm, "PUT", CONTROL, &[]);
    host.run(&mut Request::new(1), &config, &[&bytes]);
    let reply = host.reply().expect("refused");
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(vm.events(), [Event::Push { accepted: false }]);
    // Nothing published.
    assert_eq!(
        crate::shared::read_pointer(&vm.store)
            .map(|(p, _)| p.version)
            .ok(),
        Some(0)
    );
}
