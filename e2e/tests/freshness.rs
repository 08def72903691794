//! Freshness in real Envoy: an expired snapshot is refused even by an edge without an origin;
//! an edge cut off from its origin stops serving a snapshot that aged out (fail closed); and
//! an edge restarted while its origin is down accepts no push at all until the origin
//! answers (no rollback window), then serves again by itself.

use std::time::Duration;

use pat_core::keys::SigningKey;
use pat_core::method::MethodName;
use pat_core::snapshot::{SnapshotBuilder, Stamp, StateOf, TokenSpec};
use pat_core::token::Token;
use pat_e2e::{Client, Stack, unix_now, within};

const STOPENV: &str = "/1.0/environment/control/rest/stopenv";
const PROBES: usize = 24;

/// The store's active signing key, as an attacker with an old copy of it could use it.
fn store_key(stack: &Stack) -> SigningKey {
    let dir = stack.dir.path().join("store/keys");
    let file = std::fs::read_dir(&dir)
        .expect("keys dir")
        .filter_map(Result::ok)
        .find(|e| e.path().extension().is_some_and(|x| x == "key"))
        .expect("a key file");
    SigningKey::from_secret_text(&std::fs::read_to_string(file.path()).expect("read key"))
        .expect("a signing key")
}

fn signed(key: &SigningKey, stamp: Stamp, token: &Token) -> Vec<u8> {
    let scope = [MethodName::parse("environment.Control.StopEnv").expect("method")];
    let mut b = SnapshotBuilder::new();
    b.add(TokenSpec {
        hash: token.hash(),
        id: 9000,
        user: "mallory",
        expires_at: None,
        scope: &scope,
        networks: &[],
        envs: None,
        rate_limit: None,
    })
    .expect("add");
    b.build(stamp, StateOf::Genesis, key).expect("build").bytes
}

#[test]
fn an_expired_snapshot_is_refused_even_by_an_edge_without_an_origin() {
    // An edge that only gets pushes: freshness is its only defence against a replay.
    let stack = Stack::start_with(|mut config| {
        // The public filter's `"origin": {...}` block, with the comma before it.
        let start = config.find("\"origin\": {").expect("origin block");
        let comma = config[..start].rfind(',').expect("a field before it");
        let end = start + config[start..].find('}').expect("end of block") + 1;
        config.replace_range(comma..end, "");
        config
    });
    assert!(stack.edge_status().get("floor").is_none(), "no origin");
    let key = store_key(&stack);
    let token = Token::generate().expect("rng");
    let client = Client::new();
    let control = format!("{}/_pat/snapshot", stack.control_url());
    let now = unix_now();
    let expired = signed(
        &key,
        Stamp {
            version: 1000,
            issued_at: now - 7200,
            expires_at: now - 3600,
        },
        &token,
    );
    let answer = client.put(&control, expired);
    assert_eq!(answer.status, 400, "{:?}", answer.json);
    assert!(
        answer.json["error"]
            .as_str()
            .is_some_and(|e| e.contains("expired")),
        "{:?}",
        answer.json
    );
    let url = stack.url(&format!("{STOPENV}?session={}", token.expose()));
    assert!(client.get(&url, &[]).denied_with(701));
    // The same, signed fresh, is accepted: it was the expiry that was refused.
    let fresh = signed(&key, Stamp::lasting(1001, now, 3600), &token);
    assert_eq!(client.put(&control, fresh).status, 200);
    assert!(within(Duration::from_secs(2), || client.get(&url, &[]).is_ok()).is_some());
}

#[test]
fn an_edge_cut_off_from_its_origin_stops_serving_a_snapshot_that_aged_out() {
    let mut stack = Stack::start_with(|config| {
        config.replace(
            "\"max_snapshot_age_ms\": 86400000",
            "\"max_snapshot_age_ms\": 5000",
        )
    });
    let (_, token) = stack.token(&["--api", "ide-plugins"]);
    let client = Client::new();
    let url = stack.url(&format!("{STOPENV}?session={token}"));
    assert!((0..PROBES).all(|_| client.get(&url, &[]).is_ok()));
    stack.kill_origin();
    let took = within(Duration::from_secs(15), || {
        (0..PROBES).all(|_| client.get(&url, &[]).denied_with(701))
    })
    .expect("denied everywhere once the snapshot is older than 5 s");
    println!("denied on every worker {took:?} after the origin went down");
}

#[test]
fn a_restarted_edge_accepts_no_push_until_its_origin_answers() {
    let mut stack = Stack::start();
    let (_, token) = stack.token(&["--api", "ide-plugins"]);
    let client = Client::new();
    let url = stack.url(&format!("{STOPENV}?session={token}"));
    assert!(client.get(&url, &[]).is_ok());

    stack.kill_origin();
    stack.kill_envoy();
    stack.start_envoy_unsettled();
    assert_eq!(stack.edge_status()["floor"], "pending");
    // Even the operator's own, current snapshot waits: the edge cannot tell it from a replay.
    let out = stack.admin(&["--json", "publish"], "");
    assert!(!out.status.success(), "publish to a waiting edge succeeded");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("asking the origin") || stderr.contains("asking the origin"),
        "{stdout}\n{stderr}"
    );
    assert!(
        (0..PROBES).all(|_| client.get(&url, &[]).denied_with(701)),
        "fails closed"
    );

    // The origin comes back: the edge learns the version and serves it by itself.
    stack.start_origin();
    let took = within(Duration::from_secs(20), || {
        (0..PROBES).all(|_| client.get(&url, &[]).is_ok())
    })
    .expect("serving again once the origin answered");
    println!("serving again {took:?} after the origin came back");
    assert_eq!(
        stack.admin_ok(&["--json", "publish"], "")["edges"][0]["outcome"],
        "already_current"
    );
}
