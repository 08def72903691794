//! Per-token client networks: carried by full snapshots and deltas, shared between tokens
//! with the same list, answered the same way whichever document a token came from, bounded
//! in length; and two records of one token (a regenerated value in its grace window), each
//! with its own expiry.

use std::net::IpAddr;

use pat_core::keys::{SigningKey, TrustedKeys};
use pat_core::method::MethodName;
use pat_core::net::{MAX_PER_TOKEN, Network};
use pat_core::snapshot::{
    Base, BuildError, Delta, Snapshot, SnapshotBuilder, Stamp, StateOf, TokenSpec, TokenState,
};
use pat_core::token::TokenHash;

const T0: u64 = 1_790_000_000;

fn nets(list: &[&str]) -> Vec<Network> {
    list.iter().map(|n| n.parse().expect("network")).collect()
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("ip")
}

fn spec<'a>(
    secret: &str,
    id: u64,
    scope: &'a [MethodName],
    networks: &'a [Network],
) -> TokenSpec<'a> {
    TokenSpec {
        hash: TokenHash::of(secret),
        id,
        user: "alice",
        expires_at: None,
        scope,
        networks,
        envs: None,
        rate_limit: None,
    }
}

#[test]
fn networks_travel_in_full_snapshots_and_deltas() {
    let key = SigningKey::generate().expect("rng");
    let trusted = TrustedKeys::new([key.public_key()]);
    let scope = [MethodName::parse("environment.Control.StopEnv").expect("valid")];
    let office = nets(&["203.0.113.0/24", "2001:db8::/32"]);
    let ci = nets(&["198.51.100.7/32"]);
    let mut b = SnapshotBuilder::new();
    b.add(spec("open", 1, &scope, &[])).expect("add");
    b.add(spec("office-1", 2, &scope, &office)).expect("add");
    // The same list in another order: stored once.
    let reordered: Vec<Network> = office.iter().rev().copied().collect();
    b.add(spec("office-2", 3, &scope, &reordered)).expect("add");
    let built = b
        .build(Stamp::lasting(1, T0, 86_400), StateOf::Genesis, &key)
        .expect("build");
    let mut state = TokenState::new(Snapshot::open(built.bytes, &trusted).expect("opens"));

    let open = state.find(&TokenHash::of("open")).expect("open");
    assert!(!open.is_address_limited());
    assert!(open.allows_address(ip("192.0.2.1")));
    for secret in ["office-1", "office-2"] {
        let t = state.find(&TokenHash::of(secret)).expect(secret);
        assert!(t.is_address_limited());
        for inside in ["203.0.113.9", "2001:db8:1::1", "::ffff:203.0.113.200"] {
            assert!(t.allows_address(ip(inside)), "{secret} from {inside}");
        }
        for outside in ["203.0.114.1", "2001:db9::1", "127.0.0.1"] {
            assert!(!t.allows_address(ip(outside)), "{secret} from {outside}");
        }
    }

    // A delta limits the open token to the CI runner and lifts office-1's limit.
    let mut d = SnapshotBuilder::new();
    d.add(spec("open", 1, &scope, &ci)).expect("add");
    d.add(spec("office-1", 2, &scope, &[])).expect("add");
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
    let open = state.find(&TokenHash::of("open")).expect("open");
    assert!(open.is_address_limited());
    assert!(open.allows_address(ip("198.51.100.7")));
    assert!(!open.allows_address(ip("198.51.100.8")));
    let lifted = state.find(&TokenHash::of("office-1")).expect("office-1");
    assert!(!lifted.is_address_limited());
    assert!(lifted.allows_address(ip("192.0.2.1")));
    let untouched = state.find(&TokenHash::of("office-2")).expect("office-2");
    assert!(!untouched.allows_address(ip("198.51.100.7")));
}

#[test]
fn a_list_is_bounded() {
    let scope = [MethodName::parse("environment.Control.StopEnv").expect("valid")];
    let many: Vec<Network> = (0..=MAX_PER_TOKEN)
        .map(|i| format!("10.0.{i}.0/24").parse().expect("network"))
        .collect();
    let mut b = SnapshotBuilder::new();
    assert_eq!(
        b.add(spec("t", 7, &scope, &many)),
        Err(BuildError::TooManyNetworks(7))
    );
    assert!(b.is_empty(), "nothing added");
    b.add(spec("t", 7, &scope, &many[..MAX_PER_TOKEN]))
        .expect("the maximum is allowed");
}

#[test]
fn a_regenerated_value_in_its_grace_window_is_a_second_record_of_the_token() {
    let key = SigningKey::generate().expect("rng");
    let trusted = TrustedKeys::new([key.public_key()]);
    let scope = [MethodName::parse("environment.Control.StopEnv").expect("valid")];
    let grace_end = T0 + 5;
    let mut b = SnapshotBuilder::new();
    b.add(spec("new value", 9, &scope, &[])).expect("add");
    b.add(TokenSpec {
        expires_at: Some(grace_end),
        ..spec("old value", 9, &scope, &[])
    })
    .expect("the same id twice: the old value until the window ends");
    let built = b
        .build(Stamp::lasting(1, T0, 86_400), StateOf::Genesis, &key)
        .expect("build");
    let state = TokenState::new(Snapshot::open(built.bytes, &trusted).expect("opens"));
    let new = state.find(&TokenHash::of("new value")).expect("new");
    let old = state.find(&TokenHash::of("old value")).expect("old");
    assert_eq!((new.id(), old.id()), (9, 9));
    assert!(!new.is_expired(grace_end + 1000));
    assert!(!old.is_expired(grace_end - 1));
    assert!(old.is_expired(grace_end));
}
