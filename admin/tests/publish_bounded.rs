//! Publishing is bounded and visible: a per-attempt timeout and an overall deadline (flags,
//! environment, store setting), each edge's line printed as that edge finishes, and a
//! `retry-after` honoured within the deadline.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::put;
use support::*;

/// A store with a key and one token; the stored snapshot is version 1.
fn store() -> Admin {
    let admin = Admin::new();
    admin.user("alice");
    admin.key();
    admin.token("alice", &["--api", "ide-plugins", "--no-publish"]);
    admin
}

/// An edge answering every push with `status`, `retry-after` (if any) and `body`, `times`
/// times, then 200; returns its address, the push count and the runtime serving it.
fn edge(
    status: u16,
    retry_after: Option<&'static str>,
    times: usize,
) -> (
    SocketAddr,
    Arc<Mutex<Vec<Instant>>>,
    tokio::runtime::Runtime,
) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let pushes = Arc::new(Mutex::new(Vec::new()));
    let seen = pushes.clone();
    let app = Router::new().route(
        "/_pat/snapshot",
        put(move || {
            let seen = seen.clone();
            async move {
                let n = {
                    let mut seen = seen.lock().expect("lock");
                    seen.push(Instant::now());
                    seen.len()
                };
                let mut response = axum::response::Response::builder();
                if n <= times {
                    response = response.status(StatusCode::from_u16(status).expect("status"));
                    if let Some(after) = retry_after {
                        response = response.header("retry-after", after);
                    }
                    response
                        .body(axum::body::Body::from(
                            r#"{"result":503,"error":"busy","source":"pat-edge"}"#,
                        ))
                        .expect("response")
                } else {
                    response
                        .body(axum::body::Body::from(
                            r#"{"result":0,"version":1,"tokens":1}"#,
                        ))
                        .expect("response")
                }
            }
        }),
    );
    let addr = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        addr
    });
    (addr, pushes, runtime)
}

#[test]
fn two_hanging_edges_cost_at_most_the_deadline() {
    let admin = store();
    let (a, b) = (HangingEdge::new(), HangingEdge::new());
    let started = Instant::now();
    let run = admin.run(&[
        "--json",
        "publish",
        "--edge",
        &a.url(),
        "--edge",
        &b.url(),
        "--timeout",
        "1",
        "--deadline",
        "2.5",
    ]);
    let elapsed = started.elapsed();
    let report = run.json();
    run.fails(6);
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    assert!(
        elapsed >= Duration::from_secs(2),
        "the deadline, not less: {elapsed:?}"
    );
    for result in report["edges"].as_array().expect("edges") {
        assert_eq!(result["outcome"], "unreachable", "{result}");
        assert!(
            result["attempts"]
                .as_u64()
                .is_some_and(|n| (2..=3).contains(&n)),
            "{result}"
        );
    }
    // stderr is JSON too.
    let error: serde_json::Value =
        serde_json::from_str(run.stderr.trim()).expect("one JSON error on stderr");
    assert_eq!(error["exit_code"], 6);
}

#[test]
fn the_timeouts_come_from_the_environment_or_the_store_and_bound_changes_too() {
    let admin = store();
    let hung = HangingEdge::new();
    admin.run(&["edge", "add", &hung.url()]).ok();
    admin.run(&["config", "set", "push-timeout", "1"]).ok();
    admin.run(&["config", "set", "push-deadline", "2"]).ok();
    let started = Instant::now();
    let run = admin.confirmed(&[
        "generate",
        "--user",
        "alice",
        "--description",
        "x",
        "--api",
        "marketplace",
    ]);
    let elapsed = started.elapsed();
    run.fails(6);
    assert!(
        elapsed < Duration::from_secs(5),
        "store settings: {elapsed:?}"
    );
    assert_token_shape(run.stdout.trim());
    assert!(run.stderr.contains("no answer"), "{}", run.stderr);
    assert!(
        run.stderr.contains("the change is saved and signed"),
        "{}",
        run.stderr
    );

    let started = Instant::now();
    let run = Run::from_output(
        admin
            .command()
            .env("PAT_ADMIN_PUSH_DEADLINE", "1")
            .args(["publish"])
            .output()
            .expect("runs"),
    );
    run.fails(6);
    assert!(
        started.elapsed() < Duration::from_millis(2_500),
        "{:?}",
        started.elapsed()
    );

    let err = admin
        .run(&["publish", "--timeout", "0"])
        .fails(2)
        .to_string();
    assert!(err.contains("--timeout"), "{err}");
}

#[test]
fn each_edge_is_reported_as_it_finishes() {
    let admin = store();
    let (fast, _pushes, _runtime) = edge(200, None, 0);
    let hung = HangingEdge::new();
    let started = Instant::now();
    let mut child = admin
        .std_command()
        .args([
            "publish",
            "--edge",
            &format!("http://{fast}"),
            "--edge",
            &hung.url(),
        ])
        .args(["--timeout", "3", "--deadline", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    let mut accepted_at = None;
    for line in BufReader::new(child.stdout.take().expect("stdout")).lines() {
        let line = line.expect("line");
        if line.contains(&fast.to_string()) && line.contains("accepted") {
            accepted_at = Some(started.elapsed());
        }
    }
    let status = child.wait().expect("exits");
    let total = started.elapsed();
    assert_eq!(status.code(), Some(6));
    let accepted_at = accepted_at.expect("a line for the accepting edge");
    assert!(
        accepted_at + Duration::from_millis(1_500) < total,
        "the accepting edge's line came at {accepted_at:?}, the run ended at {total:?}"
    );
}

#[test]
fn retry_after_is_honoured_within_the_deadline_and_a_5xx_is_a_rejection() {
    let admin = store();
    // Two 503s with retry-after: 1 (an edge just restarted), then it accepts.
    let (addr, pushes, _runtime) = edge(503, Some("1"), 2);
    let run = admin.run(&["--json", "publish", "--edge", &format!("http://{addr}")]);
    run.ok();
    assert_eq!(run.json()["edges"][0]["outcome"], "accepted");
    let pushes = pushes.lock().expect("lock").clone();
    assert_eq!(pushes.len(), 3);
    for pair in pushes.windows(2) {
        assert!(
            pair[1] - pair[0] >= Duration::from_millis(950),
            "{pushes:?}"
        );
    }

    // A retry-after past the deadline is not waited for.
    let (addr, _, _runtime2) = edge(503, Some("60"), 100);
    let started = Instant::now();
    let run = admin.run(&[
        "--json",
        "publish",
        "--edge",
        &format!("http://{addr}"),
        "--deadline",
        "3",
    ]);
    let report = run.json();
    run.fails(6);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let result = &report["edges"][0];
    assert_eq!(result["outcome"], "rejected", "{result}");
    assert_eq!(result["status"], 503);

    // For people: "rejected", with the status.
    let (addr, _, _runtime3) = edge(500, None, 100);
    let run = admin.run(&["publish", "--edge", &format!("http://{addr}")]);
    run.fails(6);
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains(&addr.to_string()))
        .expect("a line for the edge");
    assert!(
        line.contains("rejected") && line.contains("HTTP 500"),
        "{line}"
    );
}
