//! Login sessions of the platform API (`Signin` makes one, `Signout` ends it), and the failed
//! sign-ins counted per client address and per login that names no account.
//!
//! A session value is `pats_` and 32 random base62 characters (about 190 bits). It can
//! never be mistaken for an access token (`pate_…`, which the filter checks), and it is
//! stored only as its SHA-256: looked up by that hash (an index lookup on a hash an attacker
//! cannot steer), and compared with it in constant time.

use crate::store::db::{Connection, OptionalExtension, params};
use pat_core::token::TokenHash;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Every session value starts with this (never `pate_`, the token prefix).
pub const PREFIX: &str = "pats_";
/// Random base62 characters after the prefix.
pub const RANDOM_LEN: usize = 32;

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// SHA-256 of the value.
    pub hash: [u8; 32],
    /// The account (stored name).
    pub user: String,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds of its last use (updated at most every [`TOUCH_EVERY`] seconds).
    pub last_used_at: u64,
    /// The client address it signed in from.
    pub client: String,
}

/// How stale `last_used_at` may get before a use writes it again (saves a write per call).
pub const TOUCH_EVERY: u64 = 10;

/// A new session value from the operating system's CSPRNG (wiped when dropped).
pub fn new_value() -> Result<Zeroizing<String>> {
    const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut value = Zeroizing::new(String::with_capacity(PREFIX.len() + RANDOM_LEN));
    value.push_str(PREFIX);
    let mut pool = Zeroizing::new([0u8; 64]);
    let mut produced = 0;
    while produced < RANDOM_LEN {
        getrandom::fill(pool.as_mut_slice()).map_err(|e| Error::Random(e.to_string()))?;
        // Rejection sampling keeps every character uniform: 248 = 4 · 62.
        for &byte in pool.iter().filter(|&&b| b < 248) {
            if produced == RANDOM_LEN {
                break;
            }
            value.push(char::from(DIGITS[usize::from(byte % 62)]));
            produced += 1;
        }
    }
    Ok(value)
}

/// Whether `value` has the shape of a session value (prefix, length, characters): anything
/// else is refused without a lookup.
pub fn is_well_formed(value: &str) -> bool {
    value.len() == PREFIX.len() + RANDOM_LEN
        && value.starts_with(PREFIX)
        && value[PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric())
}

/// The stored form of a session value.
pub fn hash(value: &str) -> [u8; 32] {
    TokenHash::of(value).0
}

/// Stores a new session.
pub fn insert(
    conn: &Connection,
    hash: &[u8; 32],
    user: &str,
    now: u64,
    client: &str,
) -> Result<()> {
    conn.execute(
        "INSERT INTO sessions (hash, user, created_at, last_used_at, client) VALUES (?1, ?2, ?3, ?3, ?4)",
        params![hash.as_slice(), user, now as i64, client],
    )?;
    Ok(())
}

/// The session whose value hashes to `hash`, if any (the stored hash is compared with the
/// one asked for in constant time).
pub fn get(conn: &Connection, hash: &[u8; 32]) -> Result<Option<Session>> {
    let found = conn
        .prepare_cached(
            "SELECT hash, user, created_at, last_used_at, client FROM sessions WHERE hash = ?1",
        )?
        .query_row([hash.as_slice()], |row| {
            let stored: Vec<u8> = row.get(0)?;
            Ok(Session {
                hash: stored.try_into().unwrap_or([0; 32]),
                user: row.get(1)?,
                created_at: row.get::<_, i64>(2)? as u64,
                last_used_at: row.get::<_, i64>(3)? as u64,
                client: row.get(4)?,
            })
        })
        .optional()?;
    Ok(found.filter(|s| TokenHash(s.hash).ct_eq(&TokenHash(*hash))))
}

/// Records a use.
pub fn touch(conn: &Connection, hash: &[u8; 32], now: u64) -> Result<()> {
    conn.prepare_cached("UPDATE sessions SET last_used_at = ?2 WHERE hash = ?1")?
        .execute(params![hash.as_slice(), now as i64])?;
    Ok(())
}

/// Ends a session; false if there was none.
pub fn delete(conn: &Connection, hash: &[u8; 32]) -> Result<bool> {
    Ok(conn.execute("DELETE FROM sessions WHERE hash = ?1", [hash.as_slice()])? == 1)
}

/// Ends every session of an account (a password change); returns how many.
pub fn end_all(conn: &Connection, user: &str) -> Result<usize> {
    Ok(conn.execute("DELETE FROM sessions WHERE user = ?1", [user])?)
}

/// Deletes the sessions that are over either lifetime at `now`.
pub fn prune(conn: &Connection, now: u64, idle: u64, absolute: u64) -> Result<usize> {
    Ok(conn.execute(
        "DELETE FROM sessions WHERE last_used_at + ?2 <= ?1 OR created_at + ?3 <= ?1",
        params![now as i64, idle as i64, absolute as i64],
    )?)
}

/// How many sessions an account has.
pub fn count(conn: &Connection, user: &str) -> Result<u32> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM sessions WHERE user = ?1",
        [user],
        |row| row.get(0),
    )?;
    Ok(n as u32)
}

/// What failed sign-ins are counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKey<'a> {
    /// A client address.
    Address(&'a str),
    /// A login that names no account (lowercased), so unknown logins slow down exactly like
    /// known ones (whose count is the account's own).
    Login(&'a str),
}

impl FailureKey<'_> {
    fn parts(&self) -> (&'static str, String) {
        match self {
            Self::Address(a) => ("address", (*a).to_string()),
            Self::Login(l) => ("login", l.to_ascii_lowercase()),
        }
    }
}

/// Consecutive failed sign-ins for `key`, forgetting failures older than `forget_after`
/// seconds.
pub fn failures(
    conn: &Connection,
    key: FailureKey<'_>,
    now: u64,
    forget_after: u64,
) -> Result<u32> {
    let (kind, key) = key.parts();
    let found: Option<(i64, i64)> = conn
        .prepare_cached(
            "SELECT failures, last_failed_at FROM signin_failures WHERE kind = ?1 AND key = ?2",
        )?
        .query_row(params![kind, key], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    Ok(match found {
        Some((n, at)) if (at as u64).saturating_add(forget_after) > now => {
            n.clamp(0, i64::from(u32::MAX)) as u32
        }
        _ => 0,
    })
}

/// Counts a failed sign-in for `key` (restarting a count whose last failure is older than
/// `forget_after`), and drops counts nobody added to for that long.
pub fn record_failure(
    conn: &Connection,
    key: FailureKey<'_>,
    now: u64,
    forget_after: u64,
) -> Result<()> {
    let (kind, key) = key.parts();
    let stale = now.saturating_sub(forget_after) as i64;
    conn.prepare_cached("DELETE FROM signin_failures WHERE last_failed_at <= ?1")?
        .execute([stale])?;
    conn.prepare_cached(
        "INSERT INTO signin_failures (kind, key, failures, last_failed_at) VALUES (?1, ?2, 1, ?3)
         ON CONFLICT (kind, key) DO UPDATE SET failures = signin_failures.failures + 1, last_failed_at = ?3",
    )?
    .execute(params![kind, key, now as i64])?;
    Ok(())
}

/// Clears the count of `key` (a successful sign-in).
pub fn reset_failures(conn: &Connection, key: FailureKey<'_>) -> Result<()> {
    let (kind, key) = key.parts();
    conn.prepare_cached("DELETE FROM signin_failures WHERE kind = ?1 AND key = ?2")?
        .execute(params![kind, key])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_random_well_formed_and_never_tokens() {
        let a = new_value().expect("random");
        let b = new_value().expect("random");
        assert_ne!(*a, *b);
        for v in [&a, &b] {
            assert!(is_well_formed(v), "{}", v.as_str());
            assert!(!pat_core::token::is_token_like(v));
        }
        assert!(!is_well_formed("pats_short"));
        assert!(!is_well_formed(&format!("pate_{}", &a[5..])));
        assert!(!is_well_formed(&format!("{}!", &a[..a.len() - 1])));
    }
}
