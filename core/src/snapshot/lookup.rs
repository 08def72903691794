//! Queries on a verified document: token by hash, method index by name, scope membership,
//! allowed networks and environments, rate limits. None of them allocates; a token lookup in a full snapshot is a bucket
//! jump plus a binary search over about a dozen records.

use std::cmp::Ordering;
use std::net::IpAddr;

use subtle::ConstantTimeEq;

use super::layout::{NETWORK_LEN, PREFIX_LEN, RECORD_LEN, RESTRICTION_LEN};
use super::open::{Tables, bucket_of, u16_at, u32_at, u64_at};
use super::{Delta, Snapshot};
use crate::net::Network;
use crate::rate::RateLimit;
use crate::token::TokenHash;

/// Position of a method in a document's method table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct MethodIndex(pub u16);

/// The methods one token may call (u16 method indices, sorted).
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    elements: &'a [u8],
}

impl Scope<'_> {
    /// Does the scope include this method?
    pub fn contains(&self, method: MethodIndex) -> bool {
        let (mut lo, mut hi) = (0usize, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match u16_at(self.elements, mid * 2).map(|m| m.cmp(&method.0)) {
                Some(Ordering::Less) => lo = mid + 1,
                Some(Ordering::Greater) => hi = mid,
                Some(Ordering::Equal) => return true,
                None => return false,
            }
        }
        false
    }

    /// Number of methods.
    pub fn len(&self) -> usize {
        self.elements.len() / 2
    }

    /// True for a scope that allows nothing.
    pub fn is_empty(&self) -> bool {
        self.elements.is_empty()
    }

    /// The method indices, ascending.
    pub fn indices(&self) -> impl Iterator<Item = MethodIndex> + '_ {
        self.elements
            .chunks_exact(2)
            .filter_map(|pair| pair.try_into().ok().map(u16::from_le_bytes))
            .map(MethodIndex)
    }
}

/// The client networks a token may be used from; none listed = any address.
#[derive(Debug, Clone, Copy)]
pub struct Networks<'a> {
    entries: &'a [u8],
}

impl Networks<'_> {
    /// No limit: any client address.
    pub fn is_unrestricted(&self) -> bool {
        self.entries.is_empty()
    }

    /// Does the list allow `ip` (always, when unrestricted)?
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.is_unrestricted() || self.iter().any(|n| n.contains(ip))
    }

    /// The networks, sorted.
    pub fn iter(&self) -> impl Iterator<Item = Network> + '_ {
        self.entries
            .chunks_exact(NETWORK_LEN)
            .filter_map(Network::decode)
    }
}

/// The environments a token may act on (snapshot form, [`crate::env`]); none = any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envs<'a> {
    /// The list's bytes, as validated when the document was opened (no UTF-8 check per
    /// request: names are ASCII).
    encoded: Option<&'a [u8]>,
}

impl<'a> Envs<'a> {
    /// The list in snapshot form (already validated), or none.
    pub(super) fn from_encoded(encoded: Option<&'a [u8]>) -> Self {
        Self { encoded }
    }

    /// No limit: any environment.
    pub fn is_unrestricted(&self) -> bool {
        self.encoded.is_none()
    }

    /// Does the list allow the environment `name` (always, when unrestricted)?
    pub fn allows(&self, name: &str) -> bool {
        self.encoded
            .is_none_or(|list| crate::env::list_contains_bytes(list, name.as_bytes()))
    }

    /// The names, lowercase and sorted (none when unrestricted).
    pub fn names(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.encoded().into_iter().flat_map(|list| list.split(','))
    }

    /// The snapshot form, `None` when unrestricted.
    pub fn encoded(&self) -> Option<&'a str> {
        self.encoded.and_then(|list| std::str::from_utf8(list).ok())
    }
}

/// One token of a document.
#[derive(Debug, Clone, Copy)]
pub struct TokenEntry<'a> {
    /// Public token id.
    pub id: u64,
    /// The account it acts for (header-safe, validated at open).
    pub user: &'a str,
    /// Unix seconds from which the token is expired; `None` = never.
    pub expires_at: Option<u64>,
    /// Index of its scope in the scope table (tokens with equal scopes share one).
    pub scope_index: u32,
    /// The methods it may call.
    pub scope: Scope<'a>,
    /// The client networks it may be used from.
    pub networks: Networks<'a>,
    /// The environments it may act on.
    pub envs: Envs<'a>,
    /// Its rate limit, if any.
    pub rate_limit: Option<RateLimit>,
}

impl TokenEntry<'_> {
    /// Is the token expired at `now` (Unix seconds)?
    pub fn is_expired(&self, now: u64) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }
}

impl Tables {
    /// The entry a record describes, its references resolved in `bytes`.
    fn entry<'a>(&self, bytes: &'a [u8], record: &'a [u8]) -> Option<TokenEntry<'a>> {
        let expires_at = u32_at(record, 24)?;
        let scope_index = u32_at(record, 32)?;
        let (networks, envs, rate_limit) = match u32_at(record, 36)? {
            0 => (&[][..], None, None),
            n => {
                let at = self
                    .restrictions_at
                    .checked_add((n as usize - 1).checked_mul(RESTRICTION_LEN)?)?;
                let entry = bytes.get(at..at.checked_add(RESTRICTION_LEN)?)?;
                let networks = match u32_at(entry, 0)? {
                    0 => &[][..],
                    n => self.networks.get(bytes, n as usize - 1)?,
                };
                let envs = match u32_at(entry, 4)? {
                    0 => None,
                    n => Some(self.env_lists.get_bytes(bytes, n as usize - 1)?),
                };
                let rate = RateLimit::from_wire(u32_at(entry, 8)?, u32_at(entry, 12)?);
                (networks, envs, rate)
            }
        };
        Some(TokenEntry {
            id: u64_at(record, 16)?,
            user: self.users.get(bytes, u32_at(record, 28)? as usize)?,
            expires_at: (expires_at != 0).then_some(u64::from(expires_at)),
            scope_index,
            scope: Scope {
                elements: self.scopes.get(bytes, scope_index as usize)?,
            },
            networks: Networks { entries: networks },
            envs: Envs { encoded: envs },
            rate_limit,
        })
    }

    fn records<'a>(&self, bytes: &'a [u8]) -> &'a [u8] {
        bytes
            .get(self.records_at..self.removed_at)
            .unwrap_or_default()
    }

    /// Does this method act on the one environment its `envName` names?
    fn is_env_method(&self, bytes: &[u8], method: MethodIndex) -> bool {
        let (mut lo, mut hi) = (0usize, self.env_method_count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match u16_at(bytes, self.env_methods_at + mid * 2).map(|m| m.cmp(&method.0)) {
                Some(Ordering::Less) => lo = mid + 1,
                Some(Ordering::Greater) => hi = mid,
                Some(Ordering::Equal) => return true,
                None => return false,
            }
        }
        false
    }

    fn method_index(&self, bytes: &[u8], canonical: &str) -> Option<MethodIndex> {
        let (mut lo, mut hi) = (0usize, self.methods.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.methods.get(bytes, mid)?.cmp(canonical) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return u16::try_from(mid).ok().map(MethodIndex),
            }
        }
        None
    }
}

impl Snapshot {
    /// Finds the token with this hash.
    pub fn find(&self, hash: &TokenHash) -> Option<TokenEntry<'_>> {
        self.find_prefix(&hash.prefix())
    }

    /// Finds the token whose hash starts with this prefix.
    pub fn find_prefix(&self, prefix: &[u8; PREFIX_LEN]) -> Option<TokenEntry<'_>> {
        let bucket = bucket_of(prefix, self.bucket_bits);
        let lo = *self.buckets.get(bucket)? as usize;
        let hi = *self.buckets.get(bucket + 1)? as usize;
        let records = self
            .tables
            .records(&self.bytes)
            .get(lo * RECORD_LEN..hi * RECORD_LEN)?;
        let (mut lo, mut hi) = (0usize, hi - lo);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let record = records.get(mid * RECORD_LEN..(mid + 1) * RECORD_LEN)?;
            let stored = record.get(..PREFIX_LEN)?;
            match stored.cmp(prefix.as_slice()) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                // The search itself compares hashes, not secrets; the final check is
                // constant-time anyway so no secret-dependent branch remains.
                Ordering::Equal if bool::from(stored.ct_eq(prefix)) => {
                    return self.tables.entry(&self.bytes, record);
                }
                Ordering::Equal => return None,
            }
        }
        None
    }

    /// Every token, in hash-prefix order (for tools and tests; the filter uses [`Self::find`]).
    pub fn entries(&self) -> impl Iterator<Item = ([u8; PREFIX_LEN], TokenEntry<'_>)> + '_ {
        entries(&self.tables, &self.bytes)
    }

    /// The index of a canonical method name, if any scope in this snapshot names it.
    pub fn method_index(&self, canonical: &str) -> Option<MethodIndex> {
        self.tables.method_index(&self.bytes, canonical)
    }

    /// The canonical name of a method index.
    pub fn method_name(&self, index: MethodIndex) -> Option<&str> {
        self.tables.methods.get(&self.bytes, usize::from(index.0))
    }

    /// Number of distinct methods named by scopes.
    pub fn method_count(&self) -> usize {
        self.tables.methods.count
    }

    /// Does this method act on the one environment its `envName` names (a method a token
    /// limited to some environments may call)?
    pub fn is_env_method(&self, index: MethodIndex) -> bool {
        self.tables.is_env_method(&self.bytes, index)
    }
}

fn entries<'a>(
    tables: &'a Tables,
    bytes: &'a [u8],
) -> impl Iterator<Item = ([u8; PREFIX_LEN], TokenEntry<'a>)> + 'a {
    tables
        .records(bytes)
        .chunks_exact(RECORD_LEN)
        .filter_map(move |record| {
            let prefix: [u8; PREFIX_LEN] = record.get(..PREFIX_LEN)?.try_into().ok()?;
            Some((prefix, tables.entry(bytes, record)?))
        })
}

impl Delta {
    /// The tokens it adds or changes, in hash-prefix order.
    pub fn entries(&self) -> impl Iterator<Item = ([u8; PREFIX_LEN], TokenEntry<'_>)> + '_ {
        entries(&self.tables, &self.bytes)
    }

    /// The hash prefixes it removes, sorted.
    pub fn removed(&self) -> impl Iterator<Item = [u8; PREFIX_LEN]> + '_ {
        self.bytes
            .get(self.tables.removed_at..)
            .unwrap_or_default()
            .chunks_exact(PREFIX_LEN)
            .filter_map(|p| p.try_into().ok())
    }

    /// The canonical name of a method index of this delta.
    pub fn method_name(&self, index: MethodIndex) -> Option<&str> {
        self.tables.methods.get(&self.bytes, usize::from(index.0))
    }

    /// Does this method of the delta act on the one environment its `envName` names?
    pub fn is_env_method(&self, index: MethodIndex) -> bool {
        self.tables.is_env_method(&self.bytes, index)
    }

    /// Number of tokens added or changed.
    pub fn added_count(&self) -> usize {
        self.tables.record_count
    }

    /// Number of removals.
    pub fn removed_count(&self) -> usize {
        self.tables.removed_count
    }
}
