//! Publish → effective on every worker, apply time and memory per VM.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::data::{push, snapshot};
use crate::envoys::{Filter, Launch, start_envoy};
use crate::measure::{median, percentile, rss_kib, setting};
use crate::{Bench, get};

/// Revokes a token repeatedly at 1,000 and 1,000,000 tokens; `rss_growth_kib` is the one-worker
/// growth measured by the throughput run.
pub(crate) fn run(bench: &Bench, rss_growth_kib: Option<u64>, report: &mut String) {
    let revocations = setting("PAT_BENCH_REVOCATIONS", 10) as usize;
    let dir = &bench.dir;
    let client = &bench.client;
    let tokens = &bench.tokens;
    let public_key = &bench.public_key;
    let token = &bench.token;
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
        let size = snapshot(tokens, version, fillers - 1, true).len();
        let rss_before = rss_kib(envoy.proc.pid());
        push(client, &envoy, snapshot(tokens, version, fillers - 1, true));
        let url = format!("http://127.0.0.1:{}{}", envoy.public, get(token));
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
            let revoked = snapshot(tokens, version, fillers - 1, false);
            let started = Instant::now();
            push(client, &envoy, revoked);
            while !all(true) {
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "revocation never took effect"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            times.push(started.elapsed().as_secs_f64() * 1e3);
            version += 1;
            push(client, &envoy, snapshot(tokens, version, fillers - 1, true));
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
}
