//! How accurate the per-token rate limits are: one Envoy with two workers running the
//! filter, a token limited to 50/s and one limited to 500/s each asked as fast as several
//! keep-alive connections can for 10 s, allowed requests counted per second; once with the
//! budget in shared data (`rate_limits.budget` `shared`, the default) and once split per
//! worker (`per_worker`, `workers` 2), where a client gets the share of the workers its
//! connections land on (Envoy's listener spreads connections over its workers, here by the
//! kernel's `SO_REUSEPORT` hash): that spread is read from Envoy's per-worker listener stats.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use pat_core::rate::RateLimit;
use pat_core::token::Token;

use crate::data::{Limits, push, rate, snapshot_limited};
use crate::envoys::{Envoy, Filter, Launch, start_envoy};
use crate::measure::{median, setting};
use crate::{Bench, get};

/// Envoy's workers (`--concurrency`).
const WORKERS: u32 = 2;

/// What one load run saw.
struct Run {
    /// Allowed (`result` 0) requests in each second.
    allowed: Vec<u64>,
    /// Refused as over the limit (`result` 705), in all.
    limited: u64,
    /// Any other answer (or a broken connection), in all.
    other: u64,
    /// New connections each worker accepted during the run.
    per_worker: Vec<u64>,
}

/// Runs the section: see the module's documentation.
pub(crate) fn run(bench: &Bench, report: &mut String) {
    let seconds = setting("PAT_BENCH_LIMIT_SECONDS", 10);
    let connections = setting("PAT_BENCH_LIMIT_CONNECTIONS", 8) as usize;
    eprintln!("rate limits: allowed per second over {seconds} s, Envoy with {WORKERS} workers...");
    let fast = Token::generate().expect("rng");
    let slow_limit = rate("50/s");
    let fast_limit = rate("500/s");
    let snapshot = snapshot_limited(
        &bench.tokens,
        1,
        1000,
        false,
        Limits {
            envs: None,
            rate_limit: Some(slow_limit),
        },
        &[(
            &fast,
            Limits {
                envs: None,
                rate_limit: Some(fast_limit),
            },
        )],
    );
    let _ = writeln!(
        report,
        "## Rate limits: allowed requests per second (Envoy with {WORKERS} workers)\n"
    );
    let _ = writeln!(
        report,
        "One Envoy (`--concurrency {WORKERS}`, not pinned) running the filter on a minimal listener (`direct_response` behind it); a token limited to 50/s, then another limited to 500/s, asked as fast as the client can (a Rust loop, one thread per keep-alive connection, on the same 2 CPUs) for {seconds} s each, the budget untouched before. Expected: the limit × {seconds} s + the burst (one second's worth), with `per_worker` the share of each worker the client's connections landed on (limit / {WORKERS} × {seconds} s + burst / {WORKERS} for each). Median and range per second over the {seconds} s (the first second holds the burst). Connections per worker: new connections each worker accepted (Envoy's `listener.<address>.worker_N.downstream_cx_total`).\n"
    );
    let _ = writeln!(
        report,
        "| budget | limit | connections (per worker) | requests/s asked | expected allowed | allowed in {seconds} s | vs expected | allowed/s median (min–max) | refused (705) | other |"
    );
    let _ = writeln!(
        report,
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    let budgets = [
        (
            "`shared`",
            String::from(r#""rate_limits":{"budget":"shared"}"#),
        ),
        (
            "`per_worker`",
            format!(r#""rate_limits":{{"budget":"per_worker","workers":{WORKERS}}}"#),
        ),
    ];
    for (name, members) in budgets {
        let envoy = start_envoy(
            bench.dir.path(),
            &format!("limits-{}", name.trim_matches('`')),
            &Filter::PatWith(bench.public_key.clone(), members),
            WORKERS,
            Launch::Free,
        );
        push(&bench.client, &envoy, snapshot.clone());
        let mut runs = vec![
            (bench.token.clone(), slow_limit, connections),
            (fast.expose().to_string(), fast_limit, connections),
        ];
        if name == "`per_worker`" {
            // One connection lands on one worker: the client gets that worker's share.
            runs.push((bench.token.clone(), slow_limit, 1));
            runs.push((fast.expose().to_string(), fast_limit, 1));
        }
        for (i, (token, limit, conns)) in runs.into_iter().enumerate() {
            if i == 2 {
                // The same tokens again: let their budgets refill first.
                std::thread::sleep(Duration::from_secs(2));
            }
            let run = load(&envoy, &get(&token), conns, seconds);
            let row = row(name, limit, conns, seconds, &run, name == "`shared`");
            eprintln!("  {row}");
            let _ = writeln!(report, "{row}");
        }
    }
    let _ = writeln!(report);
}

/// One table row.
fn row(
    budget: &str,
    limit: RateLimit,
    connections: usize,
    seconds: u64,
    run: &Run,
    shared: bool,
) -> String {
    let per_second = f64::from(limit.count()) / f64::from(limit.per().seconds());
    let burst = f64::from(limit.burst());
    let expected = if shared {
        per_second * seconds as f64 + burst
    } else {
        // Each worker with a connection admits its share.
        let workers = f64::from(WORKERS);
        let used = run.per_worker.iter().filter(|n| **n > 0).count() as f64;
        used * (per_second / workers * seconds as f64 + (burst / workers).ceil())
    };
    let total: u64 = run.allowed.iter().sum();
    let asked = (total + run.limited + run.other) as f64 / seconds as f64;
    let per_second_allowed: Vec<f64> = run.allowed.iter().map(|n| *n as f64).collect();
    let min = run.allowed.iter().min().copied().unwrap_or(0);
    let max = run.allowed.iter().max().copied().unwrap_or(0);
    let spread = run
        .per_worker
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(" + ");
    format!(
        "| {budget} | {limit} | {connections} ({spread}) | {asked:.0} | {expected:.0} | {total} | {:+.1}% | {:.0} ({min}–{max}) | {} | {} |",
        (total as f64 / expected - 1.0) * 100.0,
        median(per_second_allowed),
        run.limited,
        run.other
    )
}

/// Asks `path` over `connections` keep-alive connections, one thread each, as fast as they
/// go for `seconds`; counts the answers.
fn load(envoy: &Envoy, path: &str, connections: usize, seconds: u64) -> Run {
    let before = worker_connections(envoy);
    let started = Instant::now();
    let end = started + Duration::from_secs(seconds);
    let threads: Vec<_> = (0..connections)
        .map(|_| {
            let request = format!("GET {path} HTTP/1.1\r\nhost: api.paas.example.com\r\n\r\n");
            let port = envoy.public;
            std::thread::spawn(move || {
                let mut allowed = vec![0u64; seconds as usize];
                let (mut limited, mut other) = (0, 0);
                let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
                stream.set_nodelay(true).expect("nodelay");
                loop {
                    let now = Instant::now();
                    if now >= end {
                        break;
                    }
                    let answer = stream
                        .write_all(request.as_bytes())
                        .ok()
                        .and_then(|()| read_body(&mut stream));
                    let at = started.elapsed().as_secs() as usize;
                    let Some(body) = answer else {
                        other += 1;
                        stream = TcpStream::connect(("127.0.0.1", port)).expect("reconnect");
                        continue;
                    };
                    if at >= allowed.len() {
                        break;
                    }
                    if body.starts_with(r#"{"result":0}"#) {
                        allowed[at] += 1;
                    } else if body.contains(r#""result":705"#) {
                        limited += 1;
                    } else {
                        other += 1;
                    }
                }
                (allowed, limited, other)
            })
        })
        .collect();
    let mut run = Run {
        allowed: vec![0; seconds as usize],
        limited: 0,
        other: 0,
        per_worker: Vec::new(),
    };
    for thread in threads {
        let (allowed, limited, other) = thread.join().expect("load thread");
        for (total, n) in run.allowed.iter_mut().zip(allowed) {
            *total += n;
        }
        run.limited += limited;
        run.other += other;
    }
    let after = worker_connections(envoy);
    run.per_worker = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    run
}

/// Reads one HTTP/1.1 answer (with `content-length`) and returns its body.
fn read_body(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())?;
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(String::from_utf8_lossy(&buf[head_end..head_end + length]).into_owned())
}

/// Connections each worker of the public listener accepted so far.
fn worker_connections(envoy: &Envoy) -> Vec<u64> {
    let stats = reqwest::blocking::get(format!(
        "http://127.0.0.1:{}/stats?filter=downstream_cx_total",
        envoy.admin
    ))
    .and_then(|r| r.text())
    .unwrap_or_default();
    (0..WORKERS)
        .map(|w| {
            let name = format!(
                "listener.127.0.0.1_{}.worker_{w}.downstream_cx_total: ",
                envoy.public
            );
            stats
                .lines()
                .find_map(|l| l.strip_prefix(&name))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        })
        .collect()
}
