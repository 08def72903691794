//! Settings kept in the `meta` table.

use crate::store::db::{Connection, OptionalExtension, params};

use crate::error::Result;

/// Maximum tokens per account (default: the platform's limit from the catalogue).
pub const MAX_TOKENS: &str = "max_tokens_per_account";
/// Maximum token lifetime in days (absent: tokens may have no expiry).
pub const MAX_LIFETIME_DAYS: &str = "max_lifetime_days";
/// The last snapshot version handed out.
pub const LAST_VERSION: &str = "last_version";
/// The token state serial (see [`super::snapshots::state_serial`]).
pub const STATE_SERIAL: &str = "state_serial";
/// How long edges may use a snapshot, seconds (absent: [`DEFAULT_SNAPSHOT_LIFETIME`]).
pub const SNAPSHOT_LIFETIME: &str = "snapshot_lifetime_secs";

/// Per-attempt timeout of pushes to edges, whole seconds (absent: 10 s).
pub const PUSH_TIMEOUT: &str = "push_timeout_secs";
/// Overall deadline of a push to edges, whole seconds (absent: 30 s).
pub const PUSH_DEADLINE: &str = "push_deadline_secs";

/// How long an API login session may go unused, seconds (absent: [`DEFAULT_SESSION_IDLE`]).
pub const SESSION_IDLE: &str = "session_idle_secs";
/// How long an API login session lives at most, seconds (absent: [`DEFAULT_SESSION_LIFETIME`]).
pub const SESSION_LIFETIME: &str = "session_lifetime_secs";
/// Default idle lifetime of a login session: 30 minutes.
pub const DEFAULT_SESSION_IDLE: u64 = 30 * 60;
/// Default absolute lifetime of a login session: 12 hours.
pub const DEFAULT_SESSION_LIFETIME: u64 = 12 * 3600;
/// Allowed idle lifetimes: 1 minute to 1 day.
pub const SESSION_IDLE_RANGE: (u64, u64) = (60, 24 * 3600);
/// Allowed absolute lifetimes: 5 minutes to 30 days.
pub const SESSION_LIFETIME_RANGE: (u64, u64) = (5 * 60, 30 * 24 * 3600);

/// The longest grace window a regeneration may give the previous value, seconds (absent:
/// [`DEFAULT_MAX_GRACE`]; 0: no grace windows).
pub const MAX_GRACE: &str = "max_grace_secs";
/// The default longest grace window: 7 days.
pub const DEFAULT_MAX_GRACE: u64 = 7 * 24 * 3600;
/// The largest `max-grace` setting: 30 days.
pub const MAX_MAX_GRACE: u64 = 30 * 24 * 3600;

/// The default snapshot lifetime: 24 hours.
pub const DEFAULT_SNAPSHOT_LIFETIME: u64 = 24 * 3600;
/// The shortest snapshot lifetime: 60 seconds.
pub const MIN_SNAPSHOT_LIFETIME: u64 = 60;
/// The longest snapshot lifetime: 30 days.
pub const MAX_SNAPSHOT_LIFETIME: u64 = 30 * 24 * 3600;

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

/// The snapshot lifetime in seconds: the setting, or the default. A stored value outside the
/// allowed range (written by hand) is clamped into it.
pub fn snapshot_lifetime(conn: &Connection) -> Result<u64> {
    Ok(get(conn, SNAPSHOT_LIFETIME)?
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(DEFAULT_SNAPSHOT_LIFETIME, |v| {
            v.clamp(MIN_SNAPSHOT_LIFETIME, MAX_SNAPSHOT_LIFETIME)
        }))
}

fn seconds_in(conn: &Connection, key: &str, default: u64, (min, max): (u64, u64)) -> Result<u64> {
    Ok(get(conn, key)?
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(default, |v| v.clamp(min, max)))
}

/// The longest grace window a regeneration may give, seconds (0: none allowed).
pub fn max_grace(conn: &Connection) -> Result<u64> {
    seconds_in(conn, MAX_GRACE, DEFAULT_MAX_GRACE, (0, MAX_MAX_GRACE))
}

/// The idle lifetime of API login sessions, seconds (a stored value outside the allowed
/// range is clamped into it).
pub fn session_idle(conn: &Connection) -> Result<u64> {
    seconds_in(conn, SESSION_IDLE, DEFAULT_SESSION_IDLE, SESSION_IDLE_RANGE)
}

/// The absolute lifetime of API login sessions, seconds.
pub fn session_lifetime(conn: &Connection) -> Result<u64> {
    seconds_in(
        conn,
        SESSION_LIFETIME,
        DEFAULT_SESSION_LIFETIME,
        SESSION_LIFETIME_RANGE,
    )
}

/// Platform mode: the platform API's base URL (`config set platform-url`; `serve
/// --platform-url` wins).
pub const PLATFORM_URL: &str = "platform_url";
/// Platform mode: how long the platform's answer about a login session is reused, seconds.
pub const PLATFORM_SESSION_CACHE: &str = "platform_session_cache_secs";
/// The default: 5 seconds.
pub const DEFAULT_PLATFORM_SESSION_CACHE: u64 = 5;
/// Allowed: none (0 s) to a minute.
pub const PLATFORM_SESSION_CACHE_RANGE: (u64, u64) = (0, 60);
/// Platform mode: how long one call to the platform may take, seconds.
pub const PLATFORM_TIMEOUT: &str = "platform_timeout_secs";
/// The default: 5 seconds.
pub const DEFAULT_PLATFORM_TIMEOUT: u64 = 5;
/// Allowed: 1 to 30 seconds.
pub const PLATFORM_TIMEOUT_RANGE: (u64, u64) = (1, 30);
/// Platform mode: how a change's password is confirmed, `signin` (the default) or
/// `check-password`.
pub const PLATFORM_PASSWORD_CHECK: &str = "platform_password_check";
/// Platform mode: what edges forward for a platform account's tokens, `uid` (the default)
/// or `email`.
pub const PLATFORM_IDENTITY: &str = "platform_identity";

/// How long the platform's answer about a session is reused, seconds.
pub fn platform_session_cache(conn: &Connection) -> Result<u64> {
    seconds_in(
        conn,
        PLATFORM_SESSION_CACHE,
        DEFAULT_PLATFORM_SESSION_CACHE,
        PLATFORM_SESSION_CACHE_RANGE,
    )
}

/// How long one call to the platform may take, seconds.
pub fn platform_timeout(conn: &Connection) -> Result<u64> {
    seconds_in(
        conn,
        PLATFORM_TIMEOUT,
        DEFAULT_PLATFORM_TIMEOUT,
        PLATFORM_TIMEOUT_RANGE,
    )
}
