//! Building and signing the snapshot from the store: every token not expired now, signed by
//! the active key, with the next version and a signed expiry (`snapshot-lifetime` after its
//! issue). The signed bytes are kept in the store for `serve`, `publish` and
//! `publish --resend`.
//!
//! **What the origin serves is what was committed.** Every token change builds and stores
//! its snapshot in the change's own transaction ([`after_change`]) when a signing key is
//! active, so a process killed after the commit cannot leave a revoked token in the snapshot
//! edges fetch. A snapshot records the token state serial it was built from, so
//! [`why_new`] can tell, from metadata alone, whether the latest one still reflects the
//! committed state, is signed by the active key, and is fresh enough; [`current`]
//! (`publish`) and [`resign_if_needed`] (`serve`) build a new one only then, each in one
//! write transaction, so concurrent processes never hand out the same version.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use pat_core::keys::SigningKey;
use pat_core::method::MethodName;
use pat_core::snapshot::{SnapshotBuilder, TokenSpec};
use pat_core::token::TokenHash;
use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::expiry::rfc3339;
use crate::store::snapshots::{self, Published, Stamp};
use crate::store::{Store, audit, keys, now, settings, tokens};

/// Why a new snapshot is (or was) built instead of using the latest one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No snapshot was stored yet.
    First,
    /// A token change was committed.
    TokenChange,
    /// Token changes were committed since the latest snapshot without one being built (no
    /// signing key was active then).
    StateMoved {
        /// The serial the latest snapshot was built from.
        from: u64,
        /// The committed serial.
        to: u64,
    },
    /// The latest snapshot was signed by a key that is no longer the active one.
    KeyChanged,
    /// The latest snapshot has lived a quarter of its lifetime: re-signed long before edges
    /// would drop it.
    Due {
        /// Its age, seconds.
        age: u64,
        /// The lifetime it is measured against, seconds.
        lifetime: u64,
    },
    /// A token in the latest snapshot has expired since it was built (`publish` only: edges
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

/// When a snapshot is due for re-signing (Unix seconds): a quarter of its lifetime after its
/// issue, measured against the shorter of its own lifetime and the configured one (so a
/// shortened setting takes effect without waiting out the old lifetime).
pub fn resign_at(stamp: &Stamp, lifetime: u64) -> u64 {
    let own = stamp.expires_at.saturating_sub(stamp.issued_at);
    stamp.issued_at.saturating_add(own.min(lifetime) / 4)
}

/// Whether a new snapshot is needed, from metadata alone: `None` when `latest` reflects the
/// committed token state `serial`, was signed by `active_key`, and is not due for
/// re-signing at `now`. With no snapshot yet, `first` says whether to build one anyway
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

/// Reads a key's private key from its file and checks it is that key.
fn load_secret(store_dir: &Path, key: &keys::Key) -> Result<SigningKey> {
    let path = store_dir.join(&key.file);
    let signing = |message: String| Error::Signing {
        key: key.id.clone(),
        message,
    };
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(&path)
            .map_err(|e| signing(format!("cannot read {}: {e}", path.display())))?,
    );
    let secret = SigningKey::from_secret_text(&text)
        .map_err(|e| signing(format!("{}: {e}", path.display())))?;
    if secret.public_key().to_string() != key.public_key {
        return Err(signing(format!(
            "{} holds another key than {}",
            path.display(),
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

/// Inside a write transaction: builds, signs with `key` and stores a new snapshot of the
/// tokens not expired now, and records it in the audit log with `why`.
pub fn build_in(
    tx: &Connection,
    store_dir: &Path,
    key: &keys::Key,
    why: &str,
) -> Result<Published> {
    let secret = load_secret(store_dir, key)?;
    let issued_at = now();
    let lifetime = settings::snapshot_lifetime(tx)?;
    let state_serial = snapshots::state_serial(tx)?;
    let version = snapshots::next_version(tx)?;
    let mut builder = SnapshotBuilder::new();
    // Scopes repeat across tokens: parse each distinct list once.
    let mut parsed: HashMap<String, Vec<MethodName>> = HashMap::new();
    tokens::for_each_published(tx, issued_at, |t| {
        if !parsed.contains_key(t.methods) {
            let methods = t
                .methods
                .split_whitespace()
                .map(MethodName::parse)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    Error::Internal(format!("token {} has an invalid stored scope: {e}", t.id))
                })?;
            parsed.insert(t.methods.to_string(), methods);
        }
        let scope = parsed.get(t.methods).map(Vec::as_slice).unwrap_or_default();
        let hash = TokenHash(t.hash.try_into().map_err(|_| {
            Error::Internal(format!(
                "token {} has a stored hash of the wrong size",
                t.id
            ))
        })?);
        builder
            .add(TokenSpec {
                hash,
                id: t.id as u64,
                user: t.user,
                expires_at: t.expires_at,
                scope,
                networks: &[],
            })
            .map_err(|e| Error::Internal(format!("cannot build the snapshot: {e}")))
    })?;
    let count = builder.len() as u64;
    let stamp = pat_core::snapshot::Stamp::lasting(version, issued_at, lifetime);
    let bytes = builder
        .build(stamp, pat_core::snapshot::StateOf::Genesis, &secret)
        .map_err(|e| Error::Internal(format!("cannot build the snapshot: {e}")))?
        .bytes;
    let published = Published {
        stamp: Stamp {
            version,
            issued_at,
            expires_at: stamp.expires_at,
            key_id: key.id.clone(),
            state_serial,
            tokens: count,
        },
        bytes,
    };
    snapshots::save(tx, &published)?;
    audit::record(
        tx,
        None,
        "snapshot.build",
        None,
        &format!(
            "version {version}, {count} tokens, key {}, expires {}: {why}",
            key.id,
            rfc3339(stamp.expires_at)
        ),
    )?;
    Ok(published)
}

/// At the end of a token change's transaction: the snapshot of the new state, built and
/// stored in the same transaction, or `None` when no signing key is active (`serve` or
/// `publish` signs it once one is).
pub fn after_change(tx: &Connection, store_dir: &Path) -> Result<Option<Published>> {
    match keys::active(tx)? {
        Some(key) => build_in(tx, store_dir, &key, &Reason::TokenChange.to_string()).map(Some),
        None => Ok(None),
    }
}

/// For `publish`: the latest snapshot when it reflects the committed state, was signed by
/// the active key, is not due for re-signing and none of its tokens expired since;
/// otherwise a new one. Returns it with the reason a new one was built (`None`: reused).
pub fn current(store: &mut Store) -> Result<(Published, Option<Reason>)> {
    let dir = store.dir().to_path_buf();
    store.write(|tx| {
        let key = require_active(tx)?;
        let at = now();
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
                    dir: dir.clone(),
                    message: "the latest snapshot vanished inside a transaction".into(),
                })?;
                Ok((latest, None))
            }
        }
    })
}

/// For `serve`: builds and stores a new snapshot when the latest is due for re-signing, the
/// committed state moved without one, or another key is active. A cheap read (metadata, no
/// bytes) decides; the write transaction decides again, so a concurrent re-sign by another
/// process is not repeated. Returns what was built and why; `None` when nothing was needed
/// (or no key is active).
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
            now(),
            false,
        );
        Ok(reason.map(|r| (key, r)))
    }
    if store.read(|tx| check(tx))?.is_none() {
        return Ok(None);
    }
    let dir = store.dir().to_path_buf();
    store.write(|tx| match check(tx)? {
        Some((key, reason)) => {
            let built = build_in(tx, &dir, &key, &format!("serve: {reason}"))?;
            Ok(Some((built.stamp, reason)))
        }
        None => Ok(None),
    })
}

/// Builds, signs and stores a new snapshot of the active tokens in its own transaction,
/// whatever the latest one is (benchmarks; the commands use [`current`]).
pub fn build(store: &mut Store) -> Result<Published> {
    let dir = store.dir().to_path_buf();
    store.write(|tx| {
        let key = require_active(tx)?;
        build_in(tx, &dir, &key, "build")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(issued_at: u64, expires_at: u64) -> Stamp {
        Stamp {
            version: 4,
            issued_at,
            expires_at,
            key_id: "k1".into(),
            state_serial: 7,
            tokens: 2,
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
}
