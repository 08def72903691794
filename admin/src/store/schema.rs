//! Tables, and migrations: on SQLite keyed on its `user_version`, on PostgreSQL on the
//! `schema_version` row of `meta`.
//!
//! A new SQLite store is created at version 1 and migrated like any other, so every test
//! exercises the migration path an existing store takes. PostgreSQL stores start at version
//! 9 ([`PG_V9`]: the same tables in PostgreSQL's types: `BIGINT` for every integer, `BYTEA`
//! for bytes, identity columns for ids, a case-insensitive ICU collation `nocase` for what
//! SQLite compares `COLLATE NOCASE`, and a `rowid` identity where queries order by SQLite's
//! rowid); later versions migrate both.
//!
//! - **1**: the first schema.
//! - **2**: snapshot format 2 (a signed expiry). Stored snapshots record the token state
//!   serial they were built from (`meta.state_serial`, incremented with every token change),
//!   their expiry, and their signed head. Version 1 rows hold format-1 snapshots no edge
//!   accepts any more: they are dropped, the version counter is kept (new versions stay above
//!   every version handed out before), and a store that had tokens or snapshots gets state
//!   serial 1, so `serve` or `publish` signs the current state at once.
//! - **3**: account names are case-insensitive for lookup and uniqueness: an index on
//!   `name COLLATE NOCASE` keeps those lookups indexed. Not unique: a store from before may
//!   hold `Alice` and `alice`; both stay, and an exact match wins.
//! - **4**: the platform API's login sessions (`sessions`: SHA-256 of the value, never the
//!   value) and the failed sign-ins counted per client address and per login that names no
//!   account (`signin_failures`; an account's own count stays in `users.failed_attempts`,
//!   shared with the CLI's password confirmations).
//! - **5**: snapshot format 3: documents are full snapshots or deltas, stored by
//!   `(version, kind)` (a compaction is a full snapshot at the version of the delta it sums
//!   up) with the state id they produce, the version a delta applies to and the chain they
//!   belong to. Schema-4 rows hold format-2 snapshots no edge accepts any more: they are
//!   dropped and the version counter kept, as in 2; a store that had any gets state serial 1
//!   at least, so `serve` or `publish` signs a full snapshot at once. Every token change is
//!   recorded in `token_changes` (the token and its old hash) in its own transaction, until
//!   the next document takes it in, and `tokens.in_state` says which tokens the latest
//!   document's state holds (so a delta removes exactly the ones that expired since). Tokens
//!   get `last_used_at` and `last_used_ip`, merged from the edges' usage reports, and
//!   `edge_keys` holds the public keys those reports are signed with.
//! - **6**: per-token client networks and regeneration grace windows. `tokens.networks`
//!   holds the allowed client networks (normalized CIDRs, sorted, space-separated; empty:
//!   any address). A token regenerated with a grace window keeps its previous value's hash
//!   in `tokens.old_hash` until `tokens.old_until` (a second record of the same token in
//!   every document, ending at the earlier of that instant and the token's own expiry);
//!   `tokens.old_in_state` says whether the latest document's state holds it, as
//!   `in_state` does for the current value. Existing tokens get no limit and no old value;
//!   the documents stored stay valid (snapshot format 3 already carried networks), so the
//!   next change is a delta on the latest one.
//! - **7**: password checks under way (`password_checks`): a slot per account (or login
//!   that names none) and per client address, so at most one check of each waits or runs
//!   at a time, whichever process makes it ([`crate::store::checks`]), with how many attempts
//!   each refused.
//! - **8**: platform accounts and disabled accounts. `users.platform_uid` (unique) and
//!   `users.email` hold a platform account's uid and its email as the platform last said
//!   (platform mode: accounts are keyed by uid, named `uid:<uid>`, and have no password here);
//!   `users.identity` is what edges forward for the account's tokens when it is not the name
//!   (the uid or the email, `config set platform-identity`). `users.disabled_at`, `_by`
//!   (`operator` or `platform`) and `_reason` mark a disabled account, whose tokens carry
//!   `tokens.suspended`: they stay in the store and leave every document until the account is
//!   enabled again. Existing accounts stay local and enabled.
//! - **9**: signing keys sealed in the store. `signing_keys.sealed` holds a private key
//!   encrypted with the key from `PAT_ADMIN_KEY_SECRET` (XChaCha20-Poly1305), for stores
//!   shared by several hosts (PostgreSQL), where no key file can be; `file` is empty then.
//!   Existing keys stay in their files.
//! - **10**: snapshot format 4: tokens limited to named environments and per-token rate
//!   limits. `tokens.envs` holds the environment list (names lowercase, sorted, unique,
//!   comma-joined: [`pat_core::env::EnvList::encoded`]; empty: any environment) and
//!   `tokens.rate_limit` the token's own limit (`10/s`, `600/min`:
//!   [`pat_core::rate::RateLimit`]'s text; NULL: none, the `default-rate-limit` setting
//!   applies). Existing tokens get neither. The documents stored are format 3, which no edge
//!   accepts any more: as in 5, they are dropped and the version counter kept, and a store
//!   that had any gets its state serial moved on by one, so `serve` or `publish` signs a full
//!   snapshot at once (above every version handed out before).

use crate::store::db::{Connection, OptionalExtension};

/// The schema version this build writes.
pub const VERSION: i64 = 10;

/// Version 1 of the schema, frozen: the starting point of every migration.
pub const V1: &str = "
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

/// Version 1 to 2 (see the module documentation).
const V1_TO_V2: &str = "
INSERT INTO meta (key, value)
    SELECT 'state_serial', '1'
    WHERE EXISTS (SELECT 1 FROM tokens) OR EXISTS (SELECT 1 FROM snapshots)
    ON CONFLICT (key) DO NOTHING;

DROP TABLE snapshots;
CREATE TABLE snapshots (
    version      INTEGER PRIMARY KEY,
    issued_at    INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,     -- signed: no edge uses it from then on
    key_id       TEXT NOT NULL,
    state_serial INTEGER NOT NULL,     -- meta.state_serial it was built from
    tokens       INTEGER NOT NULL,
    head         BLOB NOT NULL,        -- the signed head: the first BODY_OFFSET bytes of bytes
    bytes        BLOB NOT NULL         -- the signed snapshot (hashes only)
) STRICT;
";

/// Version 2 to 3 (see the module documentation).
const V2_TO_V3: &str = "
CREATE INDEX users_by_name_nocase ON users(name COLLATE NOCASE);
";

/// Version 3 to 4 (see the module documentation).
const V3_TO_V4: &str = "
CREATE TABLE sessions (
    hash         BLOB PRIMARY KEY,                    -- SHA-256 of the value; the value is never stored
    user         TEXT NOT NULL REFERENCES users(name),
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    client       TEXT NOT NULL                        -- the address it signed in from
) STRICT, WITHOUT ROWID;
CREATE INDEX sessions_by_user ON sessions(user);

CREATE TABLE signin_failures (
    kind           TEXT NOT NULL,                     -- 'address', or 'login' (names no account)
    key            TEXT NOT NULL,                     -- the address, or the login lowercased
    failures       INTEGER NOT NULL,
    last_failed_at INTEGER NOT NULL,
    PRIMARY KEY (kind, key)
) STRICT, WITHOUT ROWID;
";

/// Version 4 to 5 (see the module documentation).
const V4_TO_V5: &str = "
INSERT INTO meta (key, value)
    SELECT 'state_serial', '1'
    WHERE EXISTS (SELECT 1 FROM snapshots)
    ON CONFLICT (key) DO NOTHING;

DROP TABLE snapshots;
CREATE TABLE snapshots (
    version      INTEGER NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('full', 'delta')),
    base_version INTEGER,              -- a delta: the version it applies to; NULL for a full
    chain        INTEGER NOT NULL,     -- the version of the full snapshot that started its chain
    state_id     BLOB NOT NULL,        -- the state after it (signed in its header)
    issued_at    INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,     -- signed: no edge uses it from then on
    key_id       TEXT NOT NULL,
    state_serial INTEGER NOT NULL,     -- meta.state_serial it was built from
    tokens       INTEGER NOT NULL,     -- tokens in the state after it
    len          INTEGER NOT NULL,     -- length of bytes
    head         BLOB NOT NULL,        -- the signed head: the first BODY_OFFSET bytes of bytes
    bytes        BLOB NOT NULL,        -- the signed document (hashes only)
    PRIMARY KEY (version, kind)
) STRICT;

CREATE TABLE token_changes (
    seq      INTEGER PRIMARY KEY,
    token_id INTEGER NOT NULL,         -- the token inserted, changed or deleted
    old_hash BLOB                      -- its hash before, when that hash stops being valid
) STRICT;

ALTER TABLE tokens ADD COLUMN last_used_at INTEGER;   -- Unix seconds, from usage reports
ALTER TABLE tokens ADD COLUMN last_used_ip TEXT;      -- the client address of that use
-- 1 while the token (its current hash) is in the state the latest document describes.
ALTER TABLE tokens ADD COLUMN in_state INTEGER NOT NULL DEFAULT 0;
CREATE INDEX tokens_in_state_by_expiry ON tokens(expires_at) WHERE in_state = 1;

CREATE TABLE edge_keys (
    id             TEXT PRIMARY KEY,   -- key id (hex)
    name           TEXT NOT NULL UNIQUE COLLATE NOCASE,
    public_key     TEXT NOT NULL,      -- ed25519:<base64url>; the secret is only in the edge's file
    created_at     INTEGER NOT NULL,
    last_report_at INTEGER             -- the last usage report accepted from it
) STRICT;
";

/// Version 5 to 6 (see the module documentation).
const V5_TO_V6: &str = "
ALTER TABLE tokens ADD COLUMN networks TEXT NOT NULL DEFAULT '';  -- allowed client networks, space-separated
ALTER TABLE tokens ADD COLUMN old_hash BLOB;      -- SHA-256 of the previous value, during its grace window
ALTER TABLE tokens ADD COLUMN old_until INTEGER;  -- exclusive end of that window, Unix seconds
-- 1 while the previous value is in the state the latest document describes.
ALTER TABLE tokens ADD COLUMN old_in_state INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX tokens_by_old_hash ON tokens(old_hash) WHERE old_hash IS NOT NULL;
CREATE INDEX tokens_old_in_state_by_end ON tokens(old_until) WHERE old_in_state = 1;
";

/// Version 6 to 7 (see the module documentation).
const V6_TO_V7: &str = "
CREATE TABLE password_checks (
    key      TEXT PRIMARY KEY,     -- 'login:<name lowercased>' or 'address:<client address>'
    holder   INTEGER NOT NULL,     -- random id of the check holding the slot
    ends_at  INTEGER NOT NULL,     -- Unix ms: when that check is expected to be over
    stale_at INTEGER NOT NULL,     -- Unix ms: from then on the slot no longer blocks (holder killed)
    refused  INTEGER NOT NULL DEFAULT 0  -- attempts refused because of it (audited in sum)
) STRICT, WITHOUT ROWID;
CREATE INDEX password_checks_by_holder ON password_checks(holder);
";

/// Version 7 to 8 (see the module documentation).
const V7_TO_V8: &str = "
ALTER TABLE users ADD COLUMN platform_uid INTEGER;   -- the platform's uid (platform accounts only)
ALTER TABLE users ADD COLUMN email TEXT;             -- a platform account's email, as the platform last said
ALTER TABLE users ADD COLUMN identity TEXT;          -- what edges forward when not the name
ALTER TABLE users ADD COLUMN disabled_at INTEGER;    -- Unix seconds; NULL: enabled
ALTER TABLE users ADD COLUMN disabled_by TEXT;       -- 'operator' or 'platform'
ALTER TABLE users ADD COLUMN disabled_reason TEXT;
CREATE UNIQUE INDEX users_by_platform_uid ON users(platform_uid) WHERE platform_uid IS NOT NULL;
CREATE INDEX users_by_email ON users(email COLLATE NOCASE) WHERE email IS NOT NULL;
-- 1 while the token's account is disabled: no document holds it.
ALTER TABLE tokens ADD COLUMN suspended INTEGER NOT NULL DEFAULT 0;
";

/// Version 8 to 9 (see the module documentation).
const V8_TO_V9: &str = "
ALTER TABLE signing_keys ADD COLUMN sealed BLOB;   -- the private key, sealed (file empty then)
";

/// Version 9 to 10 (see the module documentation); the same statements on both engines.
const V9_TO_V10: &str = "
INSERT INTO meta (key, value)
    SELECT 'state_serial', '1'
    WHERE EXISTS (SELECT 1 FROM snapshots)
    ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(meta.value AS BIGINT) + 1 AS TEXT);
DELETE FROM snapshots;
DELETE FROM token_changes;
ALTER TABLE tokens ADD COLUMN envs TEXT NOT NULL DEFAULT '';  -- environment names, comma-joined; empty: any
ALTER TABLE tokens ADD COLUMN rate_limit TEXT;                -- 10/s, 600/min; NULL: none of its own
";

/// The PostgreSQL schema at version 9 (see the module documentation).
pub const PG_V9: &str = r#"
CREATE COLLATION IF NOT EXISTS nocase (provider = icu, locale = 'und-u-ks-level2', deterministic = false);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE users (
    name            TEXT PRIMARY KEY,
    password_hash   TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    failed_attempts BIGINT NOT NULL DEFAULT 0,
    last_failed_at  BIGINT,
    platform_uid    BIGINT,
    email           TEXT,
    identity        TEXT,
    disabled_at     BIGINT,
    disabled_by     TEXT,
    disabled_reason TEXT
);
CREATE INDEX users_by_name_nocase ON users ((name COLLATE nocase));
CREATE UNIQUE INDEX users_by_platform_uid ON users(platform_uid) WHERE platform_uid IS NOT NULL;
CREATE INDEX users_by_email ON users ((email COLLATE nocase)) WHERE email IS NOT NULL;

CREATE TABLE tokens (
    id             BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    "user"         TEXT NOT NULL REFERENCES users(name),
    description    TEXT NOT NULL,
    hash           BYTEA NOT NULL UNIQUE,
    scope_set      TEXT,
    scope_methods  TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT,
    regenerated_at BIGINT,
    last_used_at   BIGINT,
    last_used_ip   TEXT,
    in_state       BIGINT NOT NULL DEFAULT 0,
    networks       TEXT NOT NULL DEFAULT '',
    old_hash       BYTEA,
    old_until      BIGINT,
    old_in_state   BIGINT NOT NULL DEFAULT 0,
    suspended      BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX tokens_by_user ON tokens("user");
CREATE INDEX tokens_in_state_by_expiry ON tokens(expires_at) WHERE in_state = 1;
CREATE UNIQUE INDEX tokens_by_old_hash ON tokens(old_hash) WHERE old_hash IS NOT NULL;
CREATE INDEX tokens_old_in_state_by_end ON tokens(old_until) WHERE old_in_state = 1;

CREATE TABLE signing_keys (
    id         TEXT PRIMARY KEY,
    public_key TEXT NOT NULL,
    file       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    active     BIGINT NOT NULL DEFAULT 0,
    sealed     BYTEA,
    rowid      BIGINT GENERATED ALWAYS AS IDENTITY
);

CREATE TABLE edges (
    url      TEXT PRIMARY KEY,
    added_at BIGINT NOT NULL
);

CREATE TABLE snapshots (
    version      BIGINT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('full', 'delta')),
    base_version BIGINT,
    chain        BIGINT NOT NULL,
    state_id     BYTEA NOT NULL,
    issued_at    BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    key_id       TEXT NOT NULL,
    state_serial BIGINT NOT NULL,
    tokens       BIGINT NOT NULL,
    len          BIGINT NOT NULL,
    head         BYTEA NOT NULL,
    bytes        BYTEA NOT NULL,
    PRIMARY KEY (version, kind)
);

CREATE TABLE token_changes (
    seq      BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    token_id BIGINT NOT NULL,
    old_hash BYTEA
);

CREATE TABLE audit (
    id       BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    at       BIGINT NOT NULL,
    actor    TEXT NOT NULL,
    account  TEXT,
    action   TEXT NOT NULL,
    token_id BIGINT,
    detail   TEXT NOT NULL
);

CREATE TABLE sessions (
    hash         BYTEA PRIMARY KEY,
    "user"       TEXT NOT NULL REFERENCES users(name),
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    client       TEXT NOT NULL
);
CREATE INDEX sessions_by_user ON sessions("user");

CREATE TABLE signin_failures (
    kind           TEXT NOT NULL,
    key            TEXT NOT NULL,
    failures       BIGINT NOT NULL,
    last_failed_at BIGINT NOT NULL,
    PRIMARY KEY (kind, key)
);

CREATE TABLE edge_keys (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL COLLATE nocase UNIQUE,
    public_key     TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    last_report_at BIGINT,
    rowid          BIGINT GENERATED ALWAYS AS IDENTITY
);

CREATE TABLE password_checks (
    key      TEXT PRIMARY KEY,
    holder   BIGINT NOT NULL,
    ends_at  BIGINT NOT NULL,
    stale_at BIGINT NOT NULL,
    refused  BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX password_checks_by_holder ON password_checks(holder);
"#;

/// The tables every pat-admin schema has (a database with others, without these, is not
/// pat-admin's).
pub const CORE_TABLES: [&str; 4] = ["meta", "users", "tokens", "signing_keys"];

/// Brings the schema up to [`VERSION`]. Refuses a store written by a newer pat-admin.
pub fn migrate(tx: &Connection) -> Result<(), String> {
    match tx.engine() {
        crate::store::db::Engine::Sqlite => migrate_to(tx, VERSION),
        crate::store::db::Engine::Postgres => migrate_pg(tx),
    }
}

/// The PostgreSQL schema's version: 0 for an empty database.
pub fn pg_version(tx: &Connection) -> Result<i64, String> {
    let has_meta: bool = tx
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'meta')",
            [],
            |row| row.get(0),
        )
        .map_err(|e| e.to_string())?;
    if !has_meta {
        return Ok(0);
    }
    let version: Option<String> = tx
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |row| row.get(0),
        )
        .optional()
        .map_err(|e| e.to_string())?;
    version.map_or(Ok(0), |v| {
        v.parse()
            .map_err(|_| format!("schema_version {v:?} is not a number"))
    })
}

/// PostgreSQL: creates the schema at version 9 in an empty database, then migrates it.
fn migrate_pg(tx: &Connection) -> Result<(), String> {
    let current = pg_version(tx)?;
    if current > VERSION {
        return Err(format!(
            "the store has schema version {current}, newer than this pat-admin understands ({VERSION}); use a newer pat-admin"
        ));
    }
    if current < 9 {
        tx.execute_batch(PG_V9)
            .map_err(|e| format!("cannot create the schema: {e}"))?;
    }
    if current < 10 {
        tx.execute_batch(V9_TO_V10)
            .map_err(|e| format!("cannot migrate the schema from version 9 to 10: {e}"))?;
    }
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', ?1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [VERSION.max(current).to_string()],
    )
    .map_err(|e| e.to_string())?;
    Ok(())
}

/// Brings the schema up to `target` (SQLite).
pub fn migrate_to(tx: &Connection, target: i64) -> Result<(), String> {
    let sqlite = tx
        .as_sqlite()
        .ok_or("migrate_to is SQLite's; PostgreSQL stores start at version 9")?;
    migrate_sqlite_to(sqlite, target)
}

/// Brings a SQLite schema up to `target`, in the caller's transaction (tests build the
/// stores older releases left with it).
pub fn migrate_sqlite_to(tx: &rusqlite::Connection, target: i64) -> Result<(), String> {
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
    if current < 2 && target >= 2 {
        tx.execute_batch(V1_TO_V2)
            .map_err(|e| format!("cannot migrate the schema from version 1 to 2: {e}"))?;
    }
    if current < 3 && target >= 3 {
        tx.execute_batch(V2_TO_V3)
            .map_err(|e| format!("cannot migrate the schema from version 2 to 3: {e}"))?;
    }
    if current < 4 && target >= 4 {
        tx.execute_batch(V3_TO_V4)
            .map_err(|e| format!("cannot migrate the schema from version 3 to 4: {e}"))?;
    }
    if current < 5 && target >= 5 {
        tx.execute_batch(V4_TO_V5)
            .map_err(|e| format!("cannot migrate the schema from version 4 to 5: {e}"))?;
    }
    if current < 6 && target >= 6 {
        tx.execute_batch(V5_TO_V6)
            .map_err(|e| format!("cannot migrate the schema from version 5 to 6: {e}"))?;
    }
    if current < 7 && target >= 7 {
        tx.execute_batch(V6_TO_V7)
            .map_err(|e| format!("cannot migrate the schema from version 6 to 7: {e}"))?;
    }
    if current < 8 && target >= 8 {
        tx.execute_batch(V7_TO_V8)
            .map_err(|e| format!("cannot migrate the schema from version 7 to 8: {e}"))?;
    }
    if current < 9 && target >= 9 {
        tx.execute_batch(V8_TO_V9)
            .map_err(|e| format!("cannot migrate the schema from version 8 to 9: {e}"))?;
    }
    if current < 10 && target >= 10 {
        tx.execute_batch(V9_TO_V10)
            .map_err(|e| format!("cannot migrate the schema from version 9 to 10: {e}"))?;
    }
    tx.pragma_update(None, "user_version", target.max(current))
        .map_err(|e| e.to_string())?;
    Ok(())
}
