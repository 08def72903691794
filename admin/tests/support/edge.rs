//! A fake edge that behaves like the filter's control endpoint (`PUT /_pat/snapshot`):
//! it verifies every document with the key it trusts, takes one document or a bundle, judges
//! a chain by its last document (newer than what it holds, else 409 with `current_version`),
//! lets a full snapshot replace its state and applies deltas only to the exact state they
//! name (else 409 "does not apply", with `current_version`). It records every push.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::put;
use pat_core::keys::TrustedKeys;
use pat_core::snapshot::{Document, Kind, TokenState, bundle, open};

/// One push as the edge saw it.
#[derive(Debug, Clone)]
pub struct Push {
    /// A bundle (rather than one document)?
    pub bundle: bool,
    /// Its documents, `(version, kind)`.
    pub documents: Vec<(u64, Kind)>,
    /// The status it answered.
    pub status: u16,
    /// The bytes received.
    pub raw: Vec<u8>,
}

#[derive(Default)]
struct Inner {
    state: Option<TokenState>,
    pushes: Vec<Push>,
}

/// The fake edge, listening on a free port.
pub struct FakeEdge {
    /// Where it listens.
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    keys: TrustedKeys,
    _runtime: tokio::runtime::Runtime,
}

fn reply(status: StatusCode, body: String) -> (StatusCode, String) {
    (status, body)
}

fn refused(status: StatusCode, error: &str, current: Option<u64>) -> (StatusCode, String) {
    let current = current.map_or(String::new(), |v| format!(r#","current_version":{v}"#));
    reply(
        status,
        format!(
            r#"{{"result":{},"error":{:?},"source":"pat-edge"{current}}}"#,
            status.as_u16(),
            error
        ),
    )
}

/// What the filter does with a push (simplified: no freshness floor, no origin).
fn accept(
    inner: &mut Inner,
    keys: &TrustedKeys,
    body: &[u8],
) -> (StatusCode, String, Vec<(u64, Kind)>) {
    let is_bundle = bundle::is_bundle(body);
    let raw: Vec<Vec<u8>> = if is_bundle {
        match bundle::decode(body) {
            Ok(docs) => docs.into_iter().map(<[u8]>::to_vec).collect(),
            Err(e) => {
                let (s, b) = refused(StatusCode::BAD_REQUEST, &e.to_string(), None);
                return (s, b, Vec::new());
            }
        }
    } else {
        vec![body.to_vec()]
    };
    let mut docs = Vec::new();
    for bytes in raw {
        match open::open(bytes, keys) {
            Ok(d) => docs.push(d),
            Err(e) => {
                let (s, b) = refused(StatusCode::FORBIDDEN, &e.to_string(), None);
                return (s, b, Vec::new());
            }
        }
    }
    let seen: Vec<(u64, Kind)> = docs
        .iter()
        .map(|d| (d.header().version, d.header().kind))
        .collect();
    let held = inner.state.as_ref().map_or(0, TokenState::version);
    let Some(last) = docs.last().map(|d| *d.header()) else {
        let (s, b) = refused(StatusCode::BAD_REQUEST, "an empty bundle", None);
        return (s, b, seen);
    };
    if last.version <= held {
        let (s, b) = refused(
            StatusCode::CONFLICT,
            &format!("version {} is not newer than {held}", last.version),
            Some(held),
        );
        return (s, b, seen);
    }
    for pair in docs.windows(2) {
        let (prev, next) = (pair[0].header(), pair[1].header());
        if next.kind != Kind::Delta
            || next.base_version != prev.version
            || next.base_state_id != prev.state_id
        {
            let (s, b) = refused(StatusCode::BAD_REQUEST, "the bundle does not link", None);
            return (s, b, seen);
        }
    }
    if let Some(Document::Delta(first)) = docs.first() {
        let applies = inner
            .state
            .as_ref()
            .map(|s| s.check_applies(first.header()).map_err(|e| e.to_string()))
            .unwrap_or_else(|| Err("this edge holds nothing".into()));
        if let Err(e) = applies {
            let (s, b) = refused(
                StatusCode::CONFLICT,
                &format!("the delta does not apply: {e}"),
                Some(held),
            );
            return (s, b, seen);
        }
    }
    let mut state = match docs.first() {
        Some(Document::Full(_)) => None,
        _ => inner.state.take(),
    };
    for doc in docs {
        match doc {
            Document::Full(full) => state = Some(TokenState::new(full)),
            Document::Delta(delta) => state
                .as_mut()
                .expect("checked: a state to apply to")
                .apply(&delta)
                .expect("checked: the chain links"),
        }
    }
    let state = state.expect("documents were applied");
    let body = format!(
        r#"{{"result":0,"version":{},"tokens":{}}}"#,
        state.version(),
        state.token_count()
    );
    inner.state = Some(state);
    (StatusCode::OK, body, seen)
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
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app =
            Router::new()
                .route(
                    "/_pat/snapshot",
                    put(
                        |State((keys, inner)): State<(TrustedKeys, Arc<Mutex<Inner>>)>,
                         body: Bytes| async move {
                            let mut inner = inner.lock().expect("lock");
                            let (status, reply, documents) = accept(&mut inner, &keys, &body);
                            inner.pushes.push(Push {
                                bundle: bundle::is_bundle(&body),
                                documents,
                                status: status.as_u16(),
                                raw: body.to_vec(),
                            });
                            (status, reply)
                        },
                    ),
                )
                .with_state((keys.clone(), inner.clone()));
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
        self.inner
            .lock()
            .expect("lock")
            .state
            .as_ref()
            .map_or(0, TokenState::version)
    }

    /// Tokens it holds.
    pub fn token_count(&self) -> u64 {
        self.inner
            .lock()
            .expect("lock")
            .state
            .as_ref()
            .map_or(0, TokenState::token_count)
    }

    /// Looks at its state.
    pub fn with_state<R>(&self, look: impl FnOnce(Option<&TokenState>) -> R) -> R {
        look(self.inner.lock().expect("lock").state.as_ref())
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

    /// Forgets what it holds (an edge that restarted with nothing).
    pub fn forget(&self) {
        self.inner.lock().expect("lock").state = None;
    }

    /// Takes `bytes` (a document or bundle) as if pushed, without recording it: to set up
    /// an edge that holds an older version or another chain.
    pub fn hold(&self, bytes: &[u8]) {
        let mut inner = self.inner.lock().expect("lock");
        inner.state = None;
        let (status, reply, _) = accept(&mut inner, &self.keys, bytes);
        assert_eq!(status, StatusCode::OK, "{reply}");
    }
}
