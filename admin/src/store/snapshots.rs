//! Signed snapshots as published: the last few are kept so `serve` can hand the latest to
//! edges that restart, and `publish --resend` can push it again.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;
use crate::store::settings;

/// How many published snapshots are kept.
const KEEP: i64 = 3;

/// A published snapshot.
#[derive(Debug, Clone)]
pub struct Published {
    /// Version.
    pub version: u64,
    /// Unix seconds.
    pub issued_at: u64,
    /// Signing key id.
    pub key_id: String,
    /// Token count.
    pub tokens: u64,
    /// The signed bytes.
    pub bytes: Vec<u8>,
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

/// Stores a published snapshot and drops the older ones beyond [`KEEP`].
pub fn save(conn: &Connection, published: &Published) -> Result<()> {
    conn.execute(
        "INSERT INTO snapshots (version, issued_at, key_id, tokens, bytes) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            published.version as i64,
            published.issued_at as i64,
            published.key_id,
            published.tokens as i64,
            published.bytes,
        ],
    )?;
    conn.execute(
        "DELETE FROM snapshots WHERE version NOT IN (SELECT version FROM snapshots ORDER BY version DESC LIMIT ?1)",
        [KEEP],
    )?;
    Ok(())
}

/// The latest published snapshot.
pub fn latest(conn: &Connection) -> Result<Option<Published>> {
    Ok(conn
        .query_row(
            "SELECT version, issued_at, key_id, tokens, bytes FROM snapshots ORDER BY version DESC LIMIT 1",
            [],
            |row| {
                Ok(Published {
                    version: row.get::<_, i64>(0)? as u64,
                    issued_at: row.get::<_, i64>(1)? as u64,
                    key_id: row.get(2)?,
                    tokens: row.get::<_, i64>(3)? as u64,
                    bytes: row.get(4)?,
                })
            },
        )
        .optional()?)
}
