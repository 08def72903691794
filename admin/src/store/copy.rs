//! `pat-admin store copy`: every table of one store into another, empty one — a SQLite
//! store into PostgreSQL when an operator outgrows one host, or back.
//!
//! The target must be empty (no pat-admin tables, or pat-admin's with nothing in them):
//! nothing is ever merged or overwritten. The source is read in one transaction and the
//! target written in one, so a copy is all or nothing; the counts are compared before the
//! target commits. Token ids keep their values and the target's id counter continues above
//! every id the source ever handed out, so no id is reused. Signing keys keep their ids: a
//! key file of a SQLite source is sealed into a PostgreSQL target with `PAT_ADMIN_KEY_SECRET`,
//! a sealed key is written to a new `0600` file in a SQLite target. Password-check slots are
//! not copied (they last seconds); everything else is: accounts, tokens (grace windows,
//! allowlists, environment lists and rate limits with them), the audit log, edges and edge
//! keys, settings, the API's login sessions, and the whole snapshot chain, so edges carry on
//! from the version they hold.

use std::io::Write;
use std::os::unix::fs::DirBuilderExt;

use serde::Serialize;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::store::db::{Connection, Engine, Location, Value};
use crate::store::sealed::Sealer;
use crate::store::{KEYS_DIR, Open, Store, keys};

/// Each table copied, its columns (as both engines name them), and the order its rows are
/// read in.
const TABLES: &[(&str, &str, &str)] = &[
    ("meta", "key, value", "key"),
    (
        "users",
        "name, password_hash, created_at, failed_attempts, last_failed_at, platform_uid, email, identity, disabled_at, disabled_by, disabled_reason",
        "name",
    ),
    (
        "tokens",
        "id, user, description, hash, scope_set, scope_methods, created_at, expires_at, regenerated_at, last_used_at, last_used_ip, in_state, networks, old_hash, old_until, old_in_state, suspended, envs, rate_limit",
        "id",
    ),
    ("edges", "url, added_at", "url"),
    (
        "snapshots",
        "version, kind, base_version, chain, state_id, issued_at, expires_at, key_id, state_serial, tokens, len, head, bytes",
        "version, kind",
    ),
    ("token_changes", "seq, token_id, old_hash", "seq"),
    (
        "audit",
        "id, at, actor, account, action, token_id, detail",
        "id",
    ),
    (
        "sessions",
        "hash, user, created_at, last_used_at, client",
        "hash",
    ),
    (
        "signin_failures",
        "kind, key, failures, last_failed_at",
        "kind, key",
    ),
    (
        "edge_keys",
        "id, name, public_key, created_at, last_report_at",
        "created_at, rowid",
    ),
];

/// Tables whose ids are handed out by a counter the target must continue.
const COUNTERS: &[(&str, &str)] = &[("tokens", "id"), ("audit", "id"), ("token_changes", "seq")];

/// What a copy did.
#[derive(Debug, Serialize)]
pub struct Copied {
    /// The target (shown without a password).
    pub to: String,
    /// Rows copied per table, in copy order.
    pub tables: Vec<(String, u64)>,
    /// Signing keys copied (with their private keys).
    pub keys: u64,
}

/// Copies the store `from` into the empty store at `to` (created when it does not exist).
pub fn copy(from: &mut Store, to: &Location) -> Result<Copied> {
    if from.location() == to {
        return Err(Error::Invalid(format!(
            "--to {to} is the store being copied; name another store"
        )));
    }
    let mut target = Store::open_as(to.clone(), Open::Create)?;
    refuse_non_empty(&target)?;
    let sealer = match target.engine() {
        Engine::Postgres => Some(Sealer::from_env()?),
        Engine::Sqlite => None,
    };
    let source_location = from.location().clone();
    // Read everything from one state of the source.
    let (tables, key_rows, counters) = from.read(|src| {
        let mut tables = Vec::new();
        for (table, columns, order) in TABLES {
            let rows = src.rows(
                &format!("SELECT {columns} FROM {table} ORDER BY {order}"),
                [],
                |row| Ok(row.values().to_vec()),
            )?;
            tables.push((*table, *columns, rows));
        }
        let key_rows = keys::list(src)?;
        let mut counters = Vec::new();
        for (table, column) in COUNTERS {
            counters.push((*table, *column, next_id(src, table, column)?));
        }
        Ok((tables, key_rows, counters))
    })?;
    // Private keys, in the target's form.
    let mut key_copies = Vec::new();
    let mut written_files = Vec::new();
    let copied = (|| -> Result<Copied> {
        for key in &key_rows {
            let text = read_private(&source_location, key)?;
            let mut copy = key.clone();
            match (&sealer, target.dir()) {
                (Some(sealer), _) => {
                    copy.file = String::new();
                    copy.sealed = Some(sealer.seal(&key.id, &text)?);
                }
                (None, Some(dir)) => {
                    let keys_dir = dir.join(KEYS_DIR);
                    std::fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(&keys_dir)
                        .map_err(|e| Error::io(&keys_dir, e))?;
                    let relative = format!("{KEYS_DIR}/{}.key", key.id);
                    let path = dir.join(&relative);
                    let mut file = crate::commands::create_secret_file(&path)?;
                    written_files.push(path.clone());
                    file.write_all(text.as_bytes())
                        .and_then(|()| file.sync_all())
                        .map_err(|e| Error::io(&path, e))?;
                    copy.file = relative;
                    copy.sealed = None;
                }
                (None, None) => {
                    return Err(Error::Internal(
                        "a SQLite target without a directory".into(),
                    ));
                }
            }
            key_copies.push(copy);
        }
        let engine = target.engine();
        target.write(|dst| {
            // The target's own meta rows (its schema version on PostgreSQL) stay.
            dst.execute("DELETE FROM meta WHERE key <> 'schema_version'", [])?;
            let mut counts = Vec::new();
            for (table, columns, rows) in &tables {
                let width = columns.split(',').count();
                let placeholders: Vec<String> = (1..=width).map(|i| format!("?{i}")).collect();
                let insert = format!(
                    "INSERT INTO {table} ({columns}) VALUES ({})",
                    placeholders.join(", ")
                );
                let mut n = 0u64;
                for row in rows {
                    if *table == "meta" && row.first() == Some(&Value::Text("schema_version".into()))
                    {
                        continue;
                    }
                    dst.execute(&insert, row.clone())?;
                    n += 1;
                }
                let have: i64 =
                    dst.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
                let expected = if *table == "meta" {
                    n + u64::from(engine == Engine::Postgres)
                } else {
                    n
                };
                if u64::try_from(have).ok() != Some(expected) {
                    return Err(Error::Internal(format!(
                        "table {table}: {have} rows after copying {n}; nothing was copied"
                    )));
                }
                counts.push((table.to_string(), n));
            }
            for key in &key_copies {
                dst.execute(
                    "INSERT INTO signing_keys (id, public_key, file, created_at, active, sealed) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    crate::params![
                        key.id,
                        key.public_key,
                        key.file,
                        key.created_at as i64,
                        i64::from(key.active),
                        key.sealed
                    ],
                )?;
            }
            for (table, column, next) in &counters {
                continue_counter(dst, table, column, *next)?;
            }
            crate::store::audit::record(
                dst,
                None,
                "store.copy",
                None,
                &format!("copied from {source_location}"),
            )?;
            Ok(counts)
        })
        .map(|tables| Copied {
            to: to.to_string(),
            tables,
            keys: key_copies.len() as u64,
        })
    })();
    if copied.is_err() {
        for path in written_files {
            let _ = std::fs::remove_file(path);
        }
    }
    copied
}

/// A target with any row in a pat-admin table is refused.
fn refuse_non_empty(target: &Store) -> Result<()> {
    let conn = target.conn();
    for table in TABLES.iter().map(|(t, _, _)| *t).chain(["signing_keys"]) {
        let filter = if table == "meta" {
            " WHERE key <> 'schema_version'"
        } else {
            ""
        };
        let rows: i64 =
            conn.query_row(&format!("SELECT count(*) FROM {table}{filter}"), [], |r| {
                r.get(0)
            })?;
        if rows > 0 {
            return Err(Error::Refused(format!(
                "the target store {} is not empty ({table} has {rows} rows); store copy only fills an empty store",
                target.location()
            )));
        }
    }
    Ok(())
}

/// The next id the source would hand out in `table.column`: above every id it ever
/// handed out (SQLite's AUTOINCREMENT counter remembers deleted ones).
fn next_id(conn: &Connection, table: &str, column: &str) -> Result<i64> {
    let max: Option<i64> =
        conn.query_row(&format!("SELECT max({column}) FROM {table}"), [], |r| {
            r.get(0)
        })?;
    let counter: Option<i64> = match conn.engine() {
        Engine::Sqlite => {
            let has_sequence: bool = conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence')",
                [],
                |r| r.get(0),
            )?;
            if has_sequence {
                conn.query_row(
                    "SELECT max(seq) FROM sqlite_sequence WHERE name = ?1",
                    [table],
                    |r| r.get(0),
                )?
            } else {
                None
            }
        }
        Engine::Postgres => conn.query_row(
            &format!(
                "SELECT CAST(last_value AS BIGINT) FROM {}",
                pg_sequence(conn, table, column)?
            ),
            [],
            |r| r.get(0),
        )?,
    };
    Ok(max.unwrap_or(0).max(counter.unwrap_or(0)) + 1)
}

fn pg_sequence(conn: &Connection, table: &str, column: &str) -> Result<String> {
    let name: Option<String> = conn.query_row(
        "SELECT CAST(pg_get_serial_sequence(?1, ?2) AS TEXT)",
        [table, column],
        |r| r.get(0),
    )?;
    name.ok_or_else(|| Error::Internal(format!("{table}.{column} has no sequence")))
}

/// Makes the target hand out ids from `next` on.
fn continue_counter(conn: &Connection, table: &str, column: &str, next: i64) -> Result<()> {
    if next <= 1 {
        return Ok(());
    }
    match conn.engine() {
        Engine::Postgres => {
            let sequence = pg_sequence(conn, table, column)?;
            conn.query_row(
                "SELECT CAST(setval(CAST(?1 AS TEXT)::regclass, ?2, false) AS BIGINT)",
                crate::params![sequence, next],
                |r| r.get::<_, i64>(0),
            )?;
        }
        Engine::Sqlite => {
            // Only AUTOINCREMENT tables have a counter row; the others continue from max + 1.
            let autoincrement: bool = conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1 AND sql LIKE '%AUTOINCREMENT%')",
                [table],
                |r| r.get(0),
            )?;
            if autoincrement {
                conn.execute("DELETE FROM sqlite_sequence WHERE name = ?1", [table])?;
                conn.execute(
                    "INSERT INTO sqlite_sequence (name, seq) VALUES (?1, ?2)",
                    crate::params![table, next - 1],
                )?;
            }
        }
    }
    Ok(())
}

/// A key's private key text, from its file or sealed in the source.
fn read_private(source: &Location, key: &keys::Key) -> Result<Zeroizing<String>> {
    match (&key.sealed, source.dir()) {
        (Some(sealed), _) => Sealer::from_env()?.open(&key.id, sealed),
        (None, Some(dir)) => {
            let path = dir.join(&key.file);
            std::fs::read_to_string(&path)
                .map(Zeroizing::new)
                .map_err(|e| Error::io(&path, e))
        }
        (None, None) => Err(Error::Signing {
            key: key.id.clone(),
            message: format!("the store at {source} has no key file for it and no sealed key"),
        }),
    }
}
