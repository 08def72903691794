//! Building and signing documents from the store, with the active key, the next version and
//! a signed expiry (`snapshot-lifetime` after its issue): a **delta** on top of the latest
//! document whenever it can be, a **full snapshot** otherwise, and **compactions** (a full
//! snapshot of the state a delta reached, at that delta's version) in the background. The
//! signed bytes are kept in the store for `serve`, `publish` and `publish --resend`.
//!
//! **What the origin serves is what was committed.** Every token change builds and stores
//! its document in the change's own transaction ([`after_change`]) when a signing key is
//! active, so a process killed after the commit cannot leave a revoked token live at edges
//! that fetch. The document is a delta: the tokens the change added or changed, the hashes
//! it removed, and the tokens of the state before that have expired since (see
//! [`crate::store::snapshots::record_change`]; `tokens.in_state` marks the tokens the latest
//! document's state holds): the state it leads to is the tokens not expired at its issue
//! time, as a full snapshot built then would hold, and its `state_tokens` is their count. A
//! full snapshot is built instead when there is no document
//! yet, when another key became active, or when the latest document is no usable base (it
//! has expired: the edges that held it have dropped it; or the state serial moved by more
//! than the changes recorded since: the store was changed behind pat-admin's back).
//!
//! A document records the token state serial it was built from, so [`why_new`] can tell,
//! from metadata alone, whether the latest one still reflects the committed state, is
//! signed by the active key, and is fresh enough; [`current`] (`publish`) and
//! [`resign_if_needed`] (`serve`) build a new one only then, each in one write transaction,
//! so concurrent processes never hand out the same version. Re-signing when due is an
//! empty delta (280 bytes at any size: a new version, a new expiry).
//!
//! **Compaction** ([`compact_if_due`], by `serve`'s background thread and by `publish`):
//! when the chain of deltas since the latest full snapshot holds more than
//! [`COMPACT_AFTER_DELTAS`] deltas, or more bytes than an eighth of that full snapshot (and at
//! least [`COMPACT_MIN_BYTES`]), or that full snapshot is older than a quarter of the
//! lifetime, a full snapshot of the latest delta's state is built at its version (its state
//! id, so the chain goes on from it) and stored next to it. It is built in a read
//! transaction — a million tokens take a second or two to read and sign, and token changes
//! go on meanwhile — and stored in a short write transaction; older documents are then
//! pruned ([`crate::store::snapshots::prune`]).

use std::collections::{HashMap, HashSet};
use std::fmt;

use crate::store::db::{Connection, Location};
use crate::store::sealed::Sealer;
use pat_core::env::EnvList;
use pat_core::keys::SigningKey;
use pat_core::method::MethodName;
use pat_core::net::Network;
use pat_core::rate::RateLimit;
use pat_core::snapshot::{Base, Kind, SnapshotBuilder, StateOf, TokenSpec};
use pat_core::token::TokenHash;

use crate::catalogue::Catalogue;
use crate::error::{Error, Result};
use crate::expiry::rfc3339;
use crate::store::snapshots::{self, Published, Stamp, kind_word};
use crate::store::{Store, audit, keys, settings, tokens};

/// A chain of more deltas than this since the latest full snapshot is compacted: an edge
/// that starts from nothing applies the full snapshot and at most this many deltas (each
/// in time proportional to its size), and a serving VM replays as many from shared data
/// after a crash.
pub const COMPACT_AFTER_DELTAS: u64 = 256;
/// A chain of deltas larger than the latest full snapshot divided by this is compacted: an
/// edge keeps the deltas' tokens in an overlay that costs about four times their bytes, so
/// this bounds that overlay to half the full snapshot (about 20 bytes per token on top of
/// the full snapshot's 40), and a catch-up from the full snapshot stays within 1.125 times
/// its size.
pub const COMPACT_BYTES_DIVISOR: u64 = 8;
/// Below this many bytes of deltas the size rule does not apply (a small store would
/// otherwise compact after every change, for no gain).
pub const COMPACT_MIN_BYTES: u64 = 64 * 1024;

/// Why a new document is (or was) built instead of using the latest one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No document was stored yet.
    First,
    /// A token change was committed.
    TokenChange,
    /// Token changes were committed since the latest document without one being built (no
    /// signing key was active then).
    StateMoved {
        /// The serial the latest document was built from.
        from: u64,
        /// The committed serial.
        to: u64,
    },
    /// The latest document was signed by a key that is no longer the active one.
    KeyChanged,
    /// The latest document has lived a quarter of its lifetime: re-signed long before edges
    /// would drop it.
    Due {
        /// Its age, seconds.
        age: u64,
        /// The lifetime it is measured against, seconds.
        lifetime: u64,
    },
    /// A token in the latest state has expired since it was built (`publish` only: edges
    /// deny it anyway).
    TokenExpired,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::First => write!(f, "first snapshot"),
            Self::TokenChange => write!(f, "token change"),
            Self::StateMoved { from, to } => {
                write!(f, "token changes without a snapshot (state {from} -> {to})")
            }
            Self::KeyChanged => write!(f, "another signing key is active"),
            Self::Due { age, lifetime } => write!(
                f,
                "re-sign due: {} old, a quarter of its {} lifetime passed",
                crate::duration::text(*age),
                crate::duration::text(*lifetime)
            ),
            Self::TokenExpired => write!(f, "a token in it expired"),
        }
    }
}

/// Why the chain since the latest full snapshot is compacted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compaction {
    /// More than [`COMPACT_AFTER_DELTAS`] deltas.
    Long {
        /// Deltas since the full snapshot.
        deltas: u64,
    },
    /// More bytes than the full snapshot over [`COMPACT_BYTES_DIVISOR`].
    Large {
        /// Bytes of the deltas.
        bytes: u64,
        /// Bytes of the full snapshot.
        full: u64,
    },
    /// The full snapshot is older than a quarter of the lifetime.
    Old {
        /// Its age, seconds.
        age: u64,
        /// The lifetime, seconds.
        lifetime: u64,
    },
}

impl fmt::Display for Compaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Long { deltas } => write!(
                f,
                "{deltas} deltas since the full snapshot (more than {COMPACT_AFTER_DELTAS})"
            ),
            Self::Large { bytes, full } => write!(
                f,
                "{bytes} bytes of deltas since the full snapshot, more than 1/{COMPACT_BYTES_DIVISOR} of its {full}"
            ),
            Self::Old { age, lifetime } => write!(
                f,
                "the full snapshot is {} old, a quarter of its {} lifetime",
                crate::duration::text(*age),
                crate::duration::text(*lifetime)
            ),
        }
    }
}

/// When a document is due for re-signing (Unix seconds): a quarter of its lifetime after its
/// issue, measured against the shorter of its own lifetime and the configured one (so a
/// shortened setting takes effect without waiting out the old lifetime).
pub fn resign_at(stamp: &Stamp, lifetime: u64) -> u64 {
    let own = stamp.expires_at.saturating_sub(stamp.issued_at);
    stamp.issued_at.saturating_add(own.min(lifetime) / 4)
}

/// Whether a new document is needed, from metadata alone: `None` when `latest` reflects the
/// committed token state `serial`, was signed by `active_key`, and is not due for
/// re-signing at `now`. With no document yet, `first` says whether to build one anyway
/// (`publish`) or only once a token change was committed (`serve`).
pub fn why_new(
    latest: Option<&Stamp>,
    serial: u64,
    active_key: &str,
    lifetime: u64,
    now: u64,
    first: bool,
) -> Option<Reason> {
    let Some(latest) = latest else {
        return if serial > 0 {
            Some(Reason::StateMoved {
                from: 0,
                to: serial,
            })
        } else {
            first.then_some(Reason::First)
        };
    };
    if latest.state_serial != serial {
        return Some(Reason::StateMoved {
            from: latest.state_serial,
            to: serial,
        });
    }
    if latest.key_id != active_key {
        return Some(Reason::KeyChanged);
    }
    if now >= resign_at(latest, lifetime) {
        let own = latest.expires_at.saturating_sub(latest.issued_at);
        return Some(Reason::Due {
            age: now.saturating_sub(latest.issued_at),
            lifetime: own.min(lifetime),
        });
    }
    None
}

/// Reads a key's private key (from its file, or sealed in the store) and checks it is that
/// key.
fn load_secret(location: &Location, key: &keys::Key) -> Result<SigningKey> {
    let signing = |message: String| Error::Signing {
        key: key.id.clone(),
        message,
    };
    let (text, source) = match (&key.sealed, location.dir()) {
        (Some(sealed), _) => (
            Sealer::from_env()
                .and_then(|sealer| sealer.open(&key.id, sealed))
                .map_err(|e| signing(e.to_string()))?,
            "the sealed key".to_string(),
        ),
        (None, Some(dir)) => {
            let path = dir.join(&key.file);
            let text = zeroize::Zeroizing::new(
                std::fs::read_to_string(&path)
                    .map_err(|e| signing(format!("cannot read {}: {e}", path.display())))?,
            );
            (text, path.display().to_string())
        }
        (None, None) => {
            return Err(signing(format!(
                "the store at {location} has no key file for it and no sealed key"
            )));
        }
    };
    let secret =
        SigningKey::from_secret_text(&text).map_err(|e| signing(format!("{source}: {e}")))?;
    if secret.public_key().to_string() != key.public_key {
        return Err(signing(format!(
            "{source} holds another key than {}",
            key.id
        )));
    }
    Ok(secret)
}

/// The active key, or the refusal to publish without one.
fn require_active(conn: &Connection) -> Result<keys::Key> {
    keys::active(conn)?.ok_or_else(|| {
        Error::Refused("no signing key: create one with pat-admin key generate".into())
    })
}

fn build_error(e: pat_core::snapshot::BuildError) -> Error {
    Error::Internal(format!("cannot build the snapshot: {e}"))
}

/// Adds stored records to a builder, parsing each distinct scope, network list,
/// environment list and rate limit once (they repeat across tokens). A token without a rate
/// limit of its own gets the `default-rate-limit` setting's (read once per document).
struct Adder {
    parsed: HashMap<String, Vec<MethodName>>,
    networks: HashMap<String, Vec<Network>>,
    envs: HashMap<String, EnvList>,
    rates: HashMap<String, RateLimit>,
    default_rate: Option<RateLimit>,
}

impl Adder {
    /// An adder for a document built now in `tx`; declares the catalogue's methods that act
    /// on one environment to `builder` (edges need them for tokens limited to environments;
    /// only those some scope names are written).
    fn new(tx: &Connection, builder: &mut SnapshotBuilder) -> Result<Self> {
        let catalogue = Catalogue::builtin().map_err(Error::Internal)?;
        builder.env_methods(catalogue.env_methods().cloned());
        Ok(Self {
            parsed: HashMap::new(),
            networks: HashMap::new(),
            envs: HashMap::new(),
            rates: HashMap::new(),
            default_rate: crate::settings::DEFAULT_RATE_LIMIT.get(tx)?,
        })
    }

    fn add(&mut self, builder: &mut SnapshotBuilder, t: &tokens::Published<'_>) -> Result<()> {
        if !self.parsed.contains_key(t.methods) {
            let methods = t
                .methods
                .split_whitespace()
                .map(MethodName::parse)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    Error::Internal(format!("token {} has an invalid stored scope: {e}", t.id))
                })?;
            self.parsed.insert(t.methods.to_string(), methods);
        }
        if !t.networks.is_empty() && !self.networks.contains_key(t.networks) {
            let networks = tokens::parse_networks(t.networks).map_err(|e| {
                Error::Internal(format!(
                    "token {} has an invalid stored network list: {e}",
                    t.id
                ))
            })?;
            self.networks.insert(t.networks.to_string(), networks);
        }
        let scope = self
            .parsed
            .get(t.methods)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let networks = self
            .networks
            .get(t.networks)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if !t.envs.is_empty() && !self.envs.contains_key(t.envs) {
            let list = tokens::parse_envs(t.envs).ok().flatten().ok_or_else(|| {
                Error::Internal(format!(
                    "token {} has an invalid stored environment list",
                    t.id
                ))
            })?;
            self.envs.insert(t.envs.to_string(), list);
        }
        if !t.rate_limit.is_empty() && !self.rates.contains_key(t.rate_limit) {
            let rate = t.rate_limit.parse::<RateLimit>().map_err(|e| {
                Error::Internal(format!(
                    "token {} has an invalid stored rate limit: {e}",
                    t.id
                ))
            })?;
            self.rates.insert(t.rate_limit.to_string(), rate);
        }
        let envs = self.envs.get(t.envs);
        let rate_limit = if t.rate_limit.is_empty() {
            self.default_rate
        } else {
            self.rates.get(t.rate_limit).copied()
        };
        builder
            .add(TokenSpec {
                hash: stored_hash(t.id, t.hash)?,
                id: t.id as u64,
                user: t.user,
                expires_at: t.expires_at,
                scope,
                networks,
                envs,
                rate_limit,
            })
            .map_err(build_error)
    }
}

fn stored_hash(id: i64, bytes: &[u8]) -> Result<TokenHash> {
    Ok(TokenHash(bytes.try_into().map_err(|_| {
        Error::Internal(format!("token {id} has a stored hash of the wrong size"))
    })?))
}

fn active_at(expires_at: Option<u64>, at: u64) -> bool {
    expires_at.is_none_or(|end| end > at)
}

/// Which tokens a full snapshot holds.
#[derive(Debug, Clone, Copy)]
enum Holding {
    /// Those not expired at this instant (a new chain).
    ActiveAt(u64),
    /// Those in the latest document's state (a compaction).
    LatestState,
}

/// A full snapshot of `holding`, signed with `stamp`, and its token count.
fn full_body(
    tx: &Connection,
    secret: &SigningKey,
    holding: Holding,
    stamp: pat_core::snapshot::Stamp,
    state: StateOf,
) -> Result<(pat_core::snapshot::Built, u64)> {
    let mut builder = SnapshotBuilder::new();
    let mut adder = Adder::new(tx, &mut builder)?;
    match holding {
        Holding::ActiveAt(at) => {
            tokens::for_each_published(tx, at, |t| adder.add(&mut builder, &t))?;
        }
        Holding::LatestState => {
            tokens::for_each_in_state(tx, |t| adder.add(&mut builder, &t))?;
        }
    }
    let count = builder.len() as u64;
    let built = builder.build(stamp, state, secret).map_err(build_error)?;
    Ok((built, count))
}

/// The latest document as a base for a delta signed by `key` at `at`, or why it is not one.
/// `serial` is the committed state serial and `pending` the changes recorded since the
/// latest document: a delta carries exactly those, so when the serial moved by more (the
/// store was changed without them being recorded), only a full snapshot is right.
fn usable_base(
    latest: Option<Stamp>,
    key: &keys::Key,
    at: u64,
    serial: u64,
    pending: u64,
) -> std::result::Result<Stamp, &'static str> {
    match latest {
        None => Err("no document yet"),
        Some(l) if l.key_id != key.id => Err("another key is active"),
        Some(l) if l.expires_at <= at => Err("the latest document has expired"),
        Some(l) if serial < l.state_serial || serial - l.state_serial != pending => {
            Err("token changes were made that the store did not record: a full snapshot")
        }
        Some(l) => Ok(l),
    }
}

/// Inside a write transaction: builds, signs with `key` and stores the next document — a
/// delta on top of the latest document when that is a usable base, else a full snapshot
/// that starts a new chain — and records it in the audit log with `why`.
pub fn build_in(
    tx: &Connection,
    location: &Location,
    key: &keys::Key,
    why: &str,
) -> Result<Published> {
    let at = tx.now();
    let base = usable_base(
        snapshots::latest_stamp(tx)?,
        key,
        at,
        snapshots::state_serial(tx)?,
        snapshots::pending_count(tx)?,
    );
    match base {
        Ok(base) => build_delta_in(tx, location, key, &base, why),
        Err(no_base) => build_full_in(tx, location, key, &format!("{why}; {no_base}")),
    }
}

/// Inside a write transaction: a full snapshot of the tokens not expired now, at a new
/// version, starting a new chain.
fn build_full_in(
    tx: &Connection,
    location: &Location,
    key: &keys::Key,
    why: &str,
) -> Result<Published> {
    let secret = load_secret(location, key)?;
    let issued_at = tx.now();
    let lifetime = settings::snapshot_lifetime(tx)?;
    let state_serial = snapshots::state_serial(tx)?;
    let version = snapshots::next_version(tx)?;
    let stamp = pat_core::snapshot::Stamp::lasting(version, issued_at, lifetime);
    let (built, count) = full_body(
        tx,
        &secret,
        Holding::ActiveAt(issued_at),
        stamp,
        StateOf::Genesis,
    )?;
    tokens::set_state_active_at(tx, issued_at)?;
    let published = Published {
        stamp: Stamp {
            version,
            kind: Kind::Full,
            base_version: None,
            chain: version,
            state_id: built.state_id,
            issued_at,
            expires_at: stamp.expires_at,
            key_id: key.id.clone(),
            state_serial,
            tokens: count,
            len: built.bytes.len() as u64,
        },
        bytes: built.bytes,
    };
    store(tx, &published, why, "full snapshot")?;
    Ok(published)
}

/// Stores a document built in this transaction, forgets the changes it took in, prunes,
/// and audits it.
fn store(tx: &Connection, published: &Published, why: &str, what: &str) -> Result<()> {
    snapshots::save(tx, published)?;
    snapshots::clear_changes(tx)?;
    snapshots::prune(tx)?;
    let s = &published.stamp;
    audit::record(
        tx,
        None,
        "snapshot.build",
        None,
        &format!(
            "version {}, {what}, {} tokens, {} bytes, key {}, expires {}: {why}",
            s.version,
            s.tokens,
            s.len,
            s.key_id,
            rfc3339(s.expires_at)
        ),
    )
}

/// Inside a write transaction: a delta on top of `base` (the latest document) carrying the
/// changes recorded since and the tokens that expired since.
fn build_delta_in(
    tx: &Connection,
    location: &Location,
    key: &keys::Key,
    base: &Stamp,
    why: &str,
) -> Result<Published> {
    let secret = load_secret(location, key)?;
    // The base's state is the tokens not expired at its issue: never go back from there.
    let at = tx.now().max(base.issued_at);
    let lifetime = settings::snapshot_lifetime(tx)?;
    let state_serial = snapshots::state_serial(tx)?;
    let version = snapshots::next_version(tx)?;
    let (changed, dead) = snapshots::pending_changes(tx)?;
    let mut builder = SnapshotBuilder::new();
    let mut adder = Adder::new(tx, &mut builder)?;
    let mut added: HashSet<[u8; 16]> = HashSet::new();
    let mut removed: HashSet<[u8; 16]> = HashSet::new();
    let mut remove = |builder: &mut SnapshotBuilder, hash: TokenHash| {
        if removed.insert(hash.prefix()) {
            builder.remove(&hash);
        }
    };
    // The changed tokens' records as they are now (the current value, and a previous one in
    // its grace window): added (or replaced) when active, else removed.
    let mut now_in_state = Vec::new();
    for &id in &changed {
        tokens::for_one_published(tx, id, |t| {
            let hash = stored_hash(t.id, t.hash)?;
            let active = active_at(t.expires_at, at);
            if active {
                adder.add(&mut builder, &t)?;
                added.insert(hash.prefix());
            } else {
                remove(&mut builder, hash);
            }
            now_in_state.push((t.id, t.old, active));
            Ok(())
        })?;
    }
    for (id, old, active) in now_in_state {
        tokens::set_in_state(tx, id, old, active)?;
    }
    // Values that died: deleted tokens, regenerated tokens' old values (at once, or when a
    // later regeneration or a removal ended their grace window).
    for old in &dead {
        let hash = stored_hash(0, old)?;
        if !added.contains(&hash.prefix()) {
            remove(&mut builder, hash);
        }
    }
    // Records of unchanged tokens that were in the base's state and have expired since (a
    // previous value whose grace window ended among them).
    let changed: HashSet<i64> = changed.into_iter().collect();
    tokens::for_each_expired_in_state(tx, at, |t| {
        if !changed.contains(&t.id) {
            remove(&mut builder, stored_hash(t.id, t.hash)?);
        }
        Ok(())
    })?;
    tokens::leave_state_expired(tx, at)?;
    let (adds, removes) = (builder.len(), builder.removed());
    let count = tokens::count_in_state(tx)?;
    let state_tokens = u32::try_from(count)
        .map_err(|_| Error::Internal("too many tokens for one snapshot".into()))?;
    let stamp = pat_core::snapshot::Stamp::lasting(version, at, lifetime);
    let built = builder
        .build_delta(
            stamp,
            Base {
                version: base.version,
                state_id: base.state_id,
            },
            state_tokens,
            &secret,
        )
        .map_err(build_error)?;
    let published = Published {
        stamp: Stamp {
            version,
            kind: Kind::Delta,
            base_version: Some(base.version),
            chain: base.chain,
            state_id: built.state_id,
            issued_at: at,
            expires_at: stamp.expires_at,
            key_id: key.id.clone(),
            state_serial,
            tokens: count,
            len: built.bytes.len() as u64,
        },
        bytes: built.bytes,
    };
    store(
        tx,
        &published,
        why,
        &format!(
            "delta on version {} ({adds} added or changed, {removes} removed)",
            base.version
        ),
    )?;
    Ok(published)
}

/// At the end of a token change's transaction: the document of the new state (a delta on
/// the latest one, or a full snapshot when there is no usable base), built and stored in the
/// same transaction, or `None` when no signing key is active (`serve` or `publish` signs it
/// once one is).
pub fn after_change(tx: &Connection, location: &Location) -> Result<Option<Published>> {
    match keys::active(tx)? {
        Some(key) => build_in(tx, location, &key, &Reason::TokenChange.to_string()).map(Some),
        None => Ok(None),
    }
}

/// At the end of a change that moves every token's record at once (`config set
/// default-rate-limit`), whose caller moved the state serial without recording each token:
/// a full snapshot of the new state, built and stored in the same transaction, or `None`
/// when no signing key is active (`serve` or `publish` signs one once one is: the serial
/// moved by more than the changes recorded, so theirs is a full snapshot too).
pub fn full_after_change(
    tx: &Connection,
    location: &Location,
    why: &str,
) -> Result<Option<Published>> {
    match keys::active(tx)? {
        Some(key) => build_full_in(tx, location, &key, why).map(Some),
        None => Ok(None),
    }
}

/// For `publish`: the latest document when it reflects the committed state, was signed by
/// the active key, is not due for re-signing and none of its tokens expired since;
/// otherwise a new one. Returns it with the reason a new one was built (`None`: reused).
pub fn current(store: &mut Store) -> Result<(Published, Option<Reason>)> {
    let dir = store.location().clone();
    store.write(|tx| {
        let key = require_active(tx)?;
        let at = tx.now();
        let latest = snapshots::latest_stamp(tx)?;
        let reason = match why_new(
            latest.as_ref(),
            snapshots::state_serial(tx)?,
            &key.id,
            settings::snapshot_lifetime(tx)?,
            at,
            true,
        ) {
            Some(reason) => Some(reason),
            // Same serial, so the same token rows: fewer active ones means some expired.
            None if Some(tokens::count_active(tx, at)?) != latest.as_ref().map(|l| l.tokens) => {
                Some(Reason::TokenExpired)
            }
            None => None,
        };
        match reason {
            Some(reason) => Ok((
                build_in(tx, &dir, &key, &format!("publish: {reason}"))?,
                Some(reason),
            )),
            None => {
                let latest = snapshots::latest(tx)?.ok_or_else(|| Error::Store {
                    store: dir.clone(),
                    message: "the latest snapshot vanished inside a transaction".into(),
                })?;
                Ok((latest, None))
            }
        }
    })
}

/// For `serve`: builds and stores a new document when the latest is due for re-signing (an
/// empty delta), the committed state moved without one, or another key is active. A cheap
/// read (metadata, no bytes) decides; the write transaction decides again, so a concurrent
/// re-sign by another process is not repeated. Returns what was built and why; `None` when
/// nothing was needed (or no key is active).
pub fn resign_if_needed(store: &mut Store) -> Result<Option<(Stamp, Reason)>> {
    fn check(conn: &Connection) -> Result<Option<(keys::Key, Reason)>> {
        let Some(key) = keys::active(conn)? else {
            return Ok(None);
        };
        let reason = why_new(
            snapshots::latest_stamp(conn)?.as_ref(),
            snapshots::state_serial(conn)?,
            &key.id,
            settings::snapshot_lifetime(conn)?,
            conn.now(),
            false,
        );
        Ok(reason.map(|r| (key, r)))
    }
    if store.read(check)?.is_none() {
        return Ok(None);
    }
    let dir = store.location().clone();
    store.write(|tx| match check(tx)? {
        Some((key, reason)) => {
            let built = build_in(tx, &dir, &key, &format!("serve: {reason}"))?;
            Ok(Some((built.stamp, reason)))
        }
        None => Ok(None),
    })
}

/// Whether the chain since the latest full snapshot is due for compaction at `at`: the
/// latest document (a delta, signed by the active key `key_id`, fresh, reflecting the
/// committed state) and why. `None` when the latest document is a full snapshot or already
/// compacted, when changes are pending (a delta comes first) or the next document is a new
/// chain anyway.
pub fn compaction_due(
    conn: &Connection,
    key_id: &str,
    at: u64,
) -> Result<Option<(Stamp, Compaction)>> {
    let (Some(latest), Some(full)) = (
        snapshots::latest_stamp(conn)?,
        snapshots::latest_full_stamp(conn)?,
    ) else {
        return Ok(None);
    };
    if full.version >= latest.version
        || latest.kind != Kind::Delta
        || latest.chain != full.chain
        || latest.key_id != key_id
        || latest.expires_at <= at
        || latest.state_serial != snapshots::state_serial(conn)?
    {
        return Ok(None);
    }
    let (deltas, bytes) = snapshots::chain_after(conn, full.version)?;
    let lifetime = settings::snapshot_lifetime(conn)?;
    let why = if deltas > COMPACT_AFTER_DELTAS {
        Compaction::Long { deltas }
    } else if bytes > COMPACT_MIN_BYTES && bytes > full.len / COMPACT_BYTES_DIVISOR {
        Compaction::Large {
            bytes,
            full: full.len,
        }
    } else if at >= resign_at(&full, lifetime) {
        Compaction::Old {
            age: at.saturating_sub(full.issued_at),
            lifetime: lifetime.min(full.expires_at.saturating_sub(full.issued_at)),
        }
    } else {
        return Ok(None);
    };
    Ok(Some((latest, why)))
}

/// Compacts the chain when [`compaction_due`] says so: the full snapshot of the latest
/// delta's state (the tokens not expired at its issue), at its version and with its state
/// id, signed now. Built in a read transaction (token changes go on meanwhile), stored in a
/// short write transaction that checks the delta is still there and not compacted by
/// another process; then older documents are pruned. Returns the full snapshot's stamp and
/// why.
pub fn compact_if_due(store: &mut Store) -> Result<Option<(Stamp, Compaction)>> {
    let dir = store.location().clone();
    let built = store.read(|tx| {
        let Some(key) = keys::active(tx)? else {
            return Ok(None);
        };
        let issued_at = tx.now();
        let Some((latest, why)) = compaction_due(tx, &key.id, issued_at)? else {
            return Ok(None);
        };
        let secret = load_secret(&dir, &key)?;
        let lifetime = settings::snapshot_lifetime(tx)?;
        let stamp = pat_core::snapshot::Stamp::lasting(latest.version, issued_at, lifetime);
        let (built, count) = full_body(
            tx,
            &secret,
            Holding::LatestState,
            stamp,
            StateOf::Chain(latest.state_id),
        )?;
        if count != latest.tokens {
            return Err(Error::Internal(format!(
                "the compaction of version {} holds {count} tokens, the delta says {}",
                latest.version, latest.tokens
            )));
        }
        let full = Published {
            stamp: Stamp {
                version: latest.version,
                kind: Kind::Full,
                base_version: None,
                chain: latest.chain,
                state_id: latest.state_id,
                issued_at,
                expires_at: stamp.expires_at,
                key_id: key.id.clone(),
                state_serial: latest.state_serial,
                tokens: count,
                len: built.bytes.len() as u64,
            },
            bytes: built.bytes,
        };
        Ok(Some((full, latest, why)))
    })?;
    let Some((full, delta, why)) = built else {
        return Ok(None);
    };
    store.write(|tx| {
        let still = snapshots::head_of(tx, delta.version, Kind::Delta)?.is_some()
            && snapshots::head_of(tx, delta.version, Kind::Full)?.is_none()
            && snapshots::latest_full_stamp(tx)?.is_some_and(|f| f.chain == delta.chain);
        if !still {
            return Ok(None);
        }
        snapshots::save(tx, &full)?;
        snapshots::prune(tx)?;
        audit::record(
            tx,
            None,
            "snapshot.compact",
            None,
            &format!(
                "version {}, {} of {} tokens, {} bytes, key {}, expires {}: {why}",
                full.stamp.version,
                kind_word(Kind::Full),
                full.stamp.tokens,
                full.stamp.len,
                full.stamp.key_id,
                rfc3339(full.stamp.expires_at)
            ),
        )?;
        Ok(Some((full.stamp.clone(), why)))
    })
}

/// Builds, signs and stores a new full snapshot of the active tokens (a new chain) in its
/// own transaction, whatever the latest document is (benchmarks; the commands use
/// [`current`]).
pub fn build(store: &mut Store) -> Result<Published> {
    let dir = store.location().clone();
    store.write(|tx| {
        let key = require_active(tx)?;
        build_full_in(tx, &dir, &key, "build")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(issued_at: u64, expires_at: u64) -> Stamp {
        Stamp {
            version: 4,
            kind: Kind::Delta,
            base_version: Some(3),
            chain: 1,
            state_id: [0; 32],
            issued_at,
            expires_at,
            key_id: "k1".into(),
            state_serial: 7,
            tokens: 2,
            len: 280,
        }
    }

    #[test]
    fn a_snapshot_is_reused_only_while_it_reflects_the_state_key_and_time() {
        let s = stamp(1_000, 1_000 + 3_600);
        assert_eq!(why_new(Some(&s), 7, "k1", 3_600, 1_000, true), None);
        assert_eq!(why_new(Some(&s), 7, "k1", 3_600, 1_899, true), None);
        assert_eq!(
            why_new(Some(&s), 7, "k1", 3_600, 1_900, true),
            Some(Reason::Due {
                age: 900,
                lifetime: 3_600
            }),
            "a quarter of the lifetime"
        );
        assert_eq!(
            why_new(Some(&s), 8, "k1", 3_600, 1_000, true),
            Some(Reason::StateMoved { from: 7, to: 8 })
        );
        assert_eq!(
            why_new(Some(&s), 7, "k2", 3_600, 1_000, true),
            Some(Reason::KeyChanged)
        );
        // A shortened setting counts at once; a longer one waits for the snapshot's own.
        assert_eq!(
            why_new(Some(&s), 7, "k1", 60, 1_015, true),
            Some(Reason::Due {
                age: 15,
                lifetime: 60
            })
        );
        assert_eq!(why_new(Some(&s), 7, "k1", 86_400, 1_899, true), None);
        // Clock behind the issue time: not due, no underflow.
        assert_eq!(why_new(Some(&s), 7, "k1", 3_600, 10, true), None);
    }

    #[test]
    fn without_a_snapshot_serve_waits_for_a_change_and_publish_does_not() {
        assert_eq!(why_new(None, 0, "k1", 3_600, 0, true), Some(Reason::First));
        assert_eq!(why_new(None, 0, "k1", 3_600, 0, false), None);
        assert_eq!(
            why_new(None, 3, "k1", 3_600, 0, false),
            Some(Reason::StateMoved { from: 0, to: 3 })
        );
        assert_eq!(
            why_new(None, 3, "k1", 3_600, 0, true),
            Some(Reason::StateMoved { from: 0, to: 3 })
        );
    }

    #[test]
    fn a_delta_needs_a_fresh_base_signed_by_the_active_key() {
        let key = keys::Key {
            id: "k1".into(),
            public_key: String::new(),
            file: String::new(),
            sealed: None,
            created_at: 0,
            active: true,
        };
        let s = stamp(1_000, 2_000);
        // Built from serial 7: two recorded changes since, serial 9.
        assert_eq!(
            usable_base(Some(s.clone()), &key, 1_999, 9, 2),
            Ok(s.clone())
        );
        assert_eq!(
            usable_base(Some(s.clone()), &key, 1_999, 7, 0),
            Ok(s.clone())
        );
        assert!(
            usable_base(Some(s.clone()), &key, 1_999, 9, 1).is_err(),
            "a change was not recorded"
        );
        assert!(
            usable_base(Some(s.clone()), &key, 1_999, 6, 0).is_err(),
            "went back"
        );
        assert!(
            usable_base(Some(s.clone()), &key, 2_000, 7, 0).is_err(),
            "expired"
        );
        assert!(usable_base(None, &key, 0, 0, 0).is_err());
        let other = keys::Key {
            id: "k2".into(),
            ..key
        };
        assert!(usable_base(Some(s), &other, 1_500, 7, 0).is_err());
    }
}
