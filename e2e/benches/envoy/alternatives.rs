//! What an Envoy operator would build instead for scoped tokens, side by side with pat-edge in
//! one run: `ext_authz` to an HTTP authorization service, `ext_authz` over gRPC to the same
//! service (`e2e/authz-service`, one thread, keep-alive), and a Lua filter with every token in
//! a table (`lua/check.lua`). Each does pat-edge's check (SHA-256 of the token, the scope
//! lookup, identity headers) on the same 1,000,000 tokens, in the shipped configuration's
//! listener. Envoy's instructions per request (callgrind), total CPU per request (Envoy and
//! the service, on CPU 0, wrk on CPU 1), latency, and memory.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use pat_core::token::TokenHash;
use pat_e2e::{free_port, release_binary};

use crate::data::{scopes, snapshot};
use crate::envoys::{Envoy, Launch, Setup};
use crate::instructions::{SHIPPED, headline};
use crate::measure::{
    Counted, cpu_ns, instructions_per_request, median, rss_kib, setting, start, wrk,
};
use crate::origin::Origin;
use crate::shipped::{Front, PatChange};
use crate::{Bench, get};

/// The authorization service, running; stopped when dropped.
struct Service {
    child: Child,
    http: u16,
    grpc: u16,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the service on `tokens` (pinned to CPU 0, with Envoy) and waits until it listens.
fn start_service(tokens: &Path) -> Service {
    let (http, grpc) = (free_port(), free_port());
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", "0"])
        .arg(release_binary("authz-service"))
        .arg(tokens)
        .args([http.to_string(), grpc.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = cmd.spawn().expect("authz-service starts");
    let stdout = child.stdout.take().expect("the service's stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the service starts");
    assert!(line.starts_with("ready"), "authz-service: {line}");
    Service { child, http, grpc }
}

/// The tokens of [`snapshot`]`(tokens, 1, 999_999, true)`, as the service and the Lua filter
/// read them: `<sha256 hex>\t<id>\t<user>\t<method,method>`.
fn write_tokens(bench: &Bench, path: &Path) {
    let (stop, other) = scopes();
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("tokens file"));
    for i in 0..999_999usize {
        let hash = TokenHash::of(&format!("filler-{i}"));
        let scope = if i % 2 == 0 { &stop[0] } else { &other[0] };
        writeln!(
            out,
            "{}\t{}\tuser{}@example.com\t{}",
            pat_core::hex::encode(&hash.0),
            1000 + i,
            i / 10,
            scope.as_str()
        )
        .expect("write");
    }
    writeln!(
        out,
        "{}\t1\talice\t{}",
        pat_core::hex::encode(&bench.tokens.real.hash().0),
        stop[0].as_str()
    )
    .expect("write");
}

/// One configuration of the table.
struct Row {
    label: &'static str,
    setup: Setup,
    snapshot: Option<Vec<u8>>,
    /// It asks the service (whose CPU time counts with Envoy's).
    service: bool,
}

/// What a row measured.
#[derive(Default)]
struct Measured {
    instructions: Option<f64>,
    envoy_us: Vec<f64>,
    service_us: Vec<f64>,
    p50: Vec<f64>,
    p99: Vec<f64>,
    envoy_mb: f64,
}

pub(crate) fn run(bench: &Bench, report: &mut String) {
    let dir = bench.dir.path();
    eprintln!("the alternatives: ext_authz (HTTP, gRPC) and Lua on 1,000,000 tokens...");
    let tokens = dir.join("tokens.tsv");
    write_tokens(bench, &tokens);
    let lua = dir.join("check.lua");
    std::fs::write(
        &lua,
        include_str!("lua/check.lua").replace("TOKENS_FILE", &tokens.display().to_string()),
    )
    .expect("lua");
    let service = start_service(&tokens);
    let service_pid = service.child.id();
    let service_mb = rss_kib(service_pid) as f64 / 1024.0;
    let keys = bench.keys();
    let shipped = |front| Setup::Shipped(front, keys.clone());
    let one_m = snapshot(&bench.tokens, 1, 999_999, true);
    let rows = [
        Row {
            label: SHIPPED,
            setup: shipped(Front::Pat(PatChange::AsShipped)),
            snapshot: Some(one_m.clone()),
            service: false,
        },
        Row {
            label: "pat-edge without strip_token (the alternatives' work)",
            setup: shipped(Front::Pat(PatChange::NoStrip)),
            snapshot: Some(one_m.clone()),
            service: false,
        },
        Row {
            label: "ext_authz, HTTP service",
            setup: shipped(Front::ExtAuthzHttp(service.http)),
            snapshot: None,
            service: true,
        },
        Row {
            label: "ext_authz, gRPC service",
            setup: shipped(Front::ExtAuthzGrpc(service.grpc)),
            snapshot: None,
            service: true,
        },
        Row {
            label: "Lua filter, tokens in a Lua table",
            setup: shipped(Front::Lua(lua.clone())),
            snapshot: None,
            service: false,
        },
        Row {
            label: "empty proxy-wasm filter (reference)",
            setup: shipped(Front::EmptyWasm),
            snapshot: None,
            service: false,
        },
    ];
    let mut measured: Vec<Measured> = rows.iter().map(|_| Measured::default()).collect();
    let ok = r#"{"result":0}"#;
    let path = get(&bench.token);

    // Instructions: each Envoy under callgrind, the service running beside it.
    let counted = setting("PAT_BENCH_COUNTED", 1000) as usize;
    if counted > 0 {
        for (row, m) in rows.iter().zip(&mut measured) {
            let count = instructions_per_request(
                dir,
                &Counted {
                    label: row.label,
                    setup: row.setup.clone(),
                    snapshot: row.snapshot.clone(),
                    path: path.clone(),
                    form: None,
                    headers: &[],
                    expect: ok,
                },
                counted,
            );
            eprintln!("  {}: {count:.0} instructions", row.label);
            m.instructions = Some(count);
        }
    }

    // CPU time and latency: every Envoy pinned to CPU 0 with the service, wrk on CPU 1.
    let client = &bench.client;
    let mut envoys: Vec<(Envoy, Option<Origin>)> = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let (envoy, origin) = start(
            dir,
            &format!("alternative-{i}"),
            &row.setup,
            row.snapshot.as_ref(),
            client,
            Launch::Pinned("0"),
        );
        let url = format!("http://127.0.0.1:{}{path}", envoy.public);
        // Served (pat-edge fetches its snapshot from the origin first).
        let served = (0..600).any(|_| {
            let body = client
                .get(&url)
                .send()
                .and_then(|r| r.text())
                .unwrap_or_default();
            let done = body.contains(ok);
            if !done {
                std::thread::sleep(Duration::from_millis(100));
            }
            done
        });
        assert!(served, "{}: never allowed the token", row.label);
        wrk(&url, None, 2, 16);
        envoys.push((envoy, origin));
    }
    for ((envoy, _), m) in envoys.iter().zip(&mut measured) {
        m.envoy_mb = rss_kib(envoy.proc.pid()) as f64 / 1024.0;
    }
    let rounds = setting("PAT_BENCH_ROUNDS", 5) as usize;
    let seconds = setting("PAT_BENCH_SECONDS", 5);
    let connections = setting("PAT_BENCH_CONNECTIONS", 16);
    for round in 0..rounds {
        for k in 0..rows.len() {
            let i = (round + k) % rows.len();
            let envoy = &envoys[i].0;
            let url = format!("http://127.0.0.1:{}{path}", envoy.public);
            let (e0, s0) = (cpu_ns(envoy.proc.pid()), cpu_ns(service_pid));
            let load = wrk(&url, None, seconds, connections);
            let (e1, s1) = (cpu_ns(envoy.proc.pid()), cpu_ns(service_pid));
            assert_eq!(
                load.errors, 0,
                "{}: non-2xx answers or socket errors",
                rows[i].label
            );
            let m = &mut measured[i];
            m.envoy_us.push((e1 - e0) as f64 / 1e3 / load.requests);
            m.service_us.push(if rows[i].service {
                (s1 - s0) as f64 / 1e3 / load.requests
            } else {
                0.0
            });
            m.p50.push(load.p50_us);
            m.p99.push(load.p99_us);
        }
        eprintln!("  alternatives round {} done", round + 1);
    }
    drop(envoys);
    drop(service);

    let _ = writeln!(
        report,
        "## The alternatives, side by side (1,000,000 tokens, allowed GET)\n"
    );
    let _ = writeln!(
        report,
        "What an operator would build instead for scoped tokens, each doing pat-edge's check on the same 1,000,000 tokens (SHA-256 of the token, the scope lookup, the identity in `x-pat-token-id` and `x-pat-user`) in the shipped configuration's listener: Envoy's `ext_authz` asking a small Rust service (`e2e/authz-service`: one thread, every token in a hash map, keep-alive) over HTTP and over gRPC, and a Lua filter holding every token in a table (`e2e/benches/envoy/lua/check.lua`, SHA-256 in Lua). Instructions: Envoy's alone, under callgrind, {counted} requests (the service's are in its CPU time). CPU and latency: medians of {rounds} alternating rounds of {seconds} s, {connections} connections; Envoy (1 worker) and the service both on CPU 0, wrk on CPU 1, so total CPU is what one core spends per request. Memory: resident set after loading the tokens (Envoy's whole process; the service's).\n"
    );
    let _ = writeln!(
        report,
        "| configuration | Envoy instructions/request | vs empty wasm | Envoy CPU µs/request | service CPU µs/request | total CPU µs/request | p50 µs | p99 µs | Envoy RSS MB | service RSS MB |"
    );
    let _ = writeln!(
        report,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    let empty = measured.last().and_then(|m| m.instructions);
    for (row, m) in rows.iter().zip(&measured) {
        let (envoy, service) = (median(m.envoy_us.clone()), median(m.service_us.clone()));
        let instructions = m.instructions.map_or(String::new(), |c| format!("{c:.0}"));
        let ratio = m
            .instructions
            .zip(empty)
            .map_or(String::new(), |(c, e)| format!("{:.2}x", c / e));
        let service_cell = if row.service {
            format!("{service:.2}")
        } else {
            "—".to_string()
        };
        let service_mb_cell = if row.service {
            format!("{service_mb:.0}")
        } else {
            "—".to_string()
        };
        let _ = writeln!(
            report,
            "| {} | {instructions} | {ratio} | {envoy:.2} | {service_cell} | {:.2} | {:.0} | {:.0} | {:.0} | {service_mb_cell} |",
            headline(row.label),
            envoy + service,
            median(m.p50.clone()),
            median(m.p99.clone()),
            m.envoy_mb,
        );
    }
    let _ = writeln!(report);
}
