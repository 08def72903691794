//! Tokens limited to client networks in the real Envoy: the client address is the one
//! Envoy's connection manager computes (`use_remote_address`, `xff_num_trusted_hops` in
//! envoy.yaml), so a client cannot claim another one with `X-Forwarded-For`.

use std::net::IpAddr;
use std::time::Duration;

use pat_core::keys::SigningKey;
use pat_core::method::MethodName;
use pat_core::net::Network;
use pat_core::snapshot::{SnapshotBuilder, Stamp, StateOf, TokenSpec};
use pat_core::token::Token;
use pat_e2e::{Client, Stack, unix_now};
use serde_json::Value;

const STOPENV: &str = "/1.0/environment/control/rest/stopenv?envName=x";

/// A client whose connections come from `local` (fresh connections, so both workers serve).
fn client_from(local: &str) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .local_address(local.parse::<IpAddr>().expect("ip"))
        .pool_max_idle_per_host(0)
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

fn call(client: &reqwest::blocking::Client, url: &str, headers: &[(&str, &str)]) -> Value {
    let mut request = client.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let body = request.send().and_then(|r| r.text()).expect("answered");
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

#[test]
fn a_token_limited_to_127_0_0_2_works_only_from_there() {
    let mut stack = Stack::start();
    let key = SigningKey::generate().expect("rng");
    stack.also_trust(&key.public_key());
    let (limited, v6, open) = (
        Token::generate().expect("rng"),
        Token::generate().expect("rng"),
        Token::generate().expect("rng"),
    );
    let scope = [MethodName::parse("environment.Control.StopEnv").expect("valid")];
    let only_two: [Network; 1] = ["127.0.0.2/32".parse().expect("network")];
    let only_v6_loopback: [Network; 1] = ["::1/128".parse().expect("network")];
    let mut b = SnapshotBuilder::new();
    for (token, id, networks) in [
        (&limited, 101, &only_two[..]),
        (&v6, 102, &only_v6_loopback[..]),
        (&open, 103, &[][..]),
    ] {
        b.add(TokenSpec {
            hash: token.hash(),
            id,
            user: "alice",
            expires_at: None,
            scope: &scope,
            networks,
            envs: None,
            rate_limit: None,
        })
        .expect("add");
    }
    let built = b
        .build(
            Stamp::lasting(1000, unix_now(), 86_400),
            StateOf::Genesis,
            &key,
        )
        .expect("build");
    let control = format!("{}/_pat/snapshot", stack.control_url());
    assert_eq!(Client::new().put(&control, built.bytes).status, 200);

    let url = |token: &Token| stack.url(&format!("{STOPENV}&session={}", token.expose()));
    let (from_two, from_one) = (client_from("127.0.0.2"), client_from("127.0.0.1"));
    let ok = |answer: &Value| answer["result"] == 0;
    let refused = |answer: &Value| {
        answer["result"] == 702
            && answer["source"] == "JEL"
            && answer["error"]
                .as_str()
                .is_some_and(|e| e.contains("may not be used from"))
    };
    // Both workers: fresh connections each time.
    assert!(
        pat_e2e::within(Duration::from_secs(5), || ok(&call(
            &from_two,
            &url(&limited),
            &[]
        )))
        .is_some(),
        "the snapshot is served"
    );
    for _ in 0..8 {
        assert!(ok(&call(&from_two, &url(&limited), &[])));
        let answer = call(&from_one, &url(&limited), &[]);
        assert!(refused(&answer), "{answer}");
        assert!(answer["error"].as_str().unwrap_or("").contains("127.0.0.1"));
        // Claiming another address does not help.
        for header in ["x-forwarded-for", "x-real-ip", "forwarded"] {
            let value = if header == "forwarded" {
                "for=127.0.0.2"
            } else {
                "127.0.0.2"
            };
            let answer = call(&from_one, &url(&limited), &[(header, value)]);
            assert!(refused(&answer), "{header}: {answer}");
        }
        for client in [&from_two, &from_one] {
            assert!(ok(&call(client, &url(&open), &[])), "no list: any address");
        }
    }
    // IPv6: only from ::1 (when this machine has IPv6 loopback).
    if std::net::TcpListener::bind("[::1]:0").is_ok() {
        let v6_url = format!(
            "http://[::1]:{}{STOPENV}&session={}",
            stack.ports.public,
            v6.expose()
        );
        let listens_on_v6 = client_from("::1").get(&v6_url).send().is_ok();
        if listens_on_v6 {
            assert!(ok(&call(&client_from("::1"), &v6_url, &[])));
        }
        let answer = call(&from_one, &url(&v6), &[]);
        assert!(refused(&answer), "{answer}");
    }
    let stats = stack.stats();
    assert!(
        stats.lines().any(|l| l
            .starts_with("wasmcustom.pat_edge.requests.denied.address_not_allowed: ")
            && !l.ends_with(": 0")),
        "counted"
    );
}
