//! Signed snapshots as stored: the latest is what `serve` hands to edges, what `publish`
//! pushes when nothing changed, and what `publish --resend` pushes again; the last few are
//! kept.
//!
//! Also the token state serial (`meta.state_serial`): incremented in the same transaction as
//! every token change (see [`super::tokens`]). A snapshot records the serial it was built
//! from, so whether the latest snapshot reflects the committed state is one comparison.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;
use crate::store::settings;

/// How many snapshots are kept.
const KEEP: i64 = 3;

/// A stored snapshot, with its signed bytes.
#[derive(Debug, Clone)]
pub struct Published {
    /// What it says about itself.
    pub stamp: Stamp,
    /// The signed bytes.
    pub bytes: Vec<u8>,
}

/// A stored snapshot's metadata: what the re-signing checks read (never the bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    /// Version.
    pub version: u64,
    /// Unix seconds.
    pub issued_at: u64,
    /// Signed expiry, Unix seconds.
    pub expires_at: u64,
    /// Signing key id.
    pub key_id: String,
    /// The token state serial it was built from.
    pub state_serial: u64,
    /// Token count.
    pub tokens: u64,
}

/// Reserves the next version (strictly above every version handed out before).
pub fn next_version(conn: &Connection) -> Result<u64> {
    let last = settings::get(conn, settings::LAST_VERSION)?
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let next = last + 1;
    settings::set(conn, settings::LAST_VERSION, &next.to_string())?;
    Ok(next)
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
         ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)",
    )?
    .execute([settings::STATE_SERIAL])?;
    Ok(())
}

/// Stores a snapshot and drops the older ones beyond [`KEEP`].
pub fn save(conn: &Connection, published: &Published) -> Result<()> {
    let s = &published.stamp;
    let head = published
        .bytes
        .get(..pat_core::snapshot::BODY_OFFSET)
        .unwrap_or(&published.bytes);
    conn.execute(
        "INSERT INTO snapshots (version, issued_at, expires_at, key_id, state_serial, tokens, head, bytes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            s.version as i64,
            s.issued_at as i64,
            s.expires_at as i64,
            s.key_id,
            s.state_serial as i64,
            s.tokens as i64,
            head,
            published.bytes,
        ],
    )?;
    conn.execute(
        "DELETE FROM snapshots WHERE version NOT IN (SELECT version FROM snapshots ORDER BY version DESC LIMIT ?1)",
        [KEEP],
    )?;
    Ok(())
}

const STAMP: &str = "version, issued_at, expires_at, key_id, state_serial, tokens";

fn stamp(row: &rusqlite::Row<'_>) -> rusqlite::Result<Stamp> {
    Ok(Stamp {
        version: row.get::<_, i64>(0)? as u64,
        issued_at: row.get::<_, i64>(1)? as u64,
        expires_at: row.get::<_, i64>(2)? as u64,
        key_id: row.get(3)?,
        state_serial: row.get::<_, i64>(4)? as u64,
        tokens: row.get::<_, i64>(5)? as u64,
    })
}

/// The latest snapshot's metadata, without its bytes.
pub fn latest_stamp(conn: &Connection) -> Result<Option<Stamp>> {
    Ok(conn
        .query_row(
            &format!("SELECT {STAMP} FROM snapshots ORDER BY version DESC LIMIT 1"),
            [],
            stamp,
        )
        .optional()?)
}

/// The latest snapshot.
pub fn latest(conn: &Connection) -> Result<Option<Published>> {
    Ok(conn
        .query_row(
            &format!("SELECT {STAMP}, bytes FROM snapshots ORDER BY version DESC LIMIT 1"),
            [],
            |row| {
                Ok(Published {
                    stamp: stamp(row)?,
                    bytes: row.get(6)?,
                })
            },
        )
        .optional()?)
}

/// The latest snapshot's signed head (its first `BODY_OFFSET` bytes) and version.
pub fn latest_head(conn: &Connection) -> Result<Option<(u64, Vec<u8>)>> {
    Ok(conn
        .query_row(
            "SELECT version, head FROM snapshots ORDER BY version DESC LIMIT 1",
            [],
            |row| Ok((row.get::<_, i64>(0)? as u64, row.get(1)?)),
        )
        .optional()?)
}
