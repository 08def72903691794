//! Measuring: settings and statistics, Envoy CPU time and RSS, wrk runs, callgrind counts.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::data::push;
use crate::envoys::{Envoy, Filter, Launch, Setup, start_envoy, start_shipped};
use crate::origin::Origin;

/// A numeric setting from the environment, or its default.
pub(crate) fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The median (upper middle for an even count).
pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The nearest-rank percentile `p` (0–100).
pub(crate) fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// A process's on-CPU time over all its threads, ns (`/proc/<pid>/task/*/schedstat`). taskset
/// execs into Envoy, so a pinned Envoy's pid is Envoy's own.
pub(crate) fn cpu_ns(pid: u32) -> u64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("process tasks");
    tasks
        .filter_map(|t| t.ok())
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| {
            s.split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
        })
        .sum()
}

/// The process's resident memory, KiB (`VmRSS`).
pub(crate) fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// The process's peak resident memory so far, KiB (`VmHWM`).
pub(crate) fn peak_rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM:")
}

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

// wrk

/// What one wrk run measured.
pub(crate) struct Load {
    pub(crate) rps: f64,
    pub(crate) requests: f64,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) errors: u64,
}

/// A wrk duration (`850.00us`, `1.20ms`, `2.00s`) in microseconds.
pub(crate) fn duration_us(text: &str) -> f64 {
    let (number, unit) = text.split_at(
        text.find(|c: char| c.is_ascii_alphabetic())
            .unwrap_or(text.len()),
    );
    let n: f64 = number.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => n,
        "ms" => n * 1e3,
        "s" => n * 1e6,
        _ => f64::NAN,
    }
}

/// Runs wrk (one thread, pinned to CPU 1) against `url`, with a Lua `script` for POSTs.
pub(crate) fn wrk(url: &str, script: Option<&Path>, seconds: u64, connections: u64) -> Load {
    let mut cmd = Command::new("taskset");
    cmd.args([
        "-c",
        "1",
        "wrk",
        "-t1",
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
        "--latency",
    ]);
    if let Some(script) = script {
        cmd.arg("-s").arg(script);
    }
    let out = cmd
        .arg(url)
        .output()
        .expect("wrk runs (scripts/bench installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let find = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("nan")
            .to_string()
    };
    let requests = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(f64::NAN);
    let errors = text
        .lines()
        .find(|l| l.contains("Non-2xx"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
        + text
            .lines()
            .find(|l| l.contains("Socket errors"))
            .map_or(0, |_| 1);
    Load {
        rps: find("Requests/sec:").parse().unwrap_or(f64::NAN),
        requests,
        p50_us: duration_us(&find("50%")),
        p99_us: duration_us(&find("99%")),
        errors,
    }
}

/// A request to count instructions for.
pub(crate) struct Counted<'a> {
    pub(crate) label: &'a str,
    pub(crate) setup: Setup,
    /// The snapshot pushed (a minimal setup) or served by the origin (the shipped one).
    pub(crate) snapshot: Option<Vec<u8>>,
    pub(crate) path: String,
    pub(crate) form: Option<String>,
    /// Request headers sent besides reqwest's own (`host`, and `accept: */*` unless this
    /// sets one), in this order.
    pub(crate) headers: &'a [(&'a str, &'a str)],
    pub(crate) expect: &'a str,
}

/// Envoy's instructions per request (all threads), counted by callgrind over `n` requests on
/// one keep-alive connection after a warm-up: deterministic, unlike CPU time on a shared
/// machine.
pub(crate) fn instructions_per_request(dir: &Path, what: &Counted, n: usize) -> f64 {
    let name = format!(
        "callgrind-{}",
        what.label
            .replace(|c: char| !c.is_ascii_alphanumeric(), "-")
    );
    let profile = dir.join(format!("{name}.out"));
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .expect("client");
    let (envoy, _origin) = start(
        dir,
        &name,
        &what.setup,
        what.snapshot.as_ref(),
        &client,
        Launch::Callgrind(profile.clone()),
    );
    let url = format!("http://127.0.0.1:{}{}", envoy.public, what.path);
    let once = || {
        let request = match &what.form {
            Some(body) => client
                .post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.clone()),
            None => client.get(&url),
        };
        let request = what.headers.iter().fold(request, |request, (name, value)| {
            request.header(*name, *value)
        });
        request.send().and_then(|r| r.text())
    };
    let send = |k: usize| {
        for _ in 0..k {
            let body = once().expect("answered");
            assert!(body.contains(what.expect), "{}: {body}", what.label);
        }
    };
    // The shipped configuration fetches its snapshot from the origin once Envoy is up: until
    // then token requests are denied.
    let deadline = std::time::Instant::now() + Duration::from_secs(900);
    loop {
        let body = once().unwrap_or_default();
        if body.contains(what.expect) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{}: never answered as expected: {body}",
            what.label
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    send(300);
    let control = |args: &[&str]| callgrind_control(envoy.proc.pid(), args);
    control(&["-i", "on"]);
    send(n);
    control(&["-i", "off"]);
    control(&["-d"]);
    drop(envoy);
    let total = collected(dir, &name);
    assert!(total > 0, "{}: callgrind collected nothing", what.label);
    total as f64 / n as f64
}

/// Starts an Envoy of `setup`: a minimal one gets `snapshot` pushed, the shipped one an
/// origin that serves it. The origin (if any) stops when the second value drops.
pub(crate) fn start(
    dir: &Path,
    name: &str,
    setup: &Setup,
    snapshot: Option<&Vec<u8>>,
    client: &reqwest::blocking::Client,
    launch: Launch,
) -> (Envoy, Option<Origin>) {
    match setup {
        Setup::Minimal(filter) => {
            let envoy = start_envoy(dir, name, filter, 1, launch);
            if let Some(bytes) = snapshot {
                push(client, &envoy, bytes.clone());
            }
            (envoy, None)
        }
        Setup::Shipped(front, keys) => {
            let origin = snapshot.map(|bytes| Origin::serve(bytes.clone()));
            let port = origin.as_ref().map_or_else(pat_e2e::free_port, |o| o.port);
            let envoy = start_shipped(dir, name, front, port, (&keys.public, &keys.edge), launch);
            if origin.is_some() {
                // Until the snapshot is fetched, token requests are denied (as "no snapshot"):
                // wait for it, so that a denial counted is the one meant (the first token
                // request then loads it into the serving VM, before it decides).
                let deadline = std::time::Instant::now() + Duration::from_secs(900);
                while !std::fs::read_to_string(&envoy.log)
                    .unwrap_or_default()
                    .contains("pat-edge: caught up with the origin")
                {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "{name}: the snapshot was never fetched; see {}",
                        envoy.log.display()
                    );
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            (envoy, origin)
        }
    }
}

/// The instructions callgrind collected for the Envoy named `name` (its dumps are
/// `<profile>.1`, …: the totals collected while instrumentation was on). The profiles are
/// removed: they are large and a run makes many.
fn collected(dir: &Path, name: &str) -> u64 {
    let mut total = 0u64;
    for entry in std::fs::read_dir(dir).expect("dir").filter_map(|e| e.ok()) {
        let file = entry.file_name().to_string_lossy().to_string();
        if !file.starts_with(&format!("{name}.out")) {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let _ = std::fs::remove_file(entry.path());
        for line in text.lines() {
            if let Some(count) = line
                .strip_prefix("summary:")
                .or_else(|| line.strip_prefix("totals:"))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
            {
                total = total.max(count);
            }
        }
    }
    total
}

/// Envoy's instructions per second with no traffic (all threads, the default refresh
/// interval), counted by callgrind over `seconds` after `snapshot` was pushed: what the
/// filter's ticks cost, whatever the load.
pub(crate) fn idle_instructions_per_second(
    dir: &Path,
    label: &str,
    filter: &Filter,
    snapshot: Option<Vec<u8>>,
    seconds: u64,
) -> f64 {
    let name = format!(
        "callgrind-idle-{}",
        label.replace(|c: char| !c.is_ascii_alphanumeric(), "-")
    );
    let profile = dir.join(format!("{name}.out"));
    let envoy = start_envoy(dir, &name, filter, 1, Launch::CallgrindIdle(profile));
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .expect("client");
    if let Some(bytes) = snapshot {
        push(&client, &envoy, bytes);
    }
    std::thread::sleep(Duration::from_secs(2));
    let control = |args: &[&str]| callgrind_control(envoy.proc.pid(), args);
    let started = std::time::Instant::now();
    control(&["-i", "on"]);
    std::thread::sleep(Duration::from_secs(seconds));
    control(&["-i", "off"]);
    let elapsed = started.elapsed().as_secs_f64();
    control(&["-d"]);
    drop(envoy);
    let total = collected(dir, &name);
    assert!(total > 0, "{label}: callgrind collected nothing");
    total as f64 / elapsed
}

/// Runs `callgrind_control ARGS PID` (instrumentation on or off, a dump).
fn callgrind_control(pid: u32, args: &[&str]) {
    let status = Command::new("callgrind_control")
        .args(args)
        .arg(pid.to_string())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("callgrind_control");
    assert!(status.success(), "callgrind_control {args:?} failed");
}
