//! `serve`: the latest signed snapshot and its signed head for edges that restart,
//! read-only, with conditional requests; a change made by another process is served at once.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pat_core::keys::{PublicKey, TrustedKeys};
use pat_core::snapshot::{BODY_OFFSET, Snapshot, verify_head};
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
fn serves_the_latest_snapshot_and_its_head() {
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
        let head_url = format!("http://127.0.0.1:{port}/snapshot/head");
        for url in [&url, &head_url] {
            let (status, _, body) = get(url, None).await;
            assert_eq!(status, 404, "{url}");
            assert!(String::from_utf8_lossy(&body).contains("nothing has been published yet"));
        }

        // A change signs and stores the snapshot by itself (no edge configured, no publish).
        admin.token("alice", &["--api", "ide-plugins"]);
        let (status, tag, body) = get(&url, None).await;
        assert_eq!(status, 200);
        let snapshot = Snapshot::open(body.clone(), &TrustedKeys::new([key.clone()]))
            .expect("a snapshot the edge accepts");
        assert_eq!((snapshot.version(), snapshot.token_count()), (1, 1));
        let tag = tag.expect("an etag");
        assert!(tag.starts_with("\"1-"), "{tag}");

        // The head: exactly the signed first BODY_OFFSET bytes, verifiable alone, same tag.
        let (status, head_tag, head) = get(&head_url, None).await;
        assert_eq!(status, 200);
        assert_eq!(head, body[..BODY_OFFSET], "the snapshot's first bytes");
        let header = verify_head(&head, &TrustedKeys::new([key.clone()])).expect("signed");
        assert_eq!(header.version, 1);
        assert_eq!(head_tag.as_deref(), Some(tag.as_str()));
        let (status, _, body) = get(&head_url, Some(&tag)).await;
        assert_eq!((status, body.len()), (304, 0), "head not modified");

        let (status, _, body) = get(&url, Some(&tag)).await;
        assert_eq!((status, body.len()), (304, 0), "not modified");

        // publish with nothing changed pushes the same snapshot: still not modified.
        admin.run(&["publish"]).ok();
        let (status, _, _) = get(&url, Some(&tag)).await;
        assert_eq!(status, 304, "publish without a change keeps the version");

        admin.token("alice", &["--api", "marketplace"]);
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
