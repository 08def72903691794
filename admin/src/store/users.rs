//! Accounts: a name and an argon2id password hash, plus a failed-attempt counter that slows
//! down repeated wrong passwords.
//!
//! A *platform account* (platform mode) is keyed by the platform's uid and named
//! `uid:<uid>` (a name no local account can have: `:` is not allowed in them); it keeps the
//! email the platform last gave, has no password here (the platform checks it), and its
//! tokens carry [`User::identity`] to the edges (the uid or the email). Any account may be
//! *disabled* (by the operator, or because the platform said it is suspended): its tokens
//! stay in the store but leave every document until it is enabled.

use crate::store::db::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use crate::error::{Error, Result};

/// An account row.
#[derive(Debug, Clone)]
pub struct User {
    /// Account name (`uid:<uid>` for a platform account).
    pub name: String,
    /// argon2id PHC string (empty for a platform account: the platform checks its password).
    pub password_hash: String,
    /// Unix seconds.
    pub created_at: u64,
    /// Consecutive wrong passwords.
    pub failed_attempts: u32,
    /// The platform's uid, for a platform account.
    pub platform_uid: Option<i64>,
    /// A platform account's email, as the platform last said.
    pub email: Option<String>,
    /// What edges forward for its tokens when it is not the name.
    pub identity: Option<String>,
    /// Set while the account is disabled.
    pub disabled: Option<Disabled>,
}

impl User {
    /// What edges forward for this account's tokens (`x-pat-user`).
    pub fn edge_identity(&self) -> &str {
        self.identity.as_deref().unwrap_or(&self.name)
    }

    /// The name, and the email of a platform account: `uid:7 (alice@example.com)`.
    pub fn display(&self) -> String {
        match &self.email {
            Some(email) => format!("{} ({email})", self.name),
            None => self.name.clone(),
        }
    }
}

/// Why and since when an account is disabled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disabled {
    /// Unix seconds.
    pub at: u64,
    /// Who disabled it.
    pub by: DisabledBy,
    /// What they said.
    pub reason: String,
}

/// Who disabled an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DisabledBy {
    /// `pat-admin user disable`: only `pat-admin user enable` enables it.
    Operator,
    /// The platform said the account is suspended: enabled again when it says it is enabled.
    Platform,
}

impl DisabledBy {
    fn as_str(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::Platform => "platform",
        }
    }
}

/// The name of the platform account with uid `uid`.
pub fn platform_name(uid: i64) -> String {
    format!("uid:{uid}")
}

const COLUMNS: &str = "name, password_hash, created_at, failed_attempts, platform_uid, email, identity, disabled_at, disabled_by, disabled_reason";

fn from_row(row: &Row) -> crate::store::db::Result<User> {
    let disabled_at: Option<i64> = row.get(7)?;
    let by: Option<String> = row.get(8)?;
    Ok(User {
        name: row.get(0)?,
        password_hash: row.get(1)?,
        created_at: row.get::<_, i64>(2)? as u64,
        failed_attempts: row.get::<_, i64>(3)?.clamp(0, i64::from(u32::MAX)) as u32,
        platform_uid: row.get(4)?,
        email: row.get(5)?,
        identity: row.get(6)?,
        disabled: disabled_at.map(|at| Disabled {
            at: at.max(0) as u64,
            by: if by.as_deref() == Some("platform") {
                DisabledBy::Platform
            } else {
                DisabledBy::Operator
            },
            reason: row
                .get::<_, Option<String>>(9)
                .ok()
                .flatten()
                .unwrap_or_default(),
        }),
    })
}

/// An account as `user list` shows it.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The account.
    pub user: User,
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
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM users
             WHERE name = ?1 COLLATE NOCASE ORDER BY name = ?1 DESC LIMIT 1"
        ))?
        .query_row([name], from_row)
        .optional()?)
}

/// The platform account with this uid.
pub fn get_platform(conn: &Connection, uid: i64) -> Result<Option<User>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM users WHERE platform_uid = ?1"
        ))?
        .query_row([uid], from_row)
        .optional()?)
}

/// An account as an operator names it: its name (`alice`, `uid:7`, any case) or a platform
/// account's email.
pub fn find(conn: &Connection, text: &str) -> Result<Option<User>> {
    if let Some(user) = get(conn, text)? {
        return Ok(Some(user));
    }
    if !text.contains('@') {
        return Ok(None);
    }
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM users WHERE email = ?1 COLLATE NOCASE ORDER BY platform_uid LIMIT 1"
        ))?
        .query_row([text], from_row)
        .optional()?)
}

/// Reads an account that must exist, as an operator names it ([`find`]).
pub fn require(conn: &Connection, name: &str) -> Result<User> {
    find(conn, name)?.ok_or_else(|| Error::NoSuchUser(name.to_string()))
}

/// Creates the platform account `uid` (named [`platform_name`]) with its email and the
/// identity edges forward; no password.
pub fn add_platform(
    conn: &Connection,
    uid: i64,
    email: &str,
    identity: &str,
    now: u64,
) -> Result<User> {
    conn.prepare_cached(
        "INSERT INTO users (name, password_hash, created_at, platform_uid, email, identity)
         VALUES (?1, '', ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        platform_name(uid),
        now as i64,
        uid,
        email,
        identity
    ])?;
    get_platform(conn, uid)?
        .ok_or_else(|| Error::Internal(format!("platform account {uid} vanished")))
}

/// Records a platform account's new email and the identity edges forward.
pub fn set_email(conn: &Connection, name: &str, email: &str, identity: &str) -> Result<()> {
    conn.prepare_cached("UPDATE users SET email = ?2, identity = ?3 WHERE name = ?1")?
        .execute(params![name, email, identity])?;
    Ok(())
}

/// Sets what edges forward for a platform account's tokens.
pub fn set_identity(conn: &Connection, name: &str, identity: &str) -> Result<()> {
    conn.prepare_cached("UPDATE users SET identity = ?2 WHERE name = ?1")?
        .execute(params![name, identity])?;
    Ok(())
}

/// Every platform account.
pub fn platform_accounts(conn: &Connection) -> Result<Vec<User>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM users WHERE platform_uid IS NOT NULL ORDER BY platform_uid"
    ))?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Disables an account (`Some`) or enables it (`None`), and marks its tokens suspended or
/// not; returns the ids of the tokens that changed.
pub fn set_disabled(
    conn: &Connection,
    name: &str,
    disabled: Option<&Disabled>,
) -> Result<Vec<i64>> {
    conn.prepare_cached(
        "UPDATE users SET disabled_at = ?2, disabled_by = ?3, disabled_reason = ?4 WHERE name = ?1",
    )?
    .execute(params![
        name,
        disabled.map(|d| d.at as i64),
        disabled.map(|d| d.by.as_str()),
        disabled.map(|d| d.reason.as_str()),
    ])?;
    let suspended = i64::from(disabled.is_some());
    let mut stmt = conn.prepare_cached(
        "UPDATE tokens SET suspended = ?2 WHERE user = ?1 AND suspended != ?2 RETURNING id",
    )?;
    let ids = stmt
        .query_map(params![name, suspended], |row| row.get(0))?
        .collect::<Result<Vec<i64>, _>>()?;
    Ok(ids)
}

/// Every account with its token count.
pub fn list(conn: &Connection) -> Result<Vec<Summary>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS}, (SELECT count(*) FROM tokens t WHERE t.user = users.name) FROM users ORDER BY platform_uid IS NOT NULL, platform_uid, name",
    ))?;
    let rows = stmt.query_map([], |row| {
        Ok(Summary {
            user: from_row(row)?,
            tokens: row.get::<_, i64>(10)? as u32,
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
