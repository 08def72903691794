//! `status` marks edges that hold an older version than the latest published one (or none)
//! and exits 6 for them.

mod support;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::get;
use support::*;

/// An edge whose status says it holds `version` (`None`: nothing loaded).
fn edge(version: Arc<Mutex<Option<u64>>>) -> (String, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let app = Router::new().route(
        "/_pat/snapshot",
        get(move || {
            let version = *version.lock().expect("lock");
            async move {
                match version {
                    Some(v) => format!(
                        r#"{{"result":0,"loaded":true,"version":{v},"tokens":1,"issued_at":1800000000,"key_id":"k"}}"#
                    ),
                    None => r#"{"result":0,"loaded":false}"#.to_string(),
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
    (format!("http://{addr}"), runtime)
}

#[test]
fn edges_behind_the_latest_version_are_marked() {
    let admin = Admin::new();
    admin.user("alice");
    admin.key();
    admin.token("alice", &["--api", "marketplace", "--no-publish"]);
    admin.token("alice", &["--api", "marketplace", "--no-publish"]); // latest: version 2
    let current = Arc::new(Mutex::new(Some(2)));
    let old = Arc::new(Mutex::new(Some(1)));
    let empty = Arc::new(Mutex::new(None));
    let (a, _ra) = edge(current);
    let (b, _rb) = edge(old.clone());
    let (c, _rc) = edge(empty);

    let run = admin.run(&["--json", "status", "--edge", &a, "--edge", &b, "--edge", &c]);
    run.fails(6);
    let json = run.json();
    assert_eq!(json["latest_version"], 2);
    let behind: Vec<bool> = json["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["behind"].as_bool().expect("behind"))
        .collect();
    assert_eq!(behind, [false, true, true]);
    assert_eq!(json["edges"][2]["version"], serde_json::Value::Null);
    assert_eq!(json["edges"][0]["issued_at"], "2027-01-15T08:00:00Z");

    let human = admin.run(&["status", "--edge", &a, "--edge", &b]);
    human.fails(6);
    let line = human
        .stdout
        .lines()
        .find(|l| l.contains(&b))
        .expect("b's line");
    assert!(line.contains("behind: latest is 2"), "{line}");
    assert!(
        human.stderr.contains("behind version 2"),
        "{}",
        human.stderr
    );

    *old.lock().expect("lock") = Some(2);
    admin.run(&["status", "--edge", &a, "--edge", &b]).ok();
}
