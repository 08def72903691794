//! Instructions per request under callgrind, and what each host call costs (the probe filter).

use std::fmt::Write as _;

use crate::data::{Limits, env_list, rate, snapshot, snapshot_address_limited, snapshot_limited};
use crate::envoys::{Filter, Setup};
use crate::measure::{Counted, idle_instructions_per_second, instructions_per_request, setting};
use crate::shipped::{Front, PatChange};
use crate::{Bench, PATH, get};

/// The label of the shipped configuration's row, the headline of every table.
pub(crate) const SHIPPED: &str = "pat-edge as shipped (envoy.yaml), 1,000,000 tokens, GET";

/// The plain token's row on a snapshot where a quarter of the other tokens are limited to
/// environments, a quarter rate-limited and a quarter both (as pat-admin publishes it:
/// the catalogue's environment methods declared).
const OTHERS_LIMITED: &str =
    "4. pat-edge, 1,000,000 tokens, GET, other tokens limited to environments and rates";
/// The token limited to 3 environments, `envName` one of them.
const ENV_LIMITED: &str = "4. pat-edge, 1,000,000 tokens, GET, token limited to 3 environments";
/// The token with a rate limit it never reaches, budget in shared data (the default).
const RATE_SHARED: &str = "4. pat-edge, 1,000,000 tokens, GET, token rate-limited, shared budget";
/// The same with `rate_limits.budget` `per_worker`.
const RATE_PER_WORKER: &str =
    "4. pat-edge, 1,000,000 tokens, GET, token rate-limited, per-worker budget";
/// How far the plain token's count may move when other tokens carry limits: callgrind
/// counts of two Envoys agree within a few hundred instructions per request.
const PLAIN_TOLERANCE: f64 = 0.005;

/// Whether a row is counted: `PAT_BENCH_ROWS` (labels separated by `;`, exactly as the
/// tables show them, or `idle` for the idle edge's ticks) picks some; unset, every row is.
pub(crate) fn wanted_row(label: &str) -> bool {
    let rows = std::env::var("PAT_BENCH_ROWS").unwrap_or_default();
    rows.trim().is_empty() || rows.split(';').any(|part| part.trim() == label)
}

/// Counts instructions for every configuration, all in the shipped configuration
/// (`envoy.yaml`); returns pat-edge's overhead over the empty filter on an allowed GET at
/// 1,000,000 tokens without `strip_token` (the request path the probe section prices).
pub(crate) fn run(bench: &Bench, report: &mut String) -> Option<f64> {
    let dir = &bench.dir;
    let tokens = &bench.tokens;
    let token = &bench.token;
    let unknown = &bench.unknown;
    let counted_requests = setting("PAT_BENCH_COUNTED", 1000) as usize;
    if counted_requests == 0 {
        return None;
    }
    eprintln!("instructions per request under callgrind (slow: Envoy runs under valgrind)...");
    let ok = r#"{"result":0}"#;
    let keys = bench.keys();
    let shipped = |front: Front| Setup::Shipped(front, keys.clone());
    let pat = |change: PatChange| shipped(Front::Pat(change));
    let one_k = snapshot(tokens, 1, 999, true);
    let one_m = snapshot(tokens, 1, 999_999, true);
    let form = Some(format!("envName=my-project&session={token}"));
    // Snapshots where tokens carry environment lists and rate limits, built only when a row
    // wants them (each holds 1,000,000 tokens).
    let envs = env_list(&["api-gateway", "my-project", "web-frontend"]);
    // Far above what Envoy under callgrind serves: never refuses.
    let never_reached = rate("100000/s");
    let limited = |label: &str, real: Limits<'_>| {
        wanted_row(label).then(|| snapshot_limited(tokens, 1, 999_999, true, real, &[]))
    };
    let others_limited = limited(OTHERS_LIMITED, Limits::default());
    let env_limited = limited(
        ENV_LIMITED,
        Limits {
            envs: Some(&envs),
            rate_limit: None,
        },
    );
    let rate_only = Limits {
        envs: None,
        rate_limit: Some(never_reached),
    };
    let rate_limited = (wanted_row(RATE_SHARED) || wanted_row(RATE_PER_WORKER))
        .then(|| snapshot_limited(tokens, 1, 999_999, true, rate_only, &[]));
    let row = |label: &'static str, setup: Setup, snapshot: Option<&Vec<u8>>| Counted {
        label,
        setup,
        snapshot: snapshot.cloned(),
        path: get(token),
        form: None,
        headers: &[],
        expect: ok,
    };
    let counted = [
        row(SHIPPED, pat(PatChange::AsShipped), Some(&one_m)),
        row("1. no filter", shipped(Front::None), None),
        row(
            "2. empty proxy-wasm filter",
            shipped(Front::EmptyWasm),
            None,
        ),
        row(
            "3. api_key_auth",
            shipped(Front::ApiKeyAuth(bench.api_keys.clone())),
            None,
        ),
        row(
            "4. pat-edge, 1,000 tokens, GET",
            pat(PatChange::AsShipped),
            Some(&one_k),
        ),
        row(
            "4. pat-edge, 1,000,000 tokens, GET, without strip_token",
            pat(PatChange::NoStrip),
            Some(&one_m),
        ),
        Counted {
            snapshot: Some(snapshot_address_limited(tokens, 1, 999_999)),
            ..row(
                "4. pat-edge, 1,000,000 tokens, GET, token limited to 3 client networks",
                pat(PatChange::AsShipped),
                None,
            )
        },
        row(
            "4. pat-edge, 1,000,000 tokens, GET, one combined identity header",
            pat(PatChange::Combined),
            Some(&one_m),
        ),
        row(
            OTHERS_LIMITED,
            pat(PatChange::AsShipped),
            others_limited.as_ref(),
        ),
        row(ENV_LIMITED, pat(PatChange::AsShipped), env_limited.as_ref()),
        row(
            RATE_SHARED,
            pat(PatChange::AsShipped),
            rate_limited.as_ref(),
        ),
        row(
            RATE_PER_WORKER,
            pat(PatChange::PerWorkerBudget),
            rate_limited.as_ref(),
        ),
        Counted {
            path: PATH.to_string(),
            form: form.clone(),
            ..row(
                "5. pat-edge, 1,000,000 tokens, POST form",
                pat(PatChange::AsShipped),
                Some(&one_m),
            )
        },
        Counted {
            form: Some("description=nightly+build".to_string()),
            ..row(
                "5. pat-edge, 1,000,000 tokens, POST form, session in the query",
                pat(PatChange::AsShipped),
                Some(&one_m),
            )
        },
        Counted {
            path: get(unknown.expose()),
            expect: r#""result":701"#,
            ..row(
                "6. pat-edge, 1,000,000 tokens, denied: unknown token",
                pat(PatChange::AsShipped),
                Some(&one_m),
            )
        },
        Counted {
            path: format!("/1.0/environment/control/rest/deleteenv?session={token}"),
            expect: r#""result":702"#,
            ..row(
                "6. pat-edge, 1,000,000 tokens, denied: wrong scope",
                pat(PatChange::AsShipped),
                Some(&one_m),
            )
        },
        Counted {
            path: PATH.to_string(),
            form: form.clone(),
            ..row("1. no filter, POST form", shipped(Front::None), None)
        },
        Counted {
            path: PATH.to_string(),
            form,
            ..row(
                "2. empty proxy-wasm filter, POST form",
                shipped(Front::EmptyWasm),
                None,
            )
        },
    ];
    let counts: Vec<(&str, f64)> = counted
        .iter()
        .filter(|what| wanted_row(what.label))
        .map(|what| {
            let count = instructions_per_request(dir.path(), what, counted_requests);
            eprintln!("  {}: {count:.0}", what.label);
            (what.label, count)
        })
        .collect();
    let count = |label: &str| counts.iter().find(|(l, _)| *l == label).map(|(_, c)| *c);
    let _ = writeln!(
        report,
        "## Instructions per request (callgrind: deterministic, whatever the machine is doing)\n"
    );
    let _ = writeln!(
        report,
        "Envoy's instructions (all threads) over {counted_requests} requests on one keep-alive connection after 300 warm-up requests, 1 worker. Every row runs the shipped `envoy.yaml` (its listener, connection manager settings and routes; the platform route answered by a `direct_response`), with the public listener's filter swapped for the other configurations; pat-edge's rows are fed by a stand-in origin (head, snapshot, usage reports) as `envoy.yaml` configures it, and tick once a second (see the notes).\n"
    );
    let baselines = [
        "1. no filter",
        "2. empty proxy-wasm filter",
        "3. api_key_auth",
    ];
    let _ = writeln!(
        report,
        "| configuration | instructions/request | vs no filter | vs empty wasm | vs api_key_auth |"
    );
    let _ = writeln!(report, "| --- | ---: | ---: | ---: | ---: |");
    for (label, c) in &counts {
        let mut line = format!("| {} | {c:.0} |", headline(label));
        for base in baselines {
            match count(base) {
                Some(b) => {
                    let _ = write!(line, " {:+.0} ({:.2}x) |", c - b, c / b);
                }
                None => line.push_str(" |"),
            }
        }
        let _ = writeln!(report, "{line}");
    }
    let against = |a: &str, b: &str| count(a).zip(count(b)).map(|(a, b)| a - b);
    if let Some(strip) = against(
        SHIPPED,
        "4. pat-edge, 1,000,000 tokens, GET, without strip_token",
    ) {
        let _ = writeln!(
            report,
            "\nStripping the token (`strip_token`, as shipped: `:path` rewritten without it): {strip:+.0} instructions per allowed request.\n"
        );
    }
    if let Some(limited) = against(
        "4. pat-edge, 1,000,000 tokens, GET, token limited to 3 client networks",
        SHIPPED,
    ) {
        let _ = writeln!(
            report,
            "A token limited to client networks (the client address read, one property call, and matched against 3 networks): {limited:+.0} instructions per allowed request; tokens without a list do not read it.\n"
        );
    }
    if let Some(combined) = against(
        "4. pat-edge, 1,000,000 tokens, GET, one combined identity header",
        SHIPPED,
    ) {
        let _ = writeln!(
            report,
            "One combined identity header (`identity_headers.combined`) instead of two: {combined:+.0} instructions per allowed request.\n"
        );
    }
    restrictions(bench, &count, report);
    if wanted_row("idle") {
        idle_ticks(bench, &one_m, report);
    }
    against(
        "4. pat-edge, 1,000,000 tokens, GET, without strip_token",
        "2. empty proxy-wasm filter",
    )
}

/// What environment lists and rate limits cost per allowed request, against the plain token
/// on the same snapshot; and that a plain token pays nothing for other tokens' limits
/// (recorded as a failure, the run then exits non-zero, when its count moves by more than
/// [`PLAIN_TOLERANCE`]).
fn restrictions(bench: &Bench, count: &dyn Fn(&str) -> Option<f64>, report: &mut String) {
    let rows = [ENV_LIMITED, RATE_SHARED, RATE_PER_WORKER];
    if count(OTHERS_LIMITED).is_none() && rows.iter().all(|r| count(r).is_none()) {
        return;
    }
    let _ = writeln!(
        report,
        "<!-- restrictions -->\n### Environments and rate limits: instructions per allowed request\n"
    );
    let _ = writeln!(
        report,
        "The same allowed GET (`envName=my-project`) in the shipped configuration at 1,000,000 tokens, counted in one run. The first row's snapshot is the one every other row of the table above uses (no token limited, no environment methods declared); the others are as pat-admin publishes them (the catalogue's environment methods declared), with a quarter of the other tokens limited to 3 environments, a quarter rate-limited (50/s), a quarter both. The benchmarked token is limited to `api-gateway`, `my-project`, `web-frontend`, or to 100,000/s (a limit it never reaches: this is the cost of an admitted request).\n"
    );
    let _ = writeln!(
        report,
        "| token | instructions/request | vs the plain token, same snapshot |"
    );
    let _ = writeln!(report, "| --- | ---: | ---: |");
    let plain = count(SHIPPED);
    let others = count(OTHERS_LIMITED);
    if let Some(c) = plain {
        let _ = writeln!(
            report,
            "| plain (no environment list, no rate limit), no token in the snapshot limited | {c:.0} | |"
        );
    }
    if let Some(c) = others {
        let versus = plain.map_or(String::new(), |p| {
            format!(
                "{:+.0} ({:+.2}%) vs the row above",
                c - p,
                (c / p - 1.0) * 100.0
            )
        });
        let _ = writeln!(
            report,
            "| plain, other tokens limited to environments and rates | {c:.0} | {versus} |"
        );
    }
    for (label, what) in [
        (ENV_LIMITED, "limited to 3 environments"),
        (RATE_SHARED, "rate limit, `shared` budget (the default)"),
        (RATE_PER_WORKER, "rate limit, `per_worker` budget"),
    ] {
        if let Some(c) = count(label) {
            let versus = others.map_or(String::new(), |o| format!("{:+.0}", c - o));
            let _ = writeln!(report, "| {what} | {c:.0} | {versus} |");
        }
    }
    if let (Some(p), Some(o)) = (plain, others) {
        let moved = (o / p - 1.0).abs();
        let verdict = if moved <= PLAIN_TOLERANCE {
            "within"
        } else {
            "**outside**"
        };
        let _ = writeln!(
            report,
            "\nA token with neither pays nothing for the feature: its count with other tokens limited is {:+.0} ({:+.2}%) from the snapshot without any limit, {verdict} the {:.1}% this bench asserts (two Envoys' counts of the same request differ by a few hundred instructions).",
            o - p,
            (o / p - 1.0) * 100.0,
            PLAIN_TOLERANCE * 100.0
        );
        if moved > PLAIN_TOLERANCE {
            bench.fail(format!(
                "a plain token's allowed GET costs {o:.0} instructions when other tokens carry environment lists and rate limits, {p:.0} when none does: {:+.2}%, more than the {:.1}% allowed",
                (o / p - 1.0) * 100.0,
                PLAIN_TOLERANCE * 100.0
            ));
        }
    }
    let _ = writeln!(report, "<!-- /restrictions -->\n");
}

/// The shipped configuration's label in bold (the headline of a table), others as they are.
pub(crate) fn headline(label: &str) -> String {
    if label == SHIPPED {
        format!("**{label}**")
    } else {
        label.to_string()
    }
}

/// Ticks cost per second, not per request: counted on an idle edge.
fn idle_ticks(bench: &Bench, one_m: &[u8], report: &mut String) {
    let dir = &bench.dir;
    let idle_seconds = 10;
    let idle_empty =
        idle_instructions_per_second(dir.path(), "empty", &Filter::EmptyWasm, None, idle_seconds);
    let idle_pat = idle_instructions_per_second(
        dir.path(),
        "pat-1m",
        &Filter::Pat(bench.public_key.clone()),
        Some(one_m.to_vec()),
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
                setup: Setup::Minimal(Filter::Probe(ops)),
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

/// What stripping the token costs in the shipped configuration, call by call: the probe
/// filter making pat-edge's header writes on an allowed GET, with and without the `:path`
/// rewrite.
pub(crate) fn strip_costs(bench: &Bench, report: &mut String) {
    let counted_requests = setting("PAT_BENCH_COUNTED", 1000) as usize;
    if counted_requests == 0 {
        return;
    }
    let keys = bench.keys();
    let stripped = format!("replace::path={PATH}?envName=my-project");
    let count = |ops: &str| {
        instructions_per_request(
            bench.dir.path(),
            &Counted {
                label: "probe",
                setup: Setup::Shipped(Front::Probe(ops.to_string()), keys.clone()),
                snapshot: None,
                path: get(&bench.token),
                form: None,
                headers: &[],
                expect: r#"{"result":0}"#,
            },
            counted_requests,
        )
    };
    let base = count("");
    let identity = count("add_identity");
    let both = count(&format!("add_identity,{stripped}"));
    let path_alone = count(&stripped);
    let calls = count(&format!(
        "get_pairs_raw,add_identity,{stripped},metric,sha256"
    ));
    eprintln!("  strip probes: every host call pat-edge makes (and SHA-256) {calls:.0}");
    eprintln!(
        "  strip probes: none {base:.0}, identity {identity:.0}, identity+path {both:.0}, path {path_alone:.0}"
    );
    let _ = writeln!(
        report,
        "The probe filter in the shipped configuration: the two identity headers added {:+.0}; then `:path` replaced without the token {:+.0}; `:path` replaced alone {:+.0}.\n",
        identity - base,
        both - identity,
        path_alone - base
    );
}
