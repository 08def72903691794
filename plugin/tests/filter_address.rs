//! Tokens limited to client networks, through the compiled filter: allowed from inside,
//! denied from elsewhere with `address_not_allowed` (a forbidden-category code), IPv6 too; a
//! list changed by a delta takes effect; tokens without a list are unaffected.

mod filter_support;

use filter_support::*;
use pat_core::snapshot::Stamp;

const INSIDE: &str = "127.0.0.2:40000";
const ELSEWHERE: &str = "127.0.0.1:40000";

#[test]
fn a_limited_token_works_only_from_its_networks() {
    let edge = edge().build();
    let limited =
        Minted::new(1, "alice", &["environment.Control.StopEnv"]).limited_to(&["127.0.0.2/32"]);
    let v6 =
        Minted::new(2, "alice", &["environment.Control.StopEnv"]).limited_to(&["2001:db8::/32"]);
    let open = Minted::new(3, "bob", &["environment.Control.StopEnv"]);
    edge.publish(0, 1, &[&limited, &v6, &open]);
    for vm in 0..2 {
        let allowed = forwarded(&edge.get_from(vm, STOPENV, limited.value(), INSIDE));
        assert_eq!(allowed.header("x-pat-token-id"), Some("1"));
        let body = assert_denied(
            &edge,
            &edge.get_from(vm, STOPENV, limited.value(), ELSEWHERE),
            "address_not_allowed",
            702,
        );
        let error = body["error"].as_str().expect("error");
        assert!(error.contains("127.0.0.1"), "{error}");
        assert!(
            forwarded(&edge.get_from(vm, STOPENV, v6.value(), "[2001:db8::7]:5000"))
                .header("x-pat-token-id")
                == Some("2")
        );
        assert_denied(
            &edge,
            &edge.get_from(vm, STOPENV, v6.value(), "[2001:db9::7]:5000"),
            "address_not_allowed",
            702,
        );
        // A token without a list works from anywhere.
        for source in [INSIDE, ELSEWHERE, "[::1]:1", "203.0.113.9:443"] {
            forwarded(&edge.get_from(vm, STOPENV, open.value(), source));
        }
    }
    // From elsewhere, a limited token learns nothing about its scope either.
    assert_denied(
        &edge,
        &edge.get_from(
            0,
            "/1.0/environment/control/rest/deleteenv",
            limited.value(),
            ELSEWHERE,
        ),
        "address_not_allowed",
        702,
    );
    assert_eq!(
        edge.tb
            .counter("pat_edge.requests.denied.address_not_allowed"),
        Some(5)
    );
    edge.assert_clean(&[limited.value(), v6.value(), open.value()]);
}

#[test]
fn a_list_changed_by_a_delta_takes_effect() {
    let edge = edge().build();
    let mut token =
        Minted::new(1, "alice", &["environment.Control.StopEnv"]).limited_to(&["127.0.0.2/32"]);
    let v1 = snapshot_built(&edge.key, Stamp::lasting(1, START, LIFETIME), &[&token]);
    edge.push(0, v1.bytes.clone());
    edge.tick();
    assert_denied(
        &edge,
        &edge.get_from(1, STOPENV, token.value(), ELSEWHERE),
        "address_not_allowed",
        702,
    );
    // Edited: now only from 127.0.0.1.
    token.networks = vec!["127.0.0.1/32".parse().expect("network")];
    let d2 = delta(&edge.key, (1, &v1), 2, &[&token], &[]);
    assert_eq!(
        edge.push(0, d2.bytes.clone())
            .local_response()
            .expect("answered")
            .status,
        200
    );
    edge.tick();
    for vm in 0..2 {
        forwarded(&edge.get_from(vm, STOPENV, token.value(), ELSEWHERE));
        assert_denied(
            &edge,
            &edge.get_from(vm, STOPENV, token.value(), INSIDE),
            "address_not_allowed",
            702,
        );
    }
    // The limit lifted.
    token.networks.clear();
    let d3 = delta(&edge.key, (2, &d2), 3, &[&token], &[]);
    edge.push(0, d3.bytes);
    edge.tick();
    for vm in 0..2 {
        for source in [INSIDE, ELSEWHERE] {
            forwarded(&edge.get_from(vm, STOPENV, token.value(), source));
        }
    }
    edge.assert_clean(&[token.value()]);
}
