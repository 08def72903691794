//! Verifying and validating a snapshot before anything in it is used.
//!
//! Order: length → header → trusted key → signature over the header → BLAKE3 of the body
//! → structure. The cheap checks run first, so a forged or truncated push costs little.

use super::layout::{BODY_OFFSET, HEADER_LEN, Header, RECORD_LEN, SIGNATURE_LEN, SIGNING_CONTEXT};
use super::{Snapshot, SnapshotError};
use crate::keys::{KeyId, TrustedKeys};
use crate::method::is_canonical;
use crate::user::validate_user_name;

/// A table of strings: `count + 1` u32 offsets at `offsets`, string bytes at `data`.
#[derive(Debug, Clone, Copy)]
pub(super) struct StrTable {
    pub(super) offsets: usize,
    pub(super) data: usize,
    pub(super) count: usize,
}

/// Scopes: `count + 1` u32 offsets at `offsets` into u16 method indices at `elements`.
#[derive(Debug, Clone, Copy)]
pub(super) struct ScopeTable {
    pub(super) offsets: usize,
    pub(super) elements: usize,
    pub(super) count: usize,
}

/// Reads the u32 at `at`, if in bounds.
pub(super) fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let chunk = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(chunk.try_into().ok()?))
}

/// Reads the u64 at `at`, if in bounds.
pub(super) fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    let chunk = bytes.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(chunk.try_into().ok()?))
}

/// Reads the u16 at `at`, if in bounds.
pub(super) fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    let chunk = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes(chunk.try_into().ok()?))
}

impl StrTable {
    /// The `index`-th string, if in bounds and UTF-8 (always, once validated).
    pub(super) fn get<'a>(&self, bytes: &'a [u8], index: usize) -> Option<&'a str> {
        if index >= self.count {
            return None;
        }
        let start = u32_at(bytes, self.offsets.checked_add(index.checked_mul(4)?)?)? as usize;
        let end = u32_at(
            bytes,
            self.offsets
                .checked_add(index.checked_add(1)?.checked_mul(4)?)?,
        )? as usize;
        let s = bytes.get(self.data.checked_add(start)?..self.data.checked_add(end)?)?;
        std::str::from_utf8(s).ok()
    }
}

impl ScopeTable {
    /// The raw u16 elements of the `index`-th scope.
    pub(super) fn get<'a>(&self, bytes: &'a [u8], index: usize) -> Option<&'a [u8]> {
        if index >= self.count {
            return None;
        }
        let start = u32_at(bytes, self.offsets.checked_add(index.checked_mul(4)?)?)? as usize;
        let end = u32_at(
            bytes,
            self.offsets
                .checked_add(index.checked_add(1)?.checked_mul(4)?)?,
        )? as usize;
        bytes.get(
            self.elements.checked_add(start.checked_mul(2)?)?
                ..self.elements.checked_add(end.checked_mul(2)?)?,
        )
    }
}

/// Checks the signed head alone (the first [`BODY_OFFSET`] bytes: header and signature):
/// header fields, trusted key, signature. This is the cheap "current version" statement an
/// edge polls; it says nothing about a body it has not seen.
pub fn verify_head(head: &[u8], keys: &TrustedKeys) -> Result<Header, SnapshotError> {
    let too_short = || SnapshotError::TooShort(head.len());
    let header_bytes: &[u8; HEADER_LEN] = head
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(too_short)?;
    let header = Header::decode(header_bytes)?;
    let key_id = KeyId(header.key_id);
    let key = keys
        .get(key_id)
        .ok_or(SnapshotError::UntrustedKey(key_id))?;
    let signature: &[u8; SIGNATURE_LEN] = head
        .get(HEADER_LEN..BODY_OFFSET)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(too_short)?;
    let mut signed = [0u8; SIGNING_CONTEXT.len() + HEADER_LEN];
    let (context, rest) = signed.split_at_mut(SIGNING_CONTEXT.len());
    context.copy_from_slice(SIGNING_CONTEXT);
    rest.copy_from_slice(header_bytes);
    if !key.verify(&signed, signature) {
        return Err(SnapshotError::BadSignature(key_id));
    }
    Ok(header)
}

/// Checks everything that does not need the body: the header fields, the key and the
/// signature (see [`verify_head`]), and the announced length against `total_len`. `head`
/// needs only the first [`BODY_OFFSET`] bytes. A push is pre-checked this way as soon as its
/// head arrives, before the rest of its body is buffered.
pub fn verify_header(
    head: &[u8],
    total_len: u64,
    keys: &TrustedKeys,
) -> Result<Header, SnapshotError> {
    if total_len < BODY_OFFSET as u64 {
        return Err(SnapshotError::TooShort(
            usize::try_from(total_len).unwrap_or(usize::MAX),
        ));
    }
    let header = verify_head(head, keys)?;
    check_length(&header, total_len)?;
    Ok(header)
}

/// The full length a verified header announces must be `total_len`.
pub fn check_length(header: &Header, total_len: u64) -> Result<(), SnapshotError> {
    let expected = announced_len(header);
    if expected != total_len {
        return Err(SnapshotError::Length {
            expected,
            actual: total_len,
        });
    }
    Ok(())
}

/// The full length of the snapshot a header describes.
pub fn announced_len(header: &Header) -> u64 {
    (BODY_OFFSET as u64).saturating_add(header.body_len)
}

/// Checks length, header, signature and the body digest; returns the header. Does not look
/// at the body's structure: [`Snapshot::open`] does both.
pub fn verify(bytes: &[u8], keys: &TrustedKeys) -> Result<Header, SnapshotError> {
    let header = verify_header(bytes, bytes.len() as u64, keys)?;
    let body = bytes.get(BODY_OFFSET..).unwrap_or_default();
    let digest: [u8; 32] = blake3::hash(body).into();
    if digest != header.body_digest {
        return Err(SnapshotError::Digest);
    }
    Ok(header)
}

fn malformed(what: impl Into<String>) -> SnapshotError {
    SnapshotError::Malformed(what.into())
}

impl Snapshot {
    /// Verifies a signed snapshot against the trusted keys and validates its structure.
    /// Takes the bytes by value and keeps them: lookups read the tables in place.
    pub fn open(bytes: Vec<u8>, keys: &TrustedKeys) -> Result<Self, SnapshotError> {
        let header = verify(&bytes, keys)?;
        let mut at = BODY_OFFSET;
        let methods = read_str_table(&bytes, &mut at, header.method_count, "method")?;
        if methods.count > usize::from(u16::MAX) + 1 {
            return Err(malformed("more than 65536 methods"));
        }
        let mut previous: Option<&str> = None;
        for i in 0..methods.count {
            let name = methods
                .get(&bytes, i)
                .ok_or_else(|| malformed("method table"))?;
            if !is_canonical(name) {
                return Err(malformed(format!(
                    "method {i} is not a canonical method name"
                )));
            }
            if previous.is_some_and(|p| p >= name) {
                return Err(malformed("method names are not sorted and unique"));
            }
            previous = Some(name);
        }
        let scopes = read_scope_table(&bytes, &mut at, header.scope_count, methods.count)?;
        let users = read_str_table(&bytes, &mut at, header.user_count, "user")?;
        for i in 0..users.count {
            let name = users
                .get(&bytes, i)
                .ok_or_else(|| malformed("user table"))?;
            validate_user_name(name).map_err(|e| malformed(format!("user {i}: {e}")))?;
        }
        let tokens_at = at;
        let token_bytes = (header.token_count as u64).saturating_mul(RECORD_LEN as u64);
        if (bytes.len() - tokens_at) as u64 != token_bytes {
            return Err(malformed(format!(
                "the token table should be {token_bytes} bytes ({} tokens), found {}",
                header.token_count,
                bytes.len() - tokens_at
            )));
        }
        validate_records(&bytes, tokens_at, header.user_count, header.scope_count)?;
        let bucket_bits = bucket_bits(header.token_count as usize);
        let buckets = build_buckets(&bytes, tokens_at, header.token_count as usize, bucket_bits);
        Ok(Self {
            bytes,
            header,
            methods,
            scopes,
            users,
            tokens_at,
            buckets,
            bucket_bits,
        })
    }
}

/// Reads a string table's offsets at `*at` and advances past its bytes.
fn read_str_table(
    bytes: &[u8],
    at: &mut usize,
    count: u32,
    what: &str,
) -> Result<StrTable, SnapshotError> {
    let count = count as usize;
    let offsets = *at;
    let data = count
        .checked_add(1)
        .and_then(|n| n.checked_mul(4))
        .and_then(|n| n.checked_add(offsets))
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| malformed(format!("the {what} table is cut short")))?;
    let mut previous = 0u32;
    for i in 0..=count {
        let offset = u32_at(bytes, offsets + i * 4)
            .ok_or_else(|| malformed(format!("the {what} table is cut short")))?;
        if (i == 0 && offset != 0) || offset < previous {
            return Err(malformed(format!(
                "the {what} table offsets are not increasing from 0"
            )));
        }
        previous = offset;
    }
    let end = data
        .checked_add(previous as usize)
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| malformed(format!("the {what} strings run past the end")))?;
    let table = StrTable {
        offsets,
        data,
        count,
    };
    for i in 0..count {
        table
            .get(bytes, i)
            .ok_or_else(|| malformed(format!("{what} {i} is not UTF-8")))?;
    }
    *at = end;
    Ok(table)
}

/// Reads the scope table at `*at`, checks every scope is sorted, unique and in range.
fn read_scope_table(
    bytes: &[u8],
    at: &mut usize,
    count: u32,
    method_count: usize,
) -> Result<ScopeTable, SnapshotError> {
    let count = count as usize;
    let offsets = *at;
    let elements = count
        .checked_add(1)
        .and_then(|n| n.checked_mul(4))
        .and_then(|n| n.checked_add(offsets))
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| malformed("the scope table is cut short"))?;
    let mut previous = 0u32;
    for i in 0..=count {
        let offset = u32_at(bytes, offsets + i * 4)
            .ok_or_else(|| malformed("the scope table is cut short"))?;
        if (i == 0 && offset != 0) || offset < previous {
            return Err(malformed("the scope offsets are not increasing from 0"));
        }
        previous = offset;
    }
    let end = (previous as usize)
        .checked_mul(2)
        .and_then(|n| n.checked_add(elements))
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| malformed("the scope entries run past the end"))?;
    let table = ScopeTable {
        offsets,
        elements,
        count,
    };
    for i in 0..count {
        let raw = table
            .get(bytes, i)
            .ok_or_else(|| malformed("scope table"))?;
        let mut last: Option<u16> = None;
        for pair in raw.chunks_exact(2) {
            let index = pair.try_into().map_or(u16::MAX, u16::from_le_bytes);
            if usize::from(index) >= method_count {
                return Err(malformed(format!(
                    "scope {i} names method {index}, beyond the method table"
                )));
            }
            if last.is_some_and(|l| l >= index) {
                return Err(malformed(format!("scope {i} is not sorted and unique")));
            }
            last = Some(index);
        }
    }
    *at = end;
    Ok(table)
}

/// Checks every token record: hashes strictly increasing, user and scope in range.
fn validate_records(
    bytes: &[u8],
    tokens_at: usize,
    user_count: u32,
    scope_count: u32,
) -> Result<(), SnapshotError> {
    let records = bytes.get(tokens_at..).unwrap_or_default();
    let mut previous: Option<&[u8]> = None;
    for (i, record) in records.chunks_exact(RECORD_LEN).enumerate() {
        let hash = record.get(..32).unwrap_or_default();
        if previous.is_some_and(|p| p >= hash) {
            return Err(malformed(format!(
                "token {i}: hashes are not sorted and unique"
            )));
        }
        previous = Some(hash);
        let id = u64_at(record, 32).unwrap_or(0);
        let user = u32_at(record, 48).unwrap_or(u32::MAX);
        let scope = u32_at(record, 52).unwrap_or(u32::MAX);
        if id == 0 {
            return Err(malformed(format!("token {i} has the reserved id 0")));
        }
        if user >= user_count {
            return Err(malformed(format!(
                "token {i} names user {user}, beyond the user table"
            )));
        }
        if scope >= scope_count {
            return Err(malformed(format!(
                "token {i} names scope {scope}, beyond the scope table"
            )));
        }
    }
    Ok(())
}

/// How many leading hash bits index the bucket table: about 8–16 tokens per bucket, at most
/// 2^16 buckets (256 KiB, a quarter byte per token at 1,000,000 tokens).
pub(super) fn bucket_bits(tokens: usize) -> u32 {
    let mut bits = 0;
    while bits < 16 && (8usize << bits) < tokens {
        bits += 1;
    }
    bits
}

/// `buckets[b]` = index of the first record whose hash's top `bits` bits are ≥ b; one extra
/// entry at the end = the token count.
fn build_buckets(bytes: &[u8], tokens_at: usize, count: usize, bits: u32) -> Vec<u32> {
    let n_buckets = 1usize << bits;
    let mut buckets = Vec::with_capacity(n_buckets + 1);
    let records = bytes.get(tokens_at..).unwrap_or_default();
    let mut next_bucket = 0usize;
    for (i, record) in records.chunks_exact(RECORD_LEN).enumerate() {
        let bucket = bucket_of(record, bits);
        while next_bucket <= bucket {
            buckets.push(i as u32);
            next_bucket += 1;
        }
    }
    while buckets.len() <= n_buckets {
        buckets.push(count as u32);
    }
    buckets
}

/// The bucket of a hash (or record, which starts with its hash).
pub(super) fn bucket_of(hash_prefix: &[u8], bits: u32) -> usize {
    if bits == 0 {
        return 0;
    }
    let top = u32_at_be(hash_prefix);
    (top >> (32 - bits)) as usize
}

fn u32_at_be(bytes: &[u8]) -> u32 {
    bytes
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_be_bytes)
}
