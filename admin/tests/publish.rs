//! `publish` and `status` against local HTTP edges: one that accepts (and verifies and
//! applies the body with the shared snapshot code, like the filter), one that rejects, one
//! that hangs, one that is down — each reported for what it is, with exit code 6 when any did
//! not accept.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::put;
use pat_core::token::TokenHash;
use support::edge::FakeEdge;
use support::*;

struct Edges {
    accepting: SocketAddr,
    rejecting: SocketAddr,
    hanging: SocketAddr,
    down: SocketAddr,
    edge: FakeEdge,
    _runtime: tokio::runtime::Runtime,
}

/// Starts the four edges. The accepting one verifies pushes with `key`, like the filter.
fn edges(key: &str) -> Edges {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let edge = FakeEdge::start(key);
    let serve = |app: Router| {
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("addr");
            tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
            addr
        })
    };
    let accepting = edge.addr;
    let rejecting = serve(Router::new().route(
        "/_pat/snapshot",
        put(|| async {
            (
                StatusCode::FORBIDDEN,
                r#"{"result":403,"error":"snapshot is signed by key 00, which is not among the trusted public keys","source":"pat-edge"}"#,
            )
        }),
    ));
    let hanging = serve(Router::new().route(
        "/_pat/snapshot",
        put(|| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            "never"
        }),
    ));
    let down = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };
    Edges {
        accepting,
        rejecting,
        hanging,
        down,
        edge,
        _runtime: runtime,
    }
}

fn url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

#[test]
fn each_edge_is_reported_for_what_it_did() {
    let admin = Admin::new();
    admin.user("alice");
    let public = admin.key();
    let (_, token) = admin.token("alice", &["--api", "ide-plugins", "--no-publish"]);
    let e = edges(&public);

    let started = std::time::Instant::now();
    let run = admin
        .command()
        .env("PAT_ADMIN_PUSH_TIMEOUT", "0.7")
        .args(["--json", "publish"])
        .args([
            "--edge",
            &url(e.accepting),
            "--edge",
            &url(e.rejecting),
            "--edge",
            &url(e.hanging),
            "--edge",
            &url(e.down),
        ])
        .output()
        .expect("runs");
    let elapsed = started.elapsed();
    assert_eq!(
        run.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).expect("json report");
    let outcome = |addr: SocketAddr| {
        report["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .find(|r| r["edge"] == url(addr))
            .cloned()
            .expect("reported")
    };
    assert_eq!(outcome(e.accepting)["outcome"], "accepted");
    assert_eq!(outcome(e.accepting)["version"], 1);
    assert_eq!(outcome(e.rejecting)["outcome"], "rejected");
    assert_eq!(outcome(e.rejecting)["status"], 403);
    assert!(
        outcome(e.rejecting)["error"]
            .as_str()
            .expect("text")
            .contains("not among the trusted")
    );
    assert_eq!(outcome(e.hanging)["outcome"], "unreachable");
    assert_eq!(outcome(e.hanging)["error"], "no answer within 0.7 s");
    assert_eq!(outcome(e.hanging)["attempts"], 3);
    assert_eq!(outcome(e.down)["outcome"], "unreachable");
    assert!(
        outcome(e.down)["error"]
            .as_str()
            .expect("text")
            .contains("cannot connect"),
        "{}",
        outcome(e.down)
    );
    // Concurrent: the hanging edge's three timed-out attempts bound the run, not a sum.
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("did not accept"), "{stderr}");

    // The accepting edge got a body the shared code verifies: the token's hash, not its value.
    assert_eq!(e.edge.accepted(), [1]);
    assert!(
        e.edge
            .with_state(|s| s.expect("a state").find(&TokenHash::of(&token)).is_some())
    );
    assert_eq!(e.edge.token_count(), 1);
    let pushes = e.edge.pushes();
    assert!(
        !pushes[0]
            .raw
            .windows(token.len())
            .any(|w| w == token.as_bytes())
    );
}

#[test]
fn human_output_has_a_line_per_edge_and_configured_edges_get_changes() {
    let admin = Admin::new();
    admin.user("alice");
    let public = admin.key();
    let e = edges(&public);
    admin.run(&["edge", "add", &url(e.accepting)]).ok();

    // A change publishes by itself to the configured edge.
    let (id, _) = admin.token("alice", &["--method", "environment.Control.StopEnv"]);
    assert_eq!(e.edge.accepted(), [1]);
    admin
        .confirmed(&["remove", "--user", "alice", &id.to_string()])
        .ok();
    assert_eq!(e.edge.accepted(), [1, 2]);
    assert_eq!(
        e.edge.token_count(),
        0,
        "the removed token is gone at version 2"
    );
    // --no-publish leaves the edges alone.
    admin.token(
        "alice",
        &["--method", "environment.Control.StopEnv", "--no-publish"],
    );
    assert_eq!(e.edge.pushes().len(), 2);

    let run = admin.run(&[
        "publish",
        "--edge",
        &url(e.accepting),
        "--edge",
        &url(e.down),
    ]);
    let stdout = run.stdout.clone();
    run.fails(6);
    let line = |needle: &str| {
        stdout
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line for {needle}: {stdout}"))
    };
    assert!(line(&url(e.accepting)).contains("accepted"));
    assert!(line(&url(e.down)).contains("unreachable"));
    assert!(stdout.contains("Snapshot version 3 (1 tokens"), "{stdout}");
}

#[test]
fn resend_pushes_the_same_snapshot_and_an_edge_that_has_it_is_current() {
    let admin = Admin::new();
    admin.user("alice");
    let public = admin.key();
    admin.token("alice", &["--api", "maven-plugin", "--no-publish"]);
    let e = edges(&public);
    admin.run(&["publish", "--edge", &url(e.accepting)]).ok();
    let run = admin.run(&["--json", "publish", "--resend", "--edge", &url(e.accepting)]);
    run.ok();
    assert_eq!(run.json()["edges"][0]["outcome"], "already_current");
    let pushes = e.edge.pushes();
    assert_eq!(pushes.len(), 2);
    assert_eq!(
        pushes[1].documents, pushes[0].documents,
        "the same version, not a new one"
    );
    assert_eq!(pushes[0].raw, pushes[1].raw, "byte for byte");
}

#[test]
fn status_reports_each_edge() {
    let admin = Admin::new();
    admin.init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let edge = runtime.block_on(async {
        let app = Router::new().route(
            "/_pat/snapshot",
            axum::routing::get(|| async {
                r#"{"result":0,"loaded":true,"version":12,"tokens":3,"issued_at":1800000000,"key_id":"0123456789abcdef"}"#
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        addr
    });
    let down = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");

    let run = admin.run(&[
        "--json",
        "status",
        "--edge",
        &url(edge),
        "--edge",
        &url(down),
    ]);
    let report = run.json();
    run.fails(6);
    let edges = report["edges"].as_array().expect("edges");
    assert_eq!(
        (
            edges[0]["reachable"].as_bool(),
            edges[0]["version"].as_u64(),
            edges[0]["tokens"].as_u64()
        ),
        (Some(true), Some(12), Some(3))
    );
    assert_eq!(edges[1]["reachable"], false);
    assert!(
        edges[1]["error"]
            .as_str()
            .expect("text")
            .contains("cannot connect")
    );

    let human = admin.run(&["status", "--edge", &url(edge)]);
    let line = human
        .ok()
        .lines()
        .find(|l| l.contains(&url(edge)))
        .expect("a line for the edge")
        .to_string();
    assert!(
        line.contains("12") && line.contains("0123456789abcdef"),
        "{line}"
    );
}
