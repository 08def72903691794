//! What the pat-edge filter costs in real Envoy, side by side with the alternatives, in one run.
//!
//! Run it with `scripts/bench` (it installs wrk, builds, runs this and writes BENCHMARKS.md).
//! Settings: `PAT_BENCH_ROUNDS` (default 5), `PAT_BENCH_SECONDS` per measurement (default 5),
//! `PAT_BENCH_CONNECTIONS` (default 16), `PAT_BENCH_REVOCATIONS` (default 10),
//! `PAT_BENCH_COUNTED` requests per callgrind count (default 1000; 0 skips the counts),
//! `PAT_BENCH_ONLY` (comma-separated sections to run: `throughput`, `instructions`,
//! `alternatives`, `strip`, `probes`, `effective`, `limits`, `attacks`, `admin`, `fleet`;
//! default all),
//! `PAT_BENCH_ROWS` (instruction-count rows, by label, `;`-separated), `PAT_BENCH_WASM_DIR` (the
//! `.wasm` files to run, default `target/wasm32-wasip1/release`).
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
//! `limits`: how accurate the per-token rate limits are, on an Envoy with two workers: a
//! token limited to 50/s and one limited to 500/s asked as fast as several connections can
//! for 10 s, allowed requests per second against the limit, with each budget (`shared`,
//! `per_worker`), and how the connections spread over the workers.
//!
//! Each section's output is between `<!-- name -->` and `<!-- /name -->` (the instruction
//! table only when every row was counted; the environments-and-rate-limits table has its
//! own, `restrictions`): `scripts/bench` splices a partial run's sections into
//! BENCHMARKS.md by these markers.
//!
//! Then, on an Envoy with two workers: publish → enforced on every worker (PUT of a full
//! snapshot, or of a delta, that revokes a token until fresh connections all see it denied),
//! at 1,000 and 1,000,000 tokens, and a burst of 100 deltas in one second; the apply time
//! each VM logs; memory per token; what attacks cost (garbage pushes, trickled multipart
//! bodies); `pat-admin publish` (build, sign, push) at 1,000,000 tokens; and one origin
//! feeding 8 Envoys, changes made through the token API.
//!
//! # Layout
//! - `envoys`: the configurations under test and how an Envoy is started;
//! - `data`: the key, tokens and snapshots, and a seeded pat-admin store;
//! - `measure`: statistics, CPU time and RSS, wrk, callgrind counts;
//! - `shipped`: the shipped configuration (`envoy.yaml` itself) with a filter of choice;
//!   `origin`: the stand-in origin that feeds its pat-edge;
//! - one module per section of the report: `throughput`, `instructions` (and the strip's
//!   probe), `alternatives` (ext_authz over HTTP and gRPC to `e2e/authz-service`, Lua),
//!   `effective`, `hardening`, `admin_publish`, `fleet`.

mod admin_publish;
mod alternatives;
mod data;
mod effective;
mod envoys;
mod fleet;
mod hardening;
mod instructions;
mod limits;
mod measure;
mod origin;
mod shipped;
mod throughput;

use pat_core::keys::SigningKey;
use pat_core::token::Token;

use data::Tokens;

const PATH: &str = "/1.0/environment/control/rest/stopenv";

/// A GET of the benchmarked method with this `session`.
fn get(session: &str) -> String {
    format!("{PATH}?envName=my-project&session={session}")
}

/// What every section shares.
struct Bench {
    dir: tempfile::TempDir,
    client: reqwest::blocking::Client,
    tokens: Tokens,
    /// The key the edges trust, as configured.
    public_key: String,
    /// An edge key's secret text, for configurations that sign usage reports.
    edge_key: String,
    /// The valid token's value.
    token: String,
    /// A well-formed token no snapshot holds.
    unknown: Token,
    /// `api_key_auth`'s keys: 999 others and the token.
    api_keys: Vec<String>,
    /// What a section found wrong (an assertion on its figures): the report is still
    /// printed, then the run fails.
    failures: std::cell::RefCell<Vec<String>>,
}

impl Bench {
    /// Records a failed assertion about the figures.
    fn fail(&self, what: String) {
        eprintln!("FAILED: {what}");
        self.failures.borrow_mut().push(what);
    }

    /// The keys an Envoy of the shipped configuration gets.
    fn keys(&self) -> envoys::Keys {
        envoys::Keys {
            public: self.public_key.clone(),
            edge: self.edge_key.clone(),
        }
    }
}

fn main() {
    let tokens = Tokens {
        key: SigningKey::generate().expect("rng"),
        real: Token::generate().expect("rng"),
    };
    let token = tokens.real.expose().to_string();
    let bench = Bench {
        dir: tempfile::TempDir::new().expect("temp dir"),
        client: reqwest::blocking::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .expect("client"),
        public_key: tokens.key.public_key().to_string(),
        edge_key: SigningKey::generate()
            .expect("rng")
            .to_secret_text()
            .trim()
            .to_string(),
        api_keys: (0..999)
            .map(|i| format!("apikey-{i:04}-{:x}", i * 7919))
            .chain([token.clone()])
            .collect(),
        token,
        unknown: Token::generate().expect("rng"),
        tokens,
        failures: Default::default(),
    };
    let only = std::env::var("PAT_BENCH_ONLY").unwrap_or_default();
    let wanted = |section: &str| only.is_empty() || only.split(',').any(|s| s.trim() == section);
    let mut report = String::new();
    let mut rss_growth_kib = None;
    let marked = |name: &str, report: &mut String, run: &mut dyn FnMut(&mut String)| {
        if wanted(name) {
            report.push_str(&format!("<!-- {name} -->\n"));
            run(report);
            report.push_str(&format!("<!-- /{name} -->\n"));
        }
    };
    marked("throughput", &mut report, &mut |r| {
        rss_growth_kib = Some(throughput::run(&bench, r));
    });
    let mut overhead = None;
    if wanted("instructions") {
        // A table of some rows only would replace the whole one: unmarked.
        let every_row = std::env::var("PAT_BENCH_ROWS").map_or(true, |r| r.trim().is_empty());
        if every_row {
            report.push_str("<!-- instructions -->\n");
        }
        overhead = instructions::run(&bench, &mut report);
        if every_row {
            report.push_str("<!-- /instructions -->\n");
        }
    }
    marked("alternatives", &mut report, &mut |r| {
        alternatives::run(&bench, r)
    });
    marked("strip", &mut report, &mut |r| {
        instructions::strip_costs(&bench, r)
    });
    marked("probes", &mut report, &mut |r| {
        instructions::probe_costs(&bench, overhead, r)
    });
    marked("effective", &mut report, &mut |r| {
        effective::run(&bench, rss_growth_kib, r)
    });
    marked("limits", &mut report, &mut |r| limits::run(&bench, r));
    marked("attacks", &mut report, &mut |r| hardening::run(&bench, r));
    marked("admin", &mut report, &mut |r| admin_publish::run(&bench, r));
    marked("fleet", &mut report, &mut |r| fleet::run(r));
    print!("{report}");
    let failures = bench.failures.borrow();
    if !failures.is_empty() {
        for what in failures.iter() {
            eprintln!("FAILED: {what}");
        }
        std::process::exit(1);
    }
}
