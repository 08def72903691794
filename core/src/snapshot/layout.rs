//! Byte layout of a signed snapshot (all integers little-endian).
//!
//! ```text
//! offset size  field
//!      0    8  magic "PATSNAP1"
//!      8    2  format version (2)
//!     10    2  flags (0)
//!     12    4  reserved (0)
//!     16    8  snapshot version: strictly increasing per publisher
//!     24    8  issued at, Unix seconds
//!     32    8  expires at, Unix seconds: no edge uses the snapshot from this instant on
//!     40    8  key id of the signing key
//!     48   32  BLAKE3 of the body
//!     80    4  method count          84  4  scope count
//!     88    4  user count            92  4  token count
//!     96    8  body length
//!    104   64  Ed25519 signature over SIGNING_CONTEXT ‖ bytes 0..104
//!    168       body:
//!              methods  string table: (count+1) × u32 offsets, then UTF-8 bytes;
//!                       canonical method names, sorted, unique
//!              scopes   (count+1) × u32 offsets into the element array, then u16 elements:
//!                       method indices, sorted and unique within each scope
//!              users    string table, header-safe user names
//!              tokens   count × 56-byte records sorted by hash, unique:
//!                       [0..32) SHA-256 of the token  [32..40) token id
//!                       [40..48) expires at, Unix seconds, 0 = never
//!                       [48..52) user index           [52..56) scope index
//! ```
//!
//! The body digest is BLAKE3 (not SHA-256) because every VM re-hashes the whole body when it
//! applies a snapshot: in wasm, BLAKE3 runs at ~650-980 MB/s against ~160 MB/s for SHA-256,
//! which is most of the difference between a ~100 ms and a ~400 ms apply at 1,000,000
//! tokens. Token hashes remain SHA-256.
//!
//! The signed expiry is the freshness guarantee (TUF's defence against freeze and rollback
//! attacks): an old snapshot, replayed to an edge that lost its state, is refused once it has
//! expired, and an edge drops a snapshot it holds when it expires. The header and signature
//! alone (the first [`BODY_OFFSET`] bytes, the *head*) are a small signed statement of the
//! current version that edges can poll cheaply ([`super::verify_head`]).
//!
//! Format version 1 had no expiry; it is refused (and its signatures cannot be mistaken for
//! version 2 ones: the signing context names the format).
//!
//! The token table is used in place for lookups, so a filter VM holds a snapshot in about
//! 56 bytes per token plus the string tables: decoding validates, it does not copy.

/// First 8 bytes of every snapshot.
pub const MAGIC: [u8; 8] = *b"PATSNAP1";
/// The only format version this code reads and writes.
pub const FORMAT_VERSION: u16 = 2;
/// Bytes of the signed header.
pub const HEADER_LEN: usize = 104;
/// Bytes of the Ed25519 signature that follows the header.
pub const SIGNATURE_LEN: usize = 64;
/// Where the body starts.
pub const BODY_OFFSET: usize = HEADER_LEN + SIGNATURE_LEN;
/// Bytes per token record.
pub const RECORD_LEN: usize = 56;
/// Prepended to the header before signing, so a snapshot signature can never be mistaken
/// for a signature over anything else.
pub const SIGNING_CONTEXT: &[u8] = b"pat-edge snapshot v2\0";

/// The fixed-size header, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Strictly increasing per publisher; an edge refuses anything not newer than it holds.
    pub version: u64,
    /// When the snapshot was built, Unix seconds.
    pub issued_at: u64,
    /// From this instant on (Unix seconds) no edge may use it.
    pub expires_at: u64,
    /// Id of the key that signed it.
    pub key_id: [u8; 8],
    /// BLAKE3 of the body.
    pub body_digest: [u8; 32],
    /// Number of distinct methods referenced by scopes.
    pub method_count: u32,
    /// Number of distinct scopes.
    pub scope_count: u32,
    /// Number of distinct users.
    pub user_count: u32,
    /// Number of tokens.
    pub token_count: u32,
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
        w.put(&0u16.to_le_bytes());
        w.put(&0u32.to_le_bytes());
        w.put(&self.version.to_le_bytes());
        w.put(&self.issued_at.to_le_bytes());
        w.put(&self.expires_at.to_le_bytes());
        w.put(&self.key_id);
        w.put(&self.body_digest);
        w.put(&self.method_count.to_le_bytes());
        w.put(&self.scope_count.to_le_bytes());
        w.put(&self.user_count.to_le_bytes());
        w.put(&self.token_count.to_le_bytes());
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
        if u16::from_le_bytes(r.array()) != 0 || u32::from_le_bytes(r.array()) != 0 {
            return Err(HeaderError::Reserved);
        }
        Ok(Self {
            version: u64::from_le_bytes(r.array()),
            issued_at: u64::from_le_bytes(r.array()),
            expires_at: u64::from_le_bytes(r.array()),
            key_id: r.array(),
            body_digest: r.array(),
            method_count: u32::from_le_bytes(r.array()),
            scope_count: u32::from_le_bytes(r.array()),
            user_count: u32::from_le_bytes(r.array()),
            token_count: u32::from_le_bytes(r.array()),
            body_len: u64::from_le_bytes(r.array()),
        })
    }
}

/// Why a header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Does not start with [`MAGIC`].
    #[error("not a pat-edge snapshot (bad magic bytes)")]
    Magic,
    /// A format this code does not read.
    #[error(
        "snapshot format version {0} is not supported (this build reads version {FORMAT_VERSION})"
    )]
    FormatVersion(u16),
    /// Reserved fields are not zero.
    #[error("snapshot header has non-zero reserved fields")]
    Reserved,
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

/// Sequential reader over the fixed-size header: every read is within its 96 bytes by
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

    #[test]
    fn header_round_trip_and_fixed_offsets() {
        let header = Header {
            version: 7,
            issued_at: 1_800_000_000,
            expires_at: 1_800_086_400,
            key_id: [1, 2, 3, 4, 5, 6, 7, 8],
            body_digest: [9; 32],
            method_count: 3,
            scope_count: 2,
            user_count: 5,
            token_count: 11,
            body_len: 1234,
        };
        let bytes = header.encode();
        assert_eq!(&bytes[..8], b"PATSNAP1");
        assert_eq!(&bytes[16..24], &7u64.to_le_bytes());
        assert_eq!(&bytes[32..40], &1_800_086_400u64.to_le_bytes());
        assert_eq!(&bytes[92..96], &11u32.to_le_bytes());
        assert_eq!(&bytes[96..104], &1234u64.to_le_bytes());
        assert_eq!(Header::decode(&bytes), Ok(header));
    }

    #[test]
    fn header_rejections() {
        let good = Header {
            version: 1,
            issued_at: 0,
            expires_at: 0,
            key_id: [0; 8],
            body_digest: [0; 32],
            method_count: 0,
            scope_count: 0,
            user_count: 0,
            token_count: 0,
            body_len: 0,
        }
        .encode();
        let mut bad = good;
        bad[0] = b'X';
        assert_eq!(Header::decode(&bad), Err(HeaderError::Magic));
        let mut bad = good;
        bad[8] = 1;
        assert_eq!(Header::decode(&bad), Err(HeaderError::FormatVersion(1)));
        let mut bad = good;
        bad[12] = 1;
        assert_eq!(Header::decode(&bad), Err(HeaderError::Reserved));
    }
}
