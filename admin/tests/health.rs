//! `GET /healthz` on both of `serve`'s listeners: `200` with the engine and the latest
//! version while the replica can read its store, `503` with the reason when it cannot.

mod support;

use serde_json::Value;
use support::*;

#[test]
fn both_listeners_answer_health_checks_from_the_store() {
    let admin = Admin::new();
    admin.user("alice");
    let _key = admin.key();
    admin.token("alice", &["--method", "environment.control.stopenv"]);
    admin.run(&["publish"]).ok();
    let serve = admin.serve_api();
    for port in [serve.port, serve.api_port.expect("api port")] {
        let reply = http_get(port, "/healthz", None);
        assert_eq!(reply.status, 200, "port {port}");
        let json = reply.json();
        assert_eq!(json["status"], "ok");
        assert_eq!(
            json["store"],
            if admin.pg.is_some() {
                "postgres"
            } else {
                "sqlite"
            }
        );
        assert!(json["version"].as_u64().is_some_and(|v| v >= 1), "{json}");
    }
}

#[test]
fn a_replica_that_cannot_read_its_store_is_unhealthy() {
    let admin = Admin::sqlite();
    admin.user("alice");
    let serve = admin.serve();
    assert_eq!(http_get(serve.port, "/healthz", None).status, 200);
    // The database file goes away under the running server.
    let db = admin.store().join("pat-admin.db");
    std::fs::rename(&db, admin.dir.path().join("moved.db")).expect("move");
    let reply = http_get(serve.port, "/healthz", None);
    assert_eq!(reply.status, 503);
    let json = reply.json();
    assert_eq!(json["status"], "unavailable");
    assert!(
        json["error"]
            .as_str()
            .is_some_and(|e| e.contains("does not exist")),
        "{json}"
    );
    std::fs::rename(admin.dir.path().join("moved.db"), &db).expect("move back");
    assert_eq!(
        http_get(serve.port, "/healthz", None).status,
        200,
        "healthy again"
    );
}

#[test]
fn serve_on_port_zero_names_the_addresses_it_bound() {
    use std::io::{BufRead, BufReader};
    let admin = Admin::new();
    admin.init();
    let mut child = admin
        .std_command()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--api-listen",
            "127.0.0.1:0",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("serve starts");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut ports = Vec::new();
    while ports.len() < 2 {
        let line = lines
            .next()
            .expect("serve logs its addresses")
            .expect("a line");
        if let Some(rest) = line.split("http://127.0.0.1:").nth(1) {
            let port: u16 = rest
                .split('/')
                .next()
                .and_then(|p| p.parse().ok())
                .expect("a port");
            assert_ne!(port, 0, "{line}");
            ports.push(port);
        }
    }
    for port in ports {
        assert_eq!(http_get(port, "/healthz", None).status, 200, "port {port}");
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The token API of a replica on PostgreSQL keeps working after the server closed its
/// connections (a restart, a failover): a call that was using a closed connection may fail,
/// cleanly (`result` 99, nothing changed), and the next ones get a new connection. The
/// API's pool used to hand the closed connection out again, and every call failed until
/// `serve` restarted.
#[test]
fn the_api_reconnects_after_postgresql_closed_its_connections() {
    let admin = Admin::new();
    let Some(pg) = &admin.pg else {
        eprintln!("skipped: PostgreSQL only (PAT_TEST_ENGINE=postgres)");
        return;
    };
    admin.user("alice");
    let serve = admin.serve_api();
    let api = serve.api_port.expect("api port");
    let call = |method: &str, query: &str| {
        let reply = http_request(
            api,
            "GET",
            &format!("/1.0/users/authentication/rest/{method}?{query}"),
            "x-test-client: 192.0.2.1\r\n",
            b"",
        );
        assert_eq!(reply.status, 200);
        reply.json()
    };
    let signin = call(
        "Signin",
        &format!("login=alice&password={}", PASSWORD.replace(' ', "+")),
    );
    let session = signin["session"].as_str().expect("session").to_string();
    let tokens = format!("session={session}");
    assert_eq!(call("GetTokens", &tokens)["result"], 0);
    // The server ends every connection serve holds (as a restart does).
    let mut db = postgres::Client::connect(&pg.url(), postgres::NoTls).expect("connect");
    let ended = db
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'pat-admin'",
            &[],
        )
        .expect("terminate");
    assert!(!ended.is_empty(), "serve holds a connection");
    let answers: Vec<Value> = (0..6).map(|_| call("GetTokens", &tokens)).collect();
    let failed = answers.iter().filter(|a| a["result"] != 0).count();
    assert!(
        answers
            .iter()
            .all(|a| a["result"] == 0 || a["result"] == 99),
        "{answers:?}"
    );
    assert!(
        failed <= 1
            && answers[answers.len() - 3..]
                .iter()
                .all(|a| a["result"] == 0),
        "the API did not reconnect: {answers:?}\n{}",
        serve.log()
    );
}

#[test]
fn the_origin_answers_heads_on_connections_it_keeps() {
    let admin = Admin::new();
    let Some(pg) = &admin.pg else {
        eprintln!("skipped: PostgreSQL only (PAT_TEST_ENGINE=postgres; SQLite opens a file)");
        return;
    };
    admin.user("alice");
    admin.key();
    admin.token("alice", &["--method", "environment.Control.StopEnv"]);
    let serve = admin.serve();
    let mut db = postgres::Client::connect(&pg.url(), postgres::NoTls).expect("connect");
    // Read-only connections of this serve: its pooled readers.
    let mut readers = || -> Vec<(i32, String)> {
        db.query(
            "SELECT pid, CAST(backend_start AS TEXT) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'pat-admin' AND query LIKE '%snapshots%' ORDER BY pid",
            &[],
        )
        .expect("activity")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
    };
    for _ in 0..10 {
        assert_eq!(serve.get("/snapshot/head", None).status, 200);
        assert_eq!(serve.get("/healthz", None).status, 200);
    }
    let before = readers();
    assert!(!before.is_empty(), "a reader stays connected");
    for _ in 0..20 {
        assert_eq!(serve.get("/snapshot/head", None).status, 200);
    }
    let after = readers();
    assert!(
        after.iter().all(|r| before.contains(r)) && after.len() <= 4,
        "heads answered on the same connections: {before:?} then {after:?}"
    );
}
