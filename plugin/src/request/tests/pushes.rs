//! Pushes: checked at their signed head before the rest arrives, one at a time, published.

use super::*;

#[test]
fn a_push_in_chunks_is_checked_at_its_head_and_published() {
    let vm = Vm::new();
    let config = control(&vm);
    let t = Minted::new(5, "environment.Control.StopEnv");
    let bytes = vm.snapshot(2, &[&t]);
    let chunk = PUSH_HEAD_LEN.div_ceil(3);
    let chunks: Vec<&[u8]> = bytes.chunks(chunk).collect();
    assert!(chunks.len() > 3);
    let host = put(&vm, bytes.len());
    let mut request = Request::new(9);
    let mut run = host.deliver(&mut request, &config, &chunks[..2], false);
    assert_eq!(run.headers, Some(Action::Pause));
    assert!(host.body.borrow().is_empty(), "moved out of Envoy's buffer");
    assert!(
        vm.store.value(LEASE_KEY).is_none(),
        "the head is not complete"
    );
    // The third makes the head: it was checked and the lease taken by this request.
    host.body_chunks(&mut request, &config, &chunks[2..3], false, &mut run);
    assert_eq!(run.body, [Action::Pause; 3]);
    let lease = vm.store.value(LEASE_KEY).expect("a lease");
    assert_eq!(lease[..8], ((3u64 << 32) | 9).to_le_bytes());

    host.body_chunks(&mut request, &config, &chunks[3..], true, &mut run);
    assert_eq!(run.body.last(), Some(&Action::Pause), "answered here");
    let reply = host.reply().expect("accepted");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        (&reply.body["version"], &reply.body["tokens"]),
        (&2.into(), &1.into())
    );
    assert_eq!(
        vm.events(),
        [
            Event::Push { accepted: true },
            Event::Serving {
                version: 2,
                tokens: 1,
                apply_ms: 0
            }
        ]
    );
    assert!(vm.logged(Level::Info, "push accepted: full snapshot version 2"));
    // The lease is given back, and this (active) VM serves the new snapshot.
    assert_eq!(vm.store.value(LEASE_KEY), Some(Vec::new()), "released");
    assert_eq!(vm.replica.borrow().version(), Some(2));
    request.on_done(&host);
}

#[test]
fn a_forged_push_is_refused_at_its_head_before_the_rest_arrives() {
    let vm = Vm::new();
    let config = control(&vm);
    let other = Vm::new();
    let t = Minted::new(5, "environment.Control.StopEnv");
    let forged = other.snapshot(2, &[&t]);
    let chunks: Vec<&[u8]> = forged.chunks(PUSH_HEAD_LEN.div_ceil(2)).collect();
    let host = put(&vm, forged.len());
    let run = host.run(&mut Request::new(1), &config, &chunks);
    assert_eq!(run.body.len(), 2, "refused when the head was complete");
    assert_eq!(host.reply().expect("refused").status, 403);
    assert_eq!(vm.events(), [Event::Push { accepted: false }]);
    assert!(vm.logged(Level::Warn, "push rejected"));
    assert!(vm.store.value(LEASE_KEY).is_none(), "no lease taken");
}

#[test]
fn a_replayed_push_is_stale() {
    let vm = Vm::new();
    let config = control(&vm);
    let t = Minted::new(5, "environment.Control.StopEnv");
    let bytes = vm.snapshot(3, &[&t]);
    vm.publish_elsewhere(bytes.clone());
    let host = put(&vm, bytes.len());
    host.run(&mut Request::new(1), &config, &[&bytes]);
    let reply = host.reply().expect("refused");
    assert_eq!(reply.status, 409);
    assert_eq!(reply.body["current_version"], 3, "{}", reply.body);
}

#[test]
fn one_push_at_a_time_and_a_vanished_client_gives_the_lease_back() {
    let vm = Vm::new();
    let config = control(&vm);
    let t = Minted::new(5, "environment.Control.StopEnv");
    let first = vm.snapshot(2, &[&t]);
    let head = &first[..PUSH_HEAD_LEN];

    // A push that sent its head and then stalls holds the lease.
    let stalled = put(&vm, first.len());
    let mut stalled_request = Request::new(1);
    stalled.deliver(&mut stalled_request, &config, &[head], false);
    assert!(stalled.reply().is_none());

    let second = vm.snapshot(3, &[&t]);
    let busy = put(&vm, second.len());
    busy.run(&mut Request::new(2), &config, &[&second]);
    let reply = busy.reply().expect("refused");
    assert_eq!(reply.status, 503);
    assert_eq!(reply.headers, [("retry-after".into(), "1".into())]);

    // The stalled client goes away: on_done releases the lease, and a push goes through.
    stalled_request.on_done(&stalled);
    let retry = put(&vm, second.len());
    retry.run(&mut Request::new(3), &config, &[&second]);
    assert_eq!(retry.reply().expect("accepted").status, 200);
    assert_eq!(
        vm.events(),
        [
            Event::Push { accepted: false },
            Event::Push { accepted: true },
            Event::Serving {
                version: 3,
                tokens: 1,
                apply_ms: 0
            }
        ]
    );
}

#[test]
fn a_push_longer_than_its_signed_length_is_refused() {
    let vm = Vm::new();
    let config = control(&vm);
    let t = Minted::new(5, "environment.Control.StopEnv");
    let mut bytes = vm.snapshot(2, &[&t]);
    bytes.extend_from_slice(b"trailing garbage");
    let host = Fake::new(&vm, "PUT", CONTROL, &[]);
    host.run(&mut Request::new(1), &config, &[&bytes]);
    let reply = host.reply().expect("refused");
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(vm.events(), [Event::Push { accepted: false }]);
    // Nothing published.
    assert_eq!(
        crate::shared::read_pointer(&vm.store)
            .map(|(p, _)| p.version)
            .ok(),
        Some(0)
    );
}
