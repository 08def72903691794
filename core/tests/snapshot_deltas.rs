//! Deltas: a delta applies to exactly the state it names (version and state id), gives the
//! same answers as a full snapshot of the result, and anything else — a gap, a fork, a
//! forged chain — is refused and changes nothing.

use std::collections::BTreeMap;

use pat_core::keys::{SigningKey, TrustedKeys};
use pat_core::method::MethodName;
use pat_core::net::Network;
use pat_core::snapshot::layout::{self, BODY_OFFSET, HEADER_LEN};
use pat_core::snapshot::open::open;
use pat_core::snapshot::{
    ApplyError, Base, Built, Delta, Document, Snapshot, SnapshotBuilder, SnapshotError, Stamp,
    StateOf, TokenSpec, TokenState, bundle, verify_head,
};
use pat_core::token::TokenHash;
use proptest::prelude::*;

const DAY: u64 = 86_400;
const T0: u64 = 1_790_000_000;

fn method(name: &str) -> MethodName {
    MethodName::parse(name).expect("valid method")
}

fn trusted(key: &SigningKey) -> TrustedKeys {
    TrustedKeys::new([key.public_key()])
}

/// A token as the test's publisher knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tok {
    id: u64,
    user: String,
    expires_at: Option<u64>,
    scope: Vec<MethodName>,
    networks: Vec<Network>,
}

fn tok(id: u64, user: &str, scope: &[&str]) -> Tok {
    Tok {
        id,
        user: user.into(),
        expires_at: None,
        scope: scope.iter().map(|m| method(m)).collect(),
        networks: Vec::new(),
    }
}

fn spec<'a>(secret: &str, t: &'a Tok) -> TokenSpec<'a> {
    TokenSpec {
        hash: TokenHash::of(secret),
        id: t.id,
        user: &t.user,
        expires_at: t.expires_at,
        scope: &t.scope,
        networks: &t.networks,
        envs: None,
        rate_limit: None,
    }
}

fn full(key: &SigningKey, version: u64, state: StateOf, tokens: &BTreeMap<String, Tok>) -> Built {
    let mut b = SnapshotBuilder::new();
    for (secret, t) in tokens {
        b.add(spec(secret, t)).expect("add");
    }
    b.build(Stamp::lasting(version, T0 + version, DAY), state, key)
        .expect("build")
}

fn delta(
    key: &SigningKey,
    base: Base,
    version: u64,
    added: &[(&str, &Tok)],
    removed: &[&str],
) -> Built {
    let mut b = SnapshotBuilder::new();
    for (secret, t) in added {
        b.add(spec(secret, t)).expect("add");
    }
    for secret in removed {
        b.remove(&TokenHash::of(secret));
    }
    // The state's count is the publisher's to state; these tests do not read it.
    b.build_delta(Stamp::lasting(version, T0 + version, DAY), base, 0, key)
        .expect("build")
}

fn open_delta(key: &SigningKey, built: &Built) -> Delta {
    Delta::open(built.bytes.clone(), &trusted(key)).expect("opens")
}

#[test]
fn a_delta_adds_changes_and_removes() {
    let key = SigningKey::generate().expect("rng");
    let stop = "environment.Control.StopEnv";
    let upload = "storage.Uploader.Upload";
    let mut tokens = BTreeMap::new();
    tokens.insert("t1".to_string(), tok(1, "alice", &[stop]));
    tokens.insert("t2".to_string(), tok(2, "bob", &[upload]));
    let v1 = full(&key, 1, StateOf::Genesis, &tokens);
    let mut state = TokenState::new(Snapshot::open(v1.bytes, &trusted(&key)).expect("opens"));
    assert_eq!((state.version(), state.token_count()), (1, 2));
    assert_eq!(state.state_id(), v1.state_id);

    // Remove t2, add t3 (with a network limit), widen t1's scope.
    let mut t1 = tok(1, "alice", &[stop, upload]);
    t1.expires_at = Some(T0 + 10 * DAY);
    let mut t3 = tok(3, "carol", &["environment.Control.StartEnv"]);
    t3.networks = vec!["127.0.0.2/32".parse().expect("net")];
    let d2 = delta(
        &key,
        Base {
            version: 1,
            state_id: v1.state_id,
        },
        2,
        &[("t1", &t1), ("t3", &t3)],
        &["t2"],
    );
    let opened = open_delta(&key, &d2);
    assert_eq!(opened.added_count(), 2);
    assert_eq!(opened.removed_count(), 1);
    state.apply(&opened).expect("applies");
    assert_eq!((state.version(), state.token_count()), (2, 2));
    assert_eq!(state.state_id(), d2.state_id);

    let found1 = state.find(&TokenHash::of("t1")).expect("t1");
    assert!(found1.allows_method("storage.uploader.upload"));
    assert_eq!(found1.expires_at(), Some(T0 + 10 * DAY));
    assert!(state.find(&TokenHash::of("t2")).is_none(), "removed");
    let found3 = state.find(&TokenHash::of("t3")).expect("t3");
    assert_eq!((found3.id(), found3.user()), (3, "carol"));
    assert!(found3.is_address_limited());
    assert!(found3.allows_address("127.0.0.2".parse().expect("ip")));
    assert!(!found3.allows_address("127.0.0.1".parse().expect("ip")));
    assert!(!found1.is_address_limited());
    assert!(found1.allows_address("127.0.0.1".parse().expect("ip")));

    // Removing what a delta added, and re-adding what one removed.
    let d3 = delta(
        &key,
        Base {
            version: 2,
            state_id: d2.state_id,
        },
        3,
        &[("t2", &tokens["t2"])],
        &["t3"],
    );
    state.apply(&open_delta(&key, &d3)).expect("applies");
    assert_eq!(state.token_count(), 2);
    assert!(state.find(&TokenHash::of("t3")).is_none());
    assert_eq!(state.find(&TokenHash::of("t2")).expect("back").id(), 2);
}

#[test]
fn deltas_that_do_not_apply_change_nothing() {
    let key = SigningKey::generate().expect("rng");
    let mut tokens = BTreeMap::new();
    tokens.insert(
        "t1".to_string(),
        tok(1, "alice", &["environment.Control.StopEnv"]),
    );
    let v1 = full(&key, 1, StateOf::Genesis, &tokens);
    let mut state =
        TokenState::new(Snapshot::open(v1.bytes.clone(), &trusted(&key)).expect("opens"));
    let base = Base {
        version: 1,
        state_id: v1.state_id,
    };
    let d2 = delta(&key, base, 2, &[], &["t1"]);
    let d3 = delta(
        &key,
        Base {
            version: 2,
            state_id: d2.state_id,
        },
        3,
        &[],
        &[],
    );
    // A gap: v3 before v2.
    assert_eq!(
        state.apply(&open_delta(&key, &d3)),
        Err(ApplyError::WrongBase {
            held: 1,
            base: 2,
            version: 3
        })
    );
    // A fork: another state of version 1 (another publisher's).
    let other_v1 = full(&key, 1, StateOf::Genesis, &BTreeMap::new());
    let forked = delta(
        &key,
        Base {
            version: 1,
            state_id: other_v1.state_id,
        },
        2,
        &[],
        &["t1"],
    );
    assert!(matches!(
        state.apply(&open_delta(&key, &forked)),
        Err(ApplyError::Fork { .. })
    ));
    assert!(
        state.find(&TokenHash::of("t1")).is_some(),
        "nothing changed"
    );
    assert_eq!(state.version(), 1);
    // Replaying a delta already applied.
    state.apply(&open_delta(&key, &d2)).expect("applies");
    assert!(matches!(
        state.apply(&open_delta(&key, &d2)),
        Err(ApplyError::WrongBase { .. })
    ));
    assert!(state.find(&TokenHash::of("t1")).is_none());
}

#[test]
fn a_delta_cannot_claim_a_state_it_does_not_produce() {
    let key = SigningKey::generate().expect("rng");
    let v1 = full(&key, 1, StateOf::Genesis, &BTreeMap::new());
    let d2 = delta(
        &key,
        Base {
            version: 1,
            state_id: v1.state_id,
        },
        2,
        &[],
        &[],
    );
    // Re-signed (by a trusted but buggy or compromised publisher) with another state id.
    let mut bytes = d2.bytes.clone();
    bytes[56] ^= 1;
    let header: &[u8; HEADER_LEN] = bytes[..HEADER_LEN].try_into().expect("header");
    let signature = key.sign(&[layout::SIGNING_CONTEXT, header].concat());
    bytes[HEADER_LEN..BODY_OFFSET].copy_from_slice(&signature);
    assert!(matches!(
        verify_head(&bytes[..BODY_OFFSET], &trusted(&key)),
        Err(SnapshotError::Malformed(_))
    ));
    assert!(Delta::open(bytes, &trusted(&key)).is_err());
}

#[test]
fn an_empty_delta_renews_freshness_and_documents_open_by_kind() {
    let key = SigningKey::generate().expect("rng");
    let v1 = full(&key, 1, StateOf::Genesis, &BTreeMap::new());
    let d2 = delta(
        &key,
        Base {
            version: 1,
            state_id: v1.state_id,
        },
        2,
        &[],
        &[],
    );
    let mut state =
        TokenState::new(Snapshot::open(v1.bytes.clone(), &trusted(&key)).expect("opens"));
    state.apply(&open_delta(&key, &d2)).expect("applies");
    assert_eq!(state.header().issued_at, T0 + 2);
    assert_eq!(state.header().expires_at, T0 + 2 + DAY);
    assert!(matches!(
        open(d2.bytes.clone(), &trusted(&key)),
        Ok(Document::Delta(_))
    ));
    assert_eq!(
        Snapshot::open(d2.bytes.clone(), &trusted(&key)).err(),
        Some(SnapshotError::NotFull)
    );
    assert_eq!(
        Delta::open(v1.bytes.clone(), &trusted(&key)).err(),
        Some(SnapshotError::NotDelta)
    );
    // A compaction: the full snapshot of the chain's state at version 2.
    let v2 = full(&key, 2, StateOf::Chain(d2.state_id), &BTreeMap::new());
    assert_eq!(v2.state_id, d2.state_id);
    // A bundle carries several documents; each is verified on its own.
    let bytes = bundle::encode([v1.bytes.as_slice(), d2.bytes.as_slice()]);
    let docs = bundle::decode(&bytes).expect("bundle");
    assert_eq!(docs.len(), 2);
    assert!(matches!(
        open(docs[1].to_vec(), &trusted(&key)),
        Ok(Document::Delta(_))
    ));
}

/// One change of a random history.
#[derive(Debug, Clone)]
enum Change {
    Add(u8),
    Remove(u8),
    Rescope(u8, u8),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        (0u8..30).prop_map(Change::Add),
        (0u8..30).prop_map(Change::Remove),
        (0u8..30, 0u8..4).prop_map(|(t, s)| Change::Rescope(t, s)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    /// Any history of changes, shipped as deltas, answers exactly like a full snapshot of
    /// its end state.
    #[test]
    fn deltas_agree_with_a_full_snapshot(
        history in prop::collection::vec(prop::collection::vec(change(), 0..6), 1..12)
    ) {
        let key = SigningKey::generate().expect("rng");
        let scopes = [
            vec![method("environment.Control.StopEnv")],
            vec![method("environment.Control.StartEnv"), method("storage.Uploader.Upload")],
            vec![method("environment.Control.GetEnvs")],
            vec![],
        ];
        let mut tokens: BTreeMap<String, Tok> = BTreeMap::new();
        let v1 = full(&key, 1, StateOf::Genesis, &tokens);
        let mut state = TokenState::new(Snapshot::open(v1.bytes, &trusted(&key)).expect("opens"));
        let mut base = Base { version: 1, state_id: v1.state_id };
        for (step, changes) in history.iter().enumerate() {
            let mut added: BTreeMap<String, Tok> = BTreeMap::new();
            let mut removed: Vec<String> = Vec::new();
            for c in changes {
                let (n, scope) = match c {
                    Change::Add(n) => (*n, 0),
                    Change::Rescope(n, s) => (*n, *s),
                    Change::Remove(n) => {
                        let secret = format!("secret-{n}");
                        added.remove(&secret);
                        if tokens.remove(&secret).is_some() && !removed.contains(&secret) {
                            removed.push(secret);
                        }
                        continue;
                    }
                };
                let secret = format!("secret-{n}");
                removed.retain(|r| r != &secret);
                let t = Tok {
                    id: u64::from(n) + 1,
                    user: format!("user{}", n % 3),
                    expires_at: None,
                    scope: scopes[usize::from(scope)].clone(),
                    networks: Vec::new(),
                };
                tokens.insert(secret.clone(), t.clone());
                added.insert(secret, t);
            }
            let version = step as u64 + 2;
            let added_refs: Vec<(&str, &Tok)> = added.iter().map(|(s, t)| (s.as_str(), t)).collect();
            let removed_refs: Vec<&str> = removed.iter().map(String::as_str).collect();
            let d = delta(&key, base, version, &added_refs, &removed_refs);
            state.apply(&open_delta(&key, &d)).expect("applies");
            base = Base { version, state_id: d.state_id };
        }
        let reference = Snapshot::open(
            full(&key, base.version, StateOf::Chain(base.state_id), &tokens).bytes,
            &trusted(&key),
        ).expect("opens");
        prop_assert_eq!(state.token_count(), u64::from(reference.token_count()));
        for n in 0..30 {
            let hash = TokenHash::of(&format!("secret-{n}"));
            let ours = state.find(&hash);
            let theirs = reference.find(&hash);
            prop_assert_eq!(ours.is_some(), theirs.is_some(), "token {}", n);
            if let (Some(ours), Some(theirs)) = (ours, theirs) {
                prop_assert_eq!(ours.id(), theirs.id);
                prop_assert_eq!(ours.user(), theirs.user);
                for m in ["environment.control.stopenv", "environment.control.startenv", "storage.uploader.upload", "environment.control.getenvs"] {
                    let reference_allows = reference.method_index(m).is_some_and(|i| theirs.scope.contains(i));
                    prop_assert_eq!(ours.allows_method(m), reference_allows, "token {} method {}", n, m);
                }
            }
        }
    }
}
