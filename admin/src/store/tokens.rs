//! Tokens: public id, account, description, SHA-256 of the value, scope, dates.
//!
//! Every function that changes a token also counts the change in the token state serial
//! ([`snapshots::bump_state`]), in the caller's transaction: no change can slip past the
//! check that the latest snapshot reflects the committed state.

use pat_core::token::TokenHash;
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::error::{Error, Result};
use crate::store::snapshots;

/// A token row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// Public id.
    pub id: i64,
    /// Account.
    pub user: String,
    /// What it is for.
    pub description: String,
    /// SHA-256 of the value.
    pub hash: TokenHash,
    /// Predefined set it was created from, if any.
    pub scope_set: Option<String>,
    /// Canonical method names.
    pub methods: Vec<String>,
    /// Unix seconds.
    pub created_at: u64,
    /// Exclusive end, Unix seconds; `None` = never.
    pub expires_at: Option<u64>,
    /// Unix seconds of the last regeneration.
    pub regenerated_at: Option<u64>,
}

impl Token {
    /// Expired at `now`?
    pub fn is_expired(&self, now: u64) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }
}

const COLUMNS: &str =
    "id, user, description, hash, scope_set, scope_methods, created_at, expires_at, regenerated_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Token> {
    let hash: Vec<u8> = row.get(3)?;
    let methods: String = row.get(5)?;
    Ok(Token {
        id: row.get(0)?,
        user: row.get(1)?,
        description: row.get(2)?,
        hash: TokenHash(hash.try_into().unwrap_or([0; 32])),
        scope_set: row.get(4)?,
        methods: methods.split_whitespace().map(str::to_string).collect(),
        created_at: row.get::<_, i64>(6)? as u64,
        expires_at: row.get::<_, Option<i64>>(7)?.map(|v| v as u64),
        regenerated_at: row.get::<_, Option<i64>>(8)?.map(|v| v as u64),
    })
}

/// Inserts a token (its `id` is assigned) and returns the id.
pub fn insert(conn: &Connection, token: &Token) -> Result<i64> {
    conn.execute(
        "INSERT INTO tokens (user, description, hash, scope_set, scope_methods, created_at, expires_at, regenerated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            token.user,
            token.description,
            token.hash.0.as_slice(),
            token.scope_set,
            token.methods.join(" "),
            token.created_at as i64,
            token.expires_at.map(|v| v as i64),
            token.regenerated_at.map(|v| v as i64),
        ],
    )?;
    let id = conn.last_insert_rowid();
    snapshots::bump_state(conn)?;
    Ok(id)
}

/// Rewrites every field of an existing token.
pub fn update(conn: &Connection, token: &Token) -> Result<()> {
    conn.execute(
        "UPDATE tokens SET description = ?2, hash = ?3, scope_set = ?4, scope_methods = ?5, expires_at = ?6, regenerated_at = ?7
         WHERE id = ?1",
        params![
            token.id,
            token.description,
            token.hash.0.as_slice(),
            token.scope_set,
            token.methods.join(" "),
            token.expires_at.map(|v| v as i64),
            token.regenerated_at.map(|v| v as i64),
        ],
    )?;
    snapshots::bump_state(conn)?;
    Ok(())
}

/// One token of an account.
pub fn get(conn: &Connection, user: &str, id: i64) -> Result<Option<Token>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM tokens WHERE user = ?1 AND id = ?2"),
            params![user, id],
            from_row,
        )
        .optional()?)
}

/// One token of an account that must exist.
pub fn require(conn: &Connection, user: &str, id: i64) -> Result<Token> {
    get(conn, user, id)?.ok_or_else(|| Error::NoSuchToken {
        user: user.to_string(),
        id,
    })
}

/// An account's tokens, by id.
pub fn list(conn: &Connection, user: &str) -> Result<Vec<Token>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM tokens WHERE user = ?1 ORDER BY id"
    ))?;
    let rows = stmt.query_map([user], from_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Every account's tokens, by account and id.
pub fn list_all(conn: &Connection) -> Result<Vec<Token>> {
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM tokens ORDER BY user, id"))?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// The token whose value hashes to `hash`, if any (`hash` is UNIQUE: an index lookup).
pub fn by_hash(conn: &Connection, hash: &TokenHash) -> Result<Option<Token>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM tokens WHERE hash = ?1"),
            [hash.0.as_slice()],
            from_row,
        )
        .optional()?)
}

/// How many tokens an account has.
pub fn count(conn: &Connection, user: &str) -> Result<u32> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM tokens WHERE user = ?1",
        [user],
        |row| row.get(0),
    )?;
    Ok(n as u32)
}

/// Deletes a token; false if it did not exist.
pub fn delete(conn: &Connection, user: &str, id: i64) -> Result<bool> {
    let deleted = conn.execute(
        "DELETE FROM tokens WHERE user = ?1 AND id = ?2",
        params![user, id],
    )? == 1;
    if deleted {
        snapshots::bump_state(conn)?;
    }
    Ok(deleted)
}

/// How many tokens are not expired at `now`: what a snapshot built now would hold.
pub fn count_active(conn: &Connection, now: u64) -> Result<u64> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM tokens WHERE expires_at IS NULL OR expires_at > ?1",
        [now as i64],
        |row| row.get(0),
    )?;
    Ok(n as u64)
}

/// What a snapshot needs of one token, borrowed from the row being read.
#[derive(Debug, Clone, Copy)]
pub struct Published<'a> {
    /// Public id.
    pub id: i64,
    /// Account.
    pub user: &'a str,
    /// SHA-256 of the value.
    pub hash: &'a [u8],
    /// Canonical method names, space-separated.
    pub methods: &'a str,
    /// Exclusive end, Unix seconds.
    pub expires_at: Option<u64>,
}

/// Calls `each` with the snapshot fields of every token not expired at `now`, straight from
/// the rows being read: a 1,000,000-token publish copies nothing it does not sign.
pub fn for_each_published(
    conn: &Connection,
    now: u64,
    mut each: impl FnMut(Published<'_>) -> Result<()>,
) -> Result<()> {
    let mut stmt = conn.prepare(
        "SELECT id, user, hash, scope_methods, expires_at FROM tokens WHERE expires_at IS NULL OR expires_at > ?1",
    )?;
    let stored = |e: rusqlite::types::FromSqlError| {
        Error::Internal(format!("a stored token has an unexpected value: {e}"))
    };
    let mut rows = stmt.query([now as i64])?;
    while let Some(row) = rows.next()? {
        each(Published {
            id: row.get(0)?,
            user: row.get_ref(1)?.as_str().map_err(stored)?,
            hash: row.get_ref(2)?.as_blob().map_err(stored)?,
            methods: row.get_ref(3)?.as_str().map_err(stored)?,
            expires_at: row.get::<_, Option<i64>>(4)?.map(|v| v as u64),
        })?;
    }
    Ok(())
}
