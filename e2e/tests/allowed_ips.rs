//! Tokens limited to client networks by pat-admin (`generate --allow-ip`, `edit`, the token
//! API's `allowedIps`), published as it publishes every change, enforced by the real Envoy:
//! the client address is the one Envoy's connection manager computes (`use_remote_address`
//! in envoy.yaml), so a client bound to 127.0.0.2 gets through and one on 127.0.0.1 is
//! denied with `address_not_allowed` (702), counted; an edited list takes effect when
//! published; a token without a list is unaffected.

use std::net::IpAddr;
use std::time::Duration;

use pat_e2e::{Client, PASSWORD, Stack, within};
use serde_json::Value;

const STOPENV: &str = "/1.0/environment/control/rest/stopenv?envName=x";
/// Fresh connections per check, so both workers answer.
const PROBES: usize = 12;

/// A client whose connections come from `local` (a new connection for every request).
fn client_from(local: &str) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .local_address(local.parse::<IpAddr>().expect("ip"))
        .pool_max_idle_per_host(0)
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

fn call(client: &reqwest::blocking::Client, url: &str) -> Value {
    let body = client
        .get(url)
        .send()
        .and_then(|r| r.text())
        .expect("answered");
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

fn allowed(answer: &Value) -> bool {
    answer["result"] == 0
}

fn refused_from(answer: &Value, address: &str) -> bool {
    answer["result"] == 702
        && answer["source"] == "JEL"
        && answer["error"].as_str().is_some_and(|e| {
            e.contains(&format!("may not be used from {address}"))
                && e.contains("limited to other client networks")
        })
}

/// The edge's answers to `token` from `from` hold `check` on every probe, within 5 s (a
/// pushed change reaches every worker within a refresh tick), and go on holding.
fn settles(stack: &Stack, token: &str, from: &str, check: impl Fn(&Value) -> bool) {
    let client = client_from(from);
    let url = stack.url(&format!("{STOPENV}&session={token}"));
    within(Duration::from_secs(5), || {
        (0..PROBES).all(|_| check(&call(&client, &url)))
    })
    .unwrap_or_else(|| panic!("from {from}: {}", call(&client, &url)));
    for _ in 0..PROBES {
        let answer = call(&client, &url);
        assert!(check(&answer), "from {from}: {answer}");
    }
}

fn confirmed(stack: &Stack, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--password-stdin");
    stack.admin_ok(&all, &format!("{PASSWORD}\n"))
}

fn denied_count(stack: &Stack) -> u64 {
    stack
        .stats()
        .lines()
        .find_map(|l| l.strip_prefix("wasmcustom.pat_edge.requests.denied.address_not_allowed: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_token_generated_for_127_0_0_2_works_only_from_there_until_its_list_is_edited() {
    let stack = Stack::start();
    let (id, limited) = stack.token(&["--api", "ide-plugins", "--allow-ip", "127.0.0.2/32"]);
    let (_, open) = stack.token(&["--api", "ide-plugins"]);
    settles(&stack, &limited, "127.0.0.2", allowed);
    settles(&stack, &limited, "127.0.0.1", |a| {
        refused_from(a, "127.0.0.1")
    });
    for from in ["127.0.0.1", "127.0.0.2", "127.0.0.3"] {
        settles(&stack, &open, from, allowed);
    }
    assert!(denied_count(&stack) >= PROBES as u64, "counted");

    // Edited to 127.0.0.1 and published (the edit pushes): the other way round now.
    let id = id.to_string();
    let edited = confirmed(
        &stack,
        &[
            "--json",
            "edit",
            "--user",
            "alice",
            &id,
            "--allow-ip",
            "127.0.0.1",
        ],
    );
    assert_eq!(edited["publish"]["state"], "published", "{edited}");
    settles(&stack, &limited, "127.0.0.1", allowed);
    settles(&stack, &limited, "127.0.0.2", |a| {
        refused_from(a, "127.0.0.2")
    });
    // A network, then no limit at all.
    confirmed(
        &stack,
        &["edit", "--user", "alice", &id, "--allow-ip", "127.0.0.0/30"],
    );
    settles(&stack, &limited, "127.0.0.3", allowed);
    settles(&stack, &limited, "127.0.0.4", |a| {
        refused_from(a, "127.0.0.4")
    });
    confirmed(&stack, &["edit", "--user", "alice", &id, "--no-ip-limit"]);
    for from in ["127.0.0.4", "127.0.0.1"] {
        settles(&stack, &limited, from, allowed);
    }
    settles(&stack, &open, "127.0.0.9", allowed);
}

#[test]
fn ipv6_networks_and_ipv4_mapped_ones() {
    let stack = Stack::start();
    // Only the IPv6 loopback: refused from IPv4 clients.
    let (_, v6) = stack.token(&["--api", "ide-plugins", "--allow-ip", "::1/128"]);
    settles(&stack, &v6, "127.0.0.1", |a| refused_from(a, "127.0.0.1"));
    // An IPv4-mapped IPv6 network is stored as the IPv4 network it means, and matches.
    let (id, mapped) = stack.token(&[
        "--api",
        "ide-plugins",
        "--allow-ip",
        "::ffff:127.0.0.2/128",
        "--allow-ip",
        "2001:db8::/32",
    ]);
    let shown = stack.admin_ok(&["--json", "show", "--user", "alice", &id.to_string()], "");
    assert_eq!(
        shown["allowed_ips"],
        serde_json::json!(["127.0.0.2/32", "2001:db8::/32"])
    );
    settles(&stack, &mapped, "127.0.0.2", allowed);
    settles(&stack, &mapped, "127.0.0.1", |a| {
        refused_from(a, "127.0.0.1")
    });
    // From ::1, when this machine has IPv6 loopback and the listener takes it (envoy.yaml
    // listens on 127.0.0.1; the test's patch would be needed to go further).
    if std::net::TcpListener::bind("[::1]:0").is_ok() {
        let url = format!("http://[::1]:{}{STOPENV}&session={v6}", stack.ports.public);
        if client_from("::1").get(&url).send().is_ok() {
            assert!(allowed(&call(&client_from("::1"), &url)));
        }
    }
}

/// A login session through the token API on Envoy's public listener.
fn api_session(stack: &Stack) -> String {
    let answer = Client::new().post(
        &stack.api_url("Signin", ""),
        "application/x-www-form-urlencoded",
        format!("login=alice&password={}", PASSWORD.replace(' ', "+")).into_bytes(),
    );
    assert_eq!(answer.json["result"], 0, "{answer:?}");
    answer.json["session"]
        .as_str()
        .expect("session")
        .to_string()
}

#[test]
fn the_token_api_sets_and_lifts_the_limit() {
    let stack = Stack::start();
    let s = api_session(&stack);
    let password = PASSWORD.replace(' ', "+");
    let form = |body: String| {
        Client::new()
            .post(
                &stack.api_url(
                    if body.contains("&id=") {
                        "EditToken"
                    } else {
                        "CreateToken"
                    },
                    "",
                ),
                "application/x-www-form-urlencoded",
                body.into_bytes(),
            )
            .json
    };
    let created = form(format!(
        "session={s}&password={password}&description=api&tokenTemplate=ide-plugins&allowedIps=127.0.0.2%2C%3A%3A1"
    ));
    assert_eq!(created["result"], 0, "{created}");
    assert_eq!(
        created["token"]["allowedIps"],
        serde_json::json!(["127.0.0.2/32", "::1/128"])
    );
    assert_eq!(created["publish"]["state"], "published", "{created}");
    let token = created["token"]["key"].as_str().expect("key").to_string();
    let id = created["token"]["id"].as_i64().expect("id");
    settles(&stack, &token, "127.0.0.2", allowed);
    settles(&stack, &token, "127.0.0.1", |a| {
        refused_from(a, "127.0.0.1")
    });
    // A malformed list: refused, nothing changed.
    let refused = form(format!(
        "session={s}&password={password}&id={id}&allowedIps=127.0.0.1%2F33"
    ));
    assert_eq!(refused["result"], 711, "{refused}");
    settles(&stack, &token, "127.0.0.1", |a| {
        refused_from(a, "127.0.0.1")
    });
    // Empty: any address again.
    let lifted = form(format!(
        "session={s}&password={password}&id={id}&allowedIps="
    ));
    assert_eq!(lifted["changed"], true, "{lifted}");
    assert_eq!(lifted["token"]["allowedIps"], serde_json::json!([]));
    settles(&stack, &token, "127.0.0.1", allowed);
}
