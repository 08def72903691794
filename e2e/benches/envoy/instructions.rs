//! Instructions per request under callgrind, and what each host call costs (the probe filter).

use std::fmt::Write as _;

use crate::data::{snapshot, snapshot_address_limited};
use crate::envoys::Filter;
use crate::measure::{Counted, idle_instructions_per_second, instructions_per_request, setting};
use crate::{Bench, PATH, get};

/// Counts instructions for every configuration; returns pat-edge's overhead over the empty
/// filter on an allowed GET at 1,000,000 tokens.
pub(crate) fn run(bench: &Bench, report: &mut String) -> Option<f64> {
    let dir = &bench.dir;
    let _client = &bench.client;
    let tokens = &bench.tokens;
    let public_key = &bench.public_key;
    let token = &bench.token;
    let unknown = &bench.unknown;
    let api_keys = &bench.api_keys;
    let counted_requests = setting("PAT_BENCH_COUNTED", 1000) as usize;
    if counted_requests > 0 {
        eprintln!("instructions per request under callgrind (slow: Envoy runs under valgrind)...");
        let ok = r#"{"result":0}"#;
        let pat = Filter::Pat(public_key.clone());
        let one_k = snapshot(tokens, 1, 999, true);
        let one_m = snapshot(tokens, 1, 999_999, true);
        let form = Some(format!("envName=my-project&session={token}"));
        let counted = [
            Counted {
                label: "1. no filter",
                filter: Filter::None,
                snapshot: None,
                path: get(token),
                form: None,
                headers: &[],
                expect: ok,
            },
            Counted {
                label: "2. empty proxy-wasm filter",
                filter: Filter::EmptyWasm,
                snapshot: None,
                path: get(token),
                form: None,
                headers: &[],
                expect: ok,
            },
            Counted {
                label: "3. api_key_auth",
                filter: Filter::ApiKeyAuth(api_keys.clone()),
                snapshot: None,
                path: get(token),
                form: None,
                headers: &[],
                expect: ok,
            },
            Counted {
                label: "4. pat-edge, 1,000 tokens, GET",
                filter: pat.clone(),
                snapshot: Some(one_k),
                path: get(token),
                form: None,
                headers: &[],
                expect: ok,
            },
            Counted {
                label: "4. pat-edge, 1,000,000 tokens, GET",
                filter: pat.clone(),
                snapshot: Some(one_m.clone()),
                path: get(token),
                form: None,
                headers: &[],
                expect: ok,
            },
            Counted {
                label: "4. pat-edge, 1,000,000 tokens, GET, usage recording on",
                filter: Filter::PatUsage(public_key.clone(), bench.edge_key.clone()),
                snapshot: Some(one_m.clone()),
                path: get(token),
                form: None,
                headers: &[],
                expect: ok,
            },
            Counted {
                label: "4. pat-edge, 1,000,000 tokens, GET, token limited to 3 client networks",
                filter: pat.clone(),
                snapshot: Some(snapshot_address_limited(tokens, 1, 999_999)),
                path: get(token),
                form: None,
                headers: &[],
                expect: ok,
            },
            Counted {
                label: "4. pat-edge, 1,000,000 tokens, GET, one combined identity header",
                filter: Filter::PatOneHeader(public_key.clone()),
                snapshot: Some(one_m.clone()),
                path: get(token),
                form: None,
                headers: &[],
                expect: ok,
            },
            Counted {
                label: "5. pat-edge, 1,000,000 tokens, POST form",
                filter: pat.clone(),
                snapshot: Some(one_m.clone()),
                path: PATH.to_string(),
                form,
                headers: &[],
                expect: ok,
            },
            Counted {
                label: "5. pat-edge, 1,000,000 tokens, POST form, session in the query",
                filter: pat.clone(),
                snapshot: Some(one_m.clone()),
                path: get(token),
                form: Some("description=nightly+build".to_string()),
                headers: &[],
                expect: ok,
            },
            Counted {
                label: "6. pat-edge, 1,000,000 tokens, denied: unknown token",
                filter: pat.clone(),
                snapshot: Some(one_m.clone()),
                path: get(unknown.expose()),
                form: None,
                headers: &[],
                expect: r#""result":701"#,
            },
            Counted {
                label: "6. pat-edge, 1,000,000 tokens, denied: wrong scope",
                filter: pat,
                snapshot: Some(one_m.clone()),
                path: format!("/1.0/environment/control/rest/deleteenv?session={token}"),
                form: None,
                headers: &[],
                expect: r#""result":702"#,
            },
            Counted {
                label: "1. no filter, POST form",
                filter: Filter::None,
                snapshot: None,
                path: PATH.to_string(),
                form: Some(format!("envName=my-project&session={token}")),
                headers: &[],
                expect: ok,
            },
            Counted {
                label: "2. empty proxy-wasm filter, POST form",
                filter: Filter::EmptyWasm,
                snapshot: None,
                path: PATH.to_string(),
                form: Some(format!("envName=my-project&session={token}")),
                headers: &[],
                expect: ok,
            },
        ];
        let counts: Vec<f64> = counted
            .iter()
            .map(|what| {
                let count = instructions_per_request(dir.path(), what, counted_requests);
                eprintln!("  {}: {count:.0}", what.label);
                count
            })
            .collect();
        let _ = writeln!(
            report,
            "## Instructions per request (callgrind: deterministic, whatever the machine is doing)\n"
        );
        let _ = writeln!(
            report,
            "Envoy's instructions (all threads) over {counted_requests} requests on one keep-alive connection after 300 warm-up requests, 1 worker, same configurations as above.\n"
        );
        let _ = writeln!(
            report,
            "| configuration | instructions/request | vs no filter | vs empty wasm | vs api_key_auth |"
        );
        let _ = writeln!(report, "| --- | ---: | ---: | ---: | ---: |");
        for (what, count) in counted.iter().zip(&counts) {
            let _ = writeln!(
                report,
                "| {} | {count:.0} | {:+.0} ({:.2}x) | {:+.0} ({:.2}x) | {:+.0} ({:.2}x) |",
                what.label,
                count - counts[0],
                count / counts[0],
                count - counts[1],
                count / counts[1],
                count - counts[2],
                count / counts[2],
            );
        }
        let _ = writeln!(
            report,
            "\nUsage recording (for `lastUsed`: the time and, once per report window, the client address of every allowed request, kept in the VM's memory): {:+.0} instructions per allowed request (target ≤ 1,500).\n",
            counts[5] - counts[4]
        );
        let _ = writeln!(
            report,
            "A token limited to client networks (the client address read, one property call, and matched against 3 networks): {:+.0} instructions per allowed request; tokens without a list do not read it.\n",
            counts[6] - counts[4]
        );

        let _ = writeln!(
            report,
            "One combined identity header (`identity_headers.combined`) instead of two: {:+.0} instructions per allowed request.\n",
            counts[7] - counts[4]
        );
        // Ticks cost per second, not per request: counted on an idle edge.
        let idle_seconds = 10;
        let idle_empty = idle_instructions_per_second(
            dir.path(),
            "empty",
            &Filter::EmptyWasm,
            None,
            idle_seconds,
        );
        let idle_pat = idle_instructions_per_second(
            dir.path(),
            "pat-1m",
            &Filter::Pat(public_key.clone()),
            Some(one_m.clone()),
            idle_seconds,
        );
        eprintln!("  idle: empty {idle_empty:.0}/s, pat-edge {idle_pat:.0}/s");
        let ticks_per_second = 2.0 * 1000.0 / 20.0;
        let _ = writeln!(
            report,
            "The counts above run pat-edge's refresh tick once a second: under callgrind Envoy is about 50× slower, and with the default 20 ms tick each counted request would be charged for the ticks of a second it shares with ~50 requests instead of thousands on a loaded edge. Ticks cost per second, whatever the load: an idle Envoy ({idle_seconds} s, no requests, 1,000,000 tokens, default 20 ms refresh on its two VMs) runs {idle_pat:.0} instructions/s with pat-edge against {idle_empty:.0} with the empty filter: {:+.0}/s, about {:.0} per tick ({ticks_per_second:.0} ticks/s). At 10,000 requests/s that is {:.0} instructions per request.\n",
            idle_pat - idle_empty,
            (idle_pat - idle_empty) / ticks_per_second,
            (idle_pat - idle_empty) / 10_000.0,
        );
        return Some(counts[4] - counts[1]);
    }
    None
}

/// The headers a typical platform client sends besides `host` and `accept` (py-jelastic's
/// `requests`).
const TYPICAL: &[(&str, &str)] = &[
    ("user-agent", "python-requests/2.32.3"),
    ("accept-encoding", "gzip, deflate"),
];

/// A browser's headers on a dashboard call (cookies, client hints, fetch metadata): a large
/// header set.
const LARGE: &[(&str, &str)] = &[
    (
        "user-agent",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    ),
    ("accept-language", "en-GB,en;q=0.9,de;q=0.8,fr;q=0.7"),
    ("accept-encoding", "gzip, deflate, br, zstd"),
    ("referer", "https://app.paas.example.com/tokens/"),
    ("origin", "https://app.paas.example.com"),
    (
        "sec-ch-ua",
        "\"Chromium\";v=\"131\", \"Not_A Brand\";v=\"24\"",
    ),
    ("sec-ch-ua-mobile", "?0"),
    ("sec-ch-ua-platform", "\"Linux\""),
    ("sec-fetch-site", "same-origin"),
    ("sec-fetch-mode", "cors"),
    ("sec-fetch-dest", "empty"),
    ("x-requested-with", "XMLHttpRequest"),
    ("cache-control", "no-cache"),
    ("pragma", "no-cache"),
    ("dnt", "1"),
    (
        "cookie",
        "JSESSIONID=0f4c8a1e2b3d4c5e6f708192a3b4c5d6; lang=en; theme=dark; _ga=GA1.1.1234567890.1733100000; _ga_XYZ=GS1.1.1733100000.3.1.1733100500.0.0.0; consent=necessary%2Canalytics; sidebar=collapsed; tz=Europe%2FBerlin",
    ),
];

/// What each host call the filter makes (or could make instead) costs: the probe filter with
/// the operations against the probe filter with none, for a typical and a large header set.
pub(crate) fn probe_costs(bench: &Bench, overhead: Option<f64>, report: &mut String) {
    let counted_requests = setting("PAT_BENCH_COUNTED", 1000) as usize;
    if counted_requests == 0 {
        return;
    }
    eprintln!("what each host call costs (the probe filter under callgrind)...");
    let ok = r#"{"result":0}"#;
    let forged: Vec<(&str, &str)> = TYPICAL
        .iter()
        .copied()
        .chain([("x-pat-user", "mallory@example.com")])
        .collect();
    let count = |ops: &'static str, headers: &[(&str, &str)]| {
        instructions_per_request(
            bench.dir.path(),
            &Counted {
                label: if ops.is_empty() { "probe" } else { ops },
                filter: Filter::Probe(ops),
                snapshot: None,
                path: get(&bench.token),
                form: None,
                headers,
                expect: ok,
            },
            counted_requests,
        )
    };
    let base_typical = count("", TYPICAL);
    let base_large = count("", LARGE);
    let base_forged = count("", &forged);
    let rows: [(&'static str, &str); 16] = [
        (
            "get_path,get_missing,get_missing",
            "read `:path` and two absent identity headers (three `get_header_map_value`)",
        ),
        (
            "get_pairs",
            "read every header at once (`get_header_map_pairs`, the SDK's `get_map_bytes`)",
        ),
        (
            "get_pairs_raw",
            "read every header at once, the serialized map read in place",
        ),
        ("get_path", "read `:path`"),
        ("get_present", "read a present header (`user-agent`)"),
        ("get_missing", "read an absent header"),
        (
            "header_map_size",
            "the header map's size (`get_header_map_size`)",
        ),
        ("remove_missing", "remove an absent header"),
        ("add", "add a header"),
        (
            "add_identity",
            "add the two identity headers (`x-pat-token-id`, `x-pat-user`)",
        ),
        (
            "add_one_long",
            "add one identity header carrying both (`x-pat-identity`)",
        ),
        (
            "replace_absent",
            "replace an absent header (`x-pat-token-id`)",
        ),
        (
            "property_source_address",
            "read the client address (`source.address`)",
        ),
        ("sha256", "SHA-256 of a token, in the guest"),
        ("metric", "increment a counter"),
        ("time", "read the clock"),
    ];
    let _ = writeln!(
        report,
        "### What each call costs\n\nThe probe filter (`e2e/probe-filter`) making these calls per request, against itself making none: with a typical platform client's headers (py-jelastic's: `host`, `accept`, `user-agent`, `accept-encoding`; {base_typical:.0} instructions/request with no call) and with a browser's {} headers (cookies, client hints; {base_large:.0}). Envoy adds its own (`:method`, `:path`, `:scheme`, `:authority`, `x-forwarded-proto`, `x-request-id`) before the filter runs.\n",
        LARGE.len() + 2
    );
    let _ = writeln!(report, "| operation | typical headers | large headers |");
    let _ = writeln!(report, "| --- | ---: | ---: |");
    let mut costs = std::collections::HashMap::new();
    for (ops, what) in rows {
        let typical = count(ops, TYPICAL) - base_typical;
        let large = count(ops, LARGE) - base_large;
        eprintln!("  probe {ops}: {typical:.0} / {large:.0}");
        costs.insert(ops, typical);
        let _ = writeln!(report, "| {what} | {typical:.0} | {large:.0} |");
    }
    let strip_remove = count("remove_present", &forged) - base_forged;
    let _ = writeln!(
        report,
        "\nStripping a forged `x-pat-user` the client sent: pat-edge sees it in the header map it read anyway and removes it ({strip_remove:.0}); a request without one costs nothing to strip (before this, each identity header was looked for with a read: {:.0} each when absent).\n",
        costs["get_missing"]
    );
    let Some(overhead) = overhead else { return };
    let calls = costs["get_pairs_raw"] + costs["add_identity"] + costs["metric"];
    let own = overhead - calls - costs["sha256"];
    let _ = writeln!(
        report,
        "Of pat-edge's {overhead:+.0} instructions over the empty filter (1,000,000 tokens, allowed GET, two identity headers), its host calls (every header read at once, two headers added, a counter) account for {calls:.0}, SHA-256 in the guest for {:.0}, and the rest, {own:.0}, is the filter's own work in wasm: `cargo bench -p pat-plugin --bench request_path` under callgrind shows where it goes (see the notes below).\n",
        costs["sha256"]
    );
}
