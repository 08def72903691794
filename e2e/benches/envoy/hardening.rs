//! What attacks cost the edge: four concurrent 250 MB garbage pushes (Envoy's peak RSS), and
//! a multipart body of 20,000 tiny fields trickled in 250-byte writes against the same body
//! sent at once (Envoy's CPU time).

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::envoys::{Filter, Launch, start_envoy};
use crate::measure::{cpu_ns, median, peak_rss_kib, rss_kib, setting};
use crate::{Bench, PATH};

/// Announced size of each garbage push.
const GARBAGE: usize = 250 * 1000 * 1000;
const BOUNDARY: &str = "B";

/// Runs both measurements and appends their section to the report.
pub(crate) fn run(bench: &Bench, report: &mut String) {
    let pat = Filter::Pat(bench.public_key.clone());
    eprintln!("attacks: four concurrent 250 MB garbage pushes...");
    let envoy = start_envoy(bench.dir.path(), "garbage", &pat, 2, Launch::Free);
    let pid = envoy.proc.pid();
    let (rss_before, peak_before) = (rss_kib(pid), peak_rss_kib(pid));
    let started = Instant::now();
    let outcomes: Vec<(usize, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| garbage_push(envoy.control)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("push"))
            .collect()
    });
    let took = started.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    let (rss_after, peak_after) = (rss_kib(pid), peak_rss_kib(pid));
    let sent: Vec<String> = outcomes
        .iter()
        .map(|(sent, _)| format!("{:.1} MB", *sent as f64 / 1e6))
        .collect();
    let statuses: Vec<&str> = outcomes.iter().map(|(_, status)| status.as_str()).collect();
    drop(envoy);

    eprintln!("attacks: a 1 MB multipart body of 20,000 fields, at once and trickled...");
    let body = many_fields(20_000);
    let rounds = setting("PAT_BENCH_ROUNDS", 5).max(3) as usize;
    let cpu = |filter: &Filter, name: &str| -> (f64, f64) {
        let envoy = start_envoy(bench.dir.path(), name, filter, 1, Launch::Free);
        let pid = envoy.proc.pid();
        let mut at_once = Vec::new();
        let mut trickled = Vec::new();
        for _ in 0..rounds {
            for (piece, into) in [(body.len(), &mut at_once), (250, &mut trickled)] {
                let before = cpu_ns(pid);
                let status = upload(envoy.public, &body, piece);
                assert!(status.starts_with("HTTP/1.1 200"), "{name}: {status}");
                into.push((cpu_ns(pid) - before) as f64 / 1e6);
            }
        }
        (median(at_once), median(trickled))
    };
    let (none_once, none_trickled) = cpu(&Filter::None, "trickle-none");
    let (pat_once, pat_trickled) = cpu(&pat, "trickle-pat");

    let _ = writeln!(report, "## Attacks on the edge\n");
    let _ = writeln!(
        report,
        "Four clients each `PUT` 250 MB of garbage to the control listener at once (2 workers):\n"
    );
    let _ = writeln!(report, "| | value |\n| --- | ---: |");
    let _ = writeln!(
        report,
        "| Envoy peak RSS (VmHWM) growth | {:.1} MB |",
        peak_after.saturating_sub(peak_before) as f64 / 1024.0
    );
    let _ = writeln!(
        report,
        "| Envoy RSS 1 s later, growth | {:.1} MB |",
        rss_after.saturating_sub(rss_before) as f64 / 1024.0
    );
    let _ = writeln!(
        report,
        "| bytes each client sent before the edge answered and closed | {} |",
        sent.join(", ")
    );
    let _ = writeln!(report, "| answers | {} |", statuses.join(", "));
    let _ = writeln!(
        report,
        "| all four answered after | {:.2} s |\n",
        took.as_secs_f64()
    );
    let _ = writeln!(
        report,
        "A multipart body of 20,000 small fields ({:.2} MB, no file part), sent at once and in \
         250-byte writes; Envoy CPU time per upload, median of {rounds} (1 worker):\n",
        body.len() as f64 / 1e6
    );
    let _ = writeln!(
        report,
        "| configuration | at once | trickled | trickled / at once |\n| --- | ---: | ---: | ---: |"
    );
    for (label, once, trickled) in [
        ("no filter", none_once, none_trickled),
        ("pat-edge", pat_once, pat_trickled),
    ] {
        let _ = writeln!(
            report,
            "| {label} | {once:.1} ms | {trickled:.1} ms | {:.1}× |",
            trickled / once.max(0.001)
        );
    }
    let _ = writeln!(
        report,
        "| pat-edge's own part (minus no filter) | {:.1} ms | {:.1} ms | {:.1}× |\n",
        pat_once - none_once,
        pat_trickled - none_trickled,
        (pat_trickled - none_trickled) / (pat_once - none_once).max(0.001)
    );
}

/// One garbage push: headers announcing 250 MB, then garbage in 1 MB writes until the edge
/// closes the connection. Returns the bytes sent and the answer's status line.
fn garbage_push(port: u16) -> (usize, String) {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let head = format!(
        "PUT /_pat/snapshot HTTP/1.1\r\nhost: edge\r\ncontent-type: application/octet-stream\r\ncontent-length: {GARBAGE}\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).expect("headers");
    let chunk = vec![0x5au8; 1 << 20];
    let mut sent = 0;
    while sent < GARBAGE {
        match tcp.write(&chunk[..chunk.len().min(GARBAGE - sent)]) {
            Ok(0) | Err(_) => break,
            Ok(n) => sent += n,
        }
    }
    let mut reply = Vec::new();
    let _ = tcp.read_to_end(&mut reply);
    let status = String::from_utf8_lossy(&reply)
        .lines()
        .next()
        .unwrap_or("(no answer)")
        .to_string();
    (sent, status)
}

/// A multipart body of `n` small fields (49 bytes each, under the 1 MiB buffer limit at
/// 20,000) and an ordinary session.
fn many_fields(n: usize) -> Vec<u8> {
    let mut body = String::new();
    for _ in 0..n {
        let _ = write!(
            body,
            "--{BOUNDARY}\r\nContent-Disposition: form-data;name=x\r\n\r\nv\r\n"
        );
    }
    let _ = write!(
        body,
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"session\"\r\n\r\nlegacy\r\n--{BOUNDARY}--\r\n"
    );
    body.into_bytes()
}

/// POSTs `body` in writes of `piece` bytes (each flushed on its own); returns the status line.
fn upload(port: u16, body: &[u8], piece: usize) -> String {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    tcp.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let head = format!(
        "POST {PATH} HTTP/1.1\r\nhost: edge\r\ncontent-type: multipart/form-data; boundary={BOUNDARY}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    tcp.write_all(head.as_bytes()).expect("headers");
    for chunk in body.chunks(piece) {
        tcp.write_all(chunk).expect("body");
        if piece < body.len() {
            // Let each write arrive on its own, as from a slow client.
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    let mut reply = Vec::new();
    let _ = tcp.read_to_end(&mut reply);
    String::from_utf8_lossy(&reply)
        .lines()
        .next()
        .unwrap_or("(no answer)")
        .to_string()
}
