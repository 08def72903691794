//! Instructions per request under callgrind, and what each host call costs (the probe filter).

use std::fmt::Write as _;

use crate::data::{snapshot, snapshot_address_limited};
use crate::envoys::Filter;
use crate::measure::{Counted, instructions_per_request, setting};
use crate::{Bench, PATH, get};

/// Counts instructions for every configuration and for each probe operation.
pub(crate) fn run(bench: &Bench, report: &mut String) {
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
                expect: ok,
            },
            Counted {
                label: "2. empty proxy-wasm filter",
                filter: Filter::EmptyWasm,
                snapshot: None,
                path: get(token),
                form: None,
                expect: ok,
            },
            Counted {
                label: "3. api_key_auth",
                filter: Filter::ApiKeyAuth(api_keys.clone()),
                snapshot: None,
                path: get(token),
                form: None,
                expect: ok,
            },
            Counted {
                label: "4. pat-edge, 1,000 tokens, GET",
                filter: pat.clone(),
                snapshot: Some(one_k),
                path: get(token),
                form: None,
                expect: ok,
            },
            Counted {
                label: "4. pat-edge, 1,000,000 tokens, GET",
                filter: pat.clone(),
                snapshot: Some(one_m.clone()),
                path: get(token),
                form: None,
                expect: ok,
            },
            Counted {
                label: "4. pat-edge, 1,000,000 tokens, GET, usage recording on",
                filter: Filter::PatUsage(public_key.clone(), bench.edge_key.clone()),
                snapshot: Some(one_m.clone()),
                path: get(token),
                form: None,
                expect: ok,
            },
            Counted {
                label: "4. pat-edge, 1,000,000 tokens, GET, token limited to 3 client networks",
                filter: pat.clone(),
                snapshot: Some(snapshot_address_limited(tokens, 1, 999_999)),
                path: get(token),
                form: None,
                expect: ok,
            },
            Counted {
                label: "5. pat-edge, 1,000,000 tokens, POST form",
                filter: pat.clone(),
                snapshot: Some(one_m.clone()),
                path: PATH.to_string(),
                form,
                expect: ok,
            },
            Counted {
                label: "5. pat-edge, 1,000,000 tokens, POST form, session in the query",
                filter: pat.clone(),
                snapshot: Some(one_m.clone()),
                path: get(token),
                form: Some("description=nightly+build".to_string()),
                expect: ok,
            },
            Counted {
                label: "6. pat-edge, 1,000,000 tokens, denied: unknown token",
                filter: pat.clone(),
                snapshot: Some(one_m.clone()),
                path: get(unknown.expose()),
                form: None,
                expect: r#""result":701"#,
            },
            Counted {
                label: "6. pat-edge, 1,000,000 tokens, denied: wrong scope",
                filter: pat,
                snapshot: Some(one_m),
                path: format!("/1.0/environment/control/rest/deleteenv?session={token}"),
                form: None,
                expect: r#""result":702"#,
            },
            Counted {
                label: "1. no filter, POST form",
                filter: Filter::None,
                snapshot: None,
                path: PATH.to_string(),
                form: Some(format!("envName=my-project&session={token}")),
                expect: ok,
            },
            Counted {
                label: "2. empty proxy-wasm filter, POST form",
                filter: Filter::EmptyWasm,
                snapshot: None,
                path: PATH.to_string(),
                form: Some(format!("envName=my-project&session={token}")),
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

        // What each call the filter makes per request costs: the probe filter with one
        // operation against the probe filter with none.
        let probes: [(&'static str, &str, u32); 8] = [
            ("get_path", "read `:path`", 1),
            (
                "get_missing",
                "read an absent header (the identity headers a client did not send)",
                2,
            ),
            ("add", "add a header (the identity headers)", 2),
            ("sha256", "SHA-256 of a token, in the guest", 1),
            ("metric", "increment a counter", 1),
            (
                "remove_missing",
                "remove an absent header (not made: it is read first)",
                0,
            ),
            (
                "replace",
                "replace a header (not made: `add` is cheaper)",
                0,
            ),
            ("time", "read the clock (not made: read on ticks)", 0),
        ];
        let probe = |ops: &'static str| {
            instructions_per_request(
                dir.path(),
                &Counted {
                    label: if ops.is_empty() { "probe" } else { ops },
                    filter: Filter::Probe(ops),
                    snapshot: None,
                    path: get(token),
                    form: None,
                    expect: ok,
                },
                counted_requests,
            )
        };
        let base = probe("");
        let _ = writeln!(
            report,
            "### What each call costs\n\nThe probe filter (`e2e/probe-filter`) making one operation per request, against itself making none ({base:.0} instructions/request); the last column is how often pat-edge makes it on an allowed GET.\n"
        );
        let _ = writeln!(
            report,
            "| operation | instructions | times per allowed GET | subtotal |"
        );
        let _ = writeln!(report, "| --- | ---: | ---: | ---: |");
        let mut accounted = 0.0;
        for (ops, what, times) in probes {
            let cost = probe(ops) - base;
            eprintln!("  probe {ops}: {cost:.0}");
            accounted += cost * f64::from(times);
            let _ = writeln!(
                report,
                "| {what} | {cost:.0} | {times} | {:.0} |",
                cost * f64::from(times)
            );
        }
        let overhead = counts[4] - counts[1];
        let _ = writeln!(
            report,
            "\nOf pat-edge's {overhead:+.0} instructions over the empty filter (1,000,000 tokens, GET), these calls account for {accounted:.0} ({:.0}%); the rest ({:.0}) is the filter's own work in wasm: query parsing, method resolution, token checksum, snapshot lookup, the verdict, and its per-request state.\n",
            accounted / overhead * 100.0,
            overhead - accounted
        );
    }
}
