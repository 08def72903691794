//! `pat-admin publish` at 1,000,000 tokens against one edge.

use std::fmt::Write as _;
use std::process::Command;
use std::time::Instant;

use pat_e2e::release_binary;

use crate::Bench;
use crate::data::seed_admin_store;
use crate::envoys::{Filter, Launch, start_envoy};
use crate::measure::median;

/// Times three publishes from a seeded store.
pub(crate) fn run(bench: &Bench, report: &mut String) {
    let dir = &bench.dir;
    let _tokens = &bench.tokens;
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
}
