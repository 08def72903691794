//! Signed documents of the token list, as pat-admin builds and signs them and the edge
//! verifies and serves lookups from: **full snapshots** (every active token's hash prefix,
//! id, user, expiry, scope and its restrictions: allowed networks and environments, a rate
//! limit) and **deltas** (what changed since an exact
//! base state), and the **state** an edge holds: a full snapshot with the deltas applied on
//! top of it.
//!
//! - [`layout`]: the byte layout and the header.
//! - [`build`]: [`SnapshotBuilder`], the publisher's side.
//! - [`open`]: [`open::open`], [`Snapshot::open`], [`Delta::open`] — signature, digest and
//!   structure checks. Nothing is trusted before all of them pass, and a refused document
//!   changes nothing. [`verify_head`] checks the signed head alone (a cheap "current version"
//!   statement).
//! - [`fresh`]: the signed expiry and the edge's maximum age.
//! - [`lookup`]: token lookups in a full snapshot (bucket index + binary search, no
//!   allocation) and scope checks; a delta's entries.
//! - [`state`]: [`TokenState`]: a full snapshot and the deltas applied since, as one lookup.
//! - [`bundle`]: several documents in one response (an origin's catch-up).
//!
//! Designed for 1,000,000 tokens: 40 bytes per token, decoding is one pass, and a delta
//! applies in time proportional to its own size.

pub mod build;
pub mod bundle;
pub mod fresh;
pub mod layout;
pub mod lookup;
pub mod open;
pub mod state;

pub use build::{Base, BuildError, Built, SnapshotBuilder, Stamp, StateOf, TokenSpec};
pub use fresh::{Stale, check_fresh, fresh_until_ms};
pub use layout::{BODY_OFFSET, HEADER_LEN, Header, HeaderError, Kind};
pub use lookup::{Envs, MethodIndex, Networks, Scope, TokenEntry};
pub use open::{announced_len, check_length, verify, verify_head, verify_header};
pub use state::{ApplyError, StateToken, TokenState};

use crate::keys::KeyId;

/// Why a document was refused. Messages say what is wrong and, where it helps, what to do.
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
    /// A delta where a full snapshot is needed.
    #[error("a delta was given where a full snapshot is needed")]
    NotFull,
    /// A full snapshot where a delta is needed.
    #[error("a full snapshot was given where a delta is needed")]
    NotDelta,
}

/// A verified full snapshot, ready for lookups. It owns the bytes it was opened from and
/// reads its tables in place.
#[derive(Debug)]
pub struct Snapshot {
    bytes: Vec<u8>,
    header: Header,
    tables: open::Tables,
    buckets: Vec<u32>,
    bucket_bits: u32,
}

/// A verified delta: the records added or changed and the hash prefixes removed since its
/// base state.
#[derive(Debug)]
pub struct Delta {
    bytes: Vec<u8>,
    header: Header,
    tables: open::Tables,
}

/// A verified document of either kind.
#[derive(Debug)]
pub enum Document {
    /// A full snapshot.
    Full(Snapshot),
    /// A delta.
    Delta(Delta),
}

impl Document {
    /// Its header.
    pub fn header(&self) -> &Header {
        match self {
            Self::Full(s) => s.header(),
            Self::Delta(d) => d.header(),
        }
    }
}

impl Snapshot {
    fn from_parts(bytes: Vec<u8>, header: Header, tables: open::Tables) -> Self {
        let bucket_bits = open::bucket_bits(tables.record_count);
        let records = bytes
            .get(tables.records_at..tables.removed_at)
            .unwrap_or_default();
        let buckets = open::build_buckets(records, tables.record_count, bucket_bits);
        Self {
            bytes,
            header,
            tables,
            buckets,
            bucket_bits,
        }
    }

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

    /// Number of token records.
    pub fn token_count(&self) -> u32 {
        self.header.record_count
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

    /// The identity of the state it describes.
    pub fn state_id(&self) -> [u8; 32] {
        self.header.state_id
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

impl Delta {
    /// The decoded header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The signed bytes, as received.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}
