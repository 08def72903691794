//! Signing keys: the public key and where the private key is: the file `keys/<id>.key`
//! (`0600`, created exclusively) of a SQLite store, or sealed in the store
//! ([`crate::store::sealed`]) on PostgreSQL. One key is active: it signs new snapshots.

use crate::store::db::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use crate::error::{Error, Result};

/// A signing key row.
#[derive(Debug, Clone, Serialize)]
pub struct Key {
    /// Key id (hex).
    pub id: String,
    /// `ed25519:<base64url>`: what the edges trust.
    pub public_key: String,
    /// Private key file, relative to the store directory (empty when sealed).
    #[serde(skip)]
    pub file: String,
    /// The private key sealed in the store, when it is not in a file.
    #[serde(skip)]
    pub sealed: Option<Vec<u8>>,
    /// Unix seconds.
    pub created_at: u64,
    /// Signs new snapshots.
    pub active: bool,
}

fn from_row(row: &Row) -> crate::store::db::Result<Key> {
    Ok(Key {
        id: row.get(0)?,
        public_key: row.get(1)?,
        file: row.get(2)?,
        created_at: row.get::<_, i64>(3)? as u64,
        active: row.get::<_, i64>(4)? != 0,
        sealed: row.get(5)?,
    })
}

/// Adds a key; when `key.active`, it becomes the active one.
pub fn add(conn: &Connection, key: &Key) -> Result<()> {
    if key.active {
        conn.execute("UPDATE signing_keys SET active = 0", [])?;
    }
    conn.execute(
        "INSERT INTO signing_keys (id, public_key, file, created_at, active, sealed) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            key.id,
            key.public_key,
            key.file,
            key.created_at as i64,
            i64::from(key.active),
            key.sealed
        ],
    )?;
    Ok(())
}

/// Every key, oldest first.
pub fn list(conn: &Connection) -> Result<Vec<Key>> {
    let mut stmt = conn.prepare(
        "SELECT id, public_key, file, created_at, active, sealed FROM signing_keys ORDER BY created_at, rowid",
    )?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// The active key, if any.
pub fn active(conn: &Connection) -> Result<Option<Key>> {
    Ok(conn
        .query_row(
            "SELECT id, public_key, file, created_at, active, sealed FROM signing_keys WHERE active = 1",
            [],
            from_row,
        )
        .optional()?)
}

/// Makes `id` the active key.
pub fn activate(conn: &Connection, id: &str) -> Result<()> {
    let exists: bool = conn.query_row(
        "SELECT count(*) FROM signing_keys WHERE id = ?1",
        [id],
        |row| row.get::<_, i64>(0).map(|n| n > 0),
    )?;
    if !exists {
        return Err(Error::NoSuchKey(id.to_string()));
    }
    conn.execute(
        "UPDATE signing_keys SET active = CASE WHEN id = ?1 THEN 1 ELSE 0 END",
        [id],
    )?;
    Ok(())
}
