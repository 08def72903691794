//! The edges `publish` pushes to when none are named.

use crate::store::db::{Connection, params};

use crate::error::{Error, Result};

/// Adds an edge; refuses a duplicate.
pub fn add(conn: &Connection, url: &str, now: u64) -> Result<()> {
    let inserted = conn.execute(
        "INSERT INTO edges (url, added_at) VALUES (?1, ?2) ON CONFLICT (url) DO NOTHING",
        params![url, now as i64],
    )?;
    if inserted == 0 {
        return Err(Error::Refused(format!("edge {url} is already configured")));
    }
    Ok(())
}

/// Removes an edge; false if it was not configured.
pub fn remove(conn: &Connection, url: &str) -> Result<bool> {
    Ok(conn.execute("DELETE FROM edges WHERE url = ?1", [url])? == 1)
}

/// The configured edges.
pub fn list(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT url FROM edges ORDER BY url")?;
    let rows = stmt.query_map([], |row| row.get(0))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}
