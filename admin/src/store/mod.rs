//! The store, on one of two engines ([`db::Location`]):
//!
//! - **SQLite** (the default): one database (`pat-admin.db`) and a `keys/` directory in the
//!   store directory. Crash-safe and shared by concurrent `pat-admin` processes on one host:
//!   WAL journal, `synchronous=FULL`, a busy timeout, and every change in one
//!   `BEGIN IMMEDIATE` transaction, so a process killed mid-change leaves the store as before
//!   or after it. The directory is `0700` and the database `0600` (it holds password hashes).
//! - **PostgreSQL** (`postgres://…`): the same tables in one database, shared by several
//!   `pat-admin serve` replicas on several hosts. Every change holds the store's write lock
//!   (an advisory lock) for its transaction, as SQLite's `BEGIN IMMEDIATE` does, so the
//!   snapshot chain stays linear whichever replica changes it. Private keys are sealed in
//!   the store ([`sealed`]), since no host's files are shared.
//!
//! Token values are never stored on either, only their SHA-256.
//!
//! Every "now" of the store and of what runs over it comes from the store's
//! [`Clock`] ([`Store::clock`], [`Store::now`]; [`Connection::now`] inside a transaction).
//!
//! - [`db`]: the connection both engines share (one dialect, rusqlite's shapes).
//! - [`pg_tls`]: TLS to PostgreSQL from the store URL's `sslmode` and `sslrootcert`.
//! - [`pool`]: the connections `serve` keeps and reuses.
//! - [`schema`]: tables and migrations.
//! - [`sealed`]: private keys sealed in the store.
//! - [`copy`]: `pat-admin store copy`, from one store into an empty one.
//! - [`users`], [`tokens`], [`keys`], [`edges`], [`edge_keys`] (the keys edges sign usage
//!   reports with), [`snapshots`], [`audit`], [`settings`], [`sessions`] (the API's login
//!   sessions and failed sign-ins): one module per table, functions over a connection or
//!   transaction.

pub mod audit;
pub mod checks;
pub mod copy;
pub mod db;
pub mod edge_keys;
pub mod edges;
pub mod keys;
pub mod pg_tls;
pub mod pool;
pub mod schema;
pub mod sealed;
pub mod sessions;
pub mod settings;
pub mod snapshots;
pub mod tokens;
pub mod users;

use std::fs::{DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::store::db::{Begin, Connection, Engine, Location};

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
    location: Location,
    warnings: Vec<String>,
}

/// Whether `dir/keys` holds any file (a store's key files outlive a lost database).
fn has_key_files(dir: &Path) -> bool {
    std::fs::read_dir(dir.join(KEYS_DIR))
        .map(|mut entries| entries.any(|e| e.is_ok()))
        .unwrap_or(false)
}

/// What the database holds before it is migrated.
#[derive(Debug, PartialEq, Eq)]
enum Contents {
    /// No schema at all: a new (or emptied) database.
    Empty,
    /// pat-admin's schema.
    Ours,
    /// Tables, but not pat-admin's.
    Foreign,
}

fn classify(version: i64, tables: &[String]) -> Contents {
    let ours = schema::CORE_TABLES
        .iter()
        .all(|t| tables.iter().any(|have| have == t));
    match (version, tables.is_empty()) {
        (0, true) => Contents::Empty,
        (v, false) if v >= 1 && ours => Contents::Ours,
        _ => Contents::Foreign,
    }
}

fn sqlite_contents(conn: &rusqlite::Connection) -> Result<Contents> {
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
    Ok(classify(version, &tables))
}

/// PostgreSQL: inside the caller's transaction.
fn pg_contents(tx: &Connection, location: &Location) -> Result<Contents> {
    let tables: Vec<String> = tx
        .prepare(
            "SELECT CAST(table_name AS TEXT) FROM information_schema.tables WHERE table_schema = current_schema()",
        )?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let version = if tables.iter().any(|t| t == "meta") {
        schema::pg_version(tx).map_err(|message| Error::Store {
            store: location.clone(),
            message,
        })?
    } else {
        0
    };
    Ok(classify(version, &tables))
}

impl Store {
    /// Opens the store at `location`, creating it when there is none (for tools and
    /// benchmarks that set a store up; the commands choose with [`Store::open_as`]).
    pub fn open(location: impl Into<Location>) -> Result<Self> {
        Self::open_as(location, Open::Create)
    }

    /// Opens the store at `location`, creating it only with [`Open::Create`]. Refuses a
    /// database that is not pat-admin's, and (SQLite) one that is empty while the directory
    /// still holds key files (a truncated or replaced database must not silently become a
    /// new store).
    pub fn open_as(location: impl Into<Location>, how: Open) -> Result<Self> {
        match location.into() {
            Location::Sqlite(dir) => Self::open_sqlite(&dir, how),
            Location::Postgres(url) => Self::open_postgres(&url, how),
        }
    }

    fn open_postgres(url: &str, how: Open) -> Result<Self> {
        let location = Location::Postgres(url.to_string());
        let store_err = |message: String| Error::Store {
            store: location.clone(),
            message,
        };
        let conn = Connection::postgres(url, false)
            .map_err(|e| store_err(format!("cannot connect: {e}")))?;
        let mut store = Self {
            conn,
            location: location.clone(),
            warnings: Vec::new(),
        };
        // Already pat-admin's at this version (every open but the first): no lock needed.
        let current = store.read(|tx| {
            Ok(match pg_contents(tx, &location)? {
                Contents::Ours => schema::pg_version(tx).map_err(store_err)? == schema::VERSION,
                _ => false,
            })
        })?;
        if current {
            return Ok(store);
        }
        // Under the write lock: replicas starting together create the schema once.
        store.write(|tx| {
            match pg_contents(tx, &location)? {
                Contents::Ours => {}
                Contents::Foreign => {
                    return Err(store_err(
                        "the database holds tables that are not pat-admin's; point --store at an empty database or a pat-admin store".into(),
                    ));
                }
                Contents::Empty if how == Open::Existing => {
                    return Err(Error::NoStore(location.clone()));
                }
                Contents::Empty => {}
            }
            schema::migrate(tx).map_err(store_err)
        })?;
        Ok(store)
    }

    fn open_sqlite(dir: &Path, how: Open) -> Result<Self> {
        let location = Location::Sqlite(dir.to_path_buf());
        let store_err = |message: String| Error::Store {
            store: location.clone(),
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
                return Err(Error::NoStore(location.clone()));
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
        let conn = rusqlite::Connection::open(&db)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        match sqlite_contents(&conn)? {
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
                return Err(Error::NoStore(location.clone()));
            }
            Contents::Empty => {}
        }
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let mut store = Self {
            conn: Connection::sqlite(conn),
            location: location.clone(),
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
    pub fn open_reader(location: &Location) -> Result<Self> {
        let conn = match location {
            Location::Sqlite(dir) => {
                let db = dir.join(DB_FILE);
                if !db.is_file() {
                    return Err(Error::Store {
                        store: location.clone(),
                        message: format!("{} does not exist", db.display()),
                    });
                }
                let conn = rusqlite::Connection::open(&db)?;
                conn.busy_timeout(BUSY_TIMEOUT)?;
                conn.pragma_update(None, "query_only", "ON")?;
                Connection::sqlite(conn)
            }
            Location::Postgres(url) => {
                Connection::postgres(url, true).map_err(|e| Error::Store {
                    store: location.clone(),
                    message: format!("cannot connect: {e}"),
                })?
            }
        };
        Ok(Self {
            conn,
            location: location.clone(),
            warnings: Vec::new(),
        })
    }

    /// Where the store is.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The engine it runs on.
    pub fn engine(&self) -> Engine {
        self.conn.engine()
    }

    /// The store directory of a SQLite store (`None` on PostgreSQL).
    pub fn dir(&self) -> Option<&Path> {
        self.location.dir()
    }

    /// The directory of private key files of a SQLite store.
    pub fn keys_dir(&self) -> Option<PathBuf> {
        self.dir().map(|d| d.join(KEYS_DIR))
    }

    /// The clock every "now" of this store comes from ([`crate::clock`]): the system clock
    /// unless [`Store::set_clock`] gave it another. Its connection carries it, so functions
    /// over a transaction read the same one ([`Connection::now`]).
    pub fn clock(&self) -> &Clock {
        self.conn.clock()
    }

    /// Reads the time from `clock` from now on (tests: a [`crate::clock::ManualClock`]).
    pub fn set_clock(&mut self, clock: Clock) {
        self.conn.set_clock(clock);
    }

    /// This store with `clock` ([`Store::set_clock`]).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.set_clock(clock);
        self
    }

    /// The current time by the store's clock, Unix seconds.
    pub fn now(&self) -> u64 {
        self.conn.now()
    }

    /// The connection, for reads outside a transaction (each statement sees one state).
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Runs `change` in one transaction holding the store's write lock: all of it or none
    /// of it.
    pub fn write<T>(&mut self, change: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.conn.begin(Begin::Write)?;
        let out = match change(&self.conn) {
            Ok(out) => out,
            Err(e) => {
                let _ = self.conn.rollback();
                return Err(e);
            }
        };
        failpoint_before_commit();
        if let Err(e) = self.conn.commit() {
            let _ = self.conn.rollback();
            return Err(e.into());
        }
        Ok(out)
    }

    /// Runs `read` in one transaction, so several queries see the same state.
    pub fn read<T>(&mut self, read: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.conn.begin(Begin::Read)?;
        let out = read(&self.conn);
        let end = if out.is_ok() {
            self.conn.commit()
        } else {
            self.conn.rollback()
        };
        let out = out?;
        end?;
        Ok(out)
    }

    /// The store is sound: SQLite's `integrity_check` and foreign keys; on PostgreSQL, the
    /// server keeps both, and the schema version is checked.
    pub fn check_integrity(&self) -> Result<()> {
        let store_err = |message: String| Error::Store {
            store: self.location.clone(),
            message,
        };
        let Some(sqlite) = self.conn.as_sqlite() else {
            let version = schema::pg_version(&self.conn).map_err(store_err)?;
            if version != schema::VERSION {
                return Err(store_err(format!(
                    "schema version {version}, expected {}",
                    schema::VERSION
                )));
            }
            return Ok(());
        };
        let result: String = sqlite.query_row("PRAGMA integrity_check", [], |row| row.get(0))?;
        if result != "ok" {
            return Err(store_err(format!("integrity check failed: {result}")));
        }
        let violations: i64 =
            sqlite.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |row| {
                row.get(0)
            })?;
        if violations != 0 {
            return Err(store_err(format!("{violations} foreign key violations")));
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
