//! Signed snapshots: every active token's hash, id, user, expiry and scope, as one blob
//! that pat-admin builds and signs and the edge verifies and serves lookups from.
//!
//! - [`layout`]: the byte layout and the header.
//! - [`build`]: [`SnapshotBuilder`], the publisher's side.
//! - [`open`]: [`Snapshot::open`] — signature, digest and structure checks. Nothing is
//!   trusted before all of them pass, and a refused snapshot changes nothing. [`verify_head`]
//!   checks the signed head alone (a cheap "current version" statement).
//! - [`fresh`]: the signed expiry and the edge's maximum age.
//! - [`lookup`]: token lookups by hash (bucket index + binary search, no allocation) and
//!   scope checks.
//!
//! Designed for 1,000,000 tokens: ~56 bytes per token in memory, decoding is one pass.

pub mod build;
pub mod fresh;
pub mod layout;
pub mod lookup;
pub mod open;

pub use build::{BuildError, SnapshotBuilder, Stamp, TokenSpec};
pub use fresh::{Stale, check_fresh, fresh_until_ms};
pub use layout::{BODY_OFFSET, HEADER_LEN, Header, HeaderError};
pub use lookup::{MethodIndex, Scope, TokenEntry};
pub use open::{announced_len, check_length, verify, verify_head, verify_header};

use crate::keys::KeyId;

/// Why a snapshot was refused. Messages say what is wrong and, where it helps, what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// Fewer bytes than the header and signature.
    #[error("snapshot is truncated: {0} bytes, less than the {min}-byte signed header", min = layout::BODY_OFFSET)]
    TooShort(usize),
    /// The header itself is unusable.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// The length does not match what the signed header announces.
    #[error(
        "snapshot is truncated or padded: the header announces {expected} bytes, {actual} arrived"
    )]
    Length {
        /// Length the header announces.
        expected: u64,
        /// Length received.
        actual: u64,
    },
    /// Signed by a key this edge does not trust.
    #[error(
        "snapshot is signed by key {0}, which is not among the trusted public keys; add its public key to the filter's configuration (public_keys or PAT_PUBLIC_KEYS)"
    )]
    UntrustedKey(KeyId),
    /// The signature does not verify.
    #[error("snapshot signature does not verify: it was not signed by key {0} or was altered")]
    BadSignature(KeyId),
    /// The body is not the one the signature covers.
    #[error("snapshot body does not match its signed digest: corrupted or tampered in transit")]
    Digest,
    /// Signed correctly, but structurally invalid (a publisher bug).
    #[error("snapshot is malformed: {0}")]
    Malformed(String),
}

/// A verified snapshot, ready for lookups. It owns the bytes it was opened from and reads
/// its tables in place.
#[derive(Debug)]
pub struct Snapshot {
    bytes: Vec<u8>,
    header: Header,
    methods: open::StrTable,
    scopes: open::ScopeTable,
    users: open::StrTable,
    tokens_at: usize,
    buckets: Vec<u32>,
    bucket_bits: u32,
}

impl Snapshot {
    /// The snapshot version.
    pub fn version(&self) -> u64 {
        self.header.version
    }

    /// When it was built, Unix seconds.
    pub fn issued_at(&self) -> u64 {
        self.header.issued_at
    }

    /// Its signed expiry, Unix seconds.
    pub fn expires_at(&self) -> u64 {
        self.header.expires_at
    }

    /// Number of tokens.
    pub fn token_count(&self) -> u32 {
        self.header.token_count
    }

    /// Number of distinct users.
    pub fn user_count(&self) -> u32 {
        self.header.user_count
    }

    /// Number of distinct scopes.
    pub fn scope_count(&self) -> u32 {
        self.header.scope_count
    }

    /// Id of the signing key.
    pub fn key_id(&self) -> KeyId {
        KeyId(self.header.key_id)
    }

    /// The decoded header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The signed bytes, as received.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Gives back the signed bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Heap bytes this snapshot holds (the blob plus the bucket index).
    pub fn heap_bytes(&self) -> usize {
        self.bytes.capacity() + self.buckets.capacity() * std::mem::size_of::<u32>()
    }
}
