//! Building and signing documents (the publisher's side): a full snapshot of every token, or
//! a delta — the tokens added or changed and the hashes removed since a base state.

use std::collections::{BTreeSet, HashMap};

use super::layout::{
    BODY_OFFSET, Header, Kind, PREFIX_LEN, RECORD_LEN, RESTRICTION_LEN, SIGNING_CONTEXT, chain,
};
use crate::env::EnvList;
use crate::keys::SigningKey;
use crate::method::MethodName;
use crate::net::Network;
use crate::rate::RateLimit;
use crate::token::TokenHash;
use crate::user::{UserNameError, validate_user_name};

/// One token as the publisher knows it.
#[derive(Debug, Clone, Copy)]
pub struct TokenSpec<'a> {
    /// SHA-256 of the token value.
    pub hash: TokenHash,
    /// Public token id (forwarded to the platform, shown to the user). Two records may share
    /// one: a regenerated token's old value during its grace window.
    pub id: u64,
    /// The account the token acts for.
    pub user: &'a str,
    /// Valid until this instant (Unix seconds, exclusive); `None` = no expiry.
    pub expires_at: Option<u64>,
    /// The methods the token may call.
    pub scope: &'a [MethodName],
    /// The client networks it may be used from; empty = any.
    pub networks: &'a [Network],
    /// The environments it may act on; `None` = any.
    pub envs: Option<&'a EnvList>,
    /// At most this many requests per period on each edge; `None` = no limit.
    pub rate_limit: Option<RateLimit>,
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
    /// A stamp for a document issued at `issued_at` that edges may use for `lifetime` seconds.
    pub fn lasting(version: u64, issued_at: u64, lifetime: u64) -> Self {
        Self {
            version,
            issued_at,
            expires_at: issued_at.saturating_add(lifetime),
        }
    }
}

/// The state a delta applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Base {
    /// Its version.
    pub version: u64,
    /// Its state id.
    pub state_id: [u8; 32],
}

/// Which state a full snapshot describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateOf {
    /// A new chain starts here: its id derives from the version and body.
    Genesis,
    /// The state of an existing chain at this version (a compaction of its deltas).
    Chain([u8; 32]),
}

/// A built document: its signed bytes and the state id it produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// The signed bytes.
    pub bytes: Vec<u8>,
    /// The state id after it.
    pub state_id: [u8; 32],
}

/// Why a document could not be built.
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
    /// Two records with the same hash prefix (the same value twice).
    #[error("two tokens have the same hash (token ids {0} and {1})")]
    DuplicateHash(u64, u64),
    /// A hash both added and removed in one delta.
    #[error("token {0} is both added and removed")]
    AddedAndRemoved(u64),
    /// Id 0 is reserved.
    #[error("token id 0 is reserved")]
    ZeroId,
    /// An expiry of 0 would read as "never".
    #[error("token {0}: an expiry of 0 (1970-01-01T00:00:00Z) is not a valid instant")]
    ZeroExpiry(u64),
    /// An expiry beyond what the format holds (2106).
    #[error("token {0}: an expiry after 2106-02-07 cannot be represented")]
    ExpiryTooFar(u64),
    /// A scope that names a method no token may call.
    #[error("token {id}: method {method} can never be granted to a token")]
    ForbiddenMethod {
        /// Token id.
        id: u64,
        /// The method.
        method: MethodName,
    },
    /// A network list longer than [`crate::net::MAX_PER_TOKEN`].
    #[error("token {0}: more than {max} allowed networks", max = crate::net::MAX_PER_TOKEN)]
    TooManyNetworks(u64),
    /// Removals in a full snapshot.
    #[error("a full snapshot cannot list removals")]
    RemovalsInFull,
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
    /// A delta whose version does not follow its base.
    #[error("a delta to version {version} cannot apply to version {base}")]
    NotForward {
        /// The base version.
        base: u64,
        /// The delta's version.
        version: u64,
    },
}

/// Collects tokens (and, for a delta, removals), deduplicating users, scopes, network and
/// environment lists and restrictions, then encodes and signs the document.
#[derive(Debug, Default)]
pub struct SnapshotBuilder {
    users: HashMap<String, u32>,
    user_names: Vec<String>,
    scopes: HashMap<Vec<MethodName>, u32>,
    /// Scopes as callers pass them (unsorted), so a repeated scope costs one lookup.
    scopes_as_given: HashMap<Vec<MethodName>, u32>,
    scope_sets: Vec<Vec<MethodName>>,
    networks: HashMap<Vec<Network>, u32>,
    network_sets: Vec<Vec<Network>>,
    env_lists: HashMap<String, u32>,
    env_list_texts: Vec<String>,
    restrictions: HashMap<Restriction, u32>,
    restriction_entries: Vec<Restriction>,
    env_methods: BTreeSet<MethodName>,
    records: Vec<Record>,
    removed: Vec<[u8; PREFIX_LEN]>,
}

#[derive(Debug, Clone, Copy)]
struct Record {
    prefix: [u8; PREFIX_LEN],
    id: u64,
    expires_at: u32,
    user: u32,
    scope: u32,
    /// 0 = no restriction, else index + 1.
    restriction: u32,
}

/// A restriction entry: everything but the record's own fields that limits a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Restriction {
    /// 0 = any address, else network list index + 1.
    networks: u32,
    /// 0 = any environment, else environment list index + 1.
    envs: u32,
    /// `(count, period seconds)`; `(0, 0)` = no limit.
    rate: (u32, u32),
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

    /// Number of removals so far.
    pub fn removed(&self) -> usize {
        self.removed.len()
    }

    /// Adds one token (in a delta: added or changed).
    pub fn add(&mut self, token: TokenSpec<'_>) -> Result<(), BuildError> {
        if token.id == 0 {
            return Err(BuildError::ZeroId);
        }
        let expires_at = match token.expires_at {
            None => 0,
            Some(0) => return Err(BuildError::ZeroExpiry(token.id)),
            Some(at) => u32::try_from(at).map_err(|_| BuildError::ExpiryTooFar(token.id))?,
        };
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
        if token.networks.len() > crate::net::MAX_PER_TOKEN {
            return Err(BuildError::TooManyNetworks(token.id));
        }
        let networks = self.intern_networks(token.networks)?;
        let envs = match token.envs {
            None => 0,
            Some(list) => self.intern_env_list(list)?,
        };
        let rate = token.rate_limit.map_or((0, 0), RateLimit::to_wire);
        let restriction = self.intern_restriction(Restriction {
            networks,
            envs,
            rate,
        })?;
        self.records.push(Record {
            prefix: token.hash.prefix(),
            id: token.id,
            expires_at,
            user,
            scope,
            restriction,
        });
        Ok(())
    }

    /// Declares the methods that act on the one environment their `envName` names (the
    /// catalogue's methods that take `envName` and no other environment): a token limited to
    /// some environments may call only these. Only those some scope names are written.
    pub fn env_methods(&mut self, methods: impl IntoIterator<Item = MethodName>) {
        self.env_methods.extend(methods);
    }

    /// Removes a token (deltas only): edges forget the value with this hash.
    pub fn remove(&mut self, hash: &TokenHash) {
        self.removed.push(hash.prefix());
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

    /// 0 for no limit, else 1 + the index of the network list (sorted and deduplicated).
    fn intern_networks(&mut self, networks: &[Network]) -> Result<u32, BuildError> {
        if networks.is_empty() {
            return Ok(0);
        }
        let mut sorted = networks.to_vec();
        sorted.sort();
        sorted.dedup();
        if let Some(&index) = self.networks.get(&sorted) {
            return Ok(index + 1);
        }
        let index = u32::try_from(self.network_sets.len())
            .map_err(|_| BuildError::TooMany("network lists"))?;
        self.networks.insert(sorted.clone(), index);
        self.network_sets.push(sorted);
        Ok(index + 1)
    }

    /// 1 + the index of the environment list, adding it if new.
    fn intern_env_list(&mut self, list: &EnvList) -> Result<u32, BuildError> {
        let text = list.encoded();
        if let Some(&index) = self.env_lists.get(&text) {
            return Ok(index + 1);
        }
        let index = u32::try_from(self.env_list_texts.len())
            .map_err(|_| BuildError::TooMany("environment lists"))?;
        self.env_lists.insert(text.clone(), index);
        self.env_list_texts.push(text);
        Ok(index + 1)
    }

    /// 0 for a token limited by nothing here, else 1 + the index of the restriction entry.
    fn intern_restriction(&mut self, restriction: Restriction) -> Result<u32, BuildError> {
        if restriction.networks == 0 && restriction.envs == 0 && restriction.rate == (0, 0) {
            return Ok(0);
        }
        if let Some(&index) = self.restrictions.get(&restriction) {
            return Ok(index + 1);
        }
        let index = u32::try_from(self.restriction_entries.len())
            .map_err(|_| BuildError::TooMany("restrictions"))?;
        self.restrictions.insert(restriction, index);
        self.restriction_entries.push(restriction);
        Ok(index + 1)
    }

    /// Encodes a full snapshot of the state `state` and signs it with `key`.
    pub fn build(
        self,
        stamp: Stamp,
        state: StateOf,
        key: &SigningKey,
    ) -> Result<Built, BuildError> {
        if !self.removed.is_empty() {
            return Err(BuildError::RemovalsInFull);
        }
        self.sign(Kind::Full, stamp, None, state, None, key)
    }

    /// Encodes a delta on top of `base`, after which the state holds `state_tokens` tokens,
    /// and signs it with `key`.
    pub fn build_delta(
        self,
        stamp: Stamp,
        base: Base,
        state_tokens: u32,
        key: &SigningKey,
    ) -> Result<Built, BuildError> {
        if base.version >= stamp.version {
            return Err(BuildError::NotForward {
                base: base.version,
                version: stamp.version,
            });
        }
        self.sign(
            Kind::Delta,
            stamp,
            Some(base),
            StateOf::Genesis,
            Some(state_tokens),
            key,
        )
    }

    fn sign(
        mut self,
        kind: Kind,
        stamp: Stamp,
        base: Option<Base>,
        state: StateOf,
        state_tokens: Option<u32>,
        key: &SigningKey,
    ) -> Result<Built, BuildError> {
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

        self.records.sort_unstable_by_key(|r| r.prefix);
        let duplicate = self.records.windows(2).find_map(|pair| match pair {
            [a, b] if a.prefix == b.prefix => Some((a.id, b.id)),
            _ => None,
        });
        if let Some((a, b)) = duplicate {
            return Err(BuildError::DuplicateHash(a, b));
        }
        self.removed.sort_unstable();
        self.removed.dedup();
        for record in &self.records {
            if self.removed.binary_search(&record.prefix).is_ok() {
                return Err(BuildError::AddedAndRemoved(record.id));
            }
        }
        let count = |n: usize, what| u32::try_from(n).map_err(|_| BuildError::TooMany(what));
        let record_count = count(self.records.len(), "tokens")?;
        let removed_count = count(self.removed.len(), "removals")?;

        let mut body = Vec::with_capacity(
            self.records.len() * RECORD_LEN + self.removed.len() * PREFIX_LEN + 4096,
        );
        put_strings(&mut body, methods.iter().map(|m| m.as_str()))?;
        // Env methods: the indices of the declared ones the method table holds, ascending.
        let env_methods: Vec<u16> = methods
            .iter()
            .zip(0u16..)
            .filter(|(m, _)| self.env_methods.contains(**m))
            .map(|(_, i)| i)
            .collect();
        for index in &env_methods {
            body.extend_from_slice(&index.to_le_bytes());
        }
        // Scopes: offsets into one array of u16 method indices. Method names are sorted and
        // each scope is sorted by name, so each scope's indices come out ascending.
        put_offsets(&mut body, self.scope_sets.iter().map(Vec::len))?;
        for method in self.scope_sets.iter().flatten() {
            let index = method_index
                .get(method.as_str())
                .copied()
                .unwrap_or_default();
            body.extend_from_slice(&index.to_le_bytes());
        }
        put_strings(&mut body, self.user_names.iter().map(String::as_str))?;
        put_offsets(&mut body, self.network_sets.iter().map(Vec::len))?;
        for network in self.network_sets.iter().flatten() {
            body.extend_from_slice(&network.encode());
        }
        put_strings(&mut body, self.env_list_texts.iter().map(String::as_str))?;
        for r in &self.restriction_entries {
            let mut entry = [0u8; RESTRICTION_LEN];
            for (slot, value) in entry
                .chunks_exact_mut(4)
                .zip([r.networks, r.envs, r.rate.0, r.rate.1])
            {
                slot.copy_from_slice(&value.to_le_bytes());
            }
            body.extend_from_slice(&entry);
        }
        for r in &self.records {
            body.extend_from_slice(&r.prefix);
            body.extend_from_slice(&r.id.to_le_bytes());
            body.extend_from_slice(&r.expires_at.to_le_bytes());
            body.extend_from_slice(&r.user.to_le_bytes());
            body.extend_from_slice(&r.scope.to_le_bytes());
            body.extend_from_slice(&r.restriction.to_le_bytes());
        }
        for prefix in &self.removed {
            body.extend_from_slice(prefix);
        }

        let body_digest: [u8; 32] = blake3::hash(&body).into();
        let (base_version, base_state_id) = base.map_or((0, [0; 32]), |b| (b.version, b.state_id));
        let state_id = match (kind, state) {
            (Kind::Delta, _) => chain(&base_state_id, version, &body_digest),
            (Kind::Full, StateOf::Genesis) => chain(&[0; 32], version, &body_digest),
            (Kind::Full, StateOf::Chain(id)) => id,
        };
        let header = Header {
            kind,
            state_tokens: state_tokens.unwrap_or(record_count),
            version,
            base_version,
            issued_at,
            expires_at,
            key_id: key.public_key().id().0,
            state_id,
            base_state_id,
            body_digest,
            method_count: methods.len() as u32,
            scope_count: count(self.scope_sets.len(), "scopes")?,
            user_count: count(self.user_names.len(), "users")?,
            record_count,
            removed_count,
            network_count: count(self.network_sets.len(), "network lists")?,
            env_method_count: count(env_methods.len(), "environment methods")?,
            env_list_count: count(self.env_list_texts.len(), "environment lists")?,
            restriction_count: count(self.restriction_entries.len(), "restrictions")?,
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
        Ok(Built {
            bytes: out,
            state_id,
        })
    }
}

/// Appends `(count+1)` u32 offsets for consecutive runs of these lengths.
fn put_offsets(body: &mut Vec<u8>, lengths: impl Iterator<Item = usize>) -> Result<(), BuildError> {
    let mut offset = 0u32;
    body.extend_from_slice(&offset.to_le_bytes());
    for len in lengths {
        offset = u32::try_from(len)
            .ok()
            .and_then(|n| offset.checked_add(n))
            .ok_or(BuildError::TooMany("table entries"))?;
        body.extend_from_slice(&offset.to_le_bytes());
    }
    Ok(())
}

/// Appends a string table: (count+1) u32 offsets, then the bytes.
fn put_strings<'a>(
    body: &mut Vec<u8>,
    strings: impl Iterator<Item = &'a str> + Clone,
) -> Result<(), BuildError> {
    put_offsets(body, strings.clone().map(str::len))?;
    for s in strings {
        body.extend_from_slice(s.as_bytes());
    }
    Ok(())
}
