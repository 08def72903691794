//! Verifying and validating a document before anything in it is used.
//!
//! Order: length → header → trusted key → signature over the header → BLAKE3 of the body
//! → structure. The cheap checks run first, so a forged or truncated push costs little.

use super::layout::{
    BODY_OFFSET, HEADER_LEN, Header, Kind, NETWORK_LEN, PREFIX_LEN, RECORD_LEN, RESTRICTION_LEN,
    SIGNATURE_LEN, SIGNING_CONTEXT,
};
use super::{Delta, Document, Snapshot, SnapshotError};
use crate::keys::{KeyId, TrustedKeys};
use crate::method::is_canonical;
use crate::net::Network;
use crate::rate::RateLimit;
use crate::user::validate_user_name;

/// A table of strings: `count + 1` u32 offsets at `offsets`, string bytes at `data`.
#[derive(Debug, Clone, Copy)]
pub(super) struct StrTable {
    pub(super) offsets: usize,
    pub(super) data: usize,
    pub(super) count: usize,
}

/// `count + 1` u32 offsets at `offsets` into fixed-size elements at `elements`.
#[derive(Debug, Clone, Copy)]
pub(super) struct ListTable {
    pub(super) offsets: usize,
    pub(super) elements: usize,
    pub(super) count: usize,
    pub(super) element_len: usize,
}

/// Where a validated body's tables are.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tables {
    pub(super) methods: StrTable,
    /// Where the sorted u16 indices of the environment methods start, and how many.
    pub(super) env_methods_at: usize,
    pub(super) env_method_count: usize,
    pub(super) scopes: ListTable,
    pub(super) users: StrTable,
    pub(super) networks: ListTable,
    pub(super) env_lists: StrTable,
    pub(super) restrictions_at: usize,
    pub(super) records_at: usize,
    pub(super) record_count: usize,
    pub(super) removed_at: usize,
    pub(super) removed_count: usize,
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

/// The `[start, end)` range of the `index`-th run of a `(count + 1)`-offset table.
fn run(bytes: &[u8], offsets: usize, count: usize, index: usize) -> Option<(usize, usize)> {
    if index >= count {
        return None;
    }
    let start = u32_at(bytes, offsets.checked_add(index.checked_mul(4)?)?)? as usize;
    let end = u32_at(
        bytes,
        offsets.checked_add(index.checked_add(1)?.checked_mul(4)?)?,
    )? as usize;
    Some((start, end))
}

impl StrTable {
    /// The `index`-th string, if in bounds and UTF-8 (always, once validated).
    pub(super) fn get<'a>(&self, bytes: &'a [u8], index: usize) -> Option<&'a str> {
        std::str::from_utf8(self.get_bytes(bytes, index)?).ok()
    }

    /// The `index`-th string's bytes, not checked again (it was when the table was read).
    pub(super) fn get_bytes<'a>(&self, bytes: &'a [u8], index: usize) -> Option<&'a [u8]> {
        let (start, end) = run(bytes, self.offsets, self.count, index)?;
        bytes.get(self.data.checked_add(start)?..self.data.checked_add(end)?)
    }
}

impl ListTable {
    /// The raw elements of the `index`-th list.
    pub(super) fn get<'a>(&self, bytes: &'a [u8], index: usize) -> Option<&'a [u8]> {
        let (start, end) = run(bytes, self.offsets, self.count, index)?;
        bytes.get(
            self.elements
                .checked_add(start.checked_mul(self.element_len)?)?
                ..self
                    .elements
                    .checked_add(end.checked_mul(self.element_len)?)?,
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
    if header.kind == Kind::Delta && header.chained_state_id() != header.state_id {
        return Err(SnapshotError::Malformed(
            "the delta's state id does not follow from its base and body".into(),
        ));
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

/// The full length of the document a header describes.
pub fn announced_len(header: &Header) -> u64 {
    (BODY_OFFSET as u64).saturating_add(header.body_len)
}

/// Checks length, header, signature and the body digest; returns the header. Does not look
/// at the body's structure: [`open`] does both.
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

/// Verifies a signed document of either kind and validates its structure.
pub fn open(bytes: Vec<u8>, keys: &TrustedKeys) -> Result<Document, SnapshotError> {
    let header = verify(&bytes, keys)?;
    let tables = validate_body(&bytes, &header)?;
    Ok(match header.kind {
        Kind::Full => Document::Full(Snapshot::from_parts(bytes, header, tables)),
        Kind::Delta => Document::Delta(Delta {
            bytes,
            header,
            tables,
        }),
    })
}

impl Snapshot {
    /// Verifies a signed full snapshot against the trusted keys and validates its structure.
    /// Takes the bytes by value and keeps them: lookups read the tables in place.
    pub fn open(bytes: Vec<u8>, keys: &TrustedKeys) -> Result<Self, SnapshotError> {
        match open(bytes, keys)? {
            Document::Full(snapshot) => Ok(snapshot),
            Document::Delta(_) => Err(SnapshotError::NotFull),
        }
    }
}

impl Delta {
    /// Verifies a signed delta against the trusted keys and validates its structure.
    pub fn open(bytes: Vec<u8>, keys: &TrustedKeys) -> Result<Self, SnapshotError> {
        match open(bytes, keys)? {
            Document::Delta(delta) => Ok(delta),
            Document::Full(_) => Err(SnapshotError::NotDelta),
        }
    }
}

/// Validates every table of a verified body.
fn validate_body(bytes: &[u8], header: &Header) -> Result<Tables, SnapshotError> {
    let mut at = BODY_OFFSET;
    let methods = read_str_table(bytes, &mut at, header.method_count, "method")?;
    if methods.count > usize::from(u16::MAX) + 1 {
        return Err(malformed("more than 65536 methods"));
    }
    let mut previous: Option<&str> = None;
    for i in 0..methods.count {
        let name = methods
            .get(bytes, i)
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
    let env_methods_at = at;
    let env_method_count = header.env_method_count as usize;
    at = env_method_count
        .checked_mul(2)
        .and_then(|n| n.checked_add(at))
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| malformed("the environment method table is cut short"))?;
    let mut last: Option<u16> = None;
    for i in 0..env_method_count {
        let index = u16_at(bytes, env_methods_at + 2 * i).unwrap_or(u16::MAX);
        if usize::from(index) >= methods.count || last.is_some_and(|l| l >= index) {
            return Err(malformed(format!(
                "environment method {i} is beyond the method table, or not sorted and unique"
            )));
        }
        last = Some(index);
    }
    let scopes = read_list_table(bytes, &mut at, header.scope_count, 2, "scope")?;
    for i in 0..scopes.count {
        let raw = scopes
            .get(bytes, i)
            .ok_or_else(|| malformed("scope table"))?;
        let mut last: Option<u16> = None;
        for pair in raw.chunks_exact(2) {
            let index = pair.try_into().map_or(u16::MAX, u16::from_le_bytes);
            if usize::from(index) >= methods.count {
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
    let users = read_str_table(bytes, &mut at, header.user_count, "user")?;
    for i in 0..users.count {
        let name = users.get(bytes, i).ok_or_else(|| malformed("user table"))?;
        validate_user_name(name).map_err(|e| malformed(format!("user {i}: {e}")))?;
    }
    let networks = read_list_table(bytes, &mut at, header.network_count, NETWORK_LEN, "network")?;
    for i in 0..networks.count {
        let raw = networks
            .get(bytes, i)
            .ok_or_else(|| malformed("network table"))?;
        if raw.is_empty() {
            return Err(malformed(format!("network list {i} is empty")));
        }
        let mut last: Option<Network> = None;
        for entry in raw.chunks_exact(NETWORK_LEN) {
            let network = Network::decode(entry)
                .ok_or_else(|| malformed(format!("network list {i} holds a malformed network")))?;
            if last.is_some_and(|l| l >= network) {
                return Err(malformed(format!(
                    "network list {i} is not sorted and unique"
                )));
            }
            last = Some(network);
        }
    }
    let env_lists = read_str_table(bytes, &mut at, header.env_list_count, "environment list")?;
    for i in 0..env_lists.count {
        let list = env_lists
            .get(bytes, i)
            .ok_or_else(|| malformed("environment list table"))?;
        if !crate::env::is_valid_encoded(list) {
            return Err(malformed(format!(
                "environment list {i} is not valid names, lowercase, sorted and unique"
            )));
        }
    }
    let restrictions_at = at;
    let restriction_count = header.restriction_count as usize;
    at = restriction_count
        .checked_mul(RESTRICTION_LEN)
        .and_then(|n| n.checked_add(at))
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| malformed("the restriction table is cut short"))?;
    for (i, entry) in bytes
        .get(restrictions_at..at)
        .unwrap_or_default()
        .chunks_exact(RESTRICTION_LEN)
        .enumerate()
    {
        let field = |n: usize| u32_at(entry, n * 4).unwrap_or(u32::MAX);
        let (networks, envs, count, period) = (field(0), field(1), field(2), field(3));
        let rate_ok = (count, period) == (0, 0) || RateLimit::from_wire(count, period).is_some();
        if networks > header.network_count
            || envs > header.env_list_count
            || !rate_ok
            || (networks, envs, count) == (0, 0, 0)
        {
            return Err(malformed(format!(
                "restriction {i} names a list beyond its table, a rate limit this build does not know, or nothing"
            )));
        }
    }
    let record_count = header.record_count as usize;
    let removed_count = header.removed_count as usize;
    let records_at = at;
    let removed_at = record_count
        .checked_mul(RECORD_LEN)
        .and_then(|n| n.checked_add(records_at))
        .ok_or_else(|| malformed("record table size overflows"))?;
    let end = removed_count
        .checked_mul(PREFIX_LEN)
        .and_then(|n| n.checked_add(removed_at))
        .ok_or_else(|| malformed("removal table size overflows"))?;
    if end != bytes.len() {
        return Err(malformed(format!(
            "the record and removal tables should end at byte {end}, the body ends at {}",
            bytes.len()
        )));
    }
    validate_records(
        bytes.get(records_at..removed_at).unwrap_or_default(),
        header.user_count,
        header.scope_count,
        header.restriction_count,
    )?;
    let removed = bytes.get(removed_at..end).unwrap_or_default();
    let mut previous: Option<&[u8]> = None;
    for (i, prefix) in removed.chunks_exact(PREFIX_LEN).enumerate() {
        if previous.is_some_and(|p| p >= prefix) {
            return Err(malformed(format!("removal {i}: not sorted and unique")));
        }
        previous = Some(prefix);
    }
    Ok(Tables {
        methods,
        env_methods_at,
        env_method_count,
        scopes,
        users,
        networks,
        env_lists,
        restrictions_at,
        records_at,
        record_count,
        removed_at,
        removed_count,
    })
}

/// Reads the offsets of a `count + 1`-offset table at `*at`, checks they rise from 0, and
/// returns where the data starts and ends.
fn read_offsets(
    bytes: &[u8],
    at: usize,
    count: u32,
    what: &str,
) -> Result<(usize, usize, u32), SnapshotError> {
    let count = count as usize;
    let data = count
        .checked_add(1)
        .and_then(|n| n.checked_mul(4))
        .and_then(|n| n.checked_add(at))
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| malformed(format!("the {what} table is cut short")))?;
    let mut previous = 0u32;
    for i in 0..=count {
        let offset = u32_at(bytes, at + i * 4)
            .ok_or_else(|| malformed(format!("the {what} table is cut short")))?;
        if (i == 0 && offset != 0) || offset < previous {
            return Err(malformed(format!(
                "the {what} table offsets are not increasing from 0"
            )));
        }
        previous = offset;
    }
    Ok((count, data, previous))
}

/// Reads a string table at `*at` and advances past its bytes.
fn read_str_table(
    bytes: &[u8],
    at: &mut usize,
    count: u32,
    what: &str,
) -> Result<StrTable, SnapshotError> {
    let (count, data, last) = read_offsets(bytes, *at, count, what)?;
    let end = data
        .checked_add(last as usize)
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| malformed(format!("the {what} strings run past the end")))?;
    let table = StrTable {
        offsets: *at,
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

/// Reads a list table of `element_len`-byte elements at `*at` and advances past it.
fn read_list_table(
    bytes: &[u8],
    at: &mut usize,
    count: u32,
    element_len: usize,
    what: &str,
) -> Result<ListTable, SnapshotError> {
    let (count, elements, last) = read_offsets(bytes, *at, count, what)?;
    let end = (last as usize)
        .checked_mul(element_len)
        .and_then(|n| n.checked_add(elements))
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| malformed(format!("the {what} entries run past the end")))?;
    let table = ListTable {
        offsets: *at,
        elements,
        count,
        element_len,
    };
    *at = end;
    Ok(table)
}

/// Checks every token record: prefixes strictly increasing, references in range.
fn validate_records(
    records: &[u8],
    user_count: u32,
    scope_count: u32,
    restriction_count: u32,
) -> Result<(), SnapshotError> {
    let mut previous: Option<&[u8]> = None;
    for (i, record) in records.chunks_exact(RECORD_LEN).enumerate() {
        let prefix = record.get(..PREFIX_LEN).unwrap_or_default();
        if previous.is_some_and(|p| p >= prefix) {
            return Err(malformed(format!(
                "token {i}: hashes are not sorted and unique"
            )));
        }
        previous = Some(prefix);
        let id = u64_at(record, 16).unwrap_or(0);
        let user = u32_at(record, 28).unwrap_or(u32::MAX);
        let scope = u32_at(record, 32).unwrap_or(u32::MAX);
        let restriction = u32_at(record, 36).unwrap_or(u32::MAX);
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
        if restriction > restriction_count {
            return Err(malformed(format!(
                "token {i} names restriction {restriction}, beyond the restriction table"
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

/// `buckets[b]` = index of the first record whose prefix's top `bits` bits are ≥ b; one extra
/// entry at the end = the record count.
pub(super) fn build_buckets(records: &[u8], count: usize, bits: u32) -> Vec<u32> {
    let n_buckets = 1usize << bits;
    let mut buckets = Vec::with_capacity(n_buckets + 1);
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

/// The bucket of a hash prefix (or record, which starts with its prefix).
pub(super) fn bucket_of(hash_prefix: &[u8], bits: u32) -> usize {
    if bits == 0 {
        return 0;
    }
    let top = hash_prefix
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_be_bytes);
    (top >> (32 - bits)) as usize
}
