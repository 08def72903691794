//! Byte layout of a signed document: a full snapshot or a delta (all integers little-endian).
//!
//! ```text
//! offset size  field
//!      0    8  magic "PATSNAP1"
//!      8    2  format version (4)
//!     10    2  kind: 0 = full snapshot, 1 = delta
//!     12    4  tokens in the state after this document
//!     16    8  version: the token list's version after this document, strictly increasing
//!     24    8  base version: the version a delta applies to (0 for a full snapshot)
//!     32    8  issued at, Unix seconds
//!     40    8  expires at, Unix seconds: no edge uses the state from this instant on
//!     48    8  key id of the signing key
//!     56   32  state id: the identity of the token list after this document
//!     88   32  base state id: the identity a delta applies to (zeros for a full snapshot)
//!    120   32  BLAKE3 of the body
//!    152    4  method count          156  4  scope count
//!    160    4  user count            164  4  record count
//!    168    4  removed count (deltas) 172 4  network-list count
//!    176    4  env-method count      180  4  environment-list count
//!    184    4  restriction count
//!    188    8  body length
//!    196   64  Ed25519 signature over SIGNING_CONTEXT ‖ bytes 0..196
//!    260       body:
//!              methods  string table: (count+1) × u32 offsets, then UTF-8 bytes;
//!                       canonical method names, sorted, unique
//!              env methods  count × u16 method indices, sorted, unique: the methods that
//!                       act on the one environment their `envName` names
//!              scopes   (count+1) × u32 offsets into the element array, then u16 elements:
//!                       method indices, sorted and unique within each scope
//!              users    string table, header-safe user names
//!              networks (count+1) × u32 offsets into the entry array, then 18-byte entries
//!                       (family 4|6, prefix length, 16 address bytes); a token's allowed
//!                       client networks
//!              envs     string table: environment lists, each its names lowercase, sorted,
//!                       unique, joined by commas (crate::env)
//!              restrictions count × 16-byte entries, each limiting at least one thing:
//!                       [0..4) network list: 0 = any address, else index + 1
//!                       [4..8) environment list: 0 = any environment, else index + 1
//!                       [8..12) rate limit count, 0 = none; [12..16) its period, seconds
//!                       (0 with no limit, else 1 or 60; crate::rate)
//!              records  count × 40-byte records sorted by hash prefix, unique:
//!                       [0..16) the first 16 bytes of the token's SHA-256
//!                       [16..24) token id   [24..28) expires at, Unix seconds, 0 = never
//!                       [28..32) user index [32..36) scope index
//!                       [36..40) restrictions: 0 = none, else index + 1
//!              removed  (deltas) count × 16-byte hash prefixes, sorted, unique
//! ```
//!
//! A **full snapshot** lists every token. A **delta** lists the tokens added or changed since
//! its base version and the hash prefixes removed; it applies only to the exact state it names
//! (base version and base state id), so a gap or a fork is refused, never guessed at. A
//! delta's state id is derived from its base's and its own body
//! ([`Header::chained_state_id`]): an edge checks it, it does not take it on trust. A full
//! snapshot states the id of the state it describes.
//!
//! The signed expiry is the freshness guarantee (TUF's defence against freeze and rollback
//! attacks): an edge refuses a document whose expiry has passed and stops using a state
//! whose latest document expired. The header and signature alone (the first
//! [`BODY_OFFSET`] bytes, the *head*) are a small signed statement of the current version
//! that edges poll cheaply ([`super::verify_head`]).
//!
//! 16 bytes of the hash find a token: a second token whose SHA-256 shares them with a real
//! one takes 2^128 tries. That keeps a record at 40 bytes, the edge's memory at about 40 bytes
//! per token. A token's limits beyond its scope and expiry (client networks, environments, a
//! rate limit) sit behind one shared restriction entry, so a token with none costs nothing
//! more, and tokens with the same limits share one. Formats 1 to 3 are refused (and their
//! signatures cannot be mistaken for format 4 ones: the signing context names the format).

/// First 8 bytes of every document.
pub const MAGIC: [u8; 8] = *b"PATSNAP1";
/// The only format version this code reads and writes.
pub const FORMAT_VERSION: u16 = 4;
/// Bytes of the signed header.
pub const HEADER_LEN: usize = 196;
/// Bytes of the Ed25519 signature that follows the header.
pub const SIGNATURE_LEN: usize = 64;
/// Where the body starts.
pub const BODY_OFFSET: usize = HEADER_LEN + SIGNATURE_LEN;
/// Bytes per token record.
pub const RECORD_LEN: usize = 40;
/// Bytes of a hash prefix (records and removals).
pub const PREFIX_LEN: usize = 16;
/// Bytes of one network entry.
pub const NETWORK_LEN: usize = 18;
/// Bytes of one restriction entry.
pub const RESTRICTION_LEN: usize = 16;
/// Prepended to the header before signing, so a signature can never be mistaken for a
/// signature over anything else.
pub const SIGNING_CONTEXT: &[u8] = b"pat-edge snapshot v4\0";

/// Which kind of document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Every token.
    Full,
    /// Changes since a base version.
    Delta,
}

/// The fixed-size header, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Full snapshot or delta.
    pub kind: Kind,
    /// How many tokens the state holds after this document (a full snapshot: its records).
    pub state_tokens: u32,
    /// The version after this document; strictly increasing per publisher.
    pub version: u64,
    /// The version a delta applies to (0 for a full snapshot).
    pub base_version: u64,
    /// When the document was built, Unix seconds.
    pub issued_at: u64,
    /// From this instant on (Unix seconds) no edge may use it.
    pub expires_at: u64,
    /// Id of the key that signed it.
    pub key_id: [u8; 8],
    /// The identity of the token list after this document.
    pub state_id: [u8; 32],
    /// The identity a delta applies to (zeros for a full snapshot).
    pub base_state_id: [u8; 32],
    /// BLAKE3 of the body.
    pub body_digest: [u8; 32],
    /// Number of distinct methods referenced by scopes.
    pub method_count: u32,
    /// Number of distinct scopes.
    pub scope_count: u32,
    /// Number of distinct users.
    pub user_count: u32,
    /// Number of token records (a delta: added or changed).
    pub record_count: u32,
    /// Number of removed hash prefixes (deltas only).
    pub removed_count: u32,
    /// Number of distinct network lists.
    pub network_count: u32,
    /// Number of methods that act on the environment their `envName` names.
    pub env_method_count: u32,
    /// Number of distinct environment lists.
    pub env_list_count: u32,
    /// Number of distinct restriction entries.
    pub restriction_count: u32,
    /// Length of the body in bytes.
    pub body_len: u64,
}

impl Header {
    /// Encodes the header (without the signature).
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        let mut w = Writer::new(&mut out);
        w.put(&MAGIC);
        w.put(&FORMAT_VERSION.to_le_bytes());
        w.put(
            &match self.kind {
                Kind::Full => 0u16,
                Kind::Delta => 1u16,
            }
            .to_le_bytes(),
        );
        w.put(&self.state_tokens.to_le_bytes());
        w.put(&self.version.to_le_bytes());
        w.put(&self.base_version.to_le_bytes());
        w.put(&self.issued_at.to_le_bytes());
        w.put(&self.expires_at.to_le_bytes());
        w.put(&self.key_id);
        w.put(&self.state_id);
        w.put(&self.base_state_id);
        w.put(&self.body_digest);
        w.put(&self.method_count.to_le_bytes());
        w.put(&self.scope_count.to_le_bytes());
        w.put(&self.user_count.to_le_bytes());
        w.put(&self.record_count.to_le_bytes());
        w.put(&self.removed_count.to_le_bytes());
        w.put(&self.network_count.to_le_bytes());
        w.put(&self.env_method_count.to_le_bytes());
        w.put(&self.env_list_count.to_le_bytes());
        w.put(&self.restriction_count.to_le_bytes());
        w.put(&self.body_len.to_le_bytes());
        out
    }

    /// Decodes and sanity-checks the header fields that do not need the body.
    pub fn decode(bytes: &[u8; HEADER_LEN]) -> Result<Self, HeaderError> {
        let mut r = Reader::new(bytes);
        if r.array::<8>() != MAGIC {
            return Err(HeaderError::Magic);
        }
        let format = u16::from_le_bytes(r.array());
        if format != FORMAT_VERSION {
            return Err(HeaderError::FormatVersion(format));
        }
        let kind = match u16::from_le_bytes(r.array()) {
            0 => Kind::Full,
            1 => Kind::Delta,
            other => return Err(HeaderError::Kind(other)),
        };
        let state_tokens = u32::from_le_bytes(r.array());
        let header = Self {
            kind,
            state_tokens,
            version: u64::from_le_bytes(r.array()),
            base_version: u64::from_le_bytes(r.array()),
            issued_at: u64::from_le_bytes(r.array()),
            expires_at: u64::from_le_bytes(r.array()),
            key_id: r.array(),
            state_id: r.array(),
            base_state_id: r.array(),
            body_digest: r.array(),
            method_count: u32::from_le_bytes(r.array()),
            scope_count: u32::from_le_bytes(r.array()),
            user_count: u32::from_le_bytes(r.array()),
            record_count: u32::from_le_bytes(r.array()),
            removed_count: u32::from_le_bytes(r.array()),
            network_count: u32::from_le_bytes(r.array()),
            env_method_count: u32::from_le_bytes(r.array()),
            env_list_count: u32::from_le_bytes(r.array()),
            restriction_count: u32::from_le_bytes(r.array()),
            body_len: u64::from_le_bytes(r.array()),
        };
        match header.kind {
            Kind::Full if header.base_version != 0 || header.base_state_id != [0; 32] => {
                Err(HeaderError::FullWithBase)
            }
            Kind::Full if header.removed_count != 0 => Err(HeaderError::FullWithRemovals),
            Kind::Full if header.state_tokens != header.record_count => Err(HeaderError::FullCount),
            Kind::Delta if header.base_version >= header.version => {
                Err(HeaderError::DeltaNotForward {
                    base: header.base_version,
                    version: header.version,
                })
            }
            _ => Ok(header),
        }
    }

    /// The state id a delta with this header produces: derived from its base's id, its
    /// version and its body, so an edge computes it rather than trusting it.
    pub fn chained_state_id(&self) -> [u8; 32] {
        chain(&self.base_state_id, self.version, &self.body_digest)
    }
}

/// The state id after applying a delta of `version` with body digest `body_digest` to the
/// state `base`.
pub fn chain(base: &[u8; 32], version: u64, body_digest: &[u8; 32]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"pat-edge state chain v1\0");
    hasher.update(base);
    hasher.update(&version.to_le_bytes());
    hasher.update(body_digest);
    hasher.finalize().into()
}

/// Why a header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Does not start with [`MAGIC`].
    #[error("not a pat-edge snapshot (bad magic bytes)")]
    Magic,
    /// A format this code does not read.
    #[error(
        "snapshot format version {0} is not supported (this build reads version {FORMAT_VERSION}); upgrade pat-admin and the edges together"
    )]
    FormatVersion(u16),
    /// An unknown kind of document.
    #[error("unknown snapshot kind {0}")]
    Kind(u16),
    /// A full snapshot whose state count is not its record count.
    #[error("a full snapshot's token count does not match its records")]
    FullCount,
    /// A full snapshot names a base.
    #[error("a full snapshot must not name a base version or state")]
    FullWithBase,
    /// A full snapshot lists removals.
    #[error("a full snapshot must not list removals")]
    FullWithRemovals,
    /// A delta that does not move forward.
    #[error("a delta from version {base} to {version} does not move forward")]
    DeltaNotForward {
        /// Its base version.
        base: u64,
        /// Its version.
        version: u64,
    },
}

/// Sequential writer into a fixed buffer whose size the caller got right (header only).
struct Writer<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl<'a> Writer<'a> {
    fn new(out: &'a mut [u8]) -> Self {
        Self { out, at: 0 }
    }

    fn put(&mut self, bytes: &[u8]) {
        if let Some(slot) = self.out.get_mut(self.at..self.at + bytes.len()) {
            slot.copy_from_slice(bytes);
        }
        self.at += bytes.len();
    }
}

/// Sequential reader over the fixed-size header: every read is within its bytes by
/// construction, and reads past the end yield zeros rather than panicking.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        if let Some(src) = self.bytes.get(self.at..self.at + N) {
            out.copy_from_slice(src);
        }
        self.at += N;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        Header {
            kind: Kind::Delta,
            state_tokens: 40,
            version: 7,
            base_version: 6,
            issued_at: 1_800_000_000,
            expires_at: 1_800_086_400,
            key_id: [1, 2, 3, 4, 5, 6, 7, 8],
            state_id: [5; 32],
            base_state_id: [4; 32],
            body_digest: [9; 32],
            method_count: 3,
            scope_count: 2,
            user_count: 5,
            record_count: 11,
            removed_count: 2,
            network_count: 1,
            env_method_count: 4,
            env_list_count: 2,
            restriction_count: 3,
            body_len: 1234,
        }
    }

    #[test]
    fn header_round_trip_and_fixed_offsets() {
        let header = sample();
        let bytes = header.encode();
        assert_eq!(&bytes[..8], b"PATSNAP1");
        assert_eq!(&bytes[8..10], &4u16.to_le_bytes());
        assert_eq!(&bytes[10..12], &1u16.to_le_bytes());
        assert_eq!(&bytes[16..24], &7u64.to_le_bytes());
        assert_eq!(&bytes[24..32], &6u64.to_le_bytes());
        assert_eq!(&bytes[40..48], &1_800_086_400u64.to_le_bytes());
        assert_eq!(&bytes[164..168], &11u32.to_le_bytes());
        assert_eq!(&bytes[176..180], &4u32.to_le_bytes());
        assert_eq!(&bytes[184..188], &3u32.to_le_bytes());
        assert_eq!(&bytes[188..196], &1234u64.to_le_bytes());
        assert_eq!(Header::decode(&bytes), Ok(header));
    }

    #[test]
    fn header_rejections() {
        let good = sample().encode();
        let mut bad = good;
        bad[0] = b'X';
        assert_eq!(Header::decode(&bad), Err(HeaderError::Magic));
        let mut bad = good;
        bad[8] = 3;
        assert_eq!(Header::decode(&bad), Err(HeaderError::FormatVersion(3)));
        let mut bad = good;
        bad[10] = 9;
        assert_eq!(Header::decode(&bad), Err(HeaderError::Kind(9)));
        let miscounted = Header {
            kind: Kind::Full,
            base_version: 0,
            base_state_id: [0; 32],
            removed_count: 0,
            ..sample()
        };
        assert_eq!(
            Header::decode(&miscounted.encode()),
            Err(HeaderError::FullCount)
        );
        let backwards = Header {
            base_version: 7,
            ..sample()
        };
        assert!(matches!(
            Header::decode(&backwards.encode()),
            Err(HeaderError::DeltaNotForward { .. })
        ));
        let full_with_base = Header {
            kind: Kind::Full,
            removed_count: 0,
            ..sample()
        };
        assert_eq!(
            Header::decode(&full_with_base.encode()),
            Err(HeaderError::FullWithBase)
        );
    }

    #[test]
    fn chained_ids_depend_on_base_version_and_body() {
        let h = sample();
        let id = h.chained_state_id();
        assert_ne!(
            id,
            Header {
                base_state_id: [0; 32],
                ..h
            }
            .chained_state_id()
        );
        assert_ne!(id, Header { version: 8, ..h }.chained_state_id());
        assert_ne!(
            id,
            Header {
                body_digest: [0; 32],
                ..h
            }
            .chained_state_id()
        );
        assert_eq!(id, h.chained_state_id());
    }
}
