//! The filter as a remote module: Envoy started from `deploy/envoy-remote.yaml` fetches the
//! `.wasm` from the origin (`pat-admin serve --module`) over HTTP through the `pat_origin`
//! cluster and checks it against the pinned `sha256` before it runs it.
//!
//! - With the right hash both filters load from the origin and tokens are enforced as with a
//!   local file: pushes land on the control listener, allowed and denied requests on the
//!   public one.
//! - With a wrong hash (the origin serves other bytes than the edge pins) Envoy fails closed:
//!   after its retries it opens the listeners without the filter and answers every request
//!   503 itself; nothing reaches the platform, no push lands, and its log says why ("data is
//!   invalid" at `--component-log-level config:debug`).
//! - With the origin down when the edge starts: the same 503s ("response status code 503"),
//!   and they stay after the origin is back (Envoy does not fetch again); a restarted edge
//!   serves.

use std::time::Duration;

use pat_admin::module::sha256_hex;
use pat_e2e::{Client, Edge, Stack, module, within};

const REMOTE: &str = "deploy/envoy-remote.yaml";
const STOPENV: &str = "/1.0/environment/control/rest/stopenv";
/// The placeholder `deploy/envoy-remote.yaml` carries for the module's hash.
const PLACEHOLDER: &str = "${MODULE_SHA256}";
/// Logged by Envoy (at info) when the remote code could not be had after its retries.
const GAVE_UP: &str = "Retry limit exceeded for fetching data from remote data source.";
/// Logged by Envoy (at info) for the public listener's filter without its module.
const NOT_LOADED: &str = "Plugin pat_edge failed to load";

fn module_hash() -> String {
    sha256_hex(&std::fs::read(module()).expect("the built filter"))
}

/// `deploy/envoy-remote.yaml` as the stacks run it: the placeholder filled in.
fn pinned(hash: String) -> impl Fn(String) -> String + Send + Sync + 'static {
    move |config: String| {
        assert!(
            config.contains(PLACEHOLDER),
            "{REMOTE} has no {PLACEHOLDER}"
        );
        config.replace(PLACEHOLDER, &hash)
    }
}

/// The remote file fetching the real module's address but pinning `pinned_hash`, with one
/// retry instead of five (the failure tests would otherwise wait up to 25 s for Envoy).
fn fetching_real_module_pinned_to(pinned_hash: String) -> impl Fn(String) -> String {
    let real = module_hash();
    move |config: String| {
        let url_before = format!("/module/sha256/{PLACEHOLDER}/plugin.wasm");
        assert_eq!(config.matches(&url_before).count(), 2, "two code blocks");
        assert_eq!(
            config.matches("num_retries: 5").count(),
            2,
            "two retry policies"
        );
        config
            .replace(&url_before, &format!("/module/sha256/{real}/plugin.wasm"))
            .replace(PLACEHOLDER, &pinned_hash)
            .replace("num_retries: 5", "num_retries: 1")
    }
}

fn stat(stats: &str, name: &str) -> Option<u64> {
    stats.lines().find_map(|line| {
        line.strip_prefix(name)?
            .strip_prefix(": ")?
            .trim()
            .parse()
            .ok()
    })
}

fn lines_with<'a>(log: &'a str, needle: &str) -> Vec<&'a str> {
    log.lines().filter(|l| l.contains(needle)).collect()
}

/// Every request on the edge's listeners is answered 503 by Envoy, and none reached the
/// platform: the listener does not serve tokens without its filter.
fn assert_fails_closed(edge: &Edge, token: &str) {
    let client = Client::new();
    for url in [
        edge.url(&format!("{STOPENV}?session={token}")),
        edge.url(STOPENV),
        edge.url("/tokens/"),
    ] {
        for _ in 0..4 {
            let answer = client.get(&url, &[]);
            assert_eq!(answer.status, 503, "{url}: {answer:?}");
            assert!(
                answer.json.is_null(),
                "Envoy's own 503, not the platform's: {answer:?}"
            );
        }
    }
    let control = client.get(&format!("{}/_pat/snapshot", edge.control_url()), &[]);
    assert_eq!(control.status, 503, "the control listener: {control:?}");
    let stats = edge.stats();
    assert_eq!(
        stat(&stats, "cluster.platform_api.upstream_rq_total"),
        Some(0),
        "nothing reached the platform"
    );
    // Envoy creates these counters when they first count.
    assert_eq!(
        stat(&stats, "wasm.remote_load_fetch_successes").unwrap_or(0),
        0
    );
    assert!(stat(&stats, "wasm.remote_load_fetch_failures").is_some_and(|n| n >= 1));
}

#[test]
fn the_filter_fetched_from_the_origin_and_pinned_by_its_hash_enforces_tokens() {
    let hash = module_hash();
    let stack = Stack::start_from(REMOTE, pinned(hash.clone()));

    // The origin serves the module: at the stable path with its hash beside it, and by hash.
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let origin = format!("http://127.0.0.1:{}", stack.ports.origin);
    let wasm = std::fs::read(module()).expect("the built filter");
    let current = http
        .get(format!("{origin}/module/plugin.wasm"))
        .send()
        .expect("GET the module");
    assert_eq!(current.status(), 200);
    let header = |r: &reqwest::blocking::Response, name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let etag = format!("\"sha256-{hash}\"");
    assert_eq!(
        header(&current, "content-type").as_deref(),
        Some("application/wasm")
    );
    assert_eq!(header(&current, "etag"), Some(etag.clone()));
    assert_eq!(
        header(&current, "cache-control").as_deref(),
        Some("no-cache")
    );
    assert!(current.bytes().expect("body") == wasm, "the module's bytes");
    let sidecar = http
        .get(format!("{origin}/module/plugin.wasm.sha256"))
        .send()
        .and_then(reqwest::blocking::Response::text)
        .expect("GET the hash");
    assert_eq!(sidecar, format!("{hash}  plugin.wasm\n"));
    let revalidated = http
        .get(format!("{origin}/module/plugin.wasm"))
        .header("if-none-match", &etag)
        .send()
        .expect("revalidate");
    assert_eq!(revalidated.status(), 304);
    let by_hash = http
        .get(format!("{origin}/module/sha256/{hash}/plugin.wasm"))
        .send()
        .expect("GET by hash");
    assert_eq!(
        header(&by_hash, "cache-control").as_deref(),
        Some("public, max-age=31536000, immutable")
    );
    assert!(by_hash.bytes().expect("body") == wasm);
    let unknown = http
        .get(format!(
            "{origin}/module/sha256/{}/plugin.wasm",
            sha256_hex(b"x")
        ))
        .send()
        .expect("GET an unknown hash");
    assert_eq!(unknown.status(), 404);

    // Envoy fetched its code from there (no local file in its configuration), for both
    // filters, and checked it.
    let config = std::fs::read_to_string(stack.dir.path().join("envoy.yaml")).expect("config");
    assert!(!config.contains("filename:"), "no local code");
    assert_eq!(
        config
            .matches(&format!(
                "uri: http://pat-origin/module/sha256/{hash}/plugin.wasm"
            ))
            .count(),
        2
    );
    let stats = stack.stats();
    assert!(
        stat(&stats, "wasm.remote_load_fetch_successes").is_some_and(|n| n >= 1),
        "{stats}"
    );
    assert_eq!(
        stat(&stats, "wasm.remote_load_fetch_failures").unwrap_or(0),
        0
    );

    // And it enforces: a token change is pushed to the control listener and the public one
    // lets the token through on every worker; unknown tokens are denied.
    let (_, token) = stack.token(&["--api", "ide-plugins"]);
    let client = Client::new();
    let url = stack.url(&format!("{STOPENV}?session={token}"));
    within(Duration::from_secs(10), || client.get(&url, &[]).is_ok()).expect("allowed");
    for _ in 0..16 {
        assert!(client.get(&url, &[]).is_ok());
    }
    // One character changed (never the same one, whatever the token ends with).
    let last = if token.ends_with('x') { 'y' } else { 'x' };
    let forged = format!("{}{last}", &token[..token.len() - 1]);
    assert!(
        client
            .get(&stack.url(&format!("{STOPENV}?session={forged}")), &[])
            .denied_with(701)
    );
    assert_eq!(stack.edge_status()["result"], 0, "the control filter runs");
}

#[test]
fn a_wrong_hash_keeps_the_listeners_from_serving_tokens() {
    let stack = Stack::start();
    let (_, token) = stack.token(&["--api", "ide-plugins"]);
    // The origin serves the real module; the edge pins another hash (a tampered or
    // mismatched module looks the same to it).
    let wrong = sha256_hex(b"not the module");
    let edge = stack.start_edge_from(
        "wrong-hash",
        REMOTE,
        &["--component-log-level", "config:debug"],
        2,
        false,
        fetching_real_module_pinned_to(wrong),
    );
    assert_fails_closed(&edge, &token);
    let log = stack.edge_log("wrong-hash");
    for needle in ["]: data is invalid", GAVE_UP, NOT_LOADED] {
        let found = lines_with(&log, needle);
        assert!(!found.is_empty(), "no `{needle}` in the edge's log:\n{log}");
        println!("{}", found[0]);
    }
    assert!(
        lines_with(&log, "]: success").len() >= 2,
        "the bytes arrived, the hash did not match"
    );
    // The same origin's module, pinned by its real hash, serves (the control case).
    let good = stack.start_edge_from(
        "right-hash",
        REMOTE,
        &[],
        2,
        false,
        fetching_real_module_pinned_to(module_hash()),
    );
    let client = Client::new();
    let url = good.url(&format!("{STOPENV}?session={token}"));
    within(Duration::from_secs(20), || client.get(&url, &[]).is_ok())
        .expect("the right hash serves");
}

#[test]
fn with_the_module_origin_down_the_edge_fails_closed_until_it_restarts() {
    let mut stack = Stack::start();
    let (_, token) = stack.token(&["--api", "ide-plugins"]);
    stack.kill_origin();
    let hash = module_hash();
    let edge = stack.start_edge_from(
        "origin-down",
        REMOTE,
        &["--component-log-level", "config:debug"],
        2,
        false,
        fetching_real_module_pinned_to(hash.clone()),
    );
    assert_fails_closed(&edge, &token);
    let log = stack.edge_log("origin-down");
    for needle in ["]: response status code 503", GAVE_UP, NOT_LOADED] {
        let found = lines_with(&log, needle);
        assert!(!found.is_empty(), "no `{needle}` in the edge's log:\n{log}");
        println!("{}", found[0]);
    }

    // The origin is back: Envoy does not fetch again; the edge stays closed until it restarts.
    stack.start_origin();
    stack.wait_for_origin(stack.ports.origin);
    std::thread::sleep(Duration::from_secs(3));
    assert_fails_closed(&edge, &token);
    drop(edge);
    let restarted = stack.start_edge_from(
        "origin-back",
        REMOTE,
        &[],
        2,
        false,
        fetching_real_module_pinned_to(hash),
    );
    let client = Client::new();
    let url = restarted.url(&format!("{STOPENV}?session={token}"));
    within(Duration::from_secs(20), || client.get(&url, &[]).is_ok())
        .expect("a restarted edge fetches the module and the snapshot, and serves");
}
