//! Publish → enforced on every worker, full snapshots side by side with deltas; a burst of
//! changes; apply time and memory per VM.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use pat_core::snapshot::Base;
use pat_core::token::Token;

use crate::data::{Change, base_after, delta, full, push};
use crate::envoys::{Envoy, Filter, Launch, start_envoy};
use crate::measure::{median, percentile, rss_kib, setting};
use crate::{Bench, get};

/// Tokens revoked one by one in the burst.
const BURST: usize = 100;

/// What one Envoy measured at one size.
struct Measured {
    tokens: usize,
    full_bytes: usize,
    full_ms: Vec<f64>,
    delta_bytes: Vec<usize>,
    delta_ms: Vec<f64>,
    /// Last push of the burst → its change enforced everywhere.
    burst_ms: f64,
    /// How long the 100 pushes took.
    burst_span_ms: f64,
    log: Vec<String>,
}

/// Revokes a token repeatedly at 1,000 and 1,000,000 tokens, by full snapshots (as before
/// deltas) and by deltas; then a burst; `rss_growth_kib` is the one-worker growth measured by
/// the throughput run.
pub(crate) fn run(bench: &Bench, rss_growth_kib: Option<u64>, report: &mut String) {
    let revocations = setting("PAT_BENCH_REVOCATIONS", 10) as usize;
    eprintln!("publish → enforced on every worker (Envoy with 2 workers)...");
    let burst: Vec<Token> = (0..BURST)
        .map(|_| Token::generate().expect("rng"))
        .collect();
    let mut rss_growth_2w_kib = 0;
    let mut measured = Vec::new();
    for size in [1_000usize, 1_000_000] {
        let (m, rss) = measure(bench, size, revocations, &burst);
        if size == 1_000_000 {
            rss_growth_2w_kib = rss;
        }
        measured.push(m);
    }

    let _ = writeln!(
        report,
        "## Publish → enforced on every worker: full snapshots and deltas (Envoy with 2 workers)\n"
    );
    let _ = writeln!(
        report,
        "From the start of the PUT that revokes a token until 24 requests on fresh connections all see it denied (polled every 10 ms), over {revocations} revocations each: by a full snapshot of every token (how every change shipped before deltas), and by a signed delta naming its base. Apply, as each VM logs it: the control listener's VM that received the push (verify, publish to shared data) and each worker VM (copy from shared data, verify, apply; they check shared data every 20 ms). Targets: a delta ≤ 4 KB, ≤ 100 ms p99, ≤ 5 ms per VM.\n"
    );
    let _ = writeln!(
        report,
        "| tokens | change shipped as | bytes on the wire | p50 ms | p99 ms | max ms | control VM: verify + publish (median ms) | each worker VM: apply (median ms) |"
    );
    let _ = writeln!(
        report,
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for m in &measured {
        let tokens = m.tokens;
        for (what, bytes, times, kind) in [
            ("full snapshot", m.full_bytes, &m.full_ms, ApplyKind::Full),
            (
                "delta",
                m.delta_bytes.iter().copied().max().unwrap_or(0),
                &m.delta_ms,
                ApplyKind::Delta,
            ),
        ] {
            let pushed = applied(&m.log, "push accepted", kind, tokens);
            let other = applied(&m.log, "serving version", kind, tokens);
            let _ = writeln!(
                report,
                "| {tokens} | {what} | {bytes} | {:.0} | {:.0} | {:.0} | {} | {} |",
                percentile(times.clone(), 50.0),
                percentile(times.clone(), 99.0),
                times.iter().copied().fold(0.0, f64::max),
                median_or_none(&pushed),
                median_or_none(&other),
            );
        }
    }

    let _ = writeln!(
        report,
        "\n## A burst: {BURST} changes in one second\n\n{BURST} tokens revoked by {BURST} deltas pushed 10 ms apart; from the last push until its change is enforced on every worker (24 fresh connections), then all {BURST} checked denied. Target: ≤ 1 s.\n"
    );
    let _ = writeln!(
        report,
        "| tokens | pushes took ms | last push → enforced everywhere ms |"
    );
    let _ = writeln!(report, "| ---: | ---: | ---: |");
    for m in &measured {
        let _ = writeln!(
            report,
            "| {} | {:.0} | {:.0} |",
            m.tokens, m.burst_span_ms, m.burst_ms
        );
    }

    let _ = writeln!(report, "\n## Memory at 1,000,000 tokens\n");
    if let Some(m) = measured.last() {
        let memory: Vec<f64> = m
            .log
            .iter()
            .filter(|l| is_size(l, m.tokens))
            .filter_map(|l| number_after(l, "VM memory "))
            .collect();
        if !memory.is_empty() {
            let max = memory.iter().copied().fold(0.0, f64::max);
            let _ = writeln!(
                report,
                "- VM linear memory at 1,000,000 tokens (everything in the VM: the records, users and scopes, the deltas' overlay, the allocator's and the SDK's state; wasm memory never shrinks, so this is the high-water mark): max {:.1} MB = {:.1} bytes per token per VM (target ≤ 64, aim 40), over {} applies",
                max / 1e6,
                max / m.tokens as f64,
                memory.len()
            );
        }
    }
    // The one-worker figure comes from the throughput section; without it, only two workers.
    match rss_growth_kib {
        Some(rss_growth_kib) => {
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
        }
        None => {
            let _ = writeln!(
                report,
                "- Envoy RSS growth after the first 1,000,000-token push, 2 workers: {:.1} MB",
                rss_growth_2w_kib as f64 / 1024.0
            );
        }
    }
    let _ = writeln!(report);
}

/// One size: an Envoy with two workers, revocations by full snapshots, then by deltas, then
/// the burst. Returns the measurements and the RSS growth after the first push.
fn measure(bench: &Bench, size: usize, revocations: usize, burst: &[Token]) -> (Measured, u64) {
    let (client, tokens) = (&bench.client, &bench.tokens);
    let envoy = start_envoy(
        bench.dir.path(),
        &format!("effective-{size}"),
        &Filter::Pat(bench.public_key.clone()),
        2,
        Launch::Free,
    );
    let fillers = size - 1 - burst.len();
    let url = format!("http://127.0.0.1:{}{}", envoy.public, get(&bench.token));
    let mut version = 1;
    let first = full(tokens, version, fillers, true, burst);
    let full_bytes = first.bytes.len();
    let rss_before = rss_kib(envoy.proc.pid());
    push(client, &envoy, first.bytes);
    // Both workers serve the token before each revocation.
    assert!(served(client, &url, false));
    let mut rss_growth = 0;
    if size == 1_000_000 {
        std::thread::sleep(Duration::from_secs(1));
        rss_growth = rss_kib(envoy.proc.pid()).saturating_sub(rss_before);
    }

    // Full snapshots: every change ships every token.
    let mut full_ms = Vec::new();
    for _ in 0..revocations {
        version += 1;
        let revoked = full(tokens, version, fillers, false, burst).bytes;
        full_ms.push(until_denied(client, &envoy, &url, revoked));
        version += 1;
        push(
            client,
            &envoy,
            full(tokens, version, fillers, true, burst).bytes,
        );
        assert!(served(client, &url, false));
    }

    // Deltas on top of the last full snapshot.
    let mut base = {
        // The last full snapshot pushed is rebuilt to learn its state id.
        version += 1;
        let start = full(tokens, version, fillers, true, burst);
        let base = base_after(version, &start);
        push(client, &envoy, start.bytes);
        assert!(served(client, &url, false));
        base
    };
    let (mut delta_ms, mut delta_bytes) = (Vec::new(), Vec::new());
    let real = tokens.real.hash();
    let count = size as u32;
    for _ in 0..revocations {
        let revoke = delta(tokens, base, Change::Remove(&real), count - 1);
        base = next(base, &revoke);
        delta_bytes.push(revoke.bytes.len());
        delta_ms.push(until_denied(client, &envoy, &url, revoke.bytes));
        let restore = delta(tokens, base, Change::AddReal, count);
        base = next(base, &restore);
        push(client, &envoy, restore.bytes);
        assert!(served(client, &url, false));
    }

    // The burst: BURST deltas, 10 ms apart.
    let started = Instant::now();
    let mut last_pushed = started;
    for (i, t) in burst.iter().enumerate() {
        let hash = t.hash();
        let d = delta(tokens, base, Change::Remove(&hash), count - 1 - i as u32);
        base = next(base, &d);
        let due = started + Duration::from_millis(10 * i as u64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        last_pushed = Instant::now();
        push(client, &envoy, d.bytes);
    }
    let burst_span_ms = last_pushed.duration_since(started).as_secs_f64() * 1e3;
    let last_url = format!(
        "http://127.0.0.1:{}{}",
        envoy.public,
        get(burst[burst.len() - 1].expose())
    );
    while !all(client, &last_url, true) {
        assert!(
            last_pushed.elapsed() < Duration::from_secs(10),
            "the burst never took effect"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let burst_ms = last_pushed.elapsed().as_secs_f64() * 1e3;
    for t in burst {
        let url = format!("http://127.0.0.1:{}{}", envoy.public, get(t.expose()));
        assert!(
            all(client, &url, true),
            "a token of the burst is still served"
        );
    }
    let log = std::fs::read_to_string(&envoy.log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    (
        Measured {
            tokens: size,
            full_bytes,
            full_ms,
            delta_bytes,
            delta_ms,
            burst_ms,
            burst_span_ms,
            log,
        },
        rss_growth,
    )
}

/// The base after a delta on `base`.
fn next(base: Base, delta: &pat_core::snapshot::Built) -> Base {
    base_after(base.version + 1, delta)
}

/// Whether 24 requests on fresh connections all see the token denied (or all allowed).
fn all(client: &reqwest::blocking::Client, url: &str, denied: bool) -> bool {
    (0..24).all(|_| {
        client
            .get(url)
            .send()
            .and_then(|r| r.text())
            .is_ok_and(|body| body.contains("\"result\":701") == denied)
    })
}

/// Waits (10 s at most) until every worker serves the token as `denied` says.
fn served(client: &reqwest::blocking::Client, url: &str, denied: bool) -> bool {
    pat_e2e::within(Duration::from_secs(10), || all(client, url, denied)).is_some()
}

/// Pushes `bytes` and returns the milliseconds until every worker denies the token.
fn until_denied(
    client: &reqwest::blocking::Client,
    envoy: &Envoy,
    url: &str,
    bytes: Vec<u8>,
) -> f64 {
    let started = Instant::now();
    push(client, envoy, bytes);
    while !all(client, url, true) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "revocation never took effect"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    started.elapsed().as_secs_f64() * 1e3
}

/// Which applies to pick from the log.
#[derive(Clone, Copy)]
enum ApplyKind {
    Full,
    Delta,
}

/// Whether a log line is about a state of about `size` tokens (the revocations and the burst
/// take a few away).
fn is_size(line: &str, size: usize) -> bool {
    // "… version 4 (999999 tokens, …" and "… version 4 (999999 tokens), …"
    line.split(" tokens")
        .next()
        .and_then(|head| head.rsplit('(').next())
        .and_then(|n| n.parse::<usize>().ok())
        .is_some_and(|n| n + 1 + BURST >= size && n <= size)
}

/// The apply times (ms) the filter logged with `marker` for `kind` documents.
fn applied(log: &[String], marker: &str, kind: ApplyKind, size: usize) -> Vec<f64> {
    log.iter()
        .filter(|l| l.contains(marker) && is_size(l, size))
        .filter(|l| match kind {
            // "push accepted: full snapshot …", "serving … applied the full snapshot in …"
            ApplyKind::Full => l.contains("full snapshot"),
            ApplyKind::Delta => {
                l.contains("push accepted: delta") || l.contains("applied 1 delta(s)")
            }
        })
        .filter_map(|l| {
            number_after(l, "published in ").or_else(|| {
                l.split(") in ")
                    .nth(1)
                    .or_else(|| l.split("snapshot in ").nth(1))?
                    .split(' ')
                    .next()?
                    .parse()
                    .ok()
            })
        })
        .collect()
}

/// The number right after `marker` in a line.
fn number_after(line: &str, marker: &str) -> Option<f64> {
    line.split(marker).nth(1)?.split(' ').next()?.parse().ok()
}

/// "median (n)" or "no samples".
fn median_or_none(v: &[f64]) -> String {
    if v.is_empty() {
        "no samples".into()
    } else {
        format!("{:.2} ({} applies)", median(v.to_vec()), v.len())
    }
}
