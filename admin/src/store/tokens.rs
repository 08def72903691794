//! Tokens: public id, account, description, SHA-256 of the value, scope, dates.
//!
//! Every function that changes a token also records the change ([`snapshots::record_change`]:
//! the token, and the hash that stops being valid) and counts it in the token state serial,
//! in the caller's transaction: no change can slip past the check that the latest document
//! reflects the committed state, and the next delta knows exactly what to carry.
//!
//! "Last used" ([`merge_use`]) comes from the edges' usage reports; it is not a token change
//! (edges do not need it), so it moves no serial.

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
    /// When an edge last let it through, Unix seconds (usage reports); `None` = never.
    pub last_used_at: Option<u64>,
    /// The client address of that use, if the edge knew it.
    pub last_used_ip: Option<String>,
}

impl Token {
    /// Expired at `now`?
    pub fn is_expired(&self, now: u64) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }
}

const COLUMNS: &str = "id, user, description, hash, scope_set, scope_methods, created_at, expires_at, regenerated_at, last_used_at, last_used_ip";

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
        last_used_at: row.get::<_, Option<i64>>(9)?.map(|v| v as u64),
        last_used_ip: row.get(10)?,
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
    snapshots::record_change(conn, id, None)?;
    Ok(id)
}

/// Rewrites every field of an existing token (except "last used", which only usage reports
/// move).
pub fn update(conn: &Connection, token: &Token) -> Result<()> {
    let old: Option<Vec<u8>> = conn
        .query_row("SELECT hash FROM tokens WHERE id = ?1", [token.id], |row| {
            row.get(0)
        })
        .optional()?;
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
    // A regenerated token's old value dies: the next delta removes its hash.
    let dead = old.filter(|old| old.as_slice() != token.hash.0.as_slice());
    snapshots::record_change(conn, token.id, dead.as_deref())?;
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
    let hash: Option<Vec<u8>> = conn
        .query_row(
            "DELETE FROM tokens WHERE user = ?1 AND id = ?2 RETURNING hash",
            params![user, id],
            |row| row.get(0),
        )
        .optional()?;
    match hash {
        Some(hash) => {
            snapshots::record_change(conn, id, Some(&hash))?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Merges one use an edge reported: `last_used_at` only ever moves forward (to `at`, Unix
/// seconds), and the address goes with the newest use. A token that does not exist (removed,
/// or never here) is ignored. Returns whether anything changed: a replayed or older report
/// changes nothing.
pub fn merge_use(conn: &Connection, id: i64, at: u64, ip: Option<&str>) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "UPDATE tokens SET last_used_at = ?2, last_used_ip = ?3
             WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)",
        )?
        .execute(params![id, at as i64, ip])?
        == 1)
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
    each: impl FnMut(Published<'_>) -> Result<()>,
) -> Result<()> {
    for_each_where(
        conn,
        "expires_at IS NULL OR expires_at > ?1",
        params![now as i64],
        each,
    )
}

/// Calls `each` with the snapshot fields of token `id` if it exists (expired or not).
pub fn for_one_published(
    conn: &Connection,
    id: i64,
    each: impl FnMut(Published<'_>) -> Result<()>,
) -> Result<()> {
    for_each_where(conn, "id = ?1", params![id], each)
}

/// Calls `each` with the snapshot fields of every token in the latest document's state
/// (`in_state`; expired since or not).
pub fn for_each_in_state(
    conn: &Connection,
    each: impl FnMut(Published<'_>) -> Result<()>,
) -> Result<()> {
    for_each_where(conn, "in_state = 1", params![], each)
}

/// Calls `each` with the snapshot fields of every token in the latest document's state that
/// is expired at `at` (Unix seconds): what the next delta removes besides the changes.
pub fn for_each_expired_in_state(
    conn: &Connection,
    at: u64,
    each: impl FnMut(Published<'_>) -> Result<()>,
) -> Result<()> {
    for_each_where(
        conn,
        "in_state = 1 AND expires_at <= ?1",
        params![at as i64],
        each,
    )
}

/// How many tokens the latest document's state holds.
pub fn count_in_state(conn: &Connection) -> Result<u64> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM tokens WHERE in_state = 1",
        [],
        |row| row.get(0),
    )?;
    Ok(n as u64)
}

/// Marks whether token `id` is in the state of the document being built.
pub fn set_in_state(conn: &Connection, id: i64, in_state: bool) -> Result<()> {
    conn.prepare_cached("UPDATE tokens SET in_state = ?2 WHERE id = ?1 AND in_state != ?2")?
        .execute(params![id, i64::from(in_state)])?;
    Ok(())
}

/// Marks the tokens in the state that are expired at `at` as no longer in it.
pub fn leave_state_expired(conn: &Connection, at: u64) -> Result<()> {
    conn.execute(
        "UPDATE tokens SET in_state = 0 WHERE in_state = 1 AND expires_at <= ?1",
        [at as i64],
    )?;
    Ok(())
}

/// Marks exactly the tokens not expired at `at` as in the state (a full snapshot built at
/// `at` holds them).
pub fn set_state_active_at(conn: &Connection, at: u64) -> Result<()> {
    conn.execute(
        "UPDATE tokens SET in_state = 1 - in_state
         WHERE in_state != (CASE WHEN expires_at IS NULL OR expires_at > ?1 THEN 1 ELSE 0 END)",
        [at as i64],
    )?;
    Ok(())
}

fn for_each_where(
    conn: &Connection,
    condition: &str,
    args: impl rusqlite::Params,
    mut each: impl FnMut(Published<'_>) -> Result<()>,
) -> Result<()> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT id, user, hash, scope_methods, expires_at FROM tokens WHERE {condition}"
    ))?;
    let stored = |e: rusqlite::types::FromSqlError| {
        Error::Internal(format!("a stored token has an unexpected value: {e}"))
    };
    let mut rows = stmt.query(args)?;
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
