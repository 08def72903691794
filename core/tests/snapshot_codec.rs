//! The snapshot codec: what the publisher builds, the edge opens identically; anything
//! forged, truncated, re-signed by a stranger or structurally invalid is refused.

use pat_core::keys::{SigningKey, TrustedKeys};
use pat_core::method::MethodName;
use pat_core::snapshot::layout::{BODY_OFFSET, HEADER_LEN, Header, SIGNING_CONTEXT};
use pat_core::snapshot::{
    BuildError, Snapshot, SnapshotBuilder, SnapshotError, Stamp, StateOf, TokenSpec, verify_head,
};
use pat_core::token::TokenHash;
use proptest::prelude::*;

const DAY: u64 = 86_400;

fn method(name: &str) -> MethodName {
    MethodName::parse(name).expect("valid method")
}

fn trusted(key: &SigningKey) -> TrustedKeys {
    TrustedKeys::new([key.public_key()])
}

/// A small snapshot: three tokens, two users, two distinct scopes (one shared).
fn sample(key: &SigningKey, version: u64) -> Vec<u8> {
    let ide = [
        method("environment.Control.StopEnv"),
        method("environment.Control.StartEnv"),
    ];
    let maven = [method("storage.Uploader.Upload")];
    let mut b = SnapshotBuilder::new();
    b.add(TokenSpec {
        hash: TokenHash::of("t1"),
        id: 1,
        user: "alice",
        expires_at: None,
        scope: &ide,
        networks: &[],
        envs: None,
        rate_limit: None,
    })
    .expect("add");
    b.add(TokenSpec {
        hash: TokenHash::of("t2"),
        id: 2,
        user: "bob",
        expires_at: Some(2_000_000_000),
        scope: &maven,
        networks: &[],
        envs: None,
        rate_limit: None,
    })
    .expect("add");
    // Same scope as t1 in another order: deduplicated.
    let ide_reordered = [ide[1].clone(), ide[0].clone(), ide[0].clone()];
    b.add(TokenSpec {
        hash: TokenHash::of("t3"),
        id: 3,
        user: "alice",
        expires_at: None,
        scope: &ide_reordered,
        networks: &[],
        envs: None,
        rate_limit: None,
    })
    .expect("add");
    b.build(
        Stamp::lasting(version, 1_790_000_000, DAY),
        StateOf::Genesis,
        key,
    )
    .expect("build")
    .bytes
}

#[test]
fn round_trip_with_deduplicated_users_and_scopes() {
    let key = SigningKey::generate().expect("rng");
    let snapshot = Snapshot::open(sample(&key, 7), &trusted(&key)).expect("opens");
    assert_eq!(snapshot.version(), 7);
    assert_eq!(snapshot.issued_at(), 1_790_000_000);
    assert_eq!(snapshot.token_count(), 3);
    assert_eq!(snapshot.user_count(), 2);
    assert_eq!(snapshot.scope_count(), 2);
    assert_eq!(snapshot.method_count(), 3);
    assert_eq!(snapshot.key_id(), key.public_key().id());

    let t1 = snapshot.find(&TokenHash::of("t1")).expect("t1");
    let t3 = snapshot.find(&TokenHash::of("t3")).expect("t3");
    assert_eq!((t1.id, t1.user, t1.expires_at), (1, "alice", None));
    assert_eq!(t1.scope_index, t3.scope_index);
    let stop = snapshot
        .method_index("environment.control.stopenv")
        .expect("indexed");
    let upload = snapshot
        .method_index("storage.uploader.upload")
        .expect("indexed");
    assert!(t1.scope.contains(stop));
    assert!(!t1.scope.contains(upload));
    assert_eq!(snapshot.method_index("environment.control.deleteenv"), None);

    let t2 = snapshot.find(&TokenHash::of("t2")).expect("t2");
    assert_eq!(t2.expires_at, Some(2_000_000_000));
    assert!(!t2.is_expired(1_999_999_999));
    assert!(t2.is_expired(2_000_000_000));
    assert!(snapshot.find(&TokenHash::of("t4")).is_none());
}

#[test]
fn empty_snapshot_is_valid() {
    let key = SigningKey::generate().expect("rng");
    let bytes = SnapshotBuilder::new()
        .build(Stamp::lasting(1, 0, DAY), StateOf::Genesis, &key)
        .expect("build")
        .bytes;
    let snapshot = Snapshot::open(bytes, &trusted(&key)).expect("opens");
    assert_eq!(snapshot.token_count(), 0);
    assert!(snapshot.find(&TokenHash::of("x")).is_none());
}

#[test]
fn truncation_and_padding_are_refused() {
    let key = SigningKey::generate().expect("rng");
    let bytes = sample(&key, 1);
    for len in [0, 10, HEADER_LEN, BODY_OFFSET - 1] {
        assert_eq!(
            Snapshot::open(bytes[..len].to_vec(), &trusted(&key)).err(),
            Some(SnapshotError::TooShort(len))
        );
    }
    for len in [BODY_OFFSET, bytes.len() - 1] {
        assert!(matches!(
            Snapshot::open(bytes[..len].to_vec(), &trusted(&key)),
            Err(SnapshotError::Length { .. })
        ));
    }
    let mut padded = bytes.clone();
    padded.push(0);
    assert!(matches!(
        Snapshot::open(padded, &trusted(&key)),
        Err(SnapshotError::Length { .. })
    ));
}

#[test]
fn foreign_keys_and_forged_signatures_are_refused() {
    let key = SigningKey::generate().expect("rng");
    let stranger = SigningKey::generate().expect("rng");
    let bytes = sample(&stranger, 1);
    assert_eq!(
        Snapshot::open(bytes.clone(), &trusted(&key)).err(),
        Some(SnapshotError::UntrustedKey(stranger.public_key().id()))
    );
    // A stranger who copies a trusted key id into the header still cannot sign for it.
    let mut forged = bytes;
    forged[48..56].copy_from_slice(&key.public_key().id().0);
    assert_eq!(
        Snapshot::open(forged, &trusted(&key)).err(),
        Some(SnapshotError::BadSignature(key.public_key().id()))
    );
    // Two trusted keys (a rotation): either one's snapshots open.
    let both = TrustedKeys::new([key.public_key(), stranger.public_key()]);
    assert!(Snapshot::open(sample(&stranger, 1), &both).is_ok());
    assert!(Snapshot::open(sample(&key, 1), &both).is_ok());
}

#[test]
fn the_signed_head_alone_states_the_version_and_freshness() {
    let key = SigningKey::generate().expect("rng");
    let bytes = sample(&key, 9);
    let head = verify_head(&bytes[..BODY_OFFSET], &trusted(&key)).expect("a valid head");
    assert_eq!(head.version, 9);
    assert_eq!(head.issued_at, 1_790_000_000);
    assert_eq!(head.expires_at, 1_790_000_000 + DAY);
    assert_eq!(
        pat_core::snapshot::open::announced_len(&head),
        bytes.len() as u64
    );
    // Forged, foreign or cut short: refused.
    let mut forged = bytes[..BODY_OFFSET].to_vec();
    forged[16] ^= 1;
    assert!(matches!(
        verify_head(&forged, &trusted(&key)),
        Err(SnapshotError::BadSignature(_))
    ));
    let stranger = SigningKey::generate().expect("rng");
    assert!(matches!(
        verify_head(&bytes[..BODY_OFFSET], &trusted(&stranger)),
        Err(SnapshotError::UntrustedKey(_))
    ));
    assert!(matches!(
        verify_head(&bytes[..BODY_OFFSET - 1], &trusted(&key)),
        Err(SnapshotError::TooShort(_))
    ));
}

#[test]
fn the_expiry_is_signed_and_must_follow_the_issue_time() {
    let key = SigningKey::generate().expect("rng");
    let mut bytes = sample(&key, 1);
    // Extending the expiry by hand breaks the signature.
    bytes[40..48].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(
        Snapshot::open(bytes, &trusted(&key)),
        Err(SnapshotError::BadSignature(_))
    ));
    let stamp = Stamp {
        version: 1,
        issued_at: 100,
        expires_at: 100,
    };
    assert_eq!(
        SnapshotBuilder::new()
            .build(stamp, StateOf::Genesis, &key)
            .err(),
        Some(BuildError::ExpiresBeforeIssued {
            issued_at: 100,
            expires_at: 100
        })
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Flipping any bit anywhere makes the snapshot unusable.
    #[test]
    fn any_bit_flip_is_refused(position in any::<prop::sample::Index>(), bit in 0u8..8) {
        let key = SigningKey::generate().expect("rng");
        let mut bytes = sample(&key, 3);
        let at = position.index(bytes.len());
        bytes[at] ^= 1 << bit;
        prop_assert!(Snapshot::open(bytes, &trusted(&key)).is_err());
    }
}

/// Re-signs a snapshot after `edit` changed its body: a trusted but buggy publisher.
fn resign(key: &SigningKey, bytes: &[u8], edit: impl FnOnce(&mut Header, &mut Vec<u8>)) -> Vec<u8> {
    let mut header =
        Header::decode(bytes[..HEADER_LEN].try_into().expect("header")).expect("valid");
    let mut body = bytes[BODY_OFFSET..].to_vec();
    edit(&mut header, &mut body);
    header.body_len = body.len() as u64;
    header.body_digest = blake3::hash(&body).into();
    let encoded = header.encode();
    let signature = key.sign(&[SIGNING_CONTEXT, &encoded].concat());
    [&encoded[..], &signature, &body].concat()
}

#[test]
fn signed_but_malformed_bodies_are_refused() {
    let key = SigningKey::generate().expect("rng");
    let good = sample(&key, 1);
    let keys = trusted(&key);
    assert!(
        Snapshot::open(resign(&key, &good, |_, _| {}), &keys).is_ok(),
        "re-signing alone is harmless"
    );

    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "token count too high",
            resign(&key, &good, |h, _| h.record_count += 1),
        ),
        (
            "method count too high",
            resign(&key, &good, |h, _| h.method_count += 1000),
        ),
        (
            "huge counts",
            resign(&key, &good, |h, _| h.user_count = u32::MAX),
        ),
        (
            "truncated tokens",
            resign(&key, &good, |_, b| {
                b.truncate(b.len() - 1);
            }),
        ),
        (
            "swapped records",
            resign(&key, &good, |_, b| {
                let n = b.len();
                let (a, c) = (b[n - 80..n - 40].to_vec(), b[n - 40..].to_vec());
                b[n - 80..n - 40].copy_from_slice(&c);
                b[n - 40..].copy_from_slice(&a);
            }),
        ),
        (
            "user index out of range",
            resign(&key, &good, |_, b| {
                let n = b.len();
                b[n - 12..n - 8].copy_from_slice(&9u32.to_le_bytes());
            }),
        ),
        (
            "scope index out of range",
            resign(&key, &good, |_, b| {
                let n = b.len();
                b[n - 8..n - 4].copy_from_slice(&9u32.to_le_bytes());
            }),
        ),
        (
            "network list out of range",
            resign(&key, &good, |_, b| {
                let n = b.len();
                b[n - 4..].copy_from_slice(&9u32.to_le_bytes());
            }),
        ),
        (
            "zero token id",
            resign(&key, &good, |_, b| {
                let n = b.len();
                b[n - 24..n - 16].copy_from_slice(&0u64.to_le_bytes());
            }),
        ),
        (
            "a full snapshot that removes",
            resign(&key, &good, |h, b| {
                h.removed_count = 1;
                b.extend_from_slice(&[0u8; 16]);
            }),
        ),
        (
            "non-canonical method",
            resign(&key, &good, |_, b| {
                // The first method name starts right after the 4 offsets of a 3-entry table.
                b[16] = b'E';
            }),
        ),
    ];
    for (what, bytes) in cases {
        match Snapshot::open(bytes, &keys) {
            Err(SnapshotError::Malformed(_) | SnapshotError::Header(_)) => {}
            other => panic!("{what}: expected Malformed, got {other:?}"),
        }
    }
}

#[test]
fn builder_rejections() {
    let key = SigningKey::generate().expect("rng");
    let scope = [method("environment.Control.StopEnv")];
    let spec = |hash: &str, id: u64, user: &'static str| TokenSpec {
        hash: TokenHash::of(hash),
        id,
        user,
        expires_at: None,
        scope: &[],
        networks: &[],
        envs: None,
        rate_limit: None,
    };
    let mut b = SnapshotBuilder::new();
    b.add(TokenSpec {
        scope: &scope,
        ..spec("a", 1, "alice")
    })
    .expect("add");
    // Two values may share an id (a regenerated token's old value in its grace window).
    b.add(spec("b", 1, "alice"))
        .expect("same id, another value");
    assert_eq!(b.add(spec("c", 0, "alice")), Err(BuildError::ZeroId));
    assert!(matches!(
        b.add(spec("b", 2, "al ice")),
        Err(BuildError::UserName { .. })
    ));
    assert_eq!(
        b.add(TokenSpec {
            expires_at: Some(0),
            ..spec("b", 2, "alice")
        }),
        Err(BuildError::ZeroExpiry(2))
    );
    assert_eq!(
        b.add(TokenSpec {
            expires_at: Some(u64::from(u32::MAX) + 1),
            ..spec("b", 2, "alice")
        }),
        Err(BuildError::ExpiryTooFar(2))
    );
    let auth = [method("users.Authentication.Signin")];
    assert!(matches!(
        b.add(TokenSpec {
            scope: &auth,
            ..spec("b", 2, "alice")
        }),
        Err(BuildError::ForbiddenMethod { .. })
    ));
    b.add(spec("a", 3, "bob"))
        .expect("same hash, caught at build");
    assert_eq!(
        b.build(Stamp::lasting(1, 0, DAY), StateOf::Genesis, &key)
            .err(),
        Some(BuildError::DuplicateHash(1, 3))
    );
    let mut with_removal = SnapshotBuilder::new();
    with_removal.remove(&TokenHash::of("gone"));
    assert_eq!(
        with_removal
            .build(Stamp::lasting(1, 0, DAY), StateOf::Genesis, &key)
            .err(),
        Some(BuildError::RemovalsInFull)
    );
}

#[derive(Debug, Clone)]
struct GenToken {
    secret: u64,
    user: u8,
    expires_at: Option<u64>,
    scope: Vec<u8>,
}

fn gen_token() -> impl Strategy<Value = GenToken> {
    (
        any::<u64>(),
        0u8..20,
        prop::option::of(1u64..u64::from(u32::MAX)),
        prop::collection::vec(0u8..40, 0..6),
    )
        .prop_map(|(secret, user, expires_at, scope)| GenToken {
            secret,
            user,
            expires_at,
            scope,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whatever the publisher puts in comes out of the edge's lookups unchanged.
    #[test]
    fn codec_round_trip(tokens in prop::collection::vec(gen_token(), 0..200), version in any::<u64>()) {
        let key = SigningKey::generate().expect("rng");
        let catalogue: Vec<MethodName> = (0..40).map(|i| method(&format!("group{}.Class{}.Method{i}", i % 3, i % 5))).collect();
        let users: Vec<String> = (0..20).map(|i| format!("user{i}@example.com")).collect();
        let mut seen = std::collections::HashSet::new();
        let tokens: Vec<GenToken> = tokens.into_iter().filter(|t| seen.insert(t.secret)).collect();
        let scopes: Vec<Vec<MethodName>> = tokens.iter()
            .map(|t| t.scope.iter().map(|&i| catalogue[usize::from(i)].clone()).collect())
            .collect();
        let mut b = SnapshotBuilder::new();
        for (i, (t, scope)) in tokens.iter().zip(&scopes).enumerate() {
            b.add(TokenSpec {
                hash: TokenHash::of(&t.secret.to_string()),
                id: i as u64 + 1,
                user: &users[usize::from(t.user)],
                expires_at: t.expires_at,
                scope,
                networks: &[],
                envs: None,
                rate_limit: None,
            }).expect("add");
        }
        let built = b.build(Stamp::lasting(version, 42, DAY), StateOf::Genesis, &key).expect("build");
        let snapshot = Snapshot::open(built.bytes, &trusted(&key)).expect("open");
        prop_assert_eq!(snapshot.version(), version);
        prop_assert_eq!(snapshot.entries().count(), tokens.len());
        for (i, (t, scope)) in tokens.iter().zip(&scopes).enumerate() {
            let entry = snapshot.find(&TokenHash::of(&t.secret.to_string())).expect("present");
            prop_assert_eq!(entry.id, i as u64 + 1);
            prop_assert_eq!(entry.user, users[usize::from(t.user)].as_str());
            prop_assert_eq!(entry.expires_at, t.expires_at);
            for m in &catalogue {
                let granted = snapshot.method_index(m.as_str()).is_some_and(|idx| entry.scope.contains(idx));
                prop_assert_eq!(granted, scope.contains(m), "method {}", m);
            }
        }
        prop_assert!(snapshot.find(&TokenHash::of("not a member")).is_none());
    }

    /// Random bytes never open and never panic.
    #[test]
    fn garbage_never_opens(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let key = SigningKey::generate().expect("rng");
        prop_assert!(Snapshot::open(bytes, &trusted(&key)).is_err());
    }
}

#[test]
fn header_precheck_needs_only_the_head() {
    use pat_core::snapshot::verify_header;
    let key = SigningKey::generate().expect("rng");
    let bytes = sample(&key, 9);
    let keys = trusted(&key);
    let header =
        verify_header(&bytes[..BODY_OFFSET], bytes.len() as u64, &keys).expect("valid head");
    assert_eq!(header.version, 9);
    // The announced length must match what is on offer.
    assert!(matches!(
        verify_header(&bytes[..BODY_OFFSET], bytes.len() as u64 + 1, &keys),
        Err(SnapshotError::Length { .. })
    ));
    assert_eq!(
        verify_header(&bytes[..10], 10, &keys).err(),
        Some(SnapshotError::TooShort(10))
    );
    // A good head on a tampered body passes the pre-check; the full open catches it.
    let mut tampered = bytes.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(verify_header(&tampered[..BODY_OFFSET], tampered.len() as u64, &keys).is_ok());
    assert_eq!(
        Snapshot::open(tampered, &keys).err(),
        Some(SnapshotError::Digest)
    );
}
