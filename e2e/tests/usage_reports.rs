//! Usage reports through the real Envoy: each worker records the tokens it lets through and
//! reports them, signed with the edge key from `PAT_EDGE_KEY` (`pat-admin edge key
//! generate`), to the origin's `/usage`; the use shows as `lastUsed` in the platform's
//! `GetTokens`, read by a real client (py-jelastic), and in `pat-admin list`. With the
//! origin down, reports fail and are dropped while every request is answered as before;
//! once it is back, the next uses are reported again.

use std::process::Command;
use std::time::Duration;

use pat_e2e::{Client, PASSWORD, Stack, python, root, unix_now, within};

const STOPENV: &str = "/1.0/environment/control/rest/stopenv";
/// Fresh connections, so both workers see the token.
const PROBES: usize = 24;
/// envoy.yaml's usage block; the test shortens its interval to a second.
const USAGE: &str = r#""usage": {"cluster": "pat_origin", "path": "/usage", "interval_ms": 10000}"#;

/// `lastUsed` of token `id` as py-jelastic's `GetTokens` shows it once there is one (no
/// earlier than `not_before`, Unix seconds, when given).
fn last_used_by_py_jelastic(stack: &Stack, id: i64, not_before: Option<u64>) -> String {
    let mut cmd = Command::new(python());
    cmd.arg(root().join("e2e/tests/py_jelastic_last_used.py"))
        .arg(stack.public_base())
        .arg("alice")
        .arg(PASSWORD)
        .arg(id.to_string());
    if let Some(at) = not_before {
        cmd.arg(at.to_string());
    }
    let out = cmd.output().expect("python runs");
    assert!(
        out.status.success(),
        "py-jelastic saw no lastUsed: {}\n{}\norigin log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        stack.origin_log()
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .expect("a line")
        .to_string()
}

/// `yyyy-MM-dd HH:mm:ss` (UTC) as Unix seconds.
fn api_instant(text: &str) -> u64 {
    fn bad<T>(text: &str) -> T {
        panic!("{text:?} is not yyyy-MM-dd HH:mm:ss")
    }
    let (date, clock) = text.split_once(' ').unwrap_or_else(|| bad(text));
    let num = |s: &str| s.parse::<i64>().unwrap_or_else(|_| bad(text));
    let d: Vec<i64> = date.split('-').map(num).collect();
    let t: Vec<i64> = clock.split(':').map(num).collect();
    if d.len() != 3 || t.len() != 3 || date.len() != 10 || clock.len() != 8 {
        bad::<()>(text);
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m, day) = (if d[1] <= 2 { d[0] - 1 } else { d[0] }, d[1], d[2]);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (days * 86_400 + t[0] * 3600 + t[1] * 60 + t[2]) as u64
}

fn counter(stats: &str, name: &str) -> u64 {
    stats
        .lines()
        .find_map(|l| l.strip_prefix(&format!("wasmcustom.{name}: ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn api_instants_parse() {
    assert_eq!(api_instant("1970-01-01 00:00:00"), 0);
    assert_eq!(api_instant("2027-03-01 12:30:05"), 1_803_904_205);
}

#[test]
fn uses_are_reported_as_last_used_and_a_failed_report_changes_no_answer() {
    let stack = Stack::start_with(|config| {
        assert!(config.contains(USAGE), "envoy.yaml has the usage block");
        config.replace(USAGE, &USAGE.replace("10000", "1000"))
    });
    let (id, token) = stack.token(&["--api", "ide-plugins"]);
    let client = Client::new();
    let url = stack.url(&format!("{STOPENV}?session={token}"));
    let used_from = unix_now();
    assert!((0..PROBES).all(|_| client.get(&url, &[]).is_ok()));

    // Reported within the interval, and seen by a platform client.
    let first = last_used_by_py_jelastic(&stack, id, None);
    let at = api_instant(&first);
    assert!(
        at >= used_from && at <= unix_now(),
        "lastUsed {first} is the time of the use"
    );
    let listed = stack.admin_ok(&["--json", "list", "--user", "alice"], "");
    assert_eq!(listed[0]["last_used_ip"], "127.0.0.1", "{listed}");
    assert!(listed[0]["last_used_at"].is_string(), "{listed}");
    let keys = stack.admin_ok(&["--json", "edge", "key", "list"], "");
    assert_eq!(keys[0]["id"], stack.edge_key_id.as_str());
    assert!(keys[0]["last_report_at"].is_string(), "{keys}");

    // The origin goes down: reports fail, requests are answered all the same.
    let mut stack = stack;
    stack.kill_origin();
    let failed_before = counter(&stack.stats(), "pat_edge.usage.reports_failed");
    // A second later than the first use, so a report would move lastUsed.
    std::thread::sleep(Duration::from_millis(1_100));
    within(Duration::from_secs(15), || {
        assert!(
            (0..PROBES).all(|_| client.get(&url, &[]).is_ok()),
            "every request is allowed while reports fail"
        );
        counter(&stack.stats(), "pat_edge.usage.reports_failed") > failed_before
    })
    .expect("reports failed while the origin was down");
    let denied = client.get(&stack.url(&format!("{STOPENV}?session=pate_nope")), &[]);
    assert!(denied.denied_with(701), "denials too: {denied:?}");
    assert!(
        stack.envoy_logs().contains("usage report"),
        "the failure is logged"
    );

    // Back up: later uses are reported again (the failed report was dropped, not retried).
    stack.start_origin();
    stack.wait_for_origin(stack.ports.origin);
    std::thread::sleep(Duration::from_millis(1_100));
    let again_from = unix_now();
    assert!((0..PROBES).all(|_| client.get(&url, &[]).is_ok()));
    let second = last_used_by_py_jelastic(&stack, id, Some(again_from));
    assert!(api_instant(&second) > at, "{second} after {first}");
    let log = stack.origin_log();
    assert!(
        !log.contains("pate_") && !log.contains("ed25519-secret"),
        "{log}"
    );
}
