//! Accounts: a name and an argon2id password hash, plus a failed-attempt counter that slows
//! down repeated wrong passwords.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::error::{Error, Result};

/// An account row.
#[derive(Debug, Clone)]
pub struct User {
    /// Account name.
    pub name: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Unix seconds.
    pub created_at: u64,
    /// Consecutive wrong passwords.
    pub failed_attempts: u32,
}

/// An account as `user list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Account name.
    pub name: String,
    /// Unix seconds.
    pub created_at: u64,
    /// Its tokens.
    pub tokens: u32,
}

/// Creates an account; refuses an existing name, in any case (`Alice` when `alice` exists).
pub fn add(conn: &Connection, name: &str, password_hash: &str, now: u64) -> Result<()> {
    if let Some(existing) = get(conn, name)? {
        return Err(Error::Refused(if existing.name == name {
            format!("an account named {name} already exists")
        } else {
            format!(
                "an account named {} already exists (account names are case-insensitive)",
                existing.name
            )
        }));
    }
    let inserted = conn.execute(
        "INSERT INTO users (name, password_hash, created_at) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO NOTHING",
        params![name, password_hash, now as i64],
    )?;
    if inserted == 0 {
        return Err(Error::Refused(format!(
            "an account named {name} already exists"
        )));
    }
    Ok(())
}

/// Reads an account by name, in any case; an exact match wins (a store from before names
/// were case-insensitive may hold both `Alice` and `alice`).
pub fn get(conn: &Connection, name: &str) -> Result<Option<User>> {
    Ok(conn
        .query_row(
            "SELECT name, password_hash, created_at, failed_attempts FROM users
             WHERE name = ?1 COLLATE NOCASE ORDER BY name = ?1 DESC LIMIT 1",
            [name],
            |row| {
                Ok(User {
                    name: row.get(0)?,
                    password_hash: row.get(1)?,
                    created_at: row.get::<_, i64>(2)? as u64,
                    failed_attempts: row.get::<_, i64>(3)?.clamp(0, i64::from(u32::MAX)) as u32,
                })
            },
        )
        .optional()?)
}

/// Reads an account that must exist.
pub fn require(conn: &Connection, name: &str) -> Result<User> {
    get(conn, name)?.ok_or_else(|| Error::NoSuchUser(name.to_string()))
}

/// Every account with its token count.
pub fn list(conn: &Connection) -> Result<Vec<Summary>> {
    let mut stmt = conn.prepare(
        "SELECT u.name, u.created_at, (SELECT count(*) FROM tokens t WHERE t.user = u.name) FROM users u ORDER BY u.name",
    )?;
    let rows = stmt.query_map([], |row| {
        Ok(Summary {
            name: row.get(0)?,
            created_at: row.get::<_, i64>(1)? as u64,
            tokens: row.get::<_, i64>(2)? as u32,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Replaces the password hash.
pub fn set_password(conn: &Connection, name: &str, password_hash: &str) -> Result<()> {
    conn.execute(
        "UPDATE users SET password_hash = ?2 WHERE name = ?1",
        params![name, password_hash],
    )?;
    Ok(())
}

/// Counts a wrong password.
pub fn record_failure(conn: &Connection, name: &str, now: u64) -> Result<()> {
    conn.execute(
        "UPDATE users SET failed_attempts = failed_attempts + 1, last_failed_at = ?2 WHERE name = ?1",
        params![name, now as i64],
    )?;
    Ok(())
}

/// Clears the wrong-password counter after a right one.
pub fn reset_failures(conn: &Connection, name: &str) -> Result<()> {
    conn.execute(
        "UPDATE users SET failed_attempts = 0, last_failed_at = NULL WHERE name = ?1 AND failed_attempts != 0",
        [name],
    )?;
    Ok(())
}
