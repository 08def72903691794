//! One origin, many edges: 8 real Envoys (1 worker each) fed by one `pat-admin serve`, with
//! changes made through the token API as an account holder makes them.
//!
//! Two fleets: every edge pushed to; and 2 edges pushed to while the other 6 only pull from
//! the origin (head every second, then the deltas since what they hold). For each change,
//! the time from the API call until every edge enforces it, and what the edges received
//! (Envoy's own byte counters: the control listener for pushes, the `pat_origin` cluster for
//! pulls, headers included).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use pat_e2e::{Edge, PASSWORD, Stack};
use serde_json::Value;

use crate::measure::{median, percentile, setting};

const EDGES: usize = 8;
const STOPENV: &str = "/1.0/environment/control/rest/stopenv";

/// One fleet's measurements.
struct Fleet {
    label: String,
    /// API call → enforced on every edge, ms, per create and per delete.
    created_ms: Vec<f64>,
    deleted_ms: Vec<f64>,
    /// The API calls alone (they return once the change is published), ms.
    call_ms: Vec<f64>,
    /// Bytes the edges received per change: pushed, pulled.
    pushed_bytes: f64,
    pulled_bytes: f64,
}

pub(crate) fn run(report: &mut String) {
    assert!(
        std::env::var("PAT_E2E_BINARIES").is_ok_and(|v| v == "release"),
        "the fleet section needs the release pat-admin and stand-in: run it through scripts/bench (or set PAT_E2E_BINARIES=release)"
    );
    let changes = setting("PAT_BENCH_REVOCATIONS", 10) as usize;
    eprintln!("one origin, {EDGES} Envoys...");
    let fleets = [
        fleet(EDGES, changes, "every edge pushed to"),
        fleet(
            2,
            changes,
            "2 edges pushed to, 6 pulling from the origin every second",
        ),
    ];
    let _ = writeln!(
        report,
        "## One origin, {EDGES} Envoys (1 worker each)\n\nOne `pat-admin serve` (origin and token API, release build) and {EDGES} Envoys from `envoy.yaml` on this machine. Each change is a `CreateToken` (then a `DeleteTokens` of that token) by POST to the token API, timed from the call until a request with the token on every edge is allowed (then denied), polled every 5 ms; {changes} of each. Bytes: what the origin sent to all edges per change, as the edges' own counters see it (pushes at the control listeners, pulls from the `pat_origin` cluster; HTTP headers included, and the signed-head checks every edge makes each second in between).\n"
    );
    let _ = writeln!(
        report,
        "| fleet | API call p50 ms | create → on every edge p50 / max ms | delete → off every edge p50 / max ms | origin → edges bytes per change: pushed + pulled = total |"
    );
    let _ = writeln!(report, "| --- | ---: | ---: | ---: | ---: |");
    for f in &fleets {
        let _ = writeln!(
            report,
            "| {} | {:.0} | {:.0} / {:.0} | {:.0} / {:.0} | {:.0} + {:.0} = {:.0} |",
            f.label,
            median(f.call_ms.clone()),
            median(f.created_ms.clone()),
            percentile(f.created_ms.clone(), 100.0),
            median(f.deleted_ms.clone()),
            percentile(f.deleted_ms.clone(), 100.0),
            f.pushed_bytes,
            f.pulled_bytes,
            f.pushed_bytes + f.pulled_bytes,
        );
    }
    let _ = writeln!(report);
}

/// A fleet of EDGES Envoys, the first `pushed` of them registered with pat-admin.
fn fleet(pushed: usize, changes: usize, label: &str) -> Fleet {
    let mut stack = Stack::start();
    // The stack's own Envoy (2 workers) is not part of the fleet.
    stack.admin_ok(&["edge", "remove", &stack.control_url()], "");
    stack.kill_envoy();
    let edges: Vec<Edge> = (0..EDGES)
        .map(|i| {
            stack.start_edge(&format!("edge-{i}"), 1, i < pushed, |config| {
                // The origin block's interval (the usage block keeps its own).
                config.replacen(
                    "\"authority\": \"pat-origin\",\n                        \"interval_ms\": 10000",
                    "\"authority\": \"pat-origin\",\n                        \"interval_ms\": 1000, \"retry_ms\": 500",
                    1,
                )
            })
        })
        .collect();
    let client = reqwest::blocking::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let api = format!(
        "http://127.0.0.1:{}/1.0/users/authentication/rest",
        stack.ports.api
    );
    let call = |method: &str, form: &[(&str, &str)]| -> Value {
        let answer: Value = client
            .post(format!("{api}/{method}"))
            .form(form)
            .send()
            .and_then(|r| r.text())
            .map(|body| serde_json::from_str(&body).unwrap_or(Value::Null))
            .expect("token API");
        assert_eq!(answer["result"], 0, "{method}: {answer}");
        answer
    };
    let signin = call("signin", &[("login", "alice"), ("password", PASSWORD)]);
    let session = signin["session"].as_str().expect("session").to_string();
    // Known to every edge (allowed, or not) for this token.
    let everywhere = |token: &str, allowed: bool| {
        edges.iter().all(|e| {
            client
                .get(e.url(&format!("{STOPENV}?envName=x&session={token}")))
                .send()
                .and_then(|r| r.text())
                .is_ok_and(|body| body.contains("\"result\":0") == allowed)
        })
    };
    let wait = |token: &str, allowed: bool, started: Instant| {
        while !everywhere(token, allowed) {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{label}: a change never reached every edge"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        started.elapsed().as_secs_f64() * 1e3
    };
    let bytes = || -> (u64, u64) {
        edges.iter().fold((0, 0), |(pushed, pulled), e| {
            let stats = e.stats();
            (
                pushed + counter(&stats, "http.control.downstream_cx_rx_bytes_total"),
                pulled + counter(&stats, "cluster.pat_origin.upstream_cx_rx_bytes_total"),
            )
        })
    };
    // Every edge holds the current state before measuring.
    let warm = call(
        "createtoken",
        &[
            ("session", &session),
            ("password", PASSWORD),
            ("description", "warm-up"),
            ("apiList", "environment.control.StopEnv"),
        ],
    );
    wait(
        warm["token"]["key"].as_str().expect("key"),
        true,
        Instant::now(),
    );
    let before = bytes();
    let (mut created_ms, mut deleted_ms, mut call_ms) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..changes {
        let description = format!("fleet {i}");
        let started = Instant::now();
        let created = call(
            "createtoken",
            &[
                ("session", &session),
                ("password", PASSWORD),
                ("description", &description),
                ("apiList", "environment.control.StopEnv"),
            ],
        );
        call_ms.push(started.elapsed().as_secs_f64() * 1e3);
        let token = created["token"]["key"].as_str().expect("key").to_string();
        let id = created["token"]["id"].to_string();
        created_ms.push(wait(&token, true, started));
        let started = Instant::now();
        call(
            "deletetokens",
            &[("session", &session), ("password", PASSWORD), ("ids", &id)],
        );
        call_ms.push(started.elapsed().as_secs_f64() * 1e3);
        deleted_ms.push(wait(&token, false, started));
    }
    let after = bytes();
    let per_change = |b: u64| b as f64 / (2 * changes) as f64;
    Fleet {
        label: label.to_string(),
        created_ms,
        deleted_ms,
        call_ms,
        pushed_bytes: per_change(after.0 - before.0),
        pulled_bytes: per_change(after.1 - before.1),
    }
}

/// A counter from Envoy's text statistics (0 when absent).
fn counter(stats: &str, name: &str) -> u64 {
    stats
        .lines()
        .find_map(|l| {
            l.strip_prefix(name)?
                .strip_prefix(": ")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}
