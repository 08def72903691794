//! The filter's module on the origin: `pat-admin serve --listen … --module PATH` hands the
//! built `.wasm` to Envoys that fetch their code over HTTP (`vm_config.code.remote`, pinned by
//! its SHA-256: `deploy/envoy-remote.yaml`), to Istio's agent and to Envoy Gateway (which
//! download a module and give it to Envoy).
//!
//! - `GET /module/plugin.wasm`: the current module (the first `--module`), `application/wasm`,
//!   a strong `ETag` (`"sha256-<hex>"`), `Cache-Control: no-cache` (this path's content changes
//!   with a new version: a cache revalidates, `304` while it is the same) and
//!   `x-pat-module-sha256`.
//! - `GET /module/plugin.wasm.sha256`: its hash in `sha256sum`'s format (`<hex>  plugin.wasm`),
//!   `text/plain`, the same `ETag` and caching.
//! - `GET /module/sha256/<hex>/plugin.wasm`: every module given, by its hash: immutable
//!   (`Cache-Control: public, max-age=31536000, immutable`), so a cache keeps it for good. This
//!   is the address `deploy/envoy-remote.yaml` fetches: during a roll, an edge still configured
//!   with the previous hash that restarts gets the previous module as long as the origin is
//!   started with it too (`--module new.wasm --module old.wasm`).
//!
//! Modules are read once, when `serve` starts, and refused unless they begin with the wasm
//! magic number (a path to the wrong file fails at once, not at the edges). Without
//! `--module` every `/module/…` request is `404` JSON saying so.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The current module's path on the origin.
pub const MODULE_PATH: &str = "/module/plugin.wasm";
/// Its SHA-256, in `sha256sum`'s format.
pub const MODULE_SHA256_PATH: &str = "/module/plugin.wasm.sha256";
/// Every module by its hash: `/module/sha256/<hex>/plugin.wasm`.
pub const MODULE_BY_HASH_PREFIX: &str = "/module/sha256/";
/// `Cache-Control` of the current module's paths: revalidated (a new version is a new tag).
pub const CURRENT_CACHE_CONTROL: &str = "no-cache";
/// `Cache-Control` of a module addressed by its hash: it never changes.
pub const IMMUTABLE_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";
/// The wasm binary format's magic number and version 1.
const WASM_MAGIC: [u8; 8] = *b"\0asm\x01\0\0\0";

/// One module: its bytes and their SHA-256.
#[derive(Debug, Clone)]
pub struct Module {
    /// Where it was read from.
    pub path: PathBuf,
    /// Lowercase hex SHA-256 of the bytes: what Envoy's `remote.sha256` pins.
    pub sha256: String,
    /// The module.
    pub bytes: Bytes,
}

impl Module {
    /// Reads a module file; refused unless it starts with the wasm magic number.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(path, bytes)
    }

    /// A module from bytes read elsewhere (`path` names it in messages).
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Self> {
        if !bytes.starts_with(&WASM_MAGIC) {
            return Err(Error::Invalid(format!(
                "--module {}: not a WebAssembly module (it does not start with \\0asm, version 1); give the built filter, target/wasm32-wasip1/release/pat_plugin.wasm",
                path.display()
            )));
        }
        Ok(Self {
            path: path.to_path_buf(),
            sha256: sha256_hex(&bytes),
            bytes: Bytes::from(bytes),
        })
    }

    /// The strong entity tag of this module (and of its `.sha256`).
    pub fn etag(&self) -> String {
        format!("\"sha256-{}\"", self.sha256)
    }
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    pat_core::hex::encode(&Sha256::digest(bytes))
}

/// The modules an origin serves: the first is the current one.
#[derive(Debug, Clone, Default)]
pub struct Modules {
    modules: Vec<Module>,
}

impl Modules {
    /// Reads every `--module` (none: an origin without modules).
    pub fn read(paths: &[PathBuf]) -> Result<Self> {
        let mut modules: Vec<Module> = Vec::new();
        for path in paths {
            let module = Module::read(path)?;
            if !modules.iter().any(|m| m.sha256 == module.sha256) {
                modules.push(module);
            }
        }
        Ok(Self { modules })
    }

    /// The current module (the first given).
    pub fn current(&self) -> Option<&Module> {
        self.modules.first()
    }

    /// The module with this hash (lowercase hex).
    pub fn by_hash(&self, sha256: &str) -> Option<&Module> {
        self.modules.iter().find(|m| m.sha256 == sha256)
    }

    /// What `serve` prints when it starts: one line per module, or nothing.
    pub fn describe(&self, base: &str) -> Vec<String> {
        self.modules
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let current = if i == 0 {
                    format!(" (current: also {base}{MODULE_PATH}, hash at {MODULE_SHA256_PATH})")
                } else {
                    String::new()
                };
                format!(
                    "pat-admin: serving the filter module {} ({} bytes, sha256 {}) at {base}{MODULE_BY_HASH_PREFIX}{}/plugin.wasm{current}",
                    m.path.display(),
                    m.bytes.len(),
                    m.sha256,
                    m.sha256
                )
            })
            .collect()
    }
}

/// The module routes, for the origin's router.
pub fn router(modules: Modules) -> Router {
    Router::new()
        .route(MODULE_PATH, get(current_module))
        .route(MODULE_SHA256_PATH, get(current_hash))
        .route("/module/sha256/{hash}/plugin.wasm", get(module_by_hash))
        .with_state(Arc::new(modules))
}

fn not_found(message: &str) -> Response {
    let body = serde_json::json!({ "result": 404, "error": message, "source": "pat-admin" });
    (
        StatusCode::NOT_FOUND,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}

const NO_MODULE: &str =
    "this origin serves no filter module: start pat-admin serve with --module PATH";

fn if_none_match(headers: &HeaderMap, tag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"))
}

/// The answer for `module` with `body` of `content_type`, or `304` when the client holds it.
fn answer(
    module: &Module,
    headers: &HeaderMap,
    content_type: &'static str,
    body: Bytes,
    cache_control: &'static str,
) -> Response {
    let tag = module.etag();
    let mut response = if if_none_match(headers, &tag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
            body,
        )
            .into_response()
    };
    let h = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, value);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    if let Ok(value) = HeaderValue::from_str(&module.sha256) {
        h.insert("x-pat-module-sha256", value);
    }
    response
}

async fn current_module(State(modules): State<Arc<Modules>>, headers: HeaderMap) -> Response {
    match modules.current() {
        Some(m) => answer(
            m,
            &headers,
            "application/wasm",
            m.bytes.clone(),
            CURRENT_CACHE_CONTROL,
        ),
        None => not_found(NO_MODULE),
    }
}

async fn current_hash(State(modules): State<Arc<Modules>>, headers: HeaderMap) -> Response {
    match modules.current() {
        Some(m) => answer(
            m,
            &headers,
            "text/plain; charset=utf-8",
            Bytes::from(format!("{}  plugin.wasm\n", m.sha256)),
            CURRENT_CACHE_CONTROL,
        ),
        None => not_found(NO_MODULE),
    }
}

async fn module_by_hash(
    State(modules): State<Arc<Modules>>,
    UrlPath(hash): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    if modules.current().is_none() {
        return not_found(NO_MODULE);
    }
    match modules.by_hash(&hash) {
        Some(m) => answer(
            m,
            &headers,
            "application/wasm",
            m.bytes.clone(),
            IMMUTABLE_CACHE_CONTROL,
        ),
        None => not_found(&format!(
            "no module with sha256 {}: this origin serves {}",
            hash.chars().take(64).collect::<String>(),
            modules
                .modules
                .iter()
                .map(|m| m.sha256.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(extra: &[u8]) -> Vec<u8> {
        let mut bytes = WASM_MAGIC.to_vec();
        bytes.extend_from_slice(extra);
        bytes
    }

    #[test]
    fn the_hash_is_sha256_in_lowercase_hex() {
        // FIPS 180-2, "abc".
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let m = Module::from_bytes(Path::new("x.wasm"), module(b"")).expect("a module");
        assert_eq!(m.sha256, sha256_hex(&WASM_MAGIC));
        assert_eq!(m.etag(), format!("\"sha256-{}\"", m.sha256));
    }

    #[test]
    fn only_wasm_is_accepted() {
        for bad in [
            &b""[..],
            b"\0asm",
            b"\0asm\x02\0\0\0",
            b"#!/bin/sh\n",
            b"PK\x03\x04",
        ] {
            let err =
                Module::from_bytes(Path::new("bad.bin"), bad.to_vec()).expect_err("not a module");
            assert!(
                err.to_string().contains("not a WebAssembly module"),
                "{err}"
            );
        }
    }

    #[test]
    fn the_first_module_is_current_and_every_one_is_found_by_hash() {
        let dir = tempfile::tempdir().expect("dir");
        let new = dir.path().join("new.wasm");
        let old = dir.path().join("old.wasm");
        std::fs::write(&new, module(b"new")).expect("write");
        std::fs::write(&old, module(b"old")).expect("write");
        let modules = Modules::read(&[new.clone(), old.clone(), new.clone()]).expect("read");
        let current = modules.current().expect("a current module");
        assert_eq!(current.path, new);
        assert_eq!(modules.modules.len(), 2, "the same module twice is one");
        let old_hash = sha256_hex(&module(b"old"));
        assert_eq!(
            modules.by_hash(&old_hash).map(|m| &m.path),
            Some(&old),
            "the previous version is still served by its hash"
        );
        assert!(modules.by_hash(&old_hash.to_uppercase()).is_none());
        assert_eq!(modules.describe("http://o").len(), 2);
        assert!(Modules::read(&[]).expect("none").current().is_none());
        let missing = Modules::read(&[dir.path().join("missing.wasm")]).expect_err("missing");
        assert!(missing.to_string().contains("missing.wasm"), "{missing}");
    }
}
