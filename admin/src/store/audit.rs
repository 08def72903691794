//! The audit log: who changed what, when. Never a token value or a password.

use crate::store::db::{Connection, params};
use serde::Serialize;

use crate::error::Result;

/// One audit entry.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Sequence number.
    pub id: i64,
    /// Unix seconds.
    pub at: u64,
    /// The OS user who ran pat-admin, or `api <client address>`.
    pub actor: String,
    /// The account concerned, if any.
    pub account: Option<String>,
    /// What happened (`token.generate`, `user.passwd`, `publish`...).
    pub action: String,
    /// The token concerned, if any.
    pub token_id: Option<i64>,
    /// Details (scope, expiry, versions...).
    pub detail: String,
}

/// The OS user running this process, for the audit log: `$USER`/`$LOGNAME`, else the uid.
pub fn actor() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|name| !name.is_empty())
        .or_else(|| {
            let status = std::fs::read_to_string("/proc/self/status").ok()?;
            let uid = status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))?
                .split_whitespace()
                .next()?
                .to_string();
            Some(format!("uid {uid}"))
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Records an entry by the OS user running this process ([`actor`]).
pub fn record(
    conn: &Connection,
    account: Option<&str>,
    action: &str,
    token_id: Option<i64>,
    detail: &str,
) -> Result<()> {
    record_by(conn, &actor(), account, action, token_id, detail)
}

/// Records an entry by `actor` (the OS user, or `api <client address>`).
pub fn record_by(
    conn: &Connection,
    actor: &str,
    account: Option<&str>,
    action: &str,
    token_id: Option<i64>,
    detail: &str,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO audit (at, actor, account, action, token_id, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![conn.now() as i64, actor, account, action, token_id, detail])?;
    Ok(())
}

/// The most recent entries, newest first, optionally for one account.
pub fn list(conn: &Connection, account: Option<&str>, limit: u32) -> Result<Vec<Entry>> {
    let mut stmt = conn.prepare(
        "SELECT id, at, actor, account, action, token_id, detail FROM audit
         WHERE CAST(?1 AS TEXT) IS NULL OR account = ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![account, limit], |row| {
        Ok(Entry {
            id: row.get(0)?,
            at: row.get::<_, i64>(1)? as u64,
            actor: row.get(2)?,
            account: row.get(3)?,
            action: row.get(4)?,
            token_id: row.get(5)?,
            detail: row.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}
