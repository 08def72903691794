//! Cost per request side by side: CPU time, requests/s and latency under wrk, in alternating rounds.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use crate::data::{push, snapshot};
use crate::envoys::{Filter, Launch, Setup, start_envoy};
use crate::instructions::{SHIPPED, headline};
use crate::measure::{cpu_ns, median, rss_kib, setting, start, wrk};
use crate::shipped::{Front, PatChange};
use crate::{Bench, PATH, get};

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

/// Measures every configuration; returns the Envoy RSS growth (KiB) after the 1,000,000-token push.
pub(crate) fn run(bench: &Bench, report: &mut String) -> u64 {
    let rounds = setting("PAT_BENCH_ROUNDS", 5) as usize;
    let seconds = setting("PAT_BENCH_SECONDS", 5);
    let connections = setting("PAT_BENCH_CONNECTIONS", 16);
    let dir = &bench.dir;
    let client = &bench.client;
    let tokens = &bench.tokens;
    let public_key = &bench.public_key;
    let token = &bench.token;
    let unknown = &bench.unknown;
    let api_keys = &bench.api_keys;
    eprintln!(
        "starting the Envoys (the shipped configuration, one worker each, pinned to CPU 0)..."
    );
    let keys = bench.keys();
    let shipped = |front: Front| Setup::Shipped(front, keys.clone());
    let pat = shipped(Front::Pat(PatChange::AsShipped));
    let configs: Vec<(&str, Setup, usize)> = vec![
        ("none", shipped(Front::None), 0),
        ("empty", shipped(Front::EmptyWasm), 0),
        (
            "api_key_auth",
            shipped(Front::ApiKeyAuth(api_keys.clone())),
            0,
        ),
        ("pat-1k", pat.clone(), 1_000),
        ("pat-100k", pat.clone(), 100_000),
        ("pat-1m", pat, 1_000_000),
        (
            "pat-1m-no-strip",
            shipped(Front::Pat(PatChange::NoStrip)),
            1_000_000,
        ),
    ];
    let mut envoys = Vec::new();
    let mut origins = Vec::new();
    for (name, setup, fillers) in &configs {
        let bytes = (*fillers > 0).then(|| snapshot(tokens, 1, fillers - 1, true));
        let (envoy, origin) = start(
            dir.path(),
            name,
            setup,
            bytes.as_ref(),
            client,
            Launch::Pinned("0"),
        );
        envoys.push(envoy);
        origins.push(origin);
    }
    // What a 1,000,000-token snapshot adds to Envoy's memory: pushed to a minimal Envoy (the
    // shipped ones fetch theirs as they start).
    let rss_growth_kib = {
        let envoy = start_envoy(
            dir.path(),
            "rss",
            &Filter::Pat(public_key.clone()),
            1,
            Launch::Pinned("0"),
        );
        let before = rss_kib(envoy.proc.pid());
        push(client, &envoy, snapshot(tokens, 1, 999_999, true));
        std::thread::sleep(Duration::from_secs(1));
        rss_kib(envoy.proc.pid()).saturating_sub(before)
    };

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
        v(SHIPPED, 5, get(token), None, (200, r#"{"result":0}"#)),
        v(
            "1. no filter",
            0,
            get(token),
            None,
            (200, r#"{"result":0}"#),
        ),
        v(
            "2. empty proxy-wasm filter",
            1,
            get(token),
            None,
            (200, r#"{"result":0}"#),
        ),
        v(
            "3. api_key_auth (1,000 keys, query `session`)",
            2,
            get(token),
            None,
            (200, r#"{"result":0}"#),
        ),
        v(
            "4. pat-edge, 1,000 tokens, GET",
            3,
            get(token),
            None,
            (200, r#"{"result":0}"#),
        ),
        v(
            "4. pat-edge, 100,000 tokens, GET",
            4,
            get(token),
            None,
            (200, r#"{"result":0}"#),
        ),
        v(
            "4. pat-edge, 1,000,000 tokens, GET, without strip_token",
            6,
            get(token),
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
    let (floor, wasm_floor, native) = (cpu(1), cpu(2), cpu(3));
    let _ = writeln!(
        report,
        "## Cost per request (the shipped envoy.yaml, Envoy 1 worker on CPU 0, wrk on CPU 1, direct_response upstream)\n"
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
            headline(&variant.label),
            c - floor,
            c / floor,
            c - wasm_floor,
            c / wasm_floor,
            c - native,
            c / native,
            rps(i),
            (rps(i) / rps(2) - 1.0) * 100.0,
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
    drop(origins);
    rss_growth_kib
}
