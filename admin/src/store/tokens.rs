//! Tokens: public id, account, description, SHA-256 of the value, scope, allowed client
//! networks, environments, rate limit, dates, and the previous value during a regeneration's grace window.
//!
//! A token is one or two **records** in a document: its current value, and (while a grace
//! window is open) its previous value ([`OldValue`]), which ends at the earlier of the
//! window's end and the token's own expiry. The functions that feed documents
//! ([`for_each_published`], [`for_one_published`], ...) yield records; `in_state` and
//! `old_in_state` say which of them the latest document's state holds.
//!
//! Every function that changes a token also records the change ([`snapshots::record_change`]:
//! the token, and the hash that stops being valid) and counts it in the token state serial,
//! in the caller's transaction: no change can slip past the check that the latest document
//! reflects the committed state, and the next delta knows exactly what to carry.
//!
//! "Last used" ([`merge_use`]) comes from the edges' usage reports; it is not a token change
//! (edges do not need it), so it moves no serial.

use crate::store::db::{Connection, OptionalExtension, Row, params};
use pat_core::env::EnvList;
use pat_core::net::Network;
use pat_core::rate::RateLimit;
use pat_core::token::TokenHash;

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
    /// The client networks it may be used from (normalized, sorted, no duplicates); empty:
    /// any address.
    pub networks: Vec<Network>,
    /// The previous value, still valid during a regeneration's grace window.
    pub old_value: Option<OldValue>,
    /// Its account is disabled: no document holds it until the account is enabled.
    pub suspended: bool,
    /// The environments it may act on; `None`: any.
    pub envs: Option<EnvList>,
    /// Its own rate limit; `None`: none (the `default-rate-limit` setting applies).
    pub rate_limit: Option<RateLimit>,
}

/// A regenerated token's previous value during its grace window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OldValue {
    /// SHA-256 of the previous value.
    pub hash: TokenHash,
    /// The window's exclusive end, Unix seconds (the token's own expiry may end it sooner).
    pub until: u64,
}

impl Token {
    /// Expired at `now`?
    pub fn is_expired(&self, now: u64) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }

    /// When the previous value stops working (exclusive, Unix seconds): the earlier of its
    /// window's end and the token's expiry; `None` when there is none, or it has ended by
    /// `now`.
    pub fn old_value_until(&self, now: u64) -> Option<u64> {
        let old = self.old_value?;
        let end = self.expires_at.map_or(old.until, |e| e.min(old.until));
        (end > now).then_some(end)
    }
}

/// The allowed networks as stored: normalized CIDRs, space-separated.
pub fn networks_text(networks: &[Network]) -> String {
    networks
        .iter()
        .map(Network::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The stored networks back (an entry that does not parse is an error: the store was
/// changed behind pat-admin's back).
pub fn parse_networks(text: &str) -> std::result::Result<Vec<Network>, String> {
    text.split_whitespace()
        .map(|n| n.parse::<Network>().map_err(|e| e.to_string()))
        .collect()
}

/// The environment list as stored: the names comma-joined ("": any).
pub fn envs_text(envs: Option<&EnvList>) -> String {
    envs.map(EnvList::encoded).unwrap_or_default()
}

/// The stored environment list back ("": any; a list that does not check is an error: the
/// store was changed behind pat-admin's back).
pub fn parse_envs(text: &str) -> std::result::Result<Option<EnvList>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    let names: Vec<&str> = text.split(',').collect();
    EnvList::parse(&names).map_err(|e| e.to_string())
}

/// The stored rate limit back (NULL or "": none).
pub fn parse_rate_limit(text: Option<&str>) -> std::result::Result<Option<RateLimit>, String> {
    match text {
        None | Some("") => Ok(None),
        Some(t) => t.parse::<RateLimit>().map(Some).map_err(|e| e.to_string()),
    }
}

const COLUMNS: &str = "id, user, description, hash, scope_set, scope_methods, created_at, expires_at, regenerated_at, last_used_at, last_used_ip, networks, old_hash, old_until, suspended, envs, rate_limit";

/// The previous value's end as SQL: the earlier of its window's end and the token's expiry.
const OLD_END: &str = "(CASE WHEN expires_at IS NOT NULL AND expires_at < old_until THEN expires_at ELSE old_until END)";
/// Where a record must not be in any document: its account is disabled. A record read for
/// a document then ends at 0 (expired since 1970), so a delta removes it.
const LIVE: &str = "suspended = 0";
/// A current value's end as documents see it.
const END: &str = "(CASE WHEN suspended = 1 THEN 0 ELSE expires_at END)";
/// A previous value's end as documents see it.
const OLD_LIVE_END: &str = "(CASE WHEN suspended = 1 THEN 0 WHEN expires_at IS NOT NULL AND expires_at < old_until THEN expires_at ELSE old_until END)";

fn from_row(row: &Row) -> crate::store::db::Result<Token> {
    let hash: Vec<u8> = row.get(3)?;
    let methods: String = row.get(5)?;
    let networks: String = row.get(11)?;
    let networks =
        parse_networks(&networks).map_err(|e| crate::store::db::DbError::Conversion {
            column: 11,
            message: e.to_string(),
        })?;
    let conversion = |column: usize| {
        move |message: String| crate::store::db::DbError::Conversion { column, message }
    };
    let envs: String = row.get(15)?;
    let envs = parse_envs(&envs).map_err(conversion(15))?;
    let rate_limit: Option<String> = row.get(16)?;
    let rate_limit = parse_rate_limit(rate_limit.as_deref()).map_err(conversion(16))?;
    let old_hash: Option<Vec<u8>> = row.get(12)?;
    let old_until: Option<i64> = row.get(13)?;
    let old_value = match (old_hash, old_until) {
        (Some(hash), Some(until)) => Some(OldValue {
            hash: TokenHash(hash.try_into().unwrap_or([0; 32])),
            until: until as u64,
        }),
        _ => None,
    };
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
        networks,
        old_value,
        suspended: row.get::<_, i64>(14)? != 0,
        envs,
        rate_limit,
    })
}

/// Inserts a token (its `id` is assigned) and returns the id.
pub fn insert(conn: &Connection, token: &Token) -> Result<i64> {
    let id: i64 = conn.query_row(
        "INSERT INTO tokens (user, description, hash, scope_set, scope_methods, created_at, expires_at, regenerated_at, networks, envs, rate_limit)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) RETURNING id",
        params![
            token.user,
            token.description,
            token.hash.0.as_slice(),
            token.scope_set,
            token.methods.join(" "),
            token.created_at as i64,
            token.expires_at.map(|v| v as i64),
            token.regenerated_at.map(|v| v as i64),
            networks_text(&token.networks),
            envs_text(token.envs.as_ref()),
            token.rate_limit.map(|r| r.to_string()),
        ],
        |row| row.get(0),
    )?;
    snapshots::record_change(conn, id, None)?;
    Ok(id)
}

/// A row's hashes as stored: current, previous, and their in-state flags.
type Hashes = (Vec<u8>, Option<Vec<u8>>, i64, i64);

/// Rewrites every field of an existing token (except "last used", which only usage reports
/// move), its previous value included. The hashes that stop being valid — the current one
/// replaced without a grace window, a previous value whose window a regeneration ends — are
/// recorded for the next delta to remove. A hash that moves from current to previous keeps
/// its place in the state (`in_state` moves to `old_in_state`).
pub fn update(conn: &Connection, token: &Token) -> Result<()> {
    let before: Option<Hashes> = conn
        .query_row(
            "SELECT hash, old_hash, in_state, old_in_state FROM tokens WHERE id = ?1",
            [token.id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )
        .optional()?;
    let new_old = token.old_value.map(|o| o.hash.0.to_vec());
    // Which in-state flag each record of the new row inherits: a hash keeps its own.
    let (in_state, old_in_state) = match &before {
        Some((hash, old, in_state, old_in_state)) => {
            let flag_of = |h: &[u8]| {
                if h == hash.as_slice() {
                    *in_state
                } else if old.as_deref() == Some(h) {
                    *old_in_state
                } else {
                    0
                }
            };
            (
                flag_of(token.hash.0.as_slice()),
                new_old.as_deref().map_or(0, flag_of),
            )
        }
        None => (0, 0),
    };
    conn.execute(
        "UPDATE tokens SET description = ?2, hash = ?3, scope_set = ?4, scope_methods = ?5, expires_at = ?6, regenerated_at = ?7,
             networks = ?8, old_hash = ?9, old_until = ?10, in_state = ?11, old_in_state = ?12,
             envs = ?13, rate_limit = ?14
         WHERE id = ?1",
        params![
            token.id,
            token.description,
            token.hash.0.as_slice(),
            token.scope_set,
            token.methods.join(" "),
            token.expires_at.map(|v| v as i64),
            token.regenerated_at.map(|v| v as i64),
            networks_text(&token.networks),
            new_old,
            token.old_value.map(|o| o.until as i64),
            in_state,
            old_in_state,
            envs_text(token.envs.as_ref()),
            token.rate_limit.map(|r| r.to_string()),
        ],
    )?;
    let still = |h: &[u8]| h == token.hash.0.as_slice() || new_old.as_deref() == Some(h);
    let dead: Vec<Vec<u8>> = before
        .map(|(hash, old, _, _)| {
            [Some(hash), old]
                .into_iter()
                .flatten()
                .filter(|h| !still(h))
                .collect()
        })
        .unwrap_or_default();
    if dead.is_empty() {
        snapshots::record_change(conn, token.id, None)?;
    }
    for hash in &dead {
        snapshots::record_change(conn, token.id, Some(hash))?;
    }
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

/// The token whose value hashes to `hash`, if any: its current value, or its previous one
/// while that still works at `now` (both UNIQUE: index lookups). The caller compares the
/// hash in constant time ([`Token::has_value`]).
pub fn by_hash(conn: &Connection, hash: &TokenHash, now: u64) -> Result<Option<Token>> {
    if let Some(t) = conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM tokens WHERE hash = ?1"),
            [hash.0.as_slice()],
            from_row,
        )
        .optional()?
    {
        return Ok(Some(t));
    }
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM tokens WHERE old_hash = ?1"),
            [hash.0.as_slice()],
            from_row,
        )
        .optional()?
        .filter(|t| t.old_value_until(now).is_some()))
}

/// Which of a token's values `hash` is, compared in constant time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// Its current value.
    Current,
    /// Its previous value (in a grace window).
    Old,
}

impl Token {
    /// Whether `hash` is this token's current value or its previous one (constant-time
    /// comparisons; the previous one only while it works at `now`).
    pub fn has_value(&self, hash: &TokenHash, now: u64) -> Option<Which> {
        if self.hash.ct_eq(hash) {
            return Some(Which::Current);
        }
        match self.old_value {
            Some(old) if old.hash.ct_eq(hash) && self.old_value_until(now).is_some() => {
                Some(Which::Old)
            }
            _ => None,
        }
    }
}

/// Is there a token without a rate limit of its own (one the `default-rate-limit` setting
/// applies to)?
pub fn any_without_rate_limit(conn: &Connection) -> Result<bool> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM tokens WHERE rate_limit IS NULL)",
        [],
        |row| row.get(0),
    )?)
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

/// Deletes a token (its previous value, if any, dies with it); false if it did not exist.
pub fn delete(conn: &Connection, user: &str, id: i64) -> Result<bool> {
    let hashes: Option<(Vec<u8>, Option<Vec<u8>>)> = conn
        .query_row(
            "DELETE FROM tokens WHERE user = ?1 AND id = ?2 RETURNING hash, old_hash",
            params![user, id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    match hashes {
        Some((hash, old)) => {
            snapshots::record_change(conn, id, Some(&hash))?;
            if let Some(old) = old {
                snapshots::record_change(conn, id, Some(&old))?;
            }
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

/// How many records are not expired at `now` (tokens, and previous values in their grace
/// windows) and not of a disabled account: what a snapshot built now would hold.
pub fn count_active(conn: &Connection, now: u64) -> Result<u64> {
    let n: i64 = conn.query_row(
        &format!(
            "SELECT (SELECT count(*) FROM tokens WHERE (expires_at IS NULL OR expires_at > ?1) AND {LIVE})
                  + (SELECT count(*) FROM tokens WHERE old_hash IS NOT NULL AND {OLD_END} > ?1 AND {LIVE})"
        ),
        [now as i64],
        |row| row.get(0),
    )?;
    Ok(n as u64)
}

/// What a snapshot needs of one record (a token's current value, or its previous one in a
/// grace window), borrowed from the row being read.
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
    /// Allowed client networks as stored, space-separated ("": any).
    pub networks: &'a str,
    /// Environments as stored, comma-joined ("": any).
    pub envs: &'a str,
    /// Its own rate limit as stored ("": none of its own).
    pub rate_limit: &'a str,
    /// Exclusive end, Unix seconds (a previous value: the end of its window, or the
    /// token's expiry when that is sooner).
    pub expires_at: Option<u64>,
    /// The previous value's record, not the current one's.
    pub old: bool,
}

/// Calls `each` with the snapshot fields of every record not expired at `now` (nor of a
/// disabled account), straight from the rows being read: a 1,000,000-token publish copies
/// nothing it does not sign.
pub fn for_each_published(
    conn: &Connection,
    now: u64,
    each: impl FnMut(Published<'_>) -> Result<()>,
) -> Result<()> {
    for_each_where(
        conn,
        &format!("(expires_at IS NULL OR expires_at > ?1) AND {LIVE}"),
        &format!("{OLD_END} > ?1 AND {LIVE}"),
        params![now as i64],
        each,
    )
}

/// Calls `each` with the snapshot fields of token `id`'s records if it exists (expired or
/// not): its current value, and its previous one if it has one; a disabled account's end
/// at 0 (expired).
pub fn for_one_published(
    conn: &Connection,
    id: i64,
    each: impl FnMut(Published<'_>) -> Result<()>,
) -> Result<()> {
    for_each_where(conn, "id = ?1", "id = ?1", params![id], each)
}

/// Calls `each` with the snapshot fields of every record in the latest document's state
/// (`in_state`, `old_in_state`; expired since or not).
pub fn for_each_in_state(
    conn: &Connection,
    each: impl FnMut(Published<'_>) -> Result<()>,
) -> Result<()> {
    for_each_where(conn, "in_state = 1", "old_in_state = 1", params![], each)
}

/// Calls `each` with the snapshot fields of every record in the latest document's state
/// that is expired at `at` (Unix seconds): what the next delta removes besides the changes.
pub fn for_each_expired_in_state(
    conn: &Connection,
    at: u64,
    each: impl FnMut(Published<'_>) -> Result<()>,
) -> Result<()> {
    for_each_where(
        conn,
        "in_state = 1 AND expires_at <= ?1",
        &format!("old_in_state = 1 AND {OLD_END} <= ?1"),
        params![at as i64],
        each,
    )
}

/// How many records the latest document's state holds.
pub fn count_in_state(conn: &Connection) -> Result<u64> {
    let n: i64 = conn.query_row(
        "SELECT (SELECT count(*) FROM tokens WHERE in_state = 1)
              + (SELECT count(*) FROM tokens WHERE old_in_state = 1)",
        [],
        |row| row.get(0),
    )?;
    Ok(n as u64)
}

/// Marks whether a record of token `id` (`old`: its previous value's) is in the state of
/// the document being built.
pub fn set_in_state(conn: &Connection, id: i64, old: bool, in_state: bool) -> Result<()> {
    let sql = if old {
        "UPDATE tokens SET old_in_state = ?2 WHERE id = ?1 AND old_in_state != ?2"
    } else {
        "UPDATE tokens SET in_state = ?2 WHERE id = ?1 AND in_state != ?2"
    };
    conn.prepare_cached(sql)?
        .execute(params![id, i64::from(in_state)])?;
    Ok(())
}

/// Marks the records in the state that are expired at `at` as no longer in it.
pub fn leave_state_expired(conn: &Connection, at: u64) -> Result<()> {
    conn.execute(
        "UPDATE tokens SET in_state = 0 WHERE in_state = 1 AND expires_at <= ?1",
        [at as i64],
    )?;
    conn.execute(
        &format!("UPDATE tokens SET old_in_state = 0 WHERE old_in_state = 1 AND {OLD_END} <= ?1"),
        [at as i64],
    )?;
    Ok(())
}

/// Marks exactly the records not expired at `at` (nor of a disabled account) as in the
/// state (a full snapshot built at `at` holds them).
pub fn set_state_active_at(conn: &Connection, at: u64) -> Result<()> {
    conn.execute(
        &format!(
            "UPDATE tokens SET in_state = 1 - in_state
             WHERE in_state != (CASE WHEN (expires_at IS NULL OR expires_at > ?1) AND {LIVE} THEN 1 ELSE 0 END)"
        ),
        [at as i64],
    )?;
    conn.execute(
        &format!(
            "UPDATE tokens SET old_in_state = 1 - old_in_state
             WHERE old_hash IS NOT NULL AND old_in_state != (CASE WHEN {OLD_END} > ?1 AND {LIVE} THEN 1 ELSE 0 END)"
        ),
        [at as i64],
    )?;
    Ok(())
}

/// Every record matching: current values where `condition` holds, previous values where
/// `old_condition` does (both see the same numbered parameters). The account is what edges
/// forward (its identity, when it has one besides its name: read from `users` only when some
/// account does, so a store without platform accounts pays nothing for it), and a record
/// of a disabled account ends at 0.
fn for_each_where(
    conn: &Connection,
    condition: &str,
    old_condition: &str,
    args: impl crate::store::db::Params,
    mut each: impl FnMut(Published<'_>) -> Result<()>,
) -> Result<()> {
    let identities: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM users WHERE identity IS NOT NULL)")?
        .query_row([], |row| row.get(0))?;
    let user = if identities {
        "coalesce((SELECT identity FROM users WHERE users.name = tokens.user), tokens.user)"
    } else {
        "user"
    };
    let sql = format!(
        "SELECT id, {user}, hash, scope_methods, networks, {END}, 0, envs, coalesce(rate_limit, '') FROM tokens WHERE {condition}
         UNION ALL
         SELECT id, {user}, old_hash, scope_methods, networks, {OLD_LIVE_END}, 1, envs, coalesce(rate_limit, '') FROM tokens
             WHERE old_hash IS NOT NULL AND ({old_condition})"
    );
    let stored = |e: crate::store::db::DbError| {
        Error::Internal(format!("a stored token has an unexpected value: {e}"))
    };
    conn.for_each(&sql, args, |row| {
        each(Published {
            id: row.get(0)?,
            user: row.str(1).map_err(stored)?,
            hash: row.blob(2).map_err(stored)?,
            methods: row.str(3).map_err(stored)?,
            networks: row.str(4).map_err(stored)?,
            expires_at: row.get::<_, Option<i64>>(5)?.map(|v| v as u64),
            old: row.get::<_, i64>(6)? == 1,
            envs: row.str(7).map_err(stored)?,
            rate_limit: row.str(8).map_err(stored)?,
        })
    })
}
