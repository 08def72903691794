//! The token list an edge serves from: a full snapshot (kept as received, read in place)
//! with the deltas published since applied on top of it, in an overlay of the tokens added or
//! changed and the hash prefixes removed.
//!
//! A delta applies only to the exact state it names — its base version and base state id —
//! so a gap (a delta missed) or a fork (a state this edge never held) is refused and the edge
//! catches up from a full snapshot instead. Applying costs time proportional to the delta,
//! not to the list: a revocation at 1,000,000 tokens touches one entry.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasherDefault;
use std::net::IpAddr;

use super::layout::{Header, Kind, PREFIX_LEN};
use super::lookup::{Envs, TokenEntry};
use super::{Delta, Snapshot};
use crate::net::Network;
use crate::rate::RateLimit;
use crate::token::TokenHash;

/// A token added or changed by a delta, owned by the overlay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Added {
    id: u64,
    user: Box<str>,
    expires_at: Option<u64>,
    /// Canonical method names, sorted.
    methods: Box<[Box<str>]>,
    networks: Box<[Network]>,
    /// Its environment list in snapshot form; `None` = any.
    envs: Option<Box<str>>,
    /// Those of `methods` that act on one environment (kept only for a token with `envs`).
    env_methods: Box<[Box<str>]>,
    rate_limit: Option<RateLimit>,
}

/// Why a delta does not apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The delta applies to another version than the one held (a gap, or old news).
    #[error(
        "the delta to version {version} applies to version {base}, but this edge holds version {held}"
    )]
    WrongBase {
        /// The version held.
        held: u64,
        /// The delta's base version.
        base: u64,
        /// The delta's version.
        version: u64,
    },
    /// Same base version, another state: a fork (e.g. a publisher restored from a backup).
    #[error(
        "the delta to version {version} applies to another state of version {base} than this edge holds (a fork)"
    )]
    Fork {
        /// The delta's base version.
        base: u64,
        /// The delta's version.
        version: u64,
    },
    /// Not a delta.
    #[error("a full snapshot cannot be applied as a delta")]
    NotADelta,
}

/// One token of a state.
#[derive(Debug, Clone, Copy)]
pub enum StateToken<'a> {
    /// From the full snapshot.
    Base {
        /// The entry.
        entry: TokenEntry<'a>,
        /// The snapshot its scope indices refer to.
        snapshot: &'a Snapshot,
    },
    /// Added or changed by a delta.
    Added(&'a Added),
}

impl StateToken<'_> {
    /// Public token id.
    pub fn id(&self) -> u64 {
        match self {
            Self::Base { entry, .. } => entry.id,
            Self::Added(a) => a.id,
        }
    }

    /// The account it acts for.
    pub fn user(&self) -> &str {
        match self {
            Self::Base { entry, .. } => entry.user,
            Self::Added(a) => &a.user,
        }
    }

    /// Unix seconds from which it is expired; `None` = never.
    pub fn expires_at(&self) -> Option<u64> {
        match self {
            Self::Base { entry, .. } => entry.expires_at,
            Self::Added(a) => a.expires_at,
        }
    }

    /// Is it expired at `now` (Unix seconds)?
    pub fn is_expired(&self, now: u64) -> bool {
        self.expires_at().is_some_and(|at| now >= at)
    }

    /// May it call this method (canonical name)?
    pub fn allows_method(&self, canonical: &str) -> bool {
        match self {
            Self::Base { entry, snapshot } => snapshot
                .method_index(canonical)
                .is_some_and(|index| entry.scope.contains(index)),
            Self::Added(a) => a
                .methods
                .binary_search_by(|m| m.as_ref().cmp(canonical))
                .is_ok(),
        }
    }

    /// Is it limited to some client networks?
    pub fn is_address_limited(&self) -> bool {
        match self {
            Self::Base { entry, .. } => !entry.networks.is_unrestricted(),
            Self::Added(a) => !a.networks.is_empty(),
        }
    }

    /// May it be used from `ip`?
    pub fn allows_address(&self, ip: IpAddr) -> bool {
        match self {
            Self::Base { entry, .. } => entry.networks.allows(ip),
            Self::Added(a) => a.networks.is_empty() || a.networks.iter().any(|n| n.contains(ip)),
        }
    }

    /// The environments it may act on.
    pub fn envs(&self) -> Envs<'_> {
        match self {
            Self::Base { entry, .. } => entry.envs,
            Self::Added(a) => Envs::from_encoded(a.envs.as_deref().map(str::as_bytes)),
        }
    }

    /// Does this method (canonical name, in the token's scope) act on the one environment its
    /// `envName` names? Answered for tokens limited to some environments; `false` otherwise
    /// for a token added by a delta (nobody asks).
    pub fn method_acts_on_env(&self, canonical: &str) -> bool {
        match self {
            Self::Base { snapshot, .. } => snapshot
                .method_index(canonical)
                .is_some_and(|index| snapshot.is_env_method(index)),
            Self::Added(a) => a
                .env_methods
                .binary_search_by(|m| m.as_ref().cmp(canonical))
                .is_ok(),
        }
    }

    /// Its rate limit, if any.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        match self {
            Self::Base { entry, .. } => entry.rate_limit,
            Self::Added(a) => a.rate_limit,
        }
    }

    /// Its method names, sorted (for tools and tests).
    pub fn methods(&self) -> Vec<String> {
        match self {
            Self::Base { entry, snapshot } => entry
                .scope
                .indices()
                .filter_map(|i| snapshot.method_name(i).map(str::to_string))
                .collect(),
            Self::Added(a) => a.methods.iter().map(|m| m.to_string()).collect(),
        }
    }
}

/// Keys come from signed documents, not from clients, so a fixed hasher is safe, and it needs
/// no randomness from the host (the edge's VM may have none to offer).
type Fixed = BuildHasherDefault<DefaultHasher>;

/// A full snapshot and the deltas applied since.
#[derive(Debug)]
pub struct TokenState {
    base: Snapshot,
    /// The header of the latest document applied: version, state id, freshness.
    latest: Header,
    added: HashMap<[u8; PREFIX_LEN], Added, Fixed>,
    /// Prefixes of base tokens the deltas removed.
    removed: HashSet<[u8; PREFIX_LEN], Fixed>,
    count: u64,
}

impl TokenState {
    /// The state a full snapshot describes.
    pub fn new(base: Snapshot) -> Self {
        Self {
            latest: *base.header(),
            count: u64::from(base.token_count()),
            base,
            added: HashMap::default(),
            removed: HashSet::default(),
        }
    }

    /// The version held.
    pub fn version(&self) -> u64 {
        self.latest.version
    }

    /// The state id held.
    pub fn state_id(&self) -> [u8; 32] {
        self.latest.state_id
    }

    /// The header of the latest document applied (its signed times bound the state's
    /// freshness).
    pub fn header(&self) -> &Header {
        &self.latest
    }

    /// The full snapshot underneath.
    pub fn base(&self) -> &Snapshot {
        &self.base
    }

    /// Number of tokens.
    pub fn token_count(&self) -> u64 {
        self.count
    }

    /// Entries in the overlay (added or changed, and removed): how far the state has moved
    /// from its full snapshot.
    pub fn overlay_len(&self) -> usize {
        self.added.len() + self.removed.len()
    }

    /// Heap bytes held: the snapshot, its index and a generous estimate of the overlay.
    pub fn heap_bytes(&self) -> usize {
        self.base.heap_bytes() + self.overlay_len() * 160
    }

    /// Whether a delta with this header applies to this state, checked before its body is
    /// read.
    pub fn check_applies(&self, header: &Header) -> Result<(), ApplyError> {
        if header.kind != Kind::Delta {
            return Err(ApplyError::NotADelta);
        }
        if header.base_version != self.latest.version {
            return Err(ApplyError::WrongBase {
                held: self.latest.version,
                base: header.base_version,
                version: header.version,
            });
        }
        if header.base_state_id != self.latest.state_id {
            return Err(ApplyError::Fork {
                base: header.base_version,
                version: header.version,
            });
        }
        Ok(())
    }

    /// Applies a verified delta; refused (and nothing changes) unless it applies to exactly
    /// this state.
    pub fn apply(&mut self, delta: &Delta) -> Result<(), ApplyError> {
        self.check_applies(delta.header())?;
        for prefix in delta.removed() {
            if self.is_present(&prefix) {
                self.count = self.count.saturating_sub(1);
            }
            self.added.remove(&prefix);
            if self.base.find_prefix(&prefix).is_some() {
                self.removed.insert(prefix);
            }
        }
        for (prefix, entry) in delta.entries() {
            if !self.is_present(&prefix) {
                self.count += 1;
            }
            let mut methods: Vec<Box<str>> = entry
                .scope
                .indices()
                .filter_map(|i| delta.method_name(i).map(Box::from))
                .collect();
            methods.sort();
            let mut env_methods: Vec<Box<str>> = if entry.envs.is_unrestricted() {
                Vec::new()
            } else {
                entry
                    .scope
                    .indices()
                    .filter(|&i| delta.is_env_method(i))
                    .filter_map(|i| delta.method_name(i).map(Box::from))
                    .collect()
            };
            env_methods.sort();
            let added = Added {
                id: entry.id,
                user: entry.user.into(),
                expires_at: entry.expires_at,
                methods: methods.into_boxed_slice(),
                networks: entry.networks.iter().collect(),
                envs: entry.envs.encoded().map(Box::from),
                env_methods: env_methods.into_boxed_slice(),
                rate_limit: entry.rate_limit,
            };
            self.added.insert(prefix, added);
        }
        self.latest = *delta.header();
        Ok(())
    }

    fn is_present(&self, prefix: &[u8; PREFIX_LEN]) -> bool {
        self.added.contains_key(prefix)
            || (!self.removed.contains(prefix) && self.base.find_prefix(prefix).is_some())
    }

    /// Finds the token with this hash: the overlay first, then the full snapshot unless a
    /// delta removed it.
    pub fn find(&self, hash: &TokenHash) -> Option<StateToken<'_>> {
        let prefix = hash.prefix();
        if !self.added.is_empty() || !self.removed.is_empty() {
            if let Some(added) = self.added.get(&prefix) {
                return Some(StateToken::Added(added));
            }
            if self.removed.contains(&prefix) {
                return None;
            }
        }
        self.base
            .find_prefix(&prefix)
            .map(|entry| StateToken::Base {
                entry,
                snapshot: &self.base,
            })
    }
}
