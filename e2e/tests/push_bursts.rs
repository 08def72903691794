//! A push that reaches Envoy faster than Envoy reads it — a worker busy applying a large
//! snapshot, a fast link — arrives at the filter in chunks as large as the listener's read
//! buffer. The filter moves each chunk into its VM, so Envoy buffers nothing, but Envoy
//! checks a chunk against the request's body buffer limit before the filter sees it: that
//! limit must be above the read buffer, or Envoy itself answers 413 "Payload Too Large".
//!
//! To make the burst certain, Envoy is stopped (SIGSTOP) while the client writes several MB
//! into the socket, then continued: it then reads in 128 KiB steps up to the read buffer
//! limit or just past it. The control listener's limit is set to 1,000,000 bytes here (not a
//! multiple of 128 KiB), so that every such read ends past it, as a read of a live
//! connection sometimes does with the configured 1 MiB.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use pat_core::keys::SigningKey;
use pat_core::method::MethodName;
use pat_core::snapshot::{SnapshotBuilder, Stamp, StateOf, TokenSpec};
use pat_core::token::TokenHash;
use pat_e2e::{Client, Stack, unix_now};

/// A signed full snapshot of `count` tokens, ~40 bytes each.
fn big_snapshot(key: &SigningKey, version: u64, count: usize) -> Vec<u8> {
    let scope = [MethodName::parse("environment.Control.StopEnv").expect("valid")];
    let mut b = SnapshotBuilder::new();
    for i in 0..count {
        b.add(TokenSpec {
            hash: TokenHash::of(&format!("burst-{i}")),
            id: 1000 + i as u64,
            user: "alice",
            expires_at: None,
            scope: &scope,
            networks: &[],
            envs: None,
            rate_limit: None,
        })
        .expect("add");
    }
    b.build(
        Stamp::lasting(version, unix_now(), 86_400),
        StateOf::Genesis,
        key,
    )
    .expect("build")
    .bytes
}

fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill {sig} {pid}");
}

#[test]
fn a_push_that_arrives_in_one_burst_is_accepted() {
    let mut stack = Stack::start_with(|config| {
        let control = config
            .find("- name: control")
            .expect("the control listener");
        let (public, control) = config.split_at(control);
        format!(
            "{public}{}",
            control.replacen(
                "per_connection_buffer_limit_bytes: 1048576",
                "per_connection_buffer_limit_bytes: 1000000",
                1
            )
        )
    });
    // The edge also trusts a key this test signs with.
    let key = SigningKey::generate().expect("rng");
    stack.also_trust(&key.public_key());
    let body = big_snapshot(&key, 1000, 150_000);
    assert!(body.len() > 4 << 20, "{} bytes", body.len());

    let mut tcp = TcpStream::connect(("127.0.0.1", stack.ports.control)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let pid = stack.envoy_pid();
    signal(pid, "-STOP");
    let writer = {
        let mut tcp = tcp.try_clone().expect("clone");
        std::thread::spawn(move || {
            let head = format!(
                "PUT /_pat/snapshot HTTP/1.1\r\nhost: edge\r\ncontent-type: application/octet-stream\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            tcp.write_all(head.as_bytes())?;
            tcp.write_all(&body)
        })
    };
    // The kernel takes a few MB for the stopped Envoy, then the writer blocks.
    std::thread::sleep(Duration::from_millis(500));
    signal(pid, "-CONT");
    let mut reply = String::new();
    let _ = tcp.read_to_string(&mut reply);
    let _ = writer.join();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("\"version\":1000"), "{reply}");
    let status = Client::new().get(&format!("{}/_pat/snapshot", stack.control_url()), &[]);
    assert_eq!(status.json["version"], 1000, "{status:?}");
}
