//! The store: one SQLite database (`pat-admin.db`) and a `keys/` directory in the store
//! directory.
//!
//! Crash-safe and shared by concurrent `pat-admin` processes: WAL journal, `synchronous=FULL`,
//! a busy timeout, and every change in one `BEGIN IMMEDIATE` transaction, so a process killed
//! mid-change leaves the store as before or after it. The directory is `0700` and the database
//! `0600` (it holds password hashes); token values are never stored, only their SHA-256.
//!
//! - [`schema`]: tables and migrations.
//! - [`users`], [`tokens`], [`keys`], [`edges`], [`edge_keys`] (the keys edges sign usage
//!   reports with), [`snapshots`], [`audit`], [`settings`], [`sessions`] (the API's login
//!   sessions and failed sign-ins): one module per table, functions over a connection or
//!   transaction.

pub mod audit;
pub mod checks;
pub mod edge_keys;
pub mod edges;
pub mod keys;
pub mod schema;
pub mod sessions;
pub mod settings;
pub mod snapshots;
pub mod tokens;
pub mod users;

use std::fs::{DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::error::{Error, Result};

/// File name of the database inside the store directory.
pub const DB_FILE: &str = "pat-admin.db";
/// Directory of private key files inside the store directory.
pub const KEYS_DIR: &str = "keys";
/// How long a process waits for another one's write transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether opening may create a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    /// Commands that write (`user add`, `key generate`, `edge add`, `config set`, `serve`):
    /// create the directory and database when there is none.
    Create,
    /// Every other command: a store must exist ([`Error::NoStore`] otherwise).
    Existing,
}

/// An open store.
pub struct Store {
    conn: Connection,
    dir: PathBuf,
    warnings: Vec<String>,
}

/// Whether `dir/keys` holds any file (a store's key files outlive a lost database).
fn has_key_files(dir: &Path) -> bool {
    std::fs::read_dir(dir.join(KEYS_DIR))
        .map(|mut entries| entries.any(|e| e.is_ok()))
        .unwrap_or(false)
}

/// What the database file holds before it is migrated.
#[derive(Debug, PartialEq, Eq)]
enum Contents {
    /// No schema at all: a new (or emptied) database.
    Empty,
    /// pat-admin's schema.
    Ours,
    /// Tables, but not pat-admin's.
    Foreign,
}

fn contents(conn: &Connection) -> Result<Contents> {
    // One read transaction: another process may be creating the schema right now, and the
    // version and the tables must come from the same state of the file (its tables without
    // its version read as a foreign database).
    let tx = conn.unchecked_transaction()?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let tables: Vec<String> = tx
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    tx.commit()?;
    let ours = ["meta", "users", "tokens", "signing_keys"]
        .iter()
        .all(|t| tables.iter().any(|have| have == t));
    Ok(match (version, tables.is_empty()) {
        (0, true) => Contents::Empty,
        (v, false) if v >= 1 && ours => Contents::Ours,
        _ => Contents::Foreign,
    })
}

impl Store {
    /// Opens the store in `dir`, creating it when there is none (for tools and benchmarks
    /// that set a store up; the commands choose with [`Store::open_as`]).
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_as(dir, Open::Create)
    }

    /// Opens the store in `dir`, creating it only with [`Open::Create`]. Refuses a database
    /// that is empty while the directory still holds key files (a truncated or replaced
    /// database must not silently become a new store), and one that is not pat-admin's.
    pub fn open_as(dir: &Path, how: Open) -> Result<Self> {
        let store_err = |message: String| Error::Store {
            dir: dir.to_path_buf(),
            message,
        };
        if dir.exists() && !dir.is_dir() {
            return Err(store_err("is not a directory".into()));
        }
        let db = dir.join(DB_FILE);
        let db_existed = db.exists();
        if !db_existed {
            if has_key_files(dir) {
                return Err(store_err(format!(
                    "{} is missing but {KEYS_DIR}/ still holds key files: restore the database from a backup, or move {KEYS_DIR}/ away to start a new store",
                    db.display()
                )));
            }
            if how == Open::Existing {
                return Err(Error::NoStore(dir.to_path_buf()));
            }
        }
        let mut warnings = Vec::new();
        if dir.is_dir() {
            let mode = std::fs::metadata(dir)
                .map_err(|e| Error::io(dir, e))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                warnings.push(format!(
                    "the store directory {} is open to other users (mode {:o}): they could replace its files; run: chmod 700 {}",
                    dir.display(),
                    mode & 0o777,
                    dir.display()
                ));
            }
        } else {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| store_err(format!("cannot create the directory: {e}")))?;
        }
        // Create the database file ourselves so it is 0600 from the first byte; SQLite gives
        // its -wal and -shm files the same permissions. Only when it does not exist: closing
        // a descriptor of an open database drops every POSIX lock this process holds on it
        // (SQLite's, of any connection already open here), after which another process
        // closing its connection thinks it is the last one, checkpoints and deletes the WAL
        // under this process's feet, and this process's later commits are lost.
        if !db_existed {
            OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&db)
                .map_err(|e| Error::io(&db, e))?;
        }
        let mode = std::fs::metadata(&db)
            .map_err(|e| Error::io(&db, e))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(store_err(format!(
                "{} is readable by other users (mode {:o}); run: chmod 600 {}",
                db.display(),
                mode & 0o777,
                db.display()
            )));
        }
        let conn = Connection::open(&db)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        match contents(&conn)? {
            Contents::Ours => {}
            Contents::Foreign => {
                return Err(store_err(format!(
                    "{} is not a pat-admin database; point --store at the right directory, or move the file away",
                    db.display()
                )));
            }
            Contents::Empty if db_existed && has_key_files(dir) => {
                return Err(store_err(format!(
                    "{} is empty but {KEYS_DIR}/ holds key files: the database was truncated or replaced; restore it from a backup (pat-admin does not start a new store over an old one)",
                    db.display()
                )));
            }
            Contents::Empty if how == Open::Existing => {
                return Err(Error::NoStore(dir.to_path_buf()));
            }
            Contents::Empty => {}
        }
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let mut store = Self {
            conn,
            dir: dir.to_path_buf(),
            warnings,
        };
        store.write(|tx| schema::migrate(tx).map_err(store_err))?;
        Ok(store)
    }

    /// Things about the store an operator should fix (printed as warnings).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Opens an existing store for reading only, without creating or migrating anything
    /// (`serve` answers each request from its own connection; the process opened the store
    /// with [`Store::open`] first). Writes through it fail.
    pub fn open_reader(dir: &Path) -> Result<Self> {
        let db = dir.join(DB_FILE);
        if !db.is_file() {
            return Err(Error::Store {
                dir: dir.to_path_buf(),
                message: format!("{} does not exist", db.display()),
            });
        }
        let conn = Connection::open(&db)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "query_only", "ON")?;
        Ok(Self {
            conn,
            dir: dir.to_path_buf(),
            warnings: Vec::new(),
        })
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory of private key files.
    pub fn keys_dir(&self) -> PathBuf {
        self.dir.join(KEYS_DIR)
    }

    /// A read-only view (SQLite reads see one consistent snapshot per statement).
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Runs `change` in one immediate (write-locking) transaction: all of it or none of it.
    pub fn write<T>(&mut self, change: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = change(&tx)?;
        failpoint_before_commit();
        tx.commit()?;
        Ok(out)
    }

    /// Runs `read` in one deferred transaction, so several queries see the same state.
    pub fn read<T>(&mut self, read: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Deferred)?;
        let out = read(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// `PRAGMA integrity_check` and foreign keys: the store is sound.
    pub fn check_integrity(&self) -> Result<()> {
        let result: String = self
            .conn
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))?;
        if result != "ok" {
            return Err(Error::Store {
                dir: self.dir.clone(),
                message: format!("integrity check failed: {result}"),
            });
        }
        let violations: i64 =
            self.conn
                .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |row| {
                    row.get(0)
                })?;
        if violations != 0 {
            return Err(Error::Store {
                dir: self.dir.clone(),
                message: format!("{violations} foreign key violations"),
            });
        }
        Ok(())
    }
}

/// Test hook for the crash tests: with `PAT_ADMIN_FAILPOINT=sleep-before-commit`, a change
/// waits inside its transaction before committing, so a test can kill the process there.
fn failpoint_before_commit() {
    if std::env::var_os("PAT_ADMIN_FAILPOINT").is_some_and(|v| v == "sleep-before-commit") {
        eprintln!("pat-admin: failpoint: sleeping before commit");
        std::thread::sleep(Duration::from_secs(30));
    }
}

/// The current time, Unix seconds.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
