//! A stand-in origin for the shipped configuration: `envoy.yaml` configures pat-edge with an
//! origin (it asks for the signed head before it accepts anything, then fetches the
//! snapshot) and usage reports, so the Envoys that run it are fed by this small server
//! instead of pushes. It serves one signed snapshot (the head, the whole document, and an
//! empty bundle to an edge that already holds it) and accepts every usage report: what
//! `pat-admin serve` answers, without a store.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use pat_core::protocol::origin;
use pat_core::snapshot::{BODY_OFFSET, HEADER_LEN, Header, bundle};

/// A running origin; it stops when dropped.
pub(crate) struct Origin {
    pub(crate) port: u16,
    stop: Arc<AtomicBool>,
}

impl Origin {
    /// Serves `snapshot` (one signed full snapshot) on a free port.
    pub(crate) fn serve(snapshot: Vec<u8>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the origin");
        let port = listener.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let reports = Arc::new(AtomicU64::new(0));
        let version = snapshot
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .and_then(|h| Header::decode(h).ok())
            .expect("a signed snapshot")
            .version;
        let snapshot = Arc::new(snapshot);
        let (stopping, counted) = (stop.clone(), reports.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (snapshot, counted) = (snapshot.clone(), counted.clone());
                std::thread::spawn(move || serve(stream, &snapshot, version, &counted));
            }
        });
        Self { port, stop }
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Answers the requests of one keep-alive connection.
fn serve(stream: TcpStream, snapshot: &[u8], version: u64, reports: &AtomicU64) {
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut out = write_half;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, target) = (
            parts.next().unwrap_or_default().to_string(),
            parts.next().unwrap_or_default().to_string(),
        );
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let since = origin::parse_since(Some(query)).ok().flatten();
        let (status, content_type, answer): (&str, &str, Vec<u8>) = match (method.as_str(), path) {
            ("GET", origin::HEAD_PATH) => (
                "200 OK",
                "application/octet-stream",
                snapshot.get(..BODY_OFFSET).unwrap_or_default().to_vec(),
            ),
            ("GET", origin::SNAPSHOT_PATH) if since == Some(version) => (
                "200 OK",
                "application/octet-stream",
                bundle::encode(std::iter::empty::<&[u8]>()),
            ),
            ("GET", origin::SNAPSHOT_PATH) => {
                ("200 OK", "application/octet-stream", snapshot.to_vec())
            }
            // `envoy.yaml` health-checks its origin replicas (panic threshold 0): an origin
            // that does not answer here gets no traffic at all.
            ("GET", "/healthz") => ("200 OK", "application/json", b"{}".to_vec()),
            ("POST", origin::USAGE_PATH) => {
                reports.fetch_add(1, Ordering::Relaxed);
                let reply = origin::UsageAccepted {
                    result: 0,
                    edge: "bench".into(),
                    uses: 0,
                    updated: 0,
                };
                (
                    "200 OK",
                    "application/json",
                    serde_json::to_vec(&reply).expect("json"),
                )
            }
            _ => ("404 Not Found", "application/json", b"{}".to_vec()),
        };
        let head = format!(
            "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n{}: {version}\r\n\r\n",
            answer.len(),
            origin::VERSION_HEADER,
        );
        if out.write_all(head.as_bytes()).is_err() || out.write_all(&answer).is_err() {
            return;
        }
    }
}
