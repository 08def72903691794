//! What the compiled filter costs, measured in the testbed (wasmtime), side by side in one run.
//!
//! Run: `cargo bench -p pat-testbed --bench filter` (after
//! `cargo build --release --target wasm32-wasip1 -p pat-plugin -p testbed-fixture`).
//!
//! Prints, as medians over alternating rounds:
//! - per-request cost of an allowed GET (token in the query) with 1k / 100k / 1M tokens
//!   loaded, next to the same request through the fixture filter (the floor: a filter that
//!   reads one header) and a pass-through request through pat-edge, with ratios;
//! - snapshot apply time at 1M tokens on the VM that receives the push and on a follower;
//! - linear-memory growth per token per VM at 1M tokens.
//!
//! The testbed is not Envoy (wasmtime instead of V8, no network): the absolute numbers are
//! for comparing builds of this filter, the ratios are what carries over. Real-Envoy figures
//! come from the benchmark script of the end-to-end work.

use std::time::{Duration, Instant, UNIX_EPOCH};

use pat_core::keys::SigningKey;
use pat_core::method::MethodName;
use pat_core::snapshot::{SnapshotBuilder, Stamp, StateOf, TokenSpec};
use pat_core::token::{Token, TokenHash};
use pat_testbed::{Plugin, Request, Testbed, wasm_artifact};

const START: u64 = 1_795_780_800;
const ROUNDS: usize = 7;
const REQUESTS: usize = 20_000;
const PATH: &str = "/1.0/environment/control/rest/stopenv";

struct Setup {
    tb: Testbed,
    token: Token,
}

fn snapshot(key: &SigningKey, version: u64, tokens: usize, real: &Token) -> Vec<u8> {
    let scope = [MethodName::parse("environment.Control.StopEnv").expect("valid")];
    let other = [MethodName::parse("environment.Control.GetEnvs").expect("valid")];
    let users: Vec<String> = (0..tokens / 10 + 1)
        .map(|i| format!("user{i}@example.com"))
        .collect();
    let mut b = SnapshotBuilder::new();
    for i in 0..tokens.saturating_sub(1) {
        b.add(TokenSpec {
            hash: TokenHash::of(&format!("filler-{i}")),
            id: 10 + i as u64,
            user: &users[i / 10],
            expires_at: None,
            scope: if i % 2 == 0 { &scope } else { &other },
            networks: &[],
            envs: None,
            rate_limit: None,
        })
        .expect("filler");
    }
    b.add(TokenSpec {
        hash: real.hash(),
        id: 1,
        user: "alice",
        expires_at: None,
        scope: &scope,
        networks: &[],
        envs: None,
        rate_limit: None,
    })
    .expect("real");
    b.build(
        Stamp::lasting(version, START, 7 * 86_400),
        StateOf::Genesis,
        key,
    )
    .expect("build")
    .bytes
}

/// Two worker VMs with the public and control filters, trusting `key`.
fn testbed(key: &SigningKey) -> Testbed {
    Testbed::builder(wasm_artifact("pat_plugin").expect("build the filter"))
        .workers(2)
        .plugin(Plugin::new("public").configuration("{}"))
        .plugin(Plugin::new("control").configuration(r#"{"push":{}}"#))
        .env("PAT_PUBLIC_KEYS", key.public_key().to_string())
        .allow_on_headers_stop_iteration(true)
        .buffer_limit(256 << 20)
        .start_time(UNIX_EPOCH + Duration::from_secs(START))
        .build()
        .expect("starts")
}

fn edge(tokens: usize) -> Setup {
    let key = SigningKey::generate().expect("rng");
    let tb = testbed(&key);
    let token = Token::generate().expect("rng");
    let bytes = snapshot(&key, 1, tokens, &token);
    let reply = tb
        .vm(0)
        .send_to("control", Request::put("/_pat/snapshot").body(bytes));
    assert_eq!(reply.local_response().expect("answered").status, 200);
    Setup { tb, token }
}

fn time_requests(tb: &Testbed, request: &Request) -> Duration {
    let started = Instant::now();
    let summary = tb.vm(0).run(request, REQUESTS);
    let elapsed = started.elapsed();
    assert_eq!(
        summary.forwarded, REQUESTS,
        "every request is forwarded: {summary:?}"
    );
    elapsed / REQUESTS as u32
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    println!(
        "pat-edge filter in the testbed: medians of {ROUNDS} alternating rounds of {REQUESTS} requests"
    );

    let fixture = Testbed::builder(wasm_artifact("testbed_fixture").expect("build the fixture"))
        .plugin(Plugin::new("fixture"))
        .build()
        .expect("fixture starts");
    let sizes = [1_000usize, 100_000, 1_000_000];
    let setups: Vec<Setup> = sizes.iter().map(|&n| edge(n)).collect();
    let allowed: Vec<Request> = setups
        .iter()
        .map(|s| Request::get(format!("{PATH}?envName=x&session={}", s.token.expose())))
        .collect();
    let floor_request = Request::get(format!("{PATH}?envName=x&session=x"));
    let pass_request = Request::get(format!("{PATH}?envName=x&session=legacy-session"));

    let mut floor = Vec::new();
    let mut pass = Vec::new();
    let mut per_size: Vec<Vec<Duration>> = vec![Vec::new(); sizes.len()];
    for _ in 0..ROUNDS {
        floor.push(time_requests(&fixture, &floor_request));
        pass.push(time_requests(&setups[0].tb, &pass_request));
        for (i, setup) in setups.iter().enumerate() {
            per_size[i].push(time_requests(&setup.tb, &allowed[i]));
        }
    }
    let floor = median(floor);
    let pass = median(pass);
    println!(
        "  fixture filter (floor)            {:>8.2} µs/request",
        floor.as_secs_f64() * 1e6
    );
    println!(
        "  pat-edge, ordinary session        {:>8.2} µs/request  ({:.2}x floor)",
        pass.as_secs_f64() * 1e6,
        pass.as_secs_f64() / floor.as_secs_f64()
    );
    let base = median(per_size[0].clone());
    for (i, &n) in sizes.iter().enumerate() {
        let m = median(per_size[i].clone());
        println!(
            "  pat-edge, allowed, {:>9} tokens {:>8.2} µs/request  ({:.2}x floor, {:.2}x the 1k-token cost)",
            n,
            m.as_secs_f64() * 1e6,
            m.as_secs_f64() / floor.as_secs_f64(),
            m.as_secs_f64() / base.as_secs_f64()
        );
    }
    drop(setups);

    // Apply time and memory at 1M tokens: a fresh edge, warm VMs, several pushes.
    let key = SigningKey::generate().expect("rng");
    let tb = testbed(&key);
    for vm in 0..2 {
        tb.vm(vm).send(Request::get(PATH));
    }
    let baseline: Vec<usize> = (0..2).map(|vm| tb.vm(vm).memory_size()).collect();
    let token = Token::generate().expect("rng");
    let mut push_times = Vec::new();
    let mut follow_times = Vec::new();
    let mut size = 0;
    for version in 1..=5u64 {
        let bytes = snapshot(&key, version, 1_000_000, &token);
        size = bytes.len();
        let started = Instant::now();
        let reply = tb
            .vm(0)
            .send_to("control", Request::put("/_pat/snapshot").body(bytes));
        push_times.push(started.elapsed());
        assert_eq!(reply.local_response().expect("answered").status, 200);
        let started = Instant::now();
        tb.advance(Duration::from_millis(50));
        follow_times.push(started.elapsed());
    }
    println!(
        "1,000,000 tokens: snapshot {size} bytes ({:.1} bytes per token)",
        size as f64 / 1e6
    );
    println!(
        "  push accepted and applied on the receiving VM: median {:>6.0} ms (includes the 57 MB body copy)",
        median(push_times).as_secs_f64() * 1e3
    );
    println!(
        "  applied on a follower VM at its tick:           median {:>6.0} ms",
        median(follow_times).as_secs_f64() * 1e3
    );
    for (vm, before) in baseline.iter().enumerate() {
        let grown = tb.vm(vm).memory_size() - before;
        println!(
            "  vm {vm}: linear memory grew {:.1} MB after 5 snapshots = {:.1} bytes per token",
            grown as f64 / 1e6,
            grown as f64 / 1e6
        );
    }
}
