//! A benchmark, not part of the test run: sustained token changes per second through the
//! token API with publishing on, on SQLite with one `serve` replica and on PostgreSQL with
//! one and three, side by side in one run, and how long a removal takes to be enforced.
//!
//! ```sh
//! PAT_TEST_POSTGRES=postgres://postgres@127.0.0.1:55432 \
//!     cargo test --release -p pat-admin --test store_bench -- --ignored --nocapture
//! ```
//!
//! (`scripts/bench` runs it, with its own throwaway PostgreSQL.) Every replica serves the
//! API on one store; each client is an account of its own from a client address of its own
//! (one password check at a time per account and per address), changing its token with
//! `EditToken` (password confirmed with argon2id, committed, a delta signed in the same
//! transaction, pushed to the edge before the answer) over the replicas in turn. The edge
//! runs the filter's own control endpoint natively (`support::edge`). Then 40 removals
//! (`DeleteTokens`), each timed from the request until the edge no longer holds the token:
//! publish → enforced.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use pat_core::token::TokenHash;
use support::edge::FakeEdge;
use support::*;

/// How long each configuration changes tokens (`PAT_BENCH_STORE_SECONDS`, default 10).
fn run_for() -> Duration {
    Duration::from_secs(
        std::env::var("PAT_BENCH_STORE_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(10),
    )
}
const SCOPE: &[&str] = &["--method", "environment.control.stopenv"];

/// `POST` a token method with a form body from client address `client`.
fn call(port: u16, method: &str, form: &str, client: &str) -> serde_json::Value {
    let reply = http_request(
        port,
        "POST",
        &format!("/1.0/users/authentication/rest/{method}"),
        &format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nx-test-client: {client}\r\n",
            form.len()
        ),
        form.as_bytes(),
    );
    serde_json::from_slice(&reply.body).unwrap_or(serde_json::Value::Null)
}

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

struct Row {
    label: String,
    clients: usize,
    changes: u64,
    refused: u64,
    per_second: f64,
    p50: Duration,
    p99: Duration,
    enforced_p50: Duration,
    enforced_p99: Duration,
}

fn run(label: &str, admin: Admin, replicas: usize, clients: usize) -> Row {
    let pw = PASSWORD.replace(' ', "+");
    let key = admin.key();
    let edge = FakeEdge::start(&key);
    admin.run(&["edge", "add", &edge.url()]).ok();
    let names: Vec<String> = (0..clients).map(|i| format!("bench{i}")).collect();
    let mut tokens = Vec::new();
    for name in &names {
        admin.user(name);
        tokens.push(admin.token(name, SCOPE).0);
    }
    let servers: Vec<Server> = (0..replicas).map(|_| admin.serve_api()).collect();
    let ports: Vec<u16> = servers.iter().map(|s| s.api_port.expect("api")).collect();
    let sessions: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let answer = call(
                ports[i % ports.len()],
                "signin",
                &format!("login={name}&password={pw}"),
                &format!("10.1.0.{i}"),
            );
            answer["session"].as_str().expect("session").to_string()
        })
        .collect();

    let stop = AtomicBool::new(false);
    let changes = AtomicU64::new(0);
    let refused = AtomicU64::new(0);
    let started = Instant::now();
    let latencies: Vec<Duration> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..clients)
            .map(|i| {
                let (stop, changes, refused) = (&stop, &changes, &refused);
                let (ports, sessions, tokens, pw) = (&ports, &sessions, &tokens, &pw);
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    let mut n = 0usize;
                    while !stop.load(Ordering::Relaxed) {
                        let port = ports[(i + n) % ports.len()];
                        n += 1;
                        let t = Instant::now();
                        let answer = call(
                            port,
                            "edittoken",
                            &format!(
                                "session={}&id={}&description=edit+{n}&password={pw}",
                                sessions[i], tokens[i]
                            ),
                            &format!("10.1.0.{i}"),
                        );
                        if answer["result"] == 0 {
                            mine.push(t.elapsed());
                            changes.fetch_add(1, Ordering::Relaxed);
                        } else {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    mine
                })
            })
            .collect();
        std::thread::sleep(run_for());
        stop.store(true, Ordering::Relaxed);
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("worker"))
            .collect()
    });
    let elapsed = started.elapsed();
    let changes = changes.load(Ordering::Relaxed);

    // Publish → enforced: removals, each timed until the edge no longer holds the token.
    let mut enforced = Vec::new();
    for r in 0..40 {
        let i = r % clients;
        let (id, value) = admin.token(&names[i], SCOPE);
        let hash = TokenHash::of(&value);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !edge.with_state(|s| s.is_some_and(|s| s.find(&hash).is_some())) {
            assert!(
                Instant::now() < deadline,
                "the new token never reached the edge"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let t = Instant::now();
        let answer = call(
            ports[r % ports.len()],
            "deletetokens",
            &format!("session={}&ids={id}&password={pw}", sessions[i]),
            &format!("10.1.0.{i}"),
        );
        assert_eq!(answer["result"], 0, "{answer}");
        while edge.with_state(|s| s.is_some_and(|s| s.find(&hash).is_some())) {
            assert!(
                Instant::now() < deadline,
                "the removal never reached the edge"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        enforced.push(t.elapsed());
    }
    drop(servers);
    Row {
        label: label.into(),
        clients,
        changes,
        refused: refused.load(Ordering::Relaxed),
        per_second: changes as f64 / elapsed.as_secs_f64(),
        p50: percentile(latencies.clone(), 0.5),
        p99: percentile(latencies, 0.99),
        enforced_p50: percentile(enforced.clone(), 0.5),
        enforced_p99: percentile(enforced, 0.99),
    }
}

fn postgres() -> Admin {
    Admin {
        dir: tempfile::TempDir::new().expect("temp dir"),
        pg: Some(PgDatabase::create()),
    }
}

#[test]
#[ignore = "a benchmark: run it with --ignored --nocapture (scripts/bench does)"]
fn token_changes_per_second_on_each_store() {
    let has_pg = std::env::var_os("PAT_TEST_POSTGRES").is_some();
    let mut rows = Vec::new();
    for clients in [4, 12] {
        rows.push(run("SQLite, 1 replica", Admin::sqlite(), 1, clients));
        if has_pg {
            rows.push(run("PostgreSQL, 1 replica", postgres(), 1, clients));
            rows.push(run("PostgreSQL, 3 replicas", postgres(), 3, clients));
        }
    }
    let ms = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1000.0);
    println!(
        "\n| store | clients | changes/s | changes | refused | change p50 ms | change p99 ms | removal enforced p50 ms | p99 ms |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for r in &rows {
        println!(
            "| {} | {} | {:.1} | {} | {} | {} | {} | {} | {} |",
            r.label,
            r.clients,
            r.per_second,
            r.changes,
            r.refused,
            ms(r.p50),
            ms(r.p99),
            ms(r.enforced_p50),
            ms(r.enforced_p99)
        );
    }
    if !has_pg {
        println!("(PAT_TEST_POSTGRES is not set: SQLite only)");
    }
    assert!(
        rows.iter().all(|r| r.changes > 0),
        "every configuration made changes"
    );
}
