//! `serve`: the last published snapshot for edges that restart, read-only, with conditional
//! requests; a publish from another process is served at once.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pat_core::keys::{PublicKey, TrustedKeys};
use pat_core::snapshot::Snapshot;
use support::*;

/// Kills the server when the test ends, pass or fail.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

async fn get(url: &str, etag: Option<&str>) -> (u16, Option<String>, Vec<u8>) {
    let client = reqwest::Client::new();
    let mut request = client.get(url);
    if let Some(tag) = etag {
        request = request.header("if-none-match", tag);
    }
    let response = request.send().await.expect("served");
    let status = response.status().as_u16();
    let tag = response
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, tag, response.bytes().await.expect("body").to_vec())
}

#[test]
fn serves_the_last_published_snapshot() {
    let admin = Admin::new();
    admin.user("alice");
    let key: PublicKey = admin.key().parse().expect("public key");
    let port = free_port();
    let child = Command::new(assert_cmd::cargo::cargo_bin("pat-admin"))
        .env_remove("PAT_ADMIN_STORE")
        .args([
            "--store",
            admin.store().to_str().expect("utf-8"),
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let _server = Server(child);
    let url = format!("http://127.0.0.1:{port}/snapshot");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        // Wait for it to listen.
        let deadline = Instant::now() + Duration::from_secs(10);
        while reqwest::get(&url).await.is_err() {
            assert!(Instant::now() < deadline, "serve did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (status, _, body) = get(&url, None).await;
        assert_eq!(status, 404);
        assert!(String::from_utf8_lossy(&body).contains("nothing has been published yet"));

        admin.token("alice", &["--api", "ide-plugins"]);
        admin.run(&["publish"]).ok();
        let (status, tag, body) = get(&url, None).await;
        assert_eq!(status, 200);
        let snapshot = Snapshot::open(body, &TrustedKeys::new([key.clone()]))
            .expect("a snapshot the edge accepts");
        assert_eq!((snapshot.version(), snapshot.token_count()), (1, 1));
        let tag = tag.expect("an etag");
        assert!(tag.starts_with("\"1-"), "{tag}");

        let (status, _, body) = get(&url, Some(&tag)).await;
        assert_eq!((status, body.len()), (304, 0), "not modified");

        admin.run(&["publish"]).ok();
        let (status, new_tag, body) = get(&url, Some(&tag)).await;
        assert_eq!(
            status, 200,
            "a new version is served to the same conditional request"
        );
        assert_ne!(new_tag.as_deref(), Some(tag.as_str()));
        assert_eq!(
            Snapshot::open(body, &TrustedKeys::new([key]))
                .expect("verifies")
                .version(),
            2
        );

        let (status, _, _) = get(&format!("http://127.0.0.1:{port}/other"), None).await;
        assert_eq!(status, 404);
        let put = reqwest::Client::new()
            .put(&url)
            .body("x")
            .send()
            .await
            .expect("answered");
        assert_eq!(put.status().as_u16(), 405, "read-only");
    });
}
