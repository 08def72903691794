//! `GET /healthz` on both of `serve`'s listeners: `200` with the engine and the latest
//! version while the replica can read its store, `503` with the reason when it cannot.

mod support;

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
