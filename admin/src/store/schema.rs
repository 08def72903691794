//! Tables, and migrations keyed on SQLite's `user_version`.

use rusqlite::Transaction;

/// The schema version this build writes.
pub const VERSION: i64 = 1;

const V1: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE users (
    name            TEXT PRIMARY KEY,
    password_hash   TEXT NOT NULL,          -- argon2id PHC string
    created_at      INTEGER NOT NULL,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    last_failed_at  INTEGER
) STRICT;

CREATE TABLE tokens (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,   -- public token id, never reused
    user           TEXT NOT NULL REFERENCES users(name),
    description    TEXT NOT NULL,
    hash           BLOB NOT NULL UNIQUE,                -- SHA-256 of the value; the value is never stored
    scope_set      TEXT,                                -- predefined set id, NULL for a custom list
    scope_methods  TEXT NOT NULL,                       -- canonical method names, space-separated
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER,                             -- exclusive end, Unix seconds; NULL = never
    regenerated_at INTEGER
) STRICT;
CREATE INDEX tokens_by_user ON tokens(user);

CREATE TABLE signing_keys (
    id         TEXT PRIMARY KEY,        -- key id (hex)
    public_key TEXT NOT NULL,           -- ed25519:<base64url>
    file       TEXT NOT NULL,           -- private key file, relative to the store
    created_at INTEGER NOT NULL,
    active     INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE edges (
    url      TEXT PRIMARY KEY,
    added_at INTEGER NOT NULL
) STRICT;

CREATE TABLE snapshots (
    version   INTEGER PRIMARY KEY,
    issued_at INTEGER NOT NULL,
    key_id    TEXT NOT NULL,
    tokens    INTEGER NOT NULL,
    bytes     BLOB NOT NULL                -- the signed snapshot (hashes only)
) STRICT;

CREATE TABLE audit (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       INTEGER NOT NULL,
    actor    TEXT NOT NULL,                -- the OS user who ran pat-admin
    account  TEXT,                         -- the account concerned
    action   TEXT NOT NULL,
    token_id INTEGER,
    detail   TEXT NOT NULL                 -- never a token value
) STRICT;
";

/// Brings the schema up to [`VERSION`]. Refuses a store written by a newer pat-admin.
pub fn migrate(tx: &Transaction<'_>) -> Result<(), String> {
    let current: i64 = tx
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(|e| e.to_string())?;
    if current > VERSION {
        return Err(format!(
            "the store has schema version {current}, newer than this pat-admin understands ({VERSION}); use a newer pat-admin"
        ));
    }
    if current < 1 {
        tx.execute_batch(V1)
            .map_err(|e| format!("cannot create the schema: {e}"))?;
    }
    tx.pragma_update(None, "user_version", VERSION)
        .map_err(|e| e.to_string())?;
    Ok(())
}
