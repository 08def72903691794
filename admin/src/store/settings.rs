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
/// How long edges may use a snapshot, seconds ([`crate::settings::SNAPSHOT_LIFETIME`]).
pub const SNAPSHOT_LIFETIME: &str = "snapshot_lifetime_secs";

/// Per-attempt timeout of pushes to edges, whole seconds ([`crate::settings::PUSH_TIMEOUT`]).
pub const PUSH_TIMEOUT: &str = "push_timeout_secs";
/// Overall deadline of a push to edges, whole seconds ([`crate::settings::PUSH_DEADLINE`]).
pub const PUSH_DEADLINE: &str = "push_deadline_secs";

/// How long an API login session may go unused, seconds (default and range:
/// [`crate::settings::SESSION_IDLE`]).
pub const SESSION_IDLE: &str = "session_idle_secs";
/// How long an API login session lives at most, seconds ([`crate::settings::SESSION_LIFETIME`]).
pub const SESSION_LIFETIME: &str = "session_lifetime_secs";

/// The longest grace window a regeneration may give the previous value, seconds
/// ([`crate::settings::MAX_GRACE`]; 0: no grace windows).
pub const MAX_GRACE: &str = "max_grace_secs";

/// The rate limit of every token without one of its own (`10/s`, `600/min`; absent: none;
/// [`crate::settings::DEFAULT_RATE_LIMIT`]).
pub const DEFAULT_RATE_LIMIT: &str = "default_rate_limit";

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

/// The snapshot lifetime in seconds: the setting, or the default (a stored value outside the
/// allowed range is clamped into it): [`crate::settings::SNAPSHOT_LIFETIME`].
pub fn snapshot_lifetime(conn: &Connection) -> Result<u64> {
    crate::settings::SNAPSHOT_LIFETIME.get(conn)
}

/// The longest grace window a regeneration may give, seconds (0: none allowed):
/// [`crate::settings::MAX_GRACE`].
pub fn max_grace(conn: &Connection) -> Result<u64> {
    crate::settings::MAX_GRACE.get(conn)
}

/// The idle lifetime of API login sessions, seconds: [`crate::settings::SESSION_IDLE`].
pub fn session_idle(conn: &Connection) -> Result<u64> {
    crate::settings::SESSION_IDLE.get(conn)
}

/// The absolute lifetime of API login sessions, seconds:
/// [`crate::settings::SESSION_LIFETIME`].
pub fn session_lifetime(conn: &Connection) -> Result<u64> {
    crate::settings::SESSION_LIFETIME.get(conn)
}

/// Platform mode: the platform API's base URL (`config set platform-url`; `serve
/// --platform-url` wins).
pub const PLATFORM_URL: &str = "platform_url";
/// Platform mode: how long the platform's answer about a login session is reused, seconds.
pub const PLATFORM_SESSION_CACHE: &str = "platform_session_cache_secs";
/// Platform mode: how long one call to the platform may take, seconds.
pub const PLATFORM_TIMEOUT: &str = "platform_timeout_secs";
/// Platform mode: how a change's password is confirmed, `signin` (the default) or
/// `check-password`.
pub const PLATFORM_PASSWORD_CHECK: &str = "platform_password_check";
/// Platform mode: what edges forward for a platform account's tokens, `uid` (the default)
/// or `email`.
pub const PLATFORM_IDENTITY: &str = "platform_identity";

/// How long the platform's answer about a session is reused, seconds:
/// [`crate::settings::PLATFORM_SESSION_CACHE`].
pub fn platform_session_cache(conn: &Connection) -> Result<u64> {
    crate::settings::PLATFORM_SESSION_CACHE.get(conn)
}

/// How long one call to the platform may take, seconds: [`crate::settings::PLATFORM_TIMEOUT`].
pub fn platform_timeout(conn: &Connection) -> Result<u64> {
    crate::settings::PLATFORM_TIMEOUT.get(conn)
}
