//! A push is judged by its signed head: garbage announced as 250 MB is answered after its
//! first bytes, before the rest is sent, so four of them at once cost Envoy almost nothing.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use pat_e2e::Stack;

const ANNOUNCED: usize = 250 * 1000 * 1000;

/// Starts a garbage push announced as 250 MB, sends `send` bytes of it, and returns the
/// answer's status line and body (read with a timeout: the answer must come by itself).
fn garbage_push(stack: &Stack, send: usize) -> (String, Duration) {
    let mut tcp = TcpStream::connect(("127.0.0.1", stack.ports.control)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let head = format!(
        "PUT /_pat/snapshot HTTP/1.1\r\nhost: edge\r\ncontent-type: application/octet-stream\r\ncontent-length: {ANNOUNCED}\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).expect("headers");
    let started = Instant::now();
    tcp.write_all(&vec![0x5a; send]).expect("first bytes");
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = tcp.read(&mut buf) {
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
        if reply.windows(4).any(|w| w == b"\r\n\r\n") && reply.ends_with(b"}") {
            break;
        }
    }
    (
        String::from_utf8_lossy(&reply).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn garbage_is_answered_before_its_body_is_sent() {
    let stack = Stack::start();
    let (reply, took) = garbage_push(&stack, 64 * 1024);
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    assert!(reply.contains("bad magic"), "{reply}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    // Four at once, from four clients: each is answered the same way.
    let replies: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| garbage_push(&stack, 1024 * 1024).0))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("push"))
            .collect()
    });
    for reply in replies {
        assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    }
    // The edge still works.
    assert_eq!(stack.edge_status()["result"], 0);
}
