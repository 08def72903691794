//! Queries on a verified snapshot: token by hash, method index by name, scope membership.
//! None of them allocates; a token lookup is a bucket jump plus a binary search over about
//! a dozen records.

use std::cmp::Ordering;

use subtle::ConstantTimeEq;

use super::Snapshot;
use super::layout::RECORD_LEN;
use super::open::{bucket_of, u16_at, u32_at, u64_at};
use crate::token::TokenHash;

/// Position of a method in the snapshot's method table.
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

/// One token of a snapshot.
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
}

impl TokenEntry<'_> {
    /// Is the token expired at `now` (Unix seconds)?
    pub fn is_expired(&self, now: u64) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }
}

impl Snapshot {
    /// Finds the token with this hash.
    pub fn find(&self, hash: &TokenHash) -> Option<TokenEntry<'_>> {
        let bucket = bucket_of(&hash.0, self.bucket_bits);
        let lo = *self.buckets.get(bucket)? as usize;
        let hi = *self.buckets.get(bucket + 1)? as usize;
        let records = self
            .bytes
            .get(self.tokens_at + lo * RECORD_LEN..self.tokens_at + hi * RECORD_LEN)?;
        let (mut lo, mut hi) = (0usize, hi - lo);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let record = records.get(mid * RECORD_LEN..(mid + 1) * RECORD_LEN)?;
            let stored = record.get(..32)?;
            match stored.cmp(hash.0.as_slice()) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                // The search itself compares hashes, not secrets; the final check is
                // constant-time anyway so no secret-dependent branch remains.
                Ordering::Equal if bool::from(stored.ct_eq(&hash.0)) => return self.entry(record),
                Ordering::Equal => return None,
            }
        }
        None
    }

    fn entry<'a>(&'a self, record: &'a [u8]) -> Option<TokenEntry<'a>> {
        let expires_at = u64_at(record, 40)?;
        let scope_index = u32_at(record, 52)?;
        Some(TokenEntry {
            id: u64_at(record, 32)?,
            user: self.users.get(&self.bytes, u32_at(record, 48)? as usize)?,
            expires_at: (expires_at != 0).then_some(expires_at),
            scope_index,
            scope: Scope {
                elements: self.scopes.get(&self.bytes, scope_index as usize)?,
            },
        })
    }

    /// Every token, in hash order (for tools and tests; the filter only uses [`Self::find`]).
    pub fn entries(&self) -> impl Iterator<Item = (TokenHash, TokenEntry<'_>)> + '_ {
        self.bytes
            .get(self.tokens_at..)
            .unwrap_or_default()
            .chunks_exact(RECORD_LEN)
            .filter_map(|record| {
                let hash: [u8; 32] = record.get(..32)?.try_into().ok()?;
                Some((TokenHash(hash), self.entry(record)?))
            })
    }

    /// The index of a canonical method name, if any scope in this snapshot names it.
    pub fn method_index(&self, canonical: &str) -> Option<MethodIndex> {
        let (mut lo, mut hi) = (0usize, self.methods.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.methods.get(&self.bytes, mid)?.cmp(canonical) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return u16::try_from(mid).ok().map(MethodIndex),
            }
        }
        None
    }

    /// The canonical name of a method index.
    pub fn method_name(&self, index: MethodIndex) -> Option<&str> {
        self.methods.get(&self.bytes, usize::from(index.0))
    }

    /// Number of distinct methods named by scopes.
    pub fn method_count(&self) -> usize {
        self.methods.count
    }
}
