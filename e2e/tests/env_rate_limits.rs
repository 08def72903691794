//! Tokens limited to environments and tokens with a rate limit, end to end through the real
//! Envoy: made through the token API (`envNames`, `rateLimit`) and used by a real platform
//! client, py-jelastic (`py_jelastic_env_rate_limits.py`); made by the CLI (`generate --env
//! --rate-limit`, `edit --any-env --no-rate-limit`) on an edge whose rate-limit denials
//! answer 429. Denials are counted in Envoy's `/stats` per reason.

use std::process::Command;
use std::time::{Duration, Instant};

use pat_e2e::{Client, PASSWORD, Stack, python, root, within};

fn denied_count(stack: &Stack, reason: &str) -> u64 {
    let prefix = format!("wasmcustom.pat_edge.requests.denied.{reason}: ");
    stack
        .stats()
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn py_jelastic_with_tokens_limited_to_environments_and_rates() {
    let stack = Stack::start();
    let script = root().join("e2e/tests/py_jelastic_env_rate_limits.py");
    let started = Instant::now();
    let out = Command::new(python())
        .arg(&script)
        .arg(stack.public_base())
        .arg("alice")
        .arg(PASSWORD)
        .arg(format!("http://127.0.0.1:{}/stats", stack.ports.admin))
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the py-jelastic scenario failed ({}) after {:?}:\n{stdout}\n{stderr}\norigin log:\n{}",
        out.status,
        started.elapsed(),
        stack.origin_log()
    );
    assert!(stdout.contains("all steps passed"), "{stdout}");
    eprintln!("{stdout}");
    // Envoy counted each kind (the script checked the exact increments as it went).
    assert!(denied_count(&stack, "environment_not_allowed") >= 6);
    assert!(denied_count(&stack, "not_an_environment_method") >= 6);
    assert!(denied_count(&stack, "rate_limited") >= 20);
    // The tokens as the CLI shows them after the script's edits.
    let ids: Vec<&str> = stdout
        .lines()
        .find_map(|l| l.strip_prefix("ids "))
        .expect("ids line")
        .split(' ')
        .collect();
    let env_token = stack.admin_ok(&["--json", "show", "--user", "alice", ids[0]], "");
    assert_eq!(env_token["envs"], serde_json::json!(["qa"]), "{env_token}");
    let rate_token = stack.admin_ok(&["--json", "show", "--user", "alice", ids[1]], "");
    assert!(rate_token["rate_limit"].is_null(), "{rate_token}");
}

#[test]
fn cli_tokens_on_an_edge_that_answers_rate_limits_with_429() {
    let stack = Stack::start_with(|config| {
        config.replacen(
            r#""strip_token": true,"#,
            r#""strip_token": true, "deny": {"rate_limited_http_status": 429},"#,
            1,
        )
    });
    let (id, token) = stack.token(&[
        "--method",
        "environment.Control.StopEnv",
        "--env",
        "prod",
        "--rate-limit",
        "2/s",
    ]);
    let client = Client::new();
    let stop = |env: &str| {
        client.get(
            &stack.url(&format!(
                "/1.0/environment/control/rest/stopenv?envName={env}&session={token}"
            )),
            &[],
        )
    };
    within(Duration::from_secs(5), || stop("prod").is_ok())
        .unwrap_or_else(|| panic!("prod allowed: {:?}", stop("prod")));
    // (A worker that has not picked the token up yet would call it unknown: 701.)
    let mut dev = None;
    within(Duration::from_secs(5), || {
        let answer = stop("dev");
        let done = answer.denied_with(704);
        dev = Some(answer);
        done
    });
    let dev = dev.expect("asked");
    assert!(dev.denied_with(704), "{dev:?}");
    assert_eq!(dev.status, 200, "environment denials keep deny.http_status");
    // A full bucket (2), then 429 with Retry-After.
    std::thread::sleep(Duration::from_millis(1100));
    let raw = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let url = stack.url(&format!(
        "/1.0/environment/control/rest/stopenv?envName=prod&session={token}"
    ));
    let answers: Vec<_> = (0..6)
        .map(|_| {
            let response = raw.get(&url).send().expect("answered");
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body: serde_json::Value =
                serde_json::from_str(&response.text().expect("body")).expect("json");
            (status, retry_after, body["result"].as_i64())
        })
        .collect();
    let admitted = answers.iter().filter(|a| a.2 == Some(0)).count();
    assert!((2..=3).contains(&admitted), "{answers:?}");
    for answer in answers.iter().filter(|a| a.2 != Some(0)) {
        assert_eq!(
            answer,
            &(429, Some("1".to_string()), Some(705)),
            "{answers:?}"
        );
    }
    assert_eq!(denied_count(&stack, "rate_limited"), (6 - admitted) as u64);
    // Once denied with 704 (any earlier answers came from a worker without the token).
    assert_eq!(denied_count(&stack, "environment_not_allowed"), 1);

    // Both limits lifted by the CLI: any environment, no limit, at the edge too.
    stack.admin_ok(
        &[
            "edit",
            "--user",
            "alice",
            &id.to_string(),
            "--any-env",
            "--no-rate-limit",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    // Every worker holds the edit once ten requests in a row are let through (each worker
    // picks a published change up within its refresh interval, 20 ms).
    within(Duration::from_secs(5), || {
        (0..10).all(|_| stop("dev").is_ok())
    })
    .unwrap_or_else(|| panic!("dev allowed after the edit: {:?}", stop("dev")));
    let all = (0..20).filter(|_| stop("dev").is_ok()).count();
    assert_eq!(all, 20, "no limit after the edit");
}
