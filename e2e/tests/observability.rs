//! Operators see the filter in Envoy's `/stats`, and never a token in Envoy's logs.

use pat_e2e::{Client, LEGACY_SESSION, Stack};

const STOPENV: &str = "/1.0/environment/control/rest/stopenv";

#[test]
fn metrics_appear_in_stats_and_tokens_never_in_logs() {
    let stack = Stack::start();
    let (_, token) = stack.token(&["--method", "environment.Control.StopEnv"]);
    let client = Client::new();
    assert!(
        client
            .get(&stack.url(&format!("{STOPENV}?session={token}")), &[])
            .is_ok()
    );
    assert!(
        client
            .get(
                &stack.url(&format!(
                    "/1.0/environment/control/rest/deleteenv?session={token}"
                )),
                &[]
            )
            .denied_with(702)
    );
    assert!(
        client
            .get(
                &stack.url(&format!("{STOPENV}?session={}", &token[..40])),
                &[]
            )
            .denied_with(701)
    );
    assert!(
        client
            .get(
                &stack.url(&format!("{STOPENV}?session={LEGACY_SESSION}")),
                &[]
            )
            .is_ok()
    );

    let stats = stack.stats();
    for line in [
        "wasmcustom.pat_edge.requests.allowed: 1",
        "wasmcustom.pat_edge.requests.denied.out_of_scope: 1",
        "wasmcustom.pat_edge.requests.denied.malformed_token: 1",
        "wasmcustom.pat_edge.requests.passed_through: 1",
        "wasmcustom.pat_edge.push.accepted: 1",
        "wasmcustom.pat_edge.snapshot.version: 1",
        "wasmcustom.pat_edge.snapshot.tokens: 1",
    ] {
        assert!(
            stats.lines().any(|l| l == line),
            "missing `{line}` in:\n{}",
            pat_lines(&stats)
        );
    }

    let logs = stack.envoy_logs();
    assert!(
        logs.contains("pat-edge: configured"),
        "the filter logs to Envoy's log"
    );
    assert!(!logs.contains(&token), "a token value reached Envoy's log");
    assert!(
        !logs.contains(&token[5..25]),
        "part of a token value reached Envoy's log"
    );
}

fn pat_lines(stats: &str) -> String {
    stats
        .lines()
        .filter(|l| l.contains("pat_edge"))
        .collect::<Vec<_>>()
        .join("\n")
}
