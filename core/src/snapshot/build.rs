//! Building and signing a snapshot (the publisher's side).

use std::collections::{BTreeSet, HashMap, HashSet};

use super::layout::{BODY_OFFSET, Header, RECORD_LEN, SIGNING_CONTEXT};
use crate::keys::SigningKey;
use crate::method::MethodName;
use crate::token::TokenHash;
use crate::user::{UserNameError, validate_user_name};

/// One token as the publisher knows it.
#[derive(Debug, Clone, Copy)]
pub struct TokenSpec<'a> {
    /// SHA-256 of the token value.
    pub hash: TokenHash,
    /// Public token id (forwarded to the platform, shown to the user).
    pub id: u64,
    /// The account the token acts for.
    pub user: &'a str,
    /// Valid until this instant (Unix seconds, exclusive); `None` = no expiry.
    pub expires_at: Option<u64>,
    /// The methods the token may call.
    pub scope: &'a [MethodName],
}

/// What the publisher signs besides the tokens: the version, when it was issued, and until
/// when edges may use it (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Strictly increasing per publisher.
    pub version: u64,
    /// When it was built, Unix seconds.
    pub issued_at: u64,
    /// From this instant on no edge uses it, Unix seconds; after `issued_at`.
    pub expires_at: u64,
}

impl Stamp {
    /// A stamp for a snapshot issued at `issued_at` that edges may use for `lifetime` seconds.
    pub fn lasting(version: u64, issued_at: u64, lifetime: u64) -> Self {
        Self {
            version,
            issued_at,
            expires_at: issued_at.saturating_add(lifetime),
        }
    }
}

/// Why a snapshot could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// A user name that is not header-safe.
    #[error("token {id}: user `{user}`: {source}")]
    UserName {
        /// Token id.
        id: u64,
        /// The refused name (already known not to contain a token).
        user: String,
        /// The rule it broke.
        source: UserNameError,
    },
    /// Two tokens with the same hash (the same value twice).
    #[error("two tokens have the same hash (token ids {0} and {1})")]
    DuplicateHash(u64, u64),
    /// Two tokens with the same id.
    #[error("token id {0} appears twice")]
    DuplicateId(u64),
    /// Id 0 is reserved.
    #[error("token id 0 is reserved")]
    ZeroId,
    /// An expiry of 0 would read as "never".
    #[error("token {0}: an expiry of 0 (1970-01-01T00:00:00Z) is not a valid instant")]
    ZeroExpiry(u64),
    /// A scope that names a method no token may call.
    #[error("token {id}: method {method} can never be granted to a token")]
    ForbiddenMethod {
        /// Token id.
        id: u64,
        /// The method.
        method: MethodName,
    },
    /// More items than the format's counters hold.
    #[error("too many {0} for one snapshot")]
    TooMany(&'static str),
    /// An expiry that is not after the issue time: no edge could ever use it.
    #[error("the snapshot would expire ({expires_at}) no later than it is issued ({issued_at})")]
    ExpiresBeforeIssued {
        /// Issue time, Unix seconds.
        issued_at: u64,
        /// Expiry, Unix seconds.
        expires_at: u64,
    },
}

/// Collects tokens, deduplicating users and scopes, then encodes and signs the snapshot.
#[derive(Debug, Default)]
pub struct SnapshotBuilder {
    users: HashMap<String, u32>,
    user_names: Vec<String>,
    scopes: HashMap<Vec<MethodName>, u32>,
    /// Scopes as callers pass them (unsorted), so a repeated scope costs one lookup.
    scopes_as_given: HashMap<Vec<MethodName>, u32>,
    scope_sets: Vec<Vec<MethodName>>,
    records: Vec<Record>,
    ids: HashSet<u64>,
}

#[derive(Debug, Clone, Copy)]
struct Record {
    hash: TokenHash,
    id: u64,
    expires_at: u64,
    user: u32,
    scope: u32,
}

impl SnapshotBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of tokens added so far.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when no token was added.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Adds one token.
    pub fn add(&mut self, token: TokenSpec<'_>) -> Result<(), BuildError> {
        if token.id == 0 {
            return Err(BuildError::ZeroId);
        }
        if token.expires_at == Some(0) {
            return Err(BuildError::ZeroExpiry(token.id));
        }
        validate_user_name(token.user).map_err(|source| BuildError::UserName {
            id: token.id,
            user: token.user.to_string(),
            source,
        })?;
        if let Some(method) = token.scope.iter().find(|m| m.is_forbidden_for_tokens()) {
            return Err(BuildError::ForbiddenMethod {
                id: token.id,
                method: method.clone(),
            });
        }
        if !self.ids.insert(token.id) {
            return Err(BuildError::DuplicateId(token.id));
        }
        let user = match self.users.get(token.user) {
            Some(&index) => index,
            None => {
                let index = u32::try_from(self.user_names.len())
                    .map_err(|_| BuildError::TooMany("users"))?;
                self.users.insert(token.user.to_string(), index);
                self.user_names.push(token.user.to_string());
                index
            }
        };
        let scope = match self.scopes_as_given.get(token.scope) {
            Some(&index) => index,
            None => {
                let index = self.intern_scope(token.scope)?;
                self.scopes_as_given.insert(token.scope.to_vec(), index);
                index
            }
        };
        self.records.push(Record {
            hash: token.hash,
            id: token.id,
            expires_at: token.expires_at.unwrap_or(0),
            user,
            scope,
        });
        Ok(())
    }

    /// The index of a scope (sorted and deduplicated), adding it if new.
    fn intern_scope(&mut self, scope: &[MethodName]) -> Result<u32, BuildError> {
        let mut sorted = scope.to_vec();
        sorted.sort();
        sorted.dedup();
        if let Some(&index) = self.scopes.get(&sorted) {
            return Ok(index);
        }
        let index =
            u32::try_from(self.scope_sets.len()).map_err(|_| BuildError::TooMany("scopes"))?;
        self.scopes.insert(sorted.clone(), index);
        self.scope_sets.push(sorted);
        Ok(index)
    }

    /// Encodes the snapshot and signs it, with its stamp, with `key`.
    pub fn build(mut self, stamp: Stamp, key: &SigningKey) -> Result<Vec<u8>, BuildError> {
        let Stamp {
            version,
            issued_at,
            expires_at,
        } = stamp;
        if expires_at <= issued_at {
            return Err(BuildError::ExpiresBeforeIssued {
                issued_at,
                expires_at,
            });
        }
        let methods: Vec<&MethodName> = self
            .scope_sets
            .iter()
            .flatten()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if methods.len() > usize::from(u16::MAX) + 1 {
            return Err(BuildError::TooMany("methods"));
        }
        let method_index: HashMap<&str, u16> = methods
            .iter()
            .zip(0u16..)
            .map(|(m, i)| (m.as_str(), i))
            .collect();

        self.records.sort_unstable_by_key(|r| r.hash);
        let duplicate = self.records.windows(2).find_map(|pair| match pair {
            [a, b] if a.hash == b.hash => Some((a.id, b.id)),
            _ => None,
        });
        if let Some((a, b)) = duplicate {
            return Err(BuildError::DuplicateHash(a, b));
        }
        let token_count =
            u32::try_from(self.records.len()).map_err(|_| BuildError::TooMany("tokens"))?;

        let mut body = Vec::with_capacity(self.records.len() * RECORD_LEN + 4096);
        put_strings(&mut body, methods.iter().map(|m| m.as_str()))?;
        // Scopes: offsets into one array of u16 method indices. Method names are sorted and
        // each scope is sorted by name, so each scope's indices come out ascending.
        let mut offset = 0u32;
        body.extend_from_slice(&offset.to_le_bytes());
        for scope in &self.scope_sets {
            offset = u32::try_from(scope.len())
                .ok()
                .and_then(|n| offset.checked_add(n))
                .ok_or(BuildError::TooMany("scope entries"))?;
            body.extend_from_slice(&offset.to_le_bytes());
        }
        for method in self.scope_sets.iter().flatten() {
            let index = method_index
                .get(method.as_str())
                .copied()
                .unwrap_or_default();
            body.extend_from_slice(&index.to_le_bytes());
        }
        put_strings(&mut body, self.user_names.iter().map(String::as_str))?;
        for r in &self.records {
            body.extend_from_slice(&r.hash.0);
            body.extend_from_slice(&r.id.to_le_bytes());
            body.extend_from_slice(&r.expires_at.to_le_bytes());
            body.extend_from_slice(&r.user.to_le_bytes());
            body.extend_from_slice(&r.scope.to_le_bytes());
        }

        let header = Header {
            version,
            issued_at,
            expires_at,
            key_id: key.public_key().id().0,
            body_digest: blake3::hash(&body).into(),
            method_count: methods.len() as u32,
            scope_count: self.scope_sets.len() as u32,
            user_count: self.user_names.len() as u32,
            token_count,
            body_len: body.len() as u64,
        }
        .encode();
        let mut signed = Vec::with_capacity(SIGNING_CONTEXT.len() + header.len());
        signed.extend_from_slice(SIGNING_CONTEXT);
        signed.extend_from_slice(&header);
        let signature = key.sign(&signed);

        let mut out = Vec::with_capacity(BODY_OFFSET + body.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(&signature);
        out.extend_from_slice(&body);
        Ok(out)
    }
}

/// Appends a string table: (count+1) u32 offsets, then the bytes.
fn put_strings<'a>(
    body: &mut Vec<u8>,
    strings: impl Iterator<Item = &'a str> + Clone,
) -> Result<(), BuildError> {
    let mut offset = 0u32;
    body.extend_from_slice(&offset.to_le_bytes());
    for s in strings.clone() {
        offset = u32::try_from(s.len())
            .ok()
            .and_then(|n| offset.checked_add(n))
            .ok_or(BuildError::TooMany("string bytes"))?;
        body.extend_from_slice(&offset.to_le_bytes());
    }
    for s in strings {
        body.extend_from_slice(s.as_bytes());
    }
    Ok(())
}
