//! A fake edge that runs the filter's own control endpoint natively: every request to
//! `/_pat/snapshot` goes through the filter's request machine (`pat_plugin::request`) on its
//! test-support hosts, in a VM that serves nothing, as `envoy.yaml`'s control listener runs,
//! over in-memory shared data. So it verifies a document or a bundle, judges a chain by its
//! last document, applies deltas only to the exact state they name, and answers (`200`,
//! `409` with `current_version`, `403`, `400`, `503` with `retry-after`) exactly as the filter
//! does; without an origin configured, pushes are limited by freshness alone. It records
//! every push.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use pat_core::keys::TrustedKeys;
use pat_core::protocol::control;
use pat_core::snapshot::{HEADER_LEN, Header, Kind, TokenState, bundle};
use pat_plugin::config::Config;
use pat_plugin::replica::Replica;
use pat_plugin::request::Request;
use pat_plugin::shared::read_pointer;
use pat_plugin::test_support::{FakeRequest, Vm};

/// One push as the edge saw it.
#[derive(Debug, Clone)]
pub struct Push {
    /// A bundle (rather than one document)?
    pub bundle: bool,
    /// Its documents, `(version, kind)`, as their headers say (refused pushes too).
    pub documents: Vec<(u64, Kind)>,
    /// The status it answered.
    pub status: u16,
    /// The bytes received.
    pub raw: Vec<u8>,
}

/// The Envoy behind the fake: the control listener's VM and its shared data.
struct Inner {
    vm: Vm,
    config: Config,
    /// The next HTTP context id.
    next_context: u32,
    pushes: Vec<Push>,
}

impl Inner {
    /// A freshly started edge: nothing in shared data.
    fn started(keys: &TrustedKeys) -> Self {
        let vm = Vm::new();
        vm.active.set(false);
        let public_keys: Vec<String> = keys.iter().map(ToString::to_string).collect();
        let json = format!(r#"{{"push":{{"path":"{}"}}}}"#, control::PATH);
        let config = Config::parse(json.as_bytes(), |name| {
            (name == "PAT_PUBLIC_KEYS").then(|| public_keys.join(","))
        })
        .expect("the control listener's configuration");
        Self {
            vm,
            config,
            next_context: 1,
            pushes: Vec::new(),
        }
    }

    /// Runs one request through the filter's control endpoint: its status, body and extra
    /// headers.
    fn handle(
        &mut self,
        method: &Method,
        path: &str,
        body: &[u8],
    ) -> (u16, String, Vec<(String, String)>) {
        self.vm.now_ms.set(now_ms());
        let length = body.len().to_string();
        let headers: Vec<(&str, &str)> = if body.is_empty() {
            Vec::new()
        } else {
            vec![("content-length", length.as_str())]
        };
        let host = FakeRequest::new(&self.vm, method.as_str(), path, &headers);
        let mut request = Request::new(self.next_context);
        self.next_context += 1;
        // Envoy hands a large body over in chunks; the filter checks the signed head first.
        let chunks: Vec<&[u8]> = body.chunks(64 * 1024).collect();
        host.run(&mut request, &self.config, &chunks);
        match host.reply() {
            Some(reply) => (reply.status as u16, reply.text, reply.headers),
            // Not answered by the filter: Envoy would route it (nowhere, on the control path).
            None => (404, String::new(), Vec::new()),
        }
    }

    /// The version in shared data (what this Envoy serves; 0: none).
    fn version(&self) -> u64 {
        read_pointer(&self.vm.store).map_or(0, |(p, _)| p.version)
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The documents a push holds, by their signed headers (unverified: for the record).
fn documents(body: &[u8]) -> Vec<(u64, Kind)> {
    let docs: Vec<&[u8]> = if bundle::is_bundle(body) {
        bundle::decode(body).unwrap_or_default()
    } else {
        vec![body]
    };
    docs.iter()
        .filter_map(|d| d.get(..HEADER_LEN)?.try_into().ok())
        .filter_map(|h| Header::decode(h).ok())
        .map(|h| (h.version, h.kind))
        .collect()
}

/// The fake edge, listening on a free port.
pub struct FakeEdge {
    /// Where it listens.
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    keys: TrustedKeys,
    _runtime: tokio::runtime::Runtime,
}

async fn endpoint(State(inner): State<Arc<Mutex<Inner>>>, method: Method, body: Bytes) -> Response {
    let mut inner = inner.lock().expect("lock");
    let (status, text, extra) = inner.handle(&method, control::PATH, &body);
    if method == Method::PUT {
        inner.pushes.push(Push {
            bundle: bundle::is_bundle(&body),
            documents: documents(&body),
            status,
            raw: body.to_vec(),
        });
    }
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    for (name, value) in extra {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.insert(name, value);
        }
    }
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, headers, text).into_response()
}

impl FakeEdge {
    /// Starts an edge that trusts `key` (`ed25519:...`).
    pub fn start(key: &str) -> Self {
        Self::trusting(super::trusted(key))
    }

    /// Starts an edge that trusts `keys`.
    pub fn trusting(keys: TrustedKeys) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let inner = Arc::new(Mutex::new(Inner::started(&keys)));
        let app = Router::new()
            .route(control::PATH, any(endpoint))
            .with_state(inner.clone());
        let addr = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("addr");
            tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
            addr
        });
        Self {
            addr,
            inner,
            keys,
            _runtime: runtime,
        }
    }

    /// Its URL, as `edge add` and `--edge` take it.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The version it holds (0: none).
    pub fn version(&self) -> u64 {
        self.inner.lock().expect("lock").version()
    }

    /// Tokens it holds.
    pub fn token_count(&self) -> u64 {
        self.with_state(|s| s.map_or(0, TokenState::token_count))
    }

    /// Looks at the state it serves, as a worker VM of this Envoy loads it from shared data.
    pub fn with_state<R>(&self, look: impl FnOnce(Option<&TokenState>) -> R) -> R {
        let inner = self.inner.lock().expect("lock");
        let mut worker = Replica::default();
        let _ = worker.refresh(&inner.vm.store, &inner.config.keys, now_ms());
        look(worker.state())
    }

    /// Every push so far.
    pub fn pushes(&self) -> Vec<Push> {
        self.inner.lock().expect("lock").pushes.clone()
    }

    /// The version each push ended at (its last document), accepted or not.
    pub fn pushed(&self) -> Vec<u64> {
        self.pushes()
            .iter()
            .filter_map(|p| p.documents.last().map(|d| d.0))
            .collect()
    }

    /// The versions of the pushes it accepted.
    pub fn accepted(&self) -> Vec<u64> {
        self.pushes()
            .iter()
            .filter(|p| p.status == 200)
            .filter_map(|p| p.documents.last().map(|d| d.0))
            .collect()
    }

    /// Forgets what it holds (an edge that restarted with nothing: shared data dies with
    /// Envoy). The pushes recorded stay.
    pub fn forget(&self) {
        let mut inner = self.inner.lock().expect("lock");
        let pushes = std::mem::take(&mut inner.pushes);
        *inner = Inner::started(&self.keys);
        inner.pushes = pushes;
    }

    /// Takes `bytes` (a document or bundle) as a freshly started edge would take a push,
    /// without recording it: to set up an edge that holds an older version or another chain.
    pub fn hold(&self, bytes: &[u8]) {
        self.forget();
        let mut inner = self.inner.lock().expect("lock");
        let (status, reply, _) = inner.handle(&Method::PUT, control::PATH, bytes);
        assert_eq!(status, 200, "{reply}");
    }
}
