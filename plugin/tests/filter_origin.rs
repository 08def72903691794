//! An edge that (re)starts asks the origin: first its signed head (which sets the version
//! floor), then the snapshot when the head is newer; one VM at a time, verified like a push,
//! retried after failures, never replacing a newer one.

mod filter_support;

use std::time::{Duration, UNIX_EPOCH};

use filter_support::*;
use pat_core::keys::SigningKey;
use pat_core::snapshot::BODY_OFFSET;
use pat_testbed::{HttpCall, Response};

const ORIGIN: &str = r#""origin":{"cluster":"pat_origin","path":"/snapshot","head_path":"/snapshot/head","authority":"pat-origin","interval_ms":30000,"retry_ms":2000,"timeout_ms":5000}"#;

/// Two serving workers (VMs 0 and 1) and VM 2, which never serves a request: Envoy's
/// main-thread VM, the one that normally fetches snapshots.
fn origin_edge() -> Edge {
    edge()
        .workers(3)
        .public(ORIGIN)
        .testbed(|b| b.cluster("pat_origin"))
        .build()
}

fn only_call(edge: &Edge) -> HttpCall {
    let calls = edge.tb.pending_http_calls();
    assert_eq!(calls.len(), 1, "exactly one VM fetches: {calls:?}");
    calls.into_iter().next().expect("one call")
}

fn header<'a>(call: &'a HttpCall, name: &str) -> Option<&'a str> {
    call.headers.get(name)
}

/// The origin's signed head of a snapshot.
fn head(bytes: &[u8]) -> Vec<u8> {
    bytes[..BODY_OFFSET].to_vec()
}

/// Answers the pending head fetch with the head of `snapshot`.
fn answer_head(edge: &Edge, snapshot: &[u8]) {
    let call = only_call(edge);
    assert_eq!(header(&call, ":path"), Some("/snapshot/head"));
    edge.tb
        .respond_http_call(call.token, Response::new(200).body(head(snapshot)))
        .expect("delivered");
}

/// Answers the pending catch-up fetch (`/snapshot`, or `/snapshot?since=V` when the edge
/// holds version V).
fn answer_snapshot(edge: &Edge, response: Response) {
    let call = only_call(edge);
    let path = header(&call, ":path").unwrap_or_default();
    assert!(
        path == "/snapshot" || path.starts_with("/snapshot?since="),
        "{path}"
    );
    edge.tb
        .respond_http_call(call.token, response)
        .expect("delivered");
}

#[test]
fn a_fresh_edge_asks_for_the_head_then_the_snapshot() {
    let edge = origin_edge();
    let t = Minted::new(1, "alice", &["environment.Control.StopEnv"]);
    assert_denied(&edge, &edge.get(0, STOPENV, t.value()), "no_snapshot", 701);

    edge.tick();
    let call = only_call(&edge);
    assert_eq!(call.cluster, "pat_origin");
    assert_eq!(header(&call, ":authority"), Some("pat-origin"));
    let v4 = snapshot(&edge.key, 4, &[&t]);
    answer_head(&edge, &v4);
    // The head announced a newer snapshot: it is fetched on the next tick.
    edge.tick();
    let call = only_call(&edge);
    assert_eq!(header(&call, ":path"), Some("/snapshot"));
    assert_eq!(header(&call, "if-none-match"), None);
    answer_snapshot(
        &edge,
        Response::new(200).header("etag", "\"4-abc\"").body(v4),
    );
    // Both workers serve it: one loads it at its tick, the other on its first request.
    assert!(edge.get(0, STOPENV, t.value()).is_forwarded());
    assert!(edge.get(1, STOPENV, t.value()).is_forwarded());
    assert_eq!(edge.tb.counter("pat_edge.origin.fetched"), Some(1));
    assert_eq!(edge.tb.counter("pat_edge.origin.heads"), Some(1));

    // Nothing more until the interval; then a head only, while nothing changed.
    edge.tb.advance(Duration::from_secs(29));
    assert!(edge.tb.pending_http_calls().is_empty());
    edge.tb.advance(Duration::from_secs(1));
    answer_head(&edge, &snapshot(&edge.key, 4, &[&t]));
    edge.tick();
    assert!(
        edge.tb.pending_http_calls().is_empty(),
        "an unchanged head costs no snapshot fetch"
    );
    // A newer head: the edge asks for what it lacks since the version it holds.
    edge.tb.advance(Duration::from_secs(30));
    let u = Minted::new(2, "alice", &["environment.Control.StopEnv"]);
    let v5 = snapshot(&edge.key, 5, &[&t, &u]);
    answer_head(&edge, &v5);
    edge.tick();
    assert_eq!(
        header(&only_call(&edge), ":path"),
        Some("/snapshot?since=4")
    );
    answer_snapshot(&edge, Response::new(200).body(v5));
    edge.tick();
    assert!(edge.get(0, STOPENV, u.value()).is_forwarded());
    edge.assert_clean(&[t.value(), u.value()]);
}

#[test]
fn a_restarted_edge_never_takes_a_revoked_token_back() {
    // Before the restart: v4 had both tokens, v5 revoked `revoked`.
    let key = SigningKey::generate().expect("rng");
    let kept = Minted::new(1, "alice", &["environment.Control.StopEnv"]);
    let revoked = Minted::new(2, "alice", &["environment.Control.StopEnv"]);
    let v4 = snapshot(&key, 4, &[&kept, &revoked]);
    let v5 = snapshot(&key, 5, &[&kept]);

    // The restart: a new process, empty shared data. An attacker replays v4 at once.
    let edge = edge()
        .key(key)
        .workers(3)
        .public(ORIGIN)
        .testbed(|b| b.cluster("pat_origin"))
        .build();
    let replay = |vm: usize| edge.push(vm, v4.clone());
    let never_allowed = |what: &str| {
        for vm in 0..2 {
            let ex = edge.get(vm, STOPENV, revoked.value());
            assert!(
                !ex.is_forwarded(),
                "{what}: the revoked token reached the platform"
            );
        }
    };
    for vm in 0..2 {
        let answer = replay(vm);
        let local = answer.local_response().expect("answered");
        assert_eq!(local.status, 503, "{}", local.body_text());
        assert!(local.body_text().contains("asking the origin"));
        assert_eq!(local.header("retry-after"), Some("1"));
    }
    never_allowed("before the origin answered");

    // The origin answers with v5's head: the floor is 5, and v4 is refused for good.
    edge.tick();
    answer_head(&edge, &v5);
    for vm in 0..2 {
        let answer = replay(vm);
        let local = answer.local_response().expect("answered");
        assert_eq!(local.status, 409, "{}", local.body_text());
        assert!(local.body_text().contains("older than version 5"));
    }
    never_allowed("after the floor, before the snapshot");
    let status = edge
        .tb
        .vm(0)
        .send_to("control", pat_testbed::Request::get(CONTROL_PATH));
    assert_eq!(json(&status)["floor"], 5);

    edge.tick();
    answer_snapshot(&edge, Response::new(200).body(v5.clone()));
    edge.tick();
    for vm in 0..2 {
        assert!(edge.get(vm, STOPENV, kept.value()).is_forwarded());
        assert_denied(
            &edge,
            &edge.get(vm, STOPENV, revoked.value()),
            "unknown_token",
            701,
        );
        let local = replay(vm);
        assert_eq!(local.local_response().expect("answered").status, 409);
    }
    never_allowed("after the snapshot");
    edge.assert_clean(&[kept.value(), revoked.value()]);
}

#[test]
fn an_origin_with_nothing_published_lets_pushes_through() {
    let edge = origin_edge();
    let t = Minted::new(1, "alice", &["environment.Control.StopEnv"]);
    assert_eq!(
        edge.push(0, snapshot(&edge.key, 1, &[&t]))
            .local_response()
            .expect("answered")
            .status,
        503
    );
    edge.tick();
    let call = only_call(&edge);
    edge.tb
        .respond_http_call(
            call.token,
            Response::new(404).body(r#"{"result":404,"error":"nothing has been published yet"}"#),
        )
        .expect("delivered");
    edge.publish(0, 1, &[&t]);
    assert!(edge.get(1, STOPENV, t.value()).is_forwarded());
}

#[test]
fn failures_keep_the_snapshot_and_retry_soon() {
    let edge = origin_edge();
    let t = Minted::new(1, "alice", &["environment.Control.StopEnv"]);
    edge.tick();
    let v2 = snapshot(&edge.key, 2, &[&t]);
    answer_head(&edge, &v2);
    edge.tick();
    answer_snapshot(&edge, Response::new(200).body(v2));

    // The origin is down (connection reset): retried after retry_ms, not the interval.
    edge.tb.advance(Duration::from_secs(30));
    edge.tb
        .fail_http_call(only_call(&edge).token)
        .expect("delivered");
    assert!(
        edge.get(0, STOPENV, t.value()).is_forwarded(),
        "the pushed snapshot stays"
    );
    edge.tb.advance(Duration::from_millis(1900));
    assert!(edge.tb.pending_http_calls().is_empty());
    edge.tb.advance(Duration::from_millis(150));
    let call = only_call(&edge);

    // A 500 is a failure too.
    edge.tb
        .respond_http_call(call.token, Response::new(500).body("boom"))
        .expect("delivered");
    edge.tb.advance(Duration::from_millis(2050));
    only_call(&edge);

    // A timeout (Envoy answers 504): failure, retried.
    edge.tb.advance(Duration::from_millis(5100));
    assert!(
        edge.tb.counter("pat_edge.origin.failed").unwrap_or(0) >= 3,
        "{:?}",
        edge.tb.metrics()
    );
    assert!(edge.get(1, STOPENV, t.value()).is_forwarded());
    edge.assert_clean(&[t.value()]);
}

#[test]
fn forged_heads_and_snapshots_from_the_origin_change_nothing() {
    let edge = origin_edge();
    let t = Minted::new(1, "alice", &["environment.Control.StopEnv"]);
    let intruder = Minted::new(2, "mallory", &["environment.Control.StopEnv"]);
    let stranger = SigningKey::generate().expect("rng");

    // A head signed by a stranger sets no floor: pushes still wait.
    edge.tick();
    answer_head(&edge, &snapshot(&stranger, 9, &[&intruder]));
    assert!(
        !edge
            .tb
            .logs_containing("snapshot head was refused")
            .is_empty()
    );
    assert_eq!(
        edge.push(0, snapshot(&edge.key, 5, &[&t]))
            .local_response()
            .expect("answered")
            .status,
        503
    );

    // A real head and its snapshot; then a forged snapshot body: refused; an older one:
    // refused.
    edge.tb.advance(Duration::from_millis(2100));
    answer_head(&edge, &snapshot(&edge.key, 5, &[&t]));
    edge.tick();
    answer_snapshot(
        &edge,
        Response::new(200).body(snapshot(&edge.key, 5, &[&t])),
    );
    edge.tb.advance(Duration::from_secs(30));
    answer_head(&edge, &snapshot(&edge.key, 6, &[&t, &intruder]));
    edge.tick();
    answer_snapshot(
        &edge,
        Response::new(200).body(snapshot(&stranger, 6, &[&intruder])),
    );
    assert!(
        !edge
            .tb
            .logs_containing("snapshot from the origin was refused")
            .is_empty()
    );
    edge.tb.advance(Duration::from_millis(2100));
    answer_snapshot(
        &edge,
        Response::new(200)
            .header("etag", "\"4-x\"")
            .body(snapshot(&edge.key, 4, &[&intruder])),
    );
    for vm in 0..2 {
        assert!(edge.get(vm, STOPENV, t.value()).is_forwarded());
        assert_denied(
            &edge,
            &edge.get(vm, STOPENV, intruder.value()),
            "unknown_token",
            701,
        );
    }
    edge.assert_clean(&[t.value(), intruder.value()]);
}

#[test]
fn a_stale_head_is_not_followed() {
    // Eight days after START; the origin still serves a snapshot issued at START for a week.
    let edge = edge()
        .workers(3)
        .public(ORIGIN)
        .testbed(|b| {
            b.cluster("pat_origin")
                .start_time(UNIX_EPOCH + Duration::from_secs(START + 8 * 86_400))
        })
        .build();
    let t = Minted::new(1, "alice", &["environment.Control.StopEnv"]);
    edge.tick();
    answer_head(&edge, &snapshot(&edge.key, 3, &[&t]));
    edge.tick();
    assert!(
        edge.tb.pending_http_calls().is_empty(),
        "an expired snapshot is not worth fetching"
    );
    assert_denied(&edge, &edge.get(0, STOPENV, t.value()), "no_snapshot", 701);
}

#[test]
fn serving_vms_take_heads_but_only_overdue_snapshots() {
    let edge = edge()
        .public(ORIGIN)
        .testbed(|b| b.cluster("pat_origin"))
        .build();
    for vm in 0..2 {
        assert!(edge.get(vm, STOPENV, "legacy").is_forwarded());
    }
    let t = Minted::new(1, "alice", &["environment.Control.StopEnv"]);
    let v1 = snapshot(&edge.key, 1, &[&t]);
    // With no idle VM, a serving one asks for the head at once (it is small)...
    edge.tick();
    answer_head(&edge, &v1);
    // ...but takes the snapshot only once it is 5 s overdue.
    edge.tick();
    assert!(edge.tb.pending_http_calls().is_empty());
    edge.tb.advance(Duration::from_secs(5));
    answer_snapshot(&edge, Response::new(200).body(v1));
    assert!(edge.get(0, STOPENV, t.value()).is_forwarded());
}

#[test]
fn an_idle_vm_fetches_and_keeps_no_copy() {
    let edge = origin_edge();
    // VMs 0 and 1 serve traffic; VM 2 is idle, like Envoy's main-thread VM.
    for vm in 0..2 {
        assert!(edge.get(vm, STOPENV, "legacy").is_forwarded());
    }
    let idle_before = edge.tb.vm(2).memory_size();
    let many: Vec<Minted> = (1..=2000)
        .map(|i| Minted::new(i, "bulk", &["environment.Control.GetEnvs"]))
        .collect();
    let refs: Vec<&Minted> = many.iter().collect();
    let v1 = snapshot(&edge.key, 1, &refs);
    edge.tick();
    answer_head(&edge, &v1);
    edge.tick();
    let call = only_call(&edge);
    assert_eq!(call.vm, 2, "the idle VM fetches the snapshot");
    answer_snapshot(&edge, Response::new(200).body(v1));
    // The serving VM picks it up from shared data.
    edge.tick();
    assert!(
        edge.get(0, "/1.0/environment/control/rest/getenvs", many[0].value())
            .is_forwarded()
    );
    // The idle VM published it and let it go (memory grew by the transient body only).
    let pointer = edge
        .tb
        .shared_data("pat_edge.v3.current")
        .expect("published")
        .value;
    assert_eq!(
        u64::from_le_bytes(pointer[..8].try_into().expect("8 bytes")),
        1
    );
    let grown = edge.tb.vm(2).memory_size().saturating_sub(idle_before);
    assert!(grown < 512 * 1024, "idle VM grew {grown} bytes");
    edge.assert_clean(&[many[0].value()]);
}
