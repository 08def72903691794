//! The shipped configuration: the repository's `envoy.yaml` itself, with what a benchmark
//! must change and nothing else — its ports, the `.wasm` path, the platform route answered
//! by a `direct_response` (only Envoy and its filters are measured), the origin cluster
//! pointed at the stand-in origin ([`crate::origin`]), and under callgrind the refresh tick
//! once a second (see `scripts/bench-notes.md`). The other configurations of the request-path
//! tables swap the public listener's filter for theirs in the same file, so every row runs
//! the same listener, connection manager settings and routes.
//!
//! Each change names the text it replaces and panics when `envoy.yaml` no longer has it
//! exactly once: a benchmark of a configuration that is not the shipped one would be worse
//! than none.

use std::fmt::Write as _;
use std::path::Path;

use pat_e2e::root;

use crate::envoys::wasm;

/// What sits in the public listener's filter slot (where `envoy.yaml` has pat-edge).
#[derive(Clone)]
pub(crate) enum Front {
    /// No filter: the router alone.
    None,
    /// The empty proxy-wasm filter.
    EmptyWasm,
    /// Envoy's `api_key_auth` with these keys, read from the query's `session`.
    ApiKeyAuth(Vec<String>),
    /// The probe filter making these host calls (see `e2e/probe-filter`).
    Probe(String),
    /// Envoy's `ext_authz` asking the benchmark's authorization service over HTTP on this
    /// port (`e2e/authz-service`).
    ExtAuthzHttp(u16),
    /// The same over gRPC, on this port.
    ExtAuthzGrpc(u16),
    /// A Lua filter with every token in a table, loaded from this file.
    Lua(std::path::PathBuf),
    /// pat-edge, with its configuration as shipped or changed so.
    Pat(PatChange),
}

/// pat-edge's configuration: `envoy.yaml`'s, or that with one change.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatChange {
    /// As shipped: `strip_token`, the origin, usage reports.
    AsShipped,
    /// Without `strip_token` (the token is forwarded in `:path`).
    NoStrip,
    /// With the identity in one combined header (`identity_headers.combined`).
    Combined,
    /// With rate-limit budgets in each worker's memory (`rate_limits.budget` `per_worker`,
    /// one worker, as the shipped configuration runs here).
    PerWorkerBudget,
}

/// The ports an Envoy of the shipped configuration listens on and talks to.
pub(crate) struct Ports {
    pub(crate) public: u16,
    pub(crate) control: u16,
    pub(crate) admin: u16,
    /// The stand-in origin (pat-edge's `pat_origin` cluster).
    pub(crate) origin: u16,
}

/// Replaces the one occurrence of `from` in `text`.
fn replace_once(text: &str, from: &str, to: &str) -> String {
    let found = text.matches(from).count();
    assert_eq!(
        found, 1,
        "envoy.yaml has {found} occurrences of {from:?} where the benchmark expects one: update e2e/benches/envoy/shipped.rs"
    );
    text.replacen(from, to, 1)
}

/// The text of `text` from the line that starts with `start` up to (not including) the
/// line that starts with `end` after it.
fn block<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("envoy.yaml has no {start:?}"));
    let to = text[from..]
        .find(end)
        .map(|n| from + n)
        .unwrap_or_else(|| panic!("envoy.yaml has no {end:?} after {start:?}"));
    &text[from..to]
}

/// The public listener's pat-edge filter, as `envoy.yaml` lists it.
const PAT_FILTER: &str = "          - name: pat_edge\n";
/// The filter after it.
const ROUTER: &str = "          - name: envoy.filters.http.router\n";
/// The platform route's action.
const PLATFORM_ROUTE: &str = "                route:
                  cluster: platform_api
                  timeout: 300s            # uploads (storage.Uploader.Upload) can be slow
";
/// The public filter configuration's first line.
const STRIP: &str = "                      \"strip_token\": true,\n";
/// The origin's and the usage reports' intervals.
const INTERVAL: &str = "\"interval_ms\": 10000";
/// The control filter's configuration.
const PUSH: &str = "                      \"push\": { \"path\": \"/_pat/snapshot\" }\n";

/// `envoy.yaml` for `front`, on `ports`; `seldom_ticks`: pat-edge's refresh tick once a
/// second (for callgrind).
pub(crate) fn config(front: &Front, ports: &Ports, seldom_ticks: bool) -> String {
    let original = std::fs::read_to_string(root().join("envoy.yaml")).expect("envoy.yaml");
    let mut config = replace_once(
        &original,
        PLATFORM_ROUTE,
        "                direct_response: { status: 200, body: { inline_string: '{\"result\":0}' } }\n",
    );
    let wasm_path = wasm("pat_plugin").display().to_string();
    config = config.replace("target/wasm32-wasip1/release/pat_plugin.wasm", &wasm_path);
    // Ports nothing listens on for the platform and the token API: their routes are not
    // taken (the platform's is a direct_response).
    let unused = pat_e2e::free_port();
    for (from, to) in [
        (10000, ports.public),
        (10001, ports.control),
        (9901, ports.admin),
        (8080, unused),
        (10002, ports.origin),
        (10003, unused),
        // The second replicas `envoy.yaml` lists: nothing listens there (health-checked,
        // they get no traffic).
        (10012, unused),
        (10013, unused),
    ] {
        config = replace_once(
            &config,
            &format!("port_value: {from} "),
            &format!("port_value: {to} "),
        );
    }
    match front {
        Front::Pat(change) => {
            let refresh = if seldom_ticks {
                "                      \"refresh_interval_ms\": 1000,\n"
            } else {
                ""
            };
            let public = match change {
                PatChange::AsShipped => format!("{STRIP}{refresh}"),
                PatChange::NoStrip => {
                    format!("                      \"strip_token\": false,\n{refresh}")
                }
                PatChange::Combined => format!(
                    "{STRIP}{refresh}                      \"identity_headers\": {{\"combined\": \"x-pat-identity\"}},\n"
                ),
                PatChange::PerWorkerBudget => format!(
                    "{STRIP}{refresh}                      \"rate_limits\": {{\"budget\": \"per_worker\", \"workers\": 1}},\n"
                ),
            };
            config = replace_once(&config, STRIP, &public);
            config = replace_once(&config, PUSH, &format!("{refresh}{PUSH}"));
            if seldom_ticks {
                // The origin's head poll (a signature verified every 10 s) and the usage report
                // (one signed every 10 s) cost per second, not per request: under callgrind,
                // where Envoy runs ~50x slower, each counted request would be charged ~50x its
                // share. Once an hour here: the first head poll (at start) still happens, and
                // every allowed request is still recorded for the report.
                let found = config.matches(INTERVAL).count();
                assert_eq!(
                    found, 2,
                    "envoy.yaml's origin and usage intervals: {found} found"
                );
                config = config.replace(INTERVAL, "\"interval_ms\": 3600000");
            }
        }
        other => {
            let filter = block(&config, PAT_FILTER, ROUTER).to_string();
            config = replace_once(&config, &filter, &filter_yaml(other));
            if let Some(cluster) = cluster_yaml(other) {
                config = replace_once(&config, "  clusters:\n", &format!("  clusters:\n{cluster}"));
            }
            // pat-edge's control listener goes with it.
            let control = block(&config, "  - name: control\n", "  clusters:\n").to_string();
            config = replace_once(&config, &control, "");
        }
    }
    config
}

/// The public listener's filter entry for a front other than pat-edge.
fn filter_yaml(front: &Front) -> String {
    match front {
        Front::None | Front::Pat(_) => String::new(),
        Front::EmptyWasm => format!(
            r#"          - name: empty
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: empty
                root_id: empty
                failure_policy: FAIL_RELOAD
                allow_on_headers_stop_iteration: true
                vm_config:
                  vm_id: empty
                  runtime: envoy.wasm.runtime.v8
                  code: {{ local: {{ filename: "{}" }} }}
"#,
            wasm("empty_filter").display()
        ),
        Front::Probe(ops) => format!(
            r#"          - name: probe
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: probe
                root_id: probe
                failure_policy: FAIL_RELOAD
                allow_on_headers_stop_iteration: true
                vm_config:
                  vm_id: probe
                  runtime: envoy.wasm.runtime.v8
                  code: {{ local: {{ filename: "{}" }} }}
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: '{ops}'
"#,
            wasm("probe_filter").display()
        ),
        Front::ExtAuthzHttp(port) => format!(
            r#"          - name: envoy.filters.http.ext_authz
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
              transport_api_version: V3
              http_service:
                server_uri: {{ uri: "http://127.0.0.1:{port}", cluster: authz_http, timeout: 1s }}
                path_prefix: /check
                authorization_response:
                  allowed_upstream_headers:
                    patterns: [{{ exact: x-pat-token-id }}, {{ exact: x-pat-user }}]
"#
        ),
        Front::ExtAuthzGrpc(_) => r#"          - name: envoy.filters.http.ext_authz
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
              transport_api_version: V3
              grpc_service:
                envoy_grpc: { cluster_name: authz_grpc }
                timeout: 1s
"#
        .to_string(),
        Front::Lua(file) => format!(
            r#"          - name: envoy.filters.http.lua
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua
              default_source_code: {{ filename: "{}" }}
"#,
            file.display()
        ),
        Front::ApiKeyAuth(keys) => {
            let mut credentials = String::new();
            for (i, key) in keys.iter().enumerate() {
                let _ = write!(
                    credentials,
                    "\n              - {{ key: \"{key}\", client: \"client{i}\" }}"
                );
            }
            format!(
                r#"          - name: envoy.filters.http.api_key_auth
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.api_key_auth.v3.ApiKeyAuth
              credentials:{credentials}
              key_sources:
              - query: session
"#
            )
        }
    }
}

/// The cluster an alternative talks to, if any.
fn cluster_yaml(front: &Front) -> Option<String> {
    let (name, port, http2) = match front {
        Front::ExtAuthzHttp(port) => ("authz_http", *port, false),
        Front::ExtAuthzGrpc(port) => ("authz_grpc", *port, true),
        _ => return None,
    };
    let protocol = if http2 {
        r#"
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: { http2_protocol_options: {} }"#
    } else {
        ""
    };
    Some(format!(
        r#"  - name: {name}
    type: STATIC
    connect_timeout: 1s{protocol}
    load_assignment:
      cluster_name: {name}
      endpoints:
      - lb_endpoints:
        - endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port} }} }} }}
"#
    ))
}

/// Writes the configuration to `dir/name.yaml`.
pub(crate) fn write(
    dir: &Path,
    name: &str,
    front: &Front,
    ports: &Ports,
    seldom: bool,
) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, config(front, ports, seldom)).expect("config");
    path
}
