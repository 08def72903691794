//! Settings kept in the `meta` table.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;

/// Maximum tokens per account (default: the platform's limit from the catalogue).
pub const MAX_TOKENS: &str = "max_tokens_per_account";
/// Maximum token lifetime in days (absent: tokens may have no expiry).
pub const MAX_LIFETIME_DAYS: &str = "max_lifetime_days";
/// The last snapshot version handed out.
pub const LAST_VERSION: &str = "last_version";

/// Reads a setting.
pub fn get(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| {
            row.get(0)
        })
        .optional()?)
}

/// Writes a setting.
pub fn set(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

/// Removes a setting.
pub fn unset(conn: &Connection, key: &str) -> Result<()> {
    conn.execute("DELETE FROM meta WHERE key = ?1", [key])?;
    Ok(())
}

/// A numeric setting, if set and valid.
pub fn get_u32(conn: &Connection, key: &str) -> Result<Option<u32>> {
    Ok(get(conn, key)?.and_then(|v| v.parse().ok()))
}
