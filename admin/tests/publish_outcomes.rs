//! What an edge's answer to a push means: a 409 naming a newer `current_version` is a
//! success (`superseded`: the edge's snapshot was built later, from a state that includes
//! this change), a 409 naming an older one is a rejection, and a 503 (an edge that restarted
//! and does not yet know the origin's version) is retried like any 5xx.

mod support;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::put;
use support::*;

/// An edge that answers pushes from a script (the last answer repeats), counting them.
struct Scripted {
    addr: SocketAddr,
    pushes: Arc<Mutex<usize>>,
    _runtime: tokio::runtime::Runtime,
}

fn scripted(answers: Vec<(u16, String)>) -> Scripted {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let script = Arc::new(Mutex::new(VecDeque::from(answers)));
    let pushes = Arc::new(Mutex::new(0usize));
    let counter = pushes.clone();
    let app = Router::new().route(
        "/_pat/snapshot",
        put(move || {
            let script = script.clone();
            let counter = counter.clone();
            async move {
                *counter.lock().expect("lock") += 1;
                let mut script = script.lock().expect("lock");
                let (status, body) = if script.len() > 1 {
                    script.pop_front().expect("an answer")
                } else {
                    script.front().cloned().expect("an answer")
                };
                (StatusCode::from_u16(status).expect("status"), body)
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
    Scripted {
        addr,
        pushes,
        _runtime: runtime,
    }
}

fn conflict(current: u64) -> (u16, String) {
    (
        409,
        format!(
            r#"{{"result":409,"error":"snapshot version is not newer than the one this edge holds","current_version":{current},"source":"pat-edge"}}"#
        ),
    )
}

fn unavailable() -> (u16, String) {
    (
        503,
        r#"{"result":503,"error":"this edge does not know the origin's version yet; retry","source":"pat-edge"}"#
            .into(),
    )
}

fn accepted(version: u64) -> (u16, String) {
    (
        200,
        format!(r#"{{"result":0,"version":{version},"tokens":1}}"#),
    )
}

/// A store with a key and one token; the stored snapshot is version 1.
fn store() -> Admin {
    let admin = Admin::new();
    admin.user("alice");
    admin.key();
    admin.token("alice", &["--api", "ide-plugins", "--no-publish"]);
    admin
}

fn url(edge: &Scripted) -> String {
    format!("http://{}", edge.addr)
}

#[test]
fn an_edge_holding_a_newer_version_is_a_success() {
    let admin = store();
    let edge = scripted(vec![conflict(9)]);
    let run = admin.run(&["--json", "publish", "--edge", &url(&edge)]);
    run.ok();
    let result = &run.json()["edges"][0];
    assert_eq!(result["outcome"], "superseded", "{result}");
    assert_eq!(
        (&result["version"], &result["pushed"]),
        (&9.into(), &1.into())
    );

    let human = admin.run(&["publish", "--edge", &url(&edge)]);
    let line = human
        .ok()
        .lines()
        .find(|l| l.contains(&url(&edge)))
        .expect("a line for the edge")
        .to_string();
    assert!(
        line.contains("superseded") && line.contains("version 9"),
        "{line}"
    );

    // After a change, too: the change's exit code is 0.
    admin.run(&["edge", "add", &url(&edge)]).ok();
    admin.token("alice", &["--api", "marketplace"]);
    let audit = admin.audit();
    let publish = audit
        .iter()
        .find(|e| e["action"] == "publish")
        .expect("a publish entry");
    assert!(
        publish["detail"]
            .as_str()
            .expect("detail")
            .contains("superseded"),
        "{publish}"
    );
}

#[test]
fn an_edge_claiming_an_older_version_is_a_rejection() {
    let admin = store();
    admin.token("alice", &["--api", "marketplace", "--no-publish"]);
    // Stored: version 2. The edge says it holds 1 and refuses 2: something is wrong there.
    let edge = scripted(vec![conflict(1)]);
    let run = admin.run(&["--json", "publish", "--edge", &url(&edge)]);
    let report = run.json();
    run.fails(6);
    assert_eq!(report["edges"][0]["outcome"], "rejected", "{report}");
    assert_eq!(report["edges"][0]["status"], 409);
}

#[test]
fn a_503_is_retried_and_a_later_success_counts() {
    let admin = store();
    let edge = scripted(vec![unavailable(), unavailable(), accepted(1)]);
    let run = admin.run(&["--json", "publish", "--edge", &url(&edge)]);
    run.ok();
    assert_eq!(run.json()["edges"][0]["outcome"], "accepted");
    assert_eq!(*edge.pushes.lock().expect("lock"), 3, "two retries");

    let down = scripted(vec![unavailable()]);
    let run = admin.run(&["--json", "publish", "--edge", &url(&down)]);
    let report = run.json();
    run.fails(6);
    let result = &report["edges"][0];
    // It answered: a 5xx that outlasts the retries is a rejection with its status, not
    // "unreachable".
    assert_eq!(result["outcome"], "rejected", "{result}");
    assert_eq!(result["status"], 503);
    assert_eq!(result["attempts"], 3);
    assert!(
        result["error"]
            .as_str()
            .expect("error")
            .contains("this edge does not know the origin's version yet"),
        "{result}"
    );
}
