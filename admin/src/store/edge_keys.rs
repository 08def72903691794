//! The edges' own Ed25519 keys, which sign their usage reports: the public key only (the
//! secret is written once to the file `edge key generate` was given, for the edge's
//! `PAT_EDGE_KEY`, and never kept here).

use crate::store::db::{Connection, OptionalExtension, Row, params};
use pat_core::keys::{PublicKey, TrustedKeys};
use serde::Serialize;

use crate::error::{Error, Result};

/// An edge key row.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct EdgeKey {
    /// Key id (hex).
    pub id: String,
    /// The edge it belongs to (unique, any case).
    pub name: String,
    /// `ed25519:<base64url>`.
    pub public_key: String,
    /// Unix seconds.
    pub created_at: u64,
    /// The last usage report accepted from it, Unix seconds.
    pub last_report_at: Option<u64>,
}

fn from_row(row: &Row) -> crate::store::db::Result<EdgeKey> {
    Ok(EdgeKey {
        id: row.get(0)?,
        name: row.get(1)?,
        public_key: row.get(2)?,
        created_at: row.get::<_, i64>(3)? as u64,
        last_report_at: row.get::<_, Option<i64>>(4)?.map(|v| v as u64),
    })
}

const COLUMNS: &str = "id, name, public_key, created_at, last_report_at";

/// Registers a key; refuses a name (any case) or key that is already registered.
pub fn add(conn: &Connection, key: &EdgeKey) -> Result<()> {
    let taken: Option<String> = conn
        .query_row(
            "SELECT name FROM edge_keys WHERE name = ?1 COLLATE NOCASE OR id = ?2",
            params![key.name, key.id],
            |row| row.get(0),
        )
        .optional()?;
    if let Some(name) = taken {
        return Err(Error::Refused(format!(
            "an edge key named {name} is already registered; choose another name, or remove it first (pat-admin edge key list)"
        )));
    }
    conn.execute(
        "INSERT INTO edge_keys (id, name, public_key, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![key.id, key.name, key.public_key, key.created_at as i64],
    )?;
    Ok(())
}

/// Every key, oldest first.
pub fn list(conn: &Connection) -> Result<Vec<EdgeKey>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM edge_keys ORDER BY created_at, rowid"
    ))?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Removes a key by id; the removed row, or `None` if there was none.
pub fn remove(conn: &Connection, id: &str) -> Result<Option<EdgeKey>> {
    Ok(conn
        .query_row(
            &format!("DELETE FROM edge_keys WHERE id = ?1 RETURNING {COLUMNS}"),
            [id],
            from_row,
        )
        .optional()?)
}

/// The registered keys, as the set usage reports are verified against.
pub fn trusted(conn: &Connection) -> Result<TrustedKeys> {
    let keys = list(conn)?
        .iter()
        .map(|k| {
            k.public_key.parse::<PublicKey>().map_err(|e| {
                Error::Internal(format!("edge key {} is stored unreadable: {e}", k.id))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(TrustedKeys::new(keys))
}

/// Notes that a report signed by key `id` was accepted at `at`.
pub fn touch(conn: &Connection, id: &str, at: u64) -> Result<()> {
    conn.execute(
        "UPDATE edge_keys SET last_report_at = ?2 WHERE id = ?1",
        params![id, at as i64],
    )?;
    Ok(())
}
