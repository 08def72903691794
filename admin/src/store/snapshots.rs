//! Signed documents as stored: full snapshots and deltas, keyed by `(version, kind)` — a
//! compaction is a full snapshot at the version of the delta whose state it sums up. The
//! latest document is what `publish` pushes and what `serve`'s head announces; the latest
//! full snapshot and the deltas after it are what an edge that holds nothing fetches; older
//! deltas are kept while a catch-up made of them is smaller than that (see [`prune`]).
//!
//! Also the token state serial (`meta.state_serial`): incremented in the same transaction as
//! every token change (see [`super::tokens`]), which also records what changed in
//! `token_changes` ([`record_change`]). A document records the serial it was built from, so
//! whether the latest one reflects the committed state is one comparison, and the next delta
//! is built from the changes recorded since.

use crate::store::db::{Connection, OptionalExtension, Row, params};
use pat_core::snapshot::Kind;

use crate::error::{Error, Result};
use crate::store::settings;

/// Deltas up to the latest full snapshot are kept at most this many (besides the size
/// bound of [`prune`]).
pub const MAX_OLD_DELTAS: usize = 1024;

/// A stored document, with its signed bytes.
#[derive(Debug, Clone)]
pub struct Published {
    /// What it says about itself.
    pub stamp: Stamp,
    /// The signed bytes.
    pub bytes: Vec<u8>,
}

/// A stored document's metadata: what the re-signing and compaction checks read (never the
/// bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    /// Version.
    pub version: u64,
    /// Full snapshot or delta.
    pub kind: Kind,
    /// A delta: the version it applies to.
    pub base_version: Option<u64>,
    /// The version of the full snapshot that started its chain.
    pub chain: u64,
    /// The state id after it.
    pub state_id: [u8; 32],
    /// Unix seconds.
    pub issued_at: u64,
    /// Signed expiry, Unix seconds.
    pub expires_at: u64,
    /// Signing key id.
    pub key_id: String,
    /// The token state serial it was built from.
    pub state_serial: u64,
    /// Tokens in the state after it.
    pub tokens: u64,
    /// Its length in bytes.
    pub len: u64,
}

/// `full` or `delta`, as stored and shown.
pub fn kind_word(kind: Kind) -> &'static str {
    match kind {
        Kind::Full => "full",
        Kind::Delta => "delta",
    }
}

fn kind_of(word: &str) -> crate::store::db::Result<Kind> {
    match word {
        "full" => Ok(Kind::Full),
        "delta" => Ok(Kind::Delta),
        other => Err(crate::store::db::DbError::Conversion {
            column: 1,
            message: format!("unknown document kind {other:?}"),
        }),
    }
}

/// Reserves the next version (strictly above every version handed out before).
pub fn next_version(conn: &Connection) -> Result<u64> {
    let last = last_version(conn)?;
    let next = last + 1;
    settings::set(conn, settings::LAST_VERSION, &next.to_string())?;
    Ok(next)
}

/// The last version handed out (0: none).
pub fn last_version(conn: &Connection) -> Result<u64> {
    Ok(settings::get(conn, settings::LAST_VERSION)?
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0))
}

/// The token state serial: how many token changes were committed.
pub fn state_serial(conn: &Connection) -> Result<u64> {
    Ok(settings::get(conn, settings::STATE_SERIAL)?
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0))
}

/// Counts a token change (call inside the change's transaction). One cached statement: a
/// 1,000,000-token import pays little for it.
pub fn bump_state(conn: &Connection) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, '1')
         ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(meta.value AS BIGINT) + 1 AS TEXT)",
    )?
    .execute([settings::STATE_SERIAL])?;
    Ok(())
}

/// Records that token `token_id` was inserted, changed or deleted, with the hash that stops
/// being valid (`old_hash`: a deleted or regenerated token's), and counts the change
/// ([`bump_state`]); inside the change's transaction. The next document takes these in.
pub fn record_change(conn: &Connection, token_id: i64, old_hash: Option<&[u8]>) -> Result<()> {
    conn.prepare_cached("INSERT INTO token_changes (token_id, old_hash) VALUES (?1, ?2)")?
        .execute(params![token_id, old_hash])?;
    bump_state(conn)
}

/// The changes recorded since the last document: the tokens concerned, and the hashes that
/// stopped being valid.
pub fn pending_changes(conn: &Connection) -> Result<(Vec<i64>, Vec<Vec<u8>>)> {
    let mut ids: Vec<i64> = conn
        .prepare("SELECT DISTINCT token_id FROM token_changes")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    ids.sort_unstable();
    let hashes: Vec<Vec<u8>> = conn
        .prepare("SELECT DISTINCT old_hash FROM token_changes WHERE old_hash IS NOT NULL")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    Ok((ids, hashes))
}

/// How many changes were recorded since the last document.
pub fn pending_count(conn: &Connection) -> Result<u64> {
    Ok(
        conn.query_row("SELECT count(*) FROM token_changes", [], |row| {
            row.get::<_, i64>(0)
        })? as u64,
    )
}

/// Forgets the recorded changes: a document now includes them.
pub fn clear_changes(conn: &Connection) -> Result<()> {
    conn.execute("DELETE FROM token_changes", [])?;
    Ok(())
}

/// Stores a document (the caller prunes: [`prune`]).
pub fn save(conn: &Connection, published: &Published) -> Result<()> {
    let s = &published.stamp;
    let head = published
        .bytes
        .get(..pat_core::snapshot::BODY_OFFSET)
        .unwrap_or(&published.bytes);
    conn.execute(
        "INSERT INTO snapshots (version, kind, base_version, chain, state_id, issued_at, expires_at, key_id, state_serial, tokens, len, head, bytes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            s.version as i64,
            kind_word(s.kind),
            s.base_version.map(|v| v as i64),
            s.chain as i64,
            s.state_id.as_slice(),
            s.issued_at as i64,
            s.expires_at as i64,
            s.key_id,
            s.state_serial as i64,
            s.tokens as i64,
            published.bytes.len() as i64,
            head,
            published.bytes,
        ],
    )?;
    Ok(())
}

const STAMP: &str = "version, kind, base_version, chain, state_id, issued_at, expires_at, key_id, state_serial, tokens, len";

fn stamp(row: &Row) -> crate::store::db::Result<Stamp> {
    let kind: String = row.get(1)?;
    let state_id: Vec<u8> = row.get(4)?;
    Ok(Stamp {
        version: row.get::<_, i64>(0)? as u64,
        kind: kind_of(&kind)?,
        base_version: row.get::<_, Option<i64>>(2)?.map(|v| v as u64),
        chain: row.get::<_, i64>(3)? as u64,
        state_id: state_id.try_into().unwrap_or([0; 32]),
        issued_at: row.get::<_, i64>(5)? as u64,
        expires_at: row.get::<_, i64>(6)? as u64,
        key_id: row.get(7)?,
        state_serial: row.get::<_, i64>(8)? as u64,
        tokens: row.get::<_, i64>(9)? as u64,
        len: row.get::<_, i64>(10)? as u64,
    })
}

/// The order that puts the latest document first: the highest version and, at that version,
/// the delta that moved the chain there rather than a compaction of it (the delta is what
/// edges were pushed and what their freshness follows).
const LATEST_FIRST: &str = "ORDER BY version DESC, kind = 'delta' DESC LIMIT 1";

/// The latest document's metadata, without its bytes.
pub fn latest_stamp(conn: &Connection) -> Result<Option<Stamp>> {
    Ok(conn
        .query_row(
            &format!("SELECT {STAMP} FROM snapshots {LATEST_FIRST}"),
            [],
            stamp,
        )
        .optional()?)
}

/// The latest document.
pub fn latest(conn: &Connection) -> Result<Option<Published>> {
    Ok(conn
        .query_row(
            &format!("SELECT {STAMP}, bytes FROM snapshots {LATEST_FIRST}"),
            [],
            |row| {
                Ok(Published {
                    stamp: stamp(row)?,
                    bytes: row.get(11)?,
                })
            },
        )
        .optional()?)
}

/// The latest document's signed head (its first `BODY_OFFSET` bytes) and version.
pub fn latest_head(conn: &Connection) -> Result<Option<(u64, Vec<u8>)>> {
    Ok(conn
        .query_row(
            &format!("SELECT version, head FROM snapshots {LATEST_FIRST}"),
            [],
            |row| Ok((row.get::<_, i64>(0)? as u64, row.get(1)?)),
        )
        .optional()?)
}

/// The latest full snapshot's metadata.
pub fn latest_full_stamp(conn: &Connection) -> Result<Option<Stamp>> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT {STAMP} FROM snapshots WHERE kind = 'full' ORDER BY version DESC LIMIT 1"
            ),
            [],
            stamp,
        )
        .optional()?)
}

/// The metadata of the deltas with a version above `after`, oldest first, and their signed
/// heads.
pub fn deltas_after(conn: &Connection, after: u64) -> Result<Vec<(Stamp, Vec<u8>)>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {STAMP}, head FROM snapshots WHERE kind = 'delta' AND version > ?1 ORDER BY version"
    ))?;
    let rows = stmt.query_map([after as i64], |row| Ok((stamp(row)?, row.get(11)?)))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// How many deltas follow version `after`, and their bytes.
pub fn chain_after(conn: &Connection, after: u64) -> Result<(u64, u64)> {
    Ok(conn.query_row(
        "SELECT count(*), coalesce(sum(len), 0) FROM snapshots WHERE kind = 'delta' AND version > ?1",
        [after as i64],
        |row| Ok((row.get::<_, i64>(0)? as u64, row.get::<_, i64>(1)? as u64)),
    )?)
}

/// The document `(version, kind)`, with its signed head, if stored.
pub fn head_of(conn: &Connection, version: u64, kind: Kind) -> Result<Option<Vec<u8>>> {
    Ok(conn
        .query_row(
            "SELECT head FROM snapshots WHERE version = ?1 AND kind = ?2",
            params![version as i64, kind_word(kind)],
            |row| row.get(0),
        )
        .optional()?)
}

/// The signed bytes of document `(version, kind)`.
pub fn bytes_of(conn: &Connection, version: u64, kind: Kind) -> Result<Vec<u8>> {
    conn.prepare_cached("SELECT bytes FROM snapshots WHERE version = ?1 AND kind = ?2")?
        .query_row(params![version as i64, kind_word(kind)], |row| row.get(0))
        .optional()?
        .ok_or_else(|| {
            Error::Internal(format!(
                "the {} document of version {version} is no longer stored",
                kind_word(kind)
            ))
        })
}

/// Drops the documents nobody can use any more, keeping:
///
/// - the latest full snapshot and every delta after it (what an edge that holds nothing
///   fetches);
/// - before it, the most recent deltas of the same chain while together they are smaller
///   than the latest full snapshot, and at most [`MAX_OLD_DELTAS`] of them: an edge that
///   lags behind the latest full snapshot catches up with them only while that is cheaper
///   than the full answer, so a longer chain would never be served.
///
/// Older full snapshots and other chains' documents (before a new key or a lost base started
/// a new chain) go. Returns how many documents were dropped.
pub fn prune(conn: &Connection) -> Result<usize> {
    let Some(full) = latest_full_stamp(conn)? else {
        return Ok(0);
    };
    let mut dropped = conn.execute(
        "DELETE FROM snapshots WHERE chain != ?1 OR (kind = 'full' AND version < ?2)",
        params![full.chain as i64, full.version as i64],
    )?;
    let older: Vec<(u64, u64)> = conn
        .prepare_cached(
            "SELECT version, len FROM snapshots WHERE kind = 'delta' AND version <= ?1 ORDER BY version DESC",
        )?
        .query_map([full.version as i64], |row| {
            Ok((row.get::<_, i64>(0)? as u64, row.get::<_, i64>(1)? as u64))
        })?
        .collect::<Result<_, _>>()?;
    let mut sum = 0u64;
    let mut cutoff = None;
    for (kept, &(version, len)) in older.iter().enumerate() {
        sum = sum.saturating_add(len);
        if sum >= full.len || kept >= MAX_OLD_DELTAS {
            cutoff = Some(version);
            break;
        }
    }
    if let Some(cutoff) = cutoff {
        dropped += conn.execute(
            "DELETE FROM snapshots WHERE kind = 'delta' AND version <= ?1",
            [cutoff as i64],
        )?;
    }
    Ok(dropped)
}
