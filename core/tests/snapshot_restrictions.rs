//! Environment lists, rate limits and the methods that act on one environment: carried by
//! full snapshots and deltas, answered the same whichever document a token came from, shared
//! between tokens with the same limits, free for tokens with none, and refused when a signed
//! document's restriction tables do not hold together.

use pat_core::env::EnvList;
use pat_core::keys::{SigningKey, TrustedKeys};
use pat_core::method::MethodName;
use pat_core::net::Network;
use pat_core::rate::RateLimit;
use pat_core::snapshot::layout::{BODY_OFFSET, HEADER_LEN, Header, SIGNING_CONTEXT};
use pat_core::snapshot::{
    Base, Delta, Snapshot, SnapshotBuilder, SnapshotError, Stamp, StateOf, TokenSpec, TokenState,
};
use pat_core::token::TokenHash;

const T0: u64 = 1_790_000_000;

fn method(name: &str) -> MethodName {
    MethodName::parse(name).expect("valid")
}

fn envs(names: &[&str]) -> EnvList {
    EnvList::parse(names).expect("valid").expect("not empty")
}

fn spec<'a>(secret: &str, id: u64, scope: &'a [MethodName]) -> TokenSpec<'a> {
    TokenSpec {
        hash: TokenHash::of(secret),
        id,
        user: "alice",
        expires_at: None,
        scope,
        networks: &[],
        envs: None,
        rate_limit: None,
    }
}

fn stop_and_list() -> Vec<MethodName> {
    vec![
        method("environment.Control.StopEnv"),
        method("environment.Control.GetEnvs"),
    ]
}

#[test]
fn environments_and_rate_limits_travel_in_full_snapshots_and_deltas() {
    let key = SigningKey::generate().expect("rng");
    let trusted = TrustedKeys::new([key.public_key()]);
    let scope = stop_and_list();
    let prod = envs(&["Prod", "staging"]);
    let limit: RateLimit = "50/s".parse().expect("limit");
    let mut b = SnapshotBuilder::new();
    b.env_methods([method("environment.Control.StopEnv")]);
    b.add(spec("open", 1, &scope)).expect("add");
    b.add(TokenSpec {
        envs: Some(&prod),
        ..spec("prod", 2, &scope)
    })
    .expect("add");
    b.add(TokenSpec {
        rate_limit: Some(limit),
        ..spec("limited", 3, &scope)
    })
    .expect("add");
    let built = b
        .build(Stamp::lasting(1, T0, 86_400), StateOf::Genesis, &key)
        .expect("build");
    let mut state = TokenState::new(Snapshot::open(built.bytes, &trusted).expect("opens"));

    let open = state.find(&TokenHash::of("open")).expect("open");
    assert!(open.envs().is_unrestricted() && open.envs().allows("anything"));
    assert_eq!(open.rate_limit(), None);
    let limited = state.find(&TokenHash::of("prod")).expect("prod");
    assert_eq!(
        limited.envs().names().collect::<Vec<_>>(),
        ["prod", "staging"]
    );
    assert!(limited.envs().allows("PROD") && !limited.envs().allows("dev"));
    assert!(limited.method_acts_on_env("environment.control.stopenv"));
    assert!(!limited.method_acts_on_env("environment.control.getenvs"));
    assert_eq!(limited.rate_limit(), None);
    let rated = state.find(&TokenHash::of("limited")).expect("limited");
    assert_eq!(rated.rate_limit(), Some(limit));
    assert!(rated.envs().is_unrestricted());

    // A delta moves the environment limit to the open token and lifts the other one.
    let dev = envs(&["dev"]);
    let slow: RateLimit = "30/min".parse().expect("limit");
    let mut d = SnapshotBuilder::new();
    d.env_methods([method("environment.Control.StopEnv")]);
    d.add(TokenSpec {
        envs: Some(&dev),
        rate_limit: Some(slow),
        ..spec("open", 1, &scope)
    })
    .expect("add");
    d.add(spec("prod", 2, &scope)).expect("add");
    let delta = d
        .build_delta(
            Stamp::lasting(2, T0 + 1, 86_400),
            Base {
                version: 1,
                state_id: built.state_id,
            },
            3,
            &key,
        )
        .expect("build");
    state
        .apply(&Delta::open(delta.bytes, &trusted).expect("opens"))
        .expect("applies");
    let moved = state.find(&TokenHash::of("open")).expect("open");
    assert!(moved.envs().allows("DEV") && !moved.envs().allows("prod"));
    assert!(moved.method_acts_on_env("environment.control.stopenv"));
    assert!(!moved.method_acts_on_env("environment.control.getenvs"));
    assert_eq!(moved.rate_limit(), Some(slow));
    let lifted = state.find(&TokenHash::of("prod")).expect("prod");
    assert!(lifted.envs().is_unrestricted());
}

#[test]
fn tokens_with_the_same_limits_share_one_restriction_and_unlimited_ones_none() {
    let key = SigningKey::generate().expect("rng");
    let trusted = TrustedKeys::new([key.public_key()]);
    let scope = stop_and_list();
    let prod = envs(&["prod"]);
    let same = envs(&["PROD"]);
    let office: Vec<Network> = vec!["203.0.113.0/24".parse().expect("network")];
    let mut b = SnapshotBuilder::new();
    for i in 1..=10 {
        b.add(spec(&format!("plain-{i}"), i, &scope)).expect("add");
    }
    b.add(TokenSpec {
        envs: Some(&prod),
        ..spec("a", 11, &scope)
    })
    .expect("add");
    b.add(TokenSpec {
        envs: Some(&same),
        ..spec("b", 12, &scope)
    })
    .expect("add");
    b.add(TokenSpec {
        networks: &office,
        ..spec("c", 13, &scope)
    })
    .expect("add");
    let built = b
        .build(Stamp::lasting(1, T0, 86_400), StateOf::Genesis, &key)
        .expect("build");
    let snapshot = Snapshot::open(built.bytes, &trusted).expect("opens");
    let header = snapshot.header();
    assert_eq!(
        (header.env_list_count, header.restriction_count),
        (1, 2),
        "one environment list; one restriction for it and one for the network list"
    );
    assert_eq!(header.env_method_count, 0, "none declared");
    // Ten tokens with no limit cost only their 40-byte records.
    let mut plain = SnapshotBuilder::new();
    for i in 1..=10 {
        plain
            .add(spec(&format!("plain-{i}"), i, &scope))
            .expect("add");
    }
    let plain = plain
        .build(Stamp::lasting(1, T0, 86_400), StateOf::Genesis, &key)
        .expect("build");
    let mut more = SnapshotBuilder::new();
    for i in 1..=20 {
        more.add(spec(&format!("plain-{i}"), i, &scope))
            .expect("add");
    }
    let more = more
        .build(Stamp::lasting(1, T0, 86_400), StateOf::Genesis, &key)
        .expect("build");
    assert_eq!(more.bytes.len() - plain.bytes.len(), 10 * 40);
}

#[test]
fn env_methods_name_only_methods_some_scope_holds() {
    let key = SigningKey::generate().expect("rng");
    let trusted = TrustedKeys::new([key.public_key()]);
    let scope = [method("environment.Control.StopEnv")];
    let mut b = SnapshotBuilder::new();
    b.env_methods([
        method("environment.Control.StopEnv"),
        method("environment.Control.StartEnv"),
    ]);
    b.add(spec("t", 1, &scope)).expect("add");
    let built = b
        .build(Stamp::lasting(1, T0, 86_400), StateOf::Genesis, &key)
        .expect("build");
    let snapshot = Snapshot::open(built.bytes, &trusted).expect("opens");
    assert_eq!(snapshot.header().env_method_count, 1);
    let stop = snapshot
        .method_index("environment.control.stopenv")
        .expect("named");
    assert!(snapshot.is_env_method(stop));
}

/// A change to a document's body.
type Edit = Box<dyn FnOnce(&mut [u8])>;

/// Re-signs `bytes` after `edit` changed its body (a trusted but buggy publisher): only the
/// structure checks stand between such a document and an edge.
fn resign(mut bytes: Vec<u8>, key: &SigningKey, edit: impl FnOnce(&mut [u8])) -> Vec<u8> {
    edit(&mut bytes[BODY_OFFSET..]);
    let mut header =
        Header::decode(bytes[..HEADER_LEN].try_into().expect("header")).expect("decodes");
    header.body_digest = blake3::hash(&bytes[BODY_OFFSET..]).into();
    let encoded = header.encode();
    let signature = key.sign(&[SIGNING_CONTEXT, encoded.as_slice()].concat());
    bytes[..HEADER_LEN].copy_from_slice(&encoded);
    bytes[HEADER_LEN..BODY_OFFSET].copy_from_slice(&signature);
    bytes
}

#[test]
fn broken_restriction_tables_are_refused_even_when_signed() {
    let key = SigningKey::generate().expect("rng");
    let trusted = TrustedKeys::new([key.public_key()]);
    let scope = [method("environment.Control.StopEnv")];
    let dev = envs(&["dev", "prod"]);
    let mut b = SnapshotBuilder::new();
    b.add(TokenSpec {
        envs: Some(&dev),
        rate_limit: Some("5/s".parse().expect("limit")),
        ..spec("t", 1, &scope)
    })
    .expect("add");
    let good = b
        .build(Stamp::lasting(1, T0, 86_400), StateOf::Genesis, &key)
        .expect("build")
        .bytes;
    Snapshot::open(good.clone(), &trusted).expect("the original opens");
    let body = &good[BODY_OFFSET..];
    let list_at = body
        .windows(8)
        .position(|w| w == b"dev,prod")
        .expect("the list is in the body");
    // The restriction entry is the 16 bytes before the one 40-byte record.
    let restriction_at = body.len() - 40 - 16;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "an unsorted list",
            Box::new(move |b| b[list_at..list_at + 8].copy_from_slice(b"prod,dev")),
        ),
        ("an upper-case name", Box::new(move |b| b[list_at] = b'D')),
        (
            "a list beyond its table",
            Box::new(move |b| b[restriction_at + 4] = 9),
        ),
        (
            "a period this build does not know",
            Box::new(move |b| b[restriction_at + 12] = 7),
        ),
        (
            "a restriction that limits nothing",
            Box::new(move |b| {
                b[restriction_at..restriction_at + 16].fill(0);
            }),
        ),
        (
            "a record beyond the restriction table",
            Box::new(move |b| {
                let end = b.len();
                b[end - 4] = 2;
            }),
        ),
    ];
    for (what, edit) in cases {
        let forged = resign(good.clone(), &key, edit);
        assert!(
            matches!(
                Snapshot::open(forged, &trusted),
                Err(SnapshotError::Malformed(_))
            ),
            "{what} must be refused"
        );
    }
}
