//! One connection to the store's database, SQLite or PostgreSQL, behind one query API.
//!
//! The store's modules write their SQL once, in the dialect both engines share (numbered
//! `?N` parameters, `ON CONFLICT`, `RETURNING`, `COLLATE NOCASE`), and run it through
//! [`Connection`], whose methods have rusqlite's shapes (`execute`, `query_row`,
//! `prepare_cached(..).query_map(..)`, [`OptionalExtension::optional`]). On PostgreSQL a
//! statement is rewritten once and cached: `?N` becomes `$N` and the column name `user` (a
//! reserved word there) is quoted. Values travel as [`Value`]: integers are `i64` on both
//! engines (PostgreSQL columns are `BIGINT`), text, bytes, or NULL; a parameter takes the
//! type PostgreSQL inferred for its place.
//!
//! Transactions are the caller's ([`crate::store::Store::write`] and `read`):
//! [`Connection::begin`], [`Connection::commit`], [`Connection::rollback`]. A write
//! transaction holds the store's one write lock for its whole length on both engines
//! (SQLite's `BEGIN IMMEDIATE`; a transaction-scoped advisory lock on PostgreSQL), so
//! changes are serialized exactly as they were on one SQLite file, whatever process or host
//! makes them: version numbers are allocated in order, with no gap and no fork.
//!
//! A PostgreSQL connection that the server closed (a restart, a failover) is opened again
//! at the next transaction's start; a transaction in flight when it closed fails with an
//! error and changes nothing. Each PostgreSQL connection lives on a thread of its own
//! (the sync client drives its own small runtime, which may not run inside `serve`'s), and
//! calls wait for it as a SQLite call waits for its file.
//!
//! Layout: [`Location`] (where a store is), [`Value`]/[`ToValue`]/[`FromValue`] and
//! [`Params`] (values in and out), [`Row`] and [`Statement`] (rusqlite's shapes), the
//! engine-specific parts at the bottom (`pg_sql`, `PgParam`, `pg_value`).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use postgres::types::{IsNull, ToSql, Type};

use crate::clock::Clock;
use crate::store::pg_tls;
use postgres_types::to_sql_checked;

/// What a database call returns.
pub type Result<T, E = DbError> = std::result::Result<T, E>;

/// PostgreSQL advisory lock key of the store's write lock (`"pat-admin"` in ASCII).
const WRITE_LOCK: i64 = 0x7061_742d_6164_6d69;
/// How long opening a PostgreSQL connection may take.
const PG_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A database call failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// SQLite failed.
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed (or could not be reached).
    #[error("{}", pg_message(.0))]
    Postgres(#[from] postgres::Error),
    /// A query that must return a row returned none.
    #[error("the query returned no row")]
    NoRows,
    /// A stored value has an unexpected type or content.
    #[error("column {column}: {message}")]
    Conversion {
        /// Column index.
        column: usize,
        /// What was wrong.
        message: String,
    },
    /// A parameter cannot be stored (an integer out of range, say).
    #[error("parameter: {0}")]
    Param(String),
    /// TLS to PostgreSQL cannot be set up as the store URL asks.
    #[error(transparent)]
    Tls(#[from] pg_tls::TlsError),
}

impl DbError {
    /// The connection to the server is gone (PostgreSQL restarted, the network dropped).
    pub fn is_disconnect(&self) -> bool {
        match self {
            Self::Postgres(e) => e.is_closed() || e.as_db_error().is_none() && e.code().is_none(),
            _ => false,
        }
    }
}

fn pg_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut text = format!("PostgreSQL: {}", db.message());
            if let Some(detail) = db.detail() {
                text.push_str(&format!(" ({detail})"));
            }
            text
        }
        None if e.is_closed() => {
            "PostgreSQL closed the connection (restarted or unreachable); retry".into()
        }
        None => {
            // The client's own errors (a TLS handshake, a refused connection) keep their
            // cause in the source chain: "error performing tls handshake: invalid peer
            // certificate: UnknownIssuer" says what to fix.
            let mut text = format!("PostgreSQL: {e}");
            let mut source = std::error::Error::source(e);
            while let Some(cause) = source {
                let cause_text = cause.to_string();
                if !text.contains(&cause_text) {
                    text.push_str(": ");
                    text.push_str(&cause_text);
                }
                source = cause.source();
            }
            if text.contains("certificate") {
                text.push_str(
                    " (the server's certificate must be signed by a CA in sslrootcert, or the system's roots, and name the host in the store URL)",
                );
            }
            text
        }
    }
}

/// Where a store is: a directory holding a SQLite file, or a PostgreSQL database.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// A store directory (`pat-admin.db` and `keys/`).
    Sqlite(PathBuf),
    /// A `postgres://` or `postgresql://` URL.
    Postgres(String),
}

impl Location {
    /// `postgres://…`/`postgresql://…` is a PostgreSQL database; anything else a directory.
    pub fn parse(text: &str) -> Self {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Self::Postgres(text.to_string())
        } else {
            Self::Sqlite(PathBuf::from(text))
        }
    }

    /// The store directory, for a SQLite store.
    pub fn dir(&self) -> Option<&Path> {
        match self {
            Self::Sqlite(dir) => Some(dir),
            Self::Postgres(_) => None,
        }
    }

    /// Which engine.
    pub fn engine(&self) -> Engine {
        match self {
            Self::Sqlite(_) => Engine::Sqlite,
            Self::Postgres(_) => Engine::Postgres,
        }
    }
}

impl From<&Path> for Location {
    fn from(dir: &Path) -> Self {
        Self::Sqlite(dir.to_path_buf())
    }
}

impl From<&PathBuf> for Location {
    fn from(dir: &PathBuf) -> Self {
        Self::Sqlite(dir.clone())
    }
}

impl From<&Location> for Location {
    fn from(location: &Location) -> Self {
        location.clone()
    }
}

impl From<PathBuf> for Location {
    fn from(dir: PathBuf) -> Self {
        Self::Sqlite(dir)
    }
}

/// Shown without the password a URL may hold.
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(dir) => write!(f, "{}", dir.display()),
            Self::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`; also a `password=`
/// query parameter.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => pair.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// The two engines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// SQLite (rusqlite, bundled).
    Sqlite,
    /// PostgreSQL (the sync `postgres` client).
    Postgres,
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        })
    }
}

/// A value in or out of the database.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// NULL.
    Null,
    /// Every integer (and boolean, as 0 or 1).
    Int(i64),
    /// A floating-point number.
    Real(f64),
    /// Text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

/// What can be a statement's parameter.
pub trait ToValue {
    /// The value to bind.
    fn to_value(&self) -> Result<Value>;
}

macro_rules! int_to_value {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn to_value(&self) -> Result<Value> {
                i64::try_from(*self)
                    .map(Value::Int)
                    .map_err(|_| DbError::Param(format!("{self} does not fit a 64-bit integer")))
            }
        }
    )*};
}
int_to_value!(i64, i32, u32, u64, usize, i16, u16, u8);

impl ToValue for bool {
    fn to_value(&self) -> Result<Value> {
        Ok(Value::Int(i64::from(*self)))
    }
}
impl ToValue for f64 {
    fn to_value(&self) -> Result<Value> {
        Ok(Value::Real(*self))
    }
}
impl ToValue for str {
    fn to_value(&self) -> Result<Value> {
        Ok(Value::Text(self.to_string()))
    }
}
impl ToValue for String {
    fn to_value(&self) -> Result<Value> {
        Ok(Value::Text(self.clone()))
    }
}
impl ToValue for [u8] {
    fn to_value(&self) -> Result<Value> {
        Ok(Value::Blob(self.to_vec()))
    }
}
impl ToValue for Vec<u8> {
    fn to_value(&self) -> Result<Value> {
        Ok(Value::Blob(self.clone()))
    }
}
impl<const N: usize> ToValue for [u8; N] {
    fn to_value(&self) -> Result<Value> {
        Ok(Value::Blob(self.to_vec()))
    }
}
impl ToValue for Value {
    fn to_value(&self) -> Result<Value> {
        Ok(self.clone())
    }
}
impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Result<Value> {
        match self {
            Some(v) => v.to_value(),
            None => Ok(Value::Null),
        }
    }
}
impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Result<Value> {
        (**self).to_value()
    }
}

/// A statement's parameters: `[]`, `[a, b]` (one type), `params![a, b]` (any types).
pub trait Params {
    /// The values, in order.
    fn values(self) -> Result<Vec<Value>>;
}

impl Params for [&dyn ToValue; 0] {
    fn values(self) -> Result<Vec<Value>> {
        Ok(Vec::new())
    }
}

impl Params for &[&dyn ToValue] {
    fn values(self) -> Result<Vec<Value>> {
        self.iter().map(|p| p.to_value()).collect()
    }
}

impl Params for Vec<Value> {
    fn values(self) -> Result<Vec<Value>> {
        Ok(self)
    }
}

macro_rules! array_params {
    ($($n:literal),*) => {$(
        impl<T: ToValue> Params for [T; $n] {
            fn values(self) -> Result<Vec<Value>> {
                self.iter().map(ToValue::to_value).collect()
            }
        }
    )*};
}
array_params!(1, 2, 3, 4, 5, 6, 7, 8);

/// Parameters of different types: `params![name, 3, hash.as_slice()]`.
#[macro_export]
macro_rules! params {
    () => {
        &[] as &[&dyn $crate::store::db::ToValue]
    };
    ($($p:expr),+ $(,)?) => {
        &[$(&$p as &dyn $crate::store::db::ToValue),+] as &[&dyn $crate::store::db::ToValue]
    };
}
pub use crate::params;

/// What a column can be read as.
pub trait FromValue: Sized {
    /// The column's value as `Self`, or what is wrong with it.
    fn from_value(value: &Value) -> std::result::Result<Self, String>;
}

macro_rules! int_from_value {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(value: &Value) -> std::result::Result<Self, String> {
                match value {
                    Value::Int(i) => <$t>::try_from(*i).map_err(|_| format!("{i} is out of range")),
                    other => Err(format!("expected an integer, found {}", kind(other))),
                }
            }
        }
    )*};
}
int_from_value!(i64, i32, u32, u64, usize);

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "NULL",
        Value::Int(_) => "an integer",
        Value::Real(_) => "a real number",
        Value::Text(_) => "text",
        Value::Blob(_) => "bytes",
    }
}

impl FromValue for bool {
    fn from_value(value: &Value) -> std::result::Result<Self, String> {
        match value {
            Value::Int(i) => Ok(*i != 0),
            other => Err(format!("expected a boolean, found {}", kind(other))),
        }
    }
}
impl FromValue for f64 {
    fn from_value(value: &Value) -> std::result::Result<Self, String> {
        match value {
            Value::Real(r) => Ok(*r),
            Value::Int(i) => Ok(*i as f64),
            other => Err(format!("expected a number, found {}", kind(other))),
        }
    }
}
impl FromValue for String {
    fn from_value(value: &Value) -> std::result::Result<Self, String> {
        match value {
            Value::Text(s) => Ok(s.clone()),
            other => Err(format!("expected text, found {}", kind(other))),
        }
    }
}
impl FromValue for Vec<u8> {
    fn from_value(value: &Value) -> std::result::Result<Self, String> {
        match value {
            Value::Blob(b) => Ok(b.clone()),
            other => Err(format!("expected bytes, found {}", kind(other))),
        }
    }
}
impl FromValue for Value {
    fn from_value(value: &Value) -> std::result::Result<Self, String> {
        Ok(value.clone())
    }
}
impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value) -> std::result::Result<Self, String> {
        match value {
            Value::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// A column index (rusqlite's `row.get::<_, T>(i)` shape).
pub trait RowIndex {
    /// The index.
    fn index(self) -> usize;
}
impl RowIndex for usize {
    fn index(self) -> usize {
        self
    }
}

/// One result row.
#[derive(Debug, Clone)]
pub struct Row {
    values: Vec<Value>,
}

impl Row {
    /// Column `i` as `T`.
    pub fn get<I: RowIndex, T: FromValue>(&self, i: I) -> Result<T> {
        let column = i.index();
        let value = self.values.get(column).ok_or_else(|| DbError::Conversion {
            column,
            message: "no such column".into(),
        })?;
        T::from_value(value).map_err(|message| DbError::Conversion { column, message })
    }

    /// Column `i` as text, borrowed.
    pub fn str(&self, column: usize) -> Result<&str> {
        match self.values.get(column) {
            Some(Value::Text(s)) => Ok(s),
            other => Err(DbError::Conversion {
                column,
                message: format!("expected text, found {}", other.map_or("nothing", kind)),
            }),
        }
    }

    /// Column `i` as bytes, borrowed.
    pub fn blob(&self, column: usize) -> Result<&[u8]> {
        match self.values.get(column) {
            Some(Value::Blob(b)) => Ok(b),
            other => Err(DbError::Conversion {
                column,
                message: format!("expected bytes, found {}", other.map_or("nothing", kind)),
            }),
        }
    }

    /// Every column.
    pub fn values(&self) -> &[Value] {
        &self.values
    }
}

/// rusqlite's `optional()`: no row is `None`.
pub trait OptionalExtension<T> {
    /// `Ok(None)` instead of [`DbError::NoRows`].
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(DbError::NoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// How a transaction begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// Holds the store's write lock until it ends.
    Write,
    /// Sees one consistent state, takes no lock.
    Read,
}

/// One connection to the store's database.
pub struct Connection {
    engine: Inner,
    /// Where this connection's users read the time ([`Connection::now`]).
    clock: Clock,
}

enum Inner {
    Sqlite(rusqlite::Connection),
    Postgres(PgThread),
}

/// A job for the connection's thread.
type Job = Box<dyn FnOnce(&mut Pg) + Send>;

/// The thread a PostgreSQL connection lives on.
struct PgThread {
    jobs: mpsc::Sender<Job>,
}

impl PgThread {
    fn start(url: &str, read_only: bool) -> Result<Self> {
        let (jobs, inbox) = mpsc::channel::<Job>();
        let (ready, opened) = mpsc::channel();
        let url = url.to_string();
        std::thread::Builder::new()
            .name("pat-admin-pg".into())
            .spawn(move || {
                let mut pg = match Pg::connect(&url, read_only) {
                    Ok(pg) => {
                        let _ = ready.send(Ok(()));
                        pg
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                // Ends when the connection is dropped (its sender with it).
                for job in inbox {
                    job(&mut pg);
                }
            })
            .map_err(|e| DbError::Param(format!("cannot start a PostgreSQL thread: {e}")))?;
        opened
            .recv()
            .map_err(|_| DbError::Param("the PostgreSQL thread ended".into()))??;
        Ok(Self { jobs })
    }

    /// Runs `job` on the connection's thread and waits for its answer.
    fn run<R: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Pg) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let (answer, answered) = mpsc::channel();
        self.jobs
            .send(Box::new(move |pg: &mut Pg| {
                // Outside a transaction a connection the server closed is opened again first
                // (a transaction opens it again in `begin`).
                let reopened = if pg.in_tx {
                    Ok(())
                } else {
                    pg.reconnect_if_closed()
                };
                let result = reopened.and_then(|()| job(pg));
                if let Err(DbError::Postgres(e)) = &result
                    && e.code().is_some_and(|c| {
                        [
                            postgres::error::SqlState::ADMIN_SHUTDOWN,
                            postgres::error::SqlState::CRASH_SHUTDOWN,
                        ]
                        .contains(c)
                    })
                {
                    pg.ending = true;
                }
                let _ = answer.send(result);
            }))
            .map_err(|_| DbError::Param("the PostgreSQL thread ended".into()))?;
        answered
            .recv()
            .map_err(|_| DbError::Param("the PostgreSQL thread ended".into()))?
    }

    fn query(&self, sql: &str, values: Vec<Value>) -> Result<Vec<Row>> {
        let sql = sql.to_string();
        self.run(move |pg| {
            let statement = pg.statement(&sql)?;
            let bound = bind(&values);
            let rows = pg.client.query(&statement, &refs(&bound))?;
            rows.iter().map(pg_row).collect()
        })
    }
}

struct Pg {
    url: String,
    client: postgres::Client,
    statements: HashMap<String, postgres::Statement>,
    read_only: bool,
    /// Inside a transaction: a closed connection is then an error, never reopened under it.
    in_tx: bool,
    /// The server said it is ending this connection (it shuts down): the client learns it
    /// is closed only at its next call.
    ending: bool,
}

impl Pg {
    fn connect(url: &str, read_only: bool) -> Result<Self> {
        let tls = pg_tls::settings(url)?;
        let mut config: postgres::Config = tls.url.parse()?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(PG_CONNECT_TIMEOUT);
        }
        config.application_name("pat-admin");
        let mut client = match tls.mode {
            pg_tls::Mode::Disable => config.connect(postgres::NoTls)?,
            pg_tls::Mode::Prefer | pg_tls::Mode::Require => {
                config.connect(pg_tls::connector(&tls)?)?
            }
        };
        client.batch_execute("SET client_min_messages = warning")?;
        if read_only {
            client.batch_execute("SET default_transaction_read_only = on")?;
        }
        Ok(Self {
            url: url.to_string(),
            client,
            statements: HashMap::new(),
            read_only,
            in_tx: false,
            ending: false,
        })
    }

    fn statement(&mut self, sql: &str) -> Result<postgres::Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let statement = self.client.prepare(&pg_sql(sql))?;
        if self.statements.len() > 512 {
            self.statements.clear();
        }
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    /// Whether the server closed (or is closing) this connection.
    fn is_closed(&self) -> bool {
        self.ending || self.client.is_closed()
    }

    /// Opens the connection again when the server closed it.
    fn reconnect_if_closed(&mut self) -> Result<()> {
        if self.is_closed() {
            *self = Self::connect(&self.url, self.read_only)?;
        }
        Ok(())
    }
}

impl Connection {
    /// A SQLite connection.
    pub fn sqlite(conn: rusqlite::Connection) -> Self {
        Self {
            engine: Inner::Sqlite(conn),
            clock: Clock::system(),
        }
    }

    /// A new in-memory SQLite database (unit tests, tools).
    pub fn sqlite_in_memory() -> Result<Self> {
        Ok(Self::sqlite(rusqlite::Connection::open_in_memory()?))
    }

    /// Connects to the PostgreSQL database at `url`; `read_only` refuses every write.
    pub fn postgres(url: &str, read_only: bool) -> Result<Self> {
        Ok(Self {
            engine: Inner::Postgres(PgThread::start(url, read_only)?),
            clock: Clock::system(),
        })
    }

    /// The clock every "now" read over this connection comes from: the store's clock
    /// ([`crate::store::Store::clock`]); the system clock unless one was set.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Reads the time from `clock` from now on.
    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    /// The current time by this connection's clock, Unix seconds.
    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// The current time by this connection's clock, Unix milliseconds.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Which engine this is.
    pub fn engine(&self) -> Engine {
        match self.engine {
            Inner::Sqlite(_) => Engine::Sqlite,
            Inner::Postgres(_) => Engine::Postgres,
        }
    }

    /// The SQLite connection (pragmas, SQLite-only checks), if this is one.
    pub fn as_sqlite(&self) -> Option<&rusqlite::Connection> {
        match &self.engine {
            Inner::Sqlite(c) => Some(c),
            Inner::Postgres(_) => None,
        }
    }

    /// Whether the server closed this connection (PostgreSQL restarted, the network
    /// dropped); never for SQLite. A connection kept for later (the API's pool) is dropped
    /// instead: a statement outside a transaction does not open it again.
    pub fn is_closed(&self) -> bool {
        match &self.engine {
            Inner::Sqlite(_) => false,
            Inner::Postgres(thread) => thread.run(|pg| Ok(pg.is_closed())).unwrap_or(true),
        }
    }

    /// Begins a transaction.
    pub fn begin(&self, how: Begin) -> Result<()> {
        match &self.engine {
            Inner::Sqlite(c) => c.execute_batch(match how {
                Begin::Write => "BEGIN IMMEDIATE",
                Begin::Read => "BEGIN DEFERRED",
            })?,
            Inner::Postgres(thread) => thread.run(move |pg| {
                pg.reconnect_if_closed()?;
                let begin = match how {
                    Begin::Write => format!(
                        "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock({WRITE_LOCK})"
                    ),
                    Begin::Read => "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY".to_string(),
                };
                match pg.client.batch_execute(&begin) {
                    Err(e) if e.is_closed() => {
                        // Closed since the check: one more try on a new connection.
                        pg.reconnect_if_closed()?;
                        pg.client.batch_execute(&begin)?;
                    }
                    other => other?,
                }
                pg.in_tx = true;
                Ok(())
            })?,
        }
        Ok(())
    }

    /// Commits the transaction.
    pub fn commit(&self) -> Result<()> {
        self.end("COMMIT")
    }

    /// Rolls the transaction back (a closed PostgreSQL connection has already done so).
    pub fn rollback(&self) -> Result<()> {
        match self.end("ROLLBACK") {
            Err(e) if e.is_disconnect() => Ok(()),
            other => other,
        }
    }

    fn end(&self, statement: &'static str) -> Result<()> {
        match &self.engine {
            Inner::Sqlite(c) => Ok(c.execute_batch(statement)?),
            Inner::Postgres(thread) => thread.run(move |pg| {
                pg.in_tx = false;
                Ok(pg.client.batch_execute(statement)?)
            }),
        }
    }

    /// Runs several statements, no parameters (schemas, transaction control).
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match &self.engine {
            Inner::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Inner::Postgres(thread) => {
                let sql = sql.to_string();
                thread.run(move |pg| Ok(pg.client.batch_execute(&sql)?))
            }
        }
    }

    /// Runs one statement; the number of rows it changed.
    pub fn execute<P: Params>(&self, sql: &str, params: P) -> Result<usize> {
        let values = params.values()?;
        match &self.engine {
            Inner::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                Ok(stmt.execute(rusqlite::params_from_iter(values.iter().map(SqliteParam)))?)
            }
            Inner::Postgres(thread) => {
                let sql = sql.to_string();
                thread.run(move |pg| {
                    let statement = pg.statement(&sql)?;
                    let bound = bind(&values);
                    let n = pg.client.execute(&statement, &refs(&bound))?;
                    Ok(usize::try_from(n).unwrap_or(usize::MAX))
                })
            }
        }
    }

    /// Calls `each` with every row, in order.
    pub fn for_each<P: Params>(
        &self,
        sql: &str,
        params: P,
        mut each: impl FnMut(&Row) -> crate::error::Result<()>,
    ) -> crate::error::Result<()> {
        let values = params.values()?;
        match &self.engine {
            Inner::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql).map_err(DbError::from)?;
                let columns = stmt.column_count();
                let mut rows = stmt
                    .query(rusqlite::params_from_iter(values.iter().map(SqliteParam)))
                    .map_err(DbError::from)?;
                let mut row = Row {
                    values: Vec::with_capacity(columns),
                };
                while let Some(r) = rows.next().map_err(DbError::from)? {
                    row.values.clear();
                    for i in 0..columns {
                        row.values
                            .push(sqlite_value(r.get_ref(i).map_err(DbError::from)?));
                    }
                    each(&row)?;
                }
                Ok(())
            }
            Inner::Postgres(thread) => {
                // Read in full before `each` runs, which may query again.
                for row in &thread.query(sql, values)? {
                    each(row)?;
                }
                Ok(())
            }
        }
    }

    /// Every row, through `map`.
    pub fn rows<P: Params, T>(
        &self,
        sql: &str,
        params: P,
        mut map: impl FnMut(&Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        let values = params.values()?;
        match &self.engine {
            Inner::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let columns = stmt.column_count();
                let mut rows =
                    stmt.query(rusqlite::params_from_iter(values.iter().map(SqliteParam)))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    let mut row = Row {
                        values: Vec::with_capacity(columns),
                    };
                    for i in 0..columns {
                        row.values.push(sqlite_value(r.get_ref(i)?));
                    }
                    out.push(map(&row)?);
                }
                Ok(out)
            }
            Inner::Postgres(thread) => thread.query(sql, values)?.iter().map(map).collect(),
        }
    }

    /// The first row through `map`; [`DbError::NoRows`] when there is none.
    pub fn query_row<P: Params, T>(
        &self,
        sql: &str,
        params: P,
        map: impl FnOnce(&Row) -> Result<T>,
    ) -> Result<T> {
        let mut map = Some(map);
        let mut first = None;
        // Only the first row is converted; the others are not read (SQLite) or dropped.
        let values = params.values()?;
        match &self.engine {
            Inner::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let columns = stmt.column_count();
                let mut rows =
                    stmt.query(rusqlite::params_from_iter(values.iter().map(SqliteParam)))?;
                if let Some(r) = rows.next()? {
                    let mut row = Row {
                        values: Vec::with_capacity(columns),
                    };
                    for i in 0..columns {
                        row.values.push(sqlite_value(r.get_ref(i)?));
                    }
                    if let Some(map) = map.take() {
                        first = Some(map(&row)?);
                    }
                }
            }
            Inner::Postgres(thread) => {
                let rows = thread.query(sql, values)?;
                if let (Some(r), Some(map)) = (rows.first(), map.take()) {
                    first = Some(map(r)?);
                }
            }
        }
        first.ok_or(DbError::NoRows)
    }

    /// A statement to run later (rusqlite's `prepare`; statements are cached either way).
    pub fn prepare(&self, sql: &str) -> Result<Statement<'_>> {
        Ok(Statement {
            conn: self,
            sql: sql.to_string(),
        })
    }

    /// The same as [`Connection::prepare`].
    pub fn prepare_cached(&self, sql: &str) -> Result<Statement<'_>> {
        self.prepare(sql)
    }
}

/// A statement bound to its connection (rusqlite's shapes).
pub struct Statement<'a> {
    conn: &'a Connection,
    sql: String,
}

impl Statement<'_> {
    /// See [`Connection::execute`].
    pub fn execute<P: Params>(&mut self, params: P) -> Result<usize> {
        self.conn.execute(&self.sql, params)
    }

    /// See [`Connection::query_row`].
    pub fn query_row<P: Params, T>(
        &mut self,
        params: P,
        map: impl FnOnce(&Row) -> Result<T>,
    ) -> Result<T> {
        self.conn.query_row(&self.sql, params, map)
    }

    /// Every row through `map`, as rusqlite's iterator of results.
    pub fn query_map<P: Params, T>(
        &mut self,
        params: P,
        mut map: impl FnMut(&Row) -> Result<T>,
    ) -> Result<std::vec::IntoIter<Result<T>>> {
        let rows = self.conn.rows(&self.sql, params, |row| Ok(map(row)))?;
        Ok(rows.into_iter())
    }

    /// Every row, read in full.
    pub fn query<P: Params>(&mut self, params: P) -> Result<Rows> {
        let rows = self.conn.rows(&self.sql, params, |row| Ok(row.clone()))?;
        Ok(Rows {
            rows: rows.into_iter(),
            current: None,
        })
    }
}

/// Rows read by [`Statement::query`] (rusqlite's `while let Some(row) = rows.next()?`).
pub struct Rows {
    rows: std::vec::IntoIter<Row>,
    current: Option<Row>,
}

impl Rows {
    /// The next row.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<&Row>> {
        self.current = self.rows.next();
        Ok(self.current.as_ref())
    }
}

// --- SQLite ---------------------------------------------------------------------------------

struct SqliteParam<'a>(&'a Value);

impl rusqlite::ToSql for SqliteParam<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self.0 {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Integer(*i),
            Value::Real(r) => ValueRef::Real(*r),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

fn sqlite_value(v: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(r) => Value::Real(r),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

// --- PostgreSQL -----------------------------------------------------------------------------

/// The shared dialect in PostgreSQL's: `?N` → `$N` (a bare `?` numbered in order), the
/// identifier `user` quoted; string literals and quoted identifiers untouched.
fn pg_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut chars = sql.chars().peekable();
    let mut next_param = 1;
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    if d == c {
                        break;
                    }
                }
            }
            '?' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    digits = next_param.to_string();
                    next_param += 1;
                }
                out.push('$');
                out.push_str(&digits);
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut word = String::from(c);
                while let Some(d) = chars
                    .peek()
                    .filter(|d| d.is_ascii_alphanumeric() || **d == '_')
                {
                    word.push(*d);
                    chars.next();
                }
                if word.eq_ignore_ascii_case("user") {
                    out.push_str("\"user\"");
                } else {
                    out.push_str(&word);
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// A [`Value`] bound as the type PostgreSQL inferred for its place.
#[derive(Debug)]
struct PgParam(Value);

impl ToSql for PgParam {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match &self.0 {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR | Type::UNKNOWN => {
                    i.to_string().to_sql(&Type::TEXT, out)
                }
                _ => Err(format!("an integer cannot be bound as {ty}").into()),
            },
            Value::Real(r) => match *ty {
                Type::FLOAT8 => r.to_sql(ty, out),
                Type::FLOAT4 => (*r as f32).to_sql(ty, out),
                _ => Err(format!("a real number cannot be bound as {ty}").into()),
            },
            Value::Text(s) => match *ty {
                Type::INT8 => s.parse::<i64>()?.to_sql(ty, out),
                _ => s.as_str().to_sql(&Type::TEXT, out),
            },
            Value::Blob(b) => b.as_slice().to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn bind(values: &[Value]) -> Vec<PgParam> {
    values.iter().cloned().map(PgParam).collect()
}

fn refs(bound: &[PgParam]) -> Vec<&(dyn ToSql + Sync)> {
    bound.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

fn pg_row(row: &postgres::Row) -> Result<Row> {
    let mut values = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        values.push(pg_value(row, i, column.type_())?);
    }
    Ok(Row { values })
}

fn pg_value(row: &postgres::Row, i: usize, ty: &Type) -> Result<Value> {
    let int = |v: Option<i64>| v.map_or(Value::Null, Value::Int);
    Ok(match *ty {
        Type::INT8 => int(row.try_get(i)?),
        Type::INT4 => int(row.try_get::<_, Option<i32>>(i)?.map(i64::from)),
        Type::INT2 => int(row.try_get::<_, Option<i16>>(i)?.map(i64::from)),
        Type::OID => int(row.try_get::<_, Option<u32>>(i)?.map(i64::from)),
        Type::BOOL => int(row.try_get::<_, Option<bool>>(i)?.map(i64::from)),
        Type::FLOAT8 => row
            .try_get::<_, Option<f64>>(i)?
            .map_or(Value::Null, Value::Real),
        Type::FLOAT4 => row
            .try_get::<_, Option<f32>>(i)?
            .map_or(Value::Null, |v| Value::Real(f64::from(v))),
        Type::NUMERIC => match row.try_get::<_, Option<PgNumeric>>(i)? {
            None => Value::Null,
            Some(PgNumeric(Some(v))) => Value::Int(v),
            Some(PgNumeric(None)) => {
                return Err(DbError::Conversion {
                    column: i,
                    message: "a numeric value that is not a 64-bit integer".into(),
                });
            }
        },
        Type::BYTEA => row
            .try_get::<_, Option<Vec<u8>>>(i)?
            .map_or(Value::Null, Value::Blob),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => row
            .try_get::<_, Option<String>>(i)?
            .map_or(Value::Null, Value::Text),
        ref other => {
            return Err(DbError::Conversion {
                column: i,
                message: format!("PostgreSQL type {other} is not read by pat-admin (cast it)"),
            });
        }
    })
}

/// A `NUMERIC` (what PostgreSQL's `sum` of integers is) read as an integer; `None` when it
/// has a fraction or does not fit.
struct PgNumeric(Option<i64>);

impl<'a> postgres::types::FromSql<'a> for PgNumeric {
    fn from_sql(
        _: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        // Binary NUMERIC: ndigits, weight, sign, dscale (i16 each), then base-10000 digits.
        let word =
            |i: usize| -> std::result::Result<i16, Box<dyn std::error::Error + Sync + Send>> {
                raw.get(i * 2..i * 2 + 2)
                    .map(|b| i16::from_be_bytes([b[0], b[1]]))
                    .ok_or_else(|| "a short NUMERIC".into())
            };
        let (ndigits, weight, sign) = (word(0)?, word(1)?, word(2)? as u16);
        if sign == 0xC000 {
            return Ok(Self(None)); // NaN
        }
        let mut value: i128 = 0;
        for d in 0..usize::try_from(ndigits).unwrap_or(0) {
            let position = i32::from(weight) - d as i32;
            let digit = i128::from(word(4 + d)?);
            if digit == 0 {
                continue;
            }
            if !(0..=4).contains(&position) {
                return Ok(Self(None)); // a fraction, or beyond 64 bits
            }
            value += digit * 10_000i128.pow(position as u32);
        }
        if sign == 0x4000 {
            value = -value;
        }
        Ok(Self(i64::try_from(value).ok()))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pg_sql_numbers_parameters_and_quotes_user() {
        assert_eq!(
            pg_sql("SELECT id, user FROM tokens WHERE user = ?1 AND id = ?2"),
            "SELECT id, \"user\" FROM tokens WHERE \"user\" = $1 AND id = $2"
        );
        assert_eq!(
            pg_sql("UPDATE t SET a = ?, b = ?"),
            "UPDATE t SET a = $1, b = $2"
        );
        assert_eq!(
            pg_sql("SELECT 'user?' FROM users WHERE users.name = tokens.user"),
            "SELECT 'user?' FROM users WHERE users.name = tokens.\"user\""
        );
        assert_eq!(pg_sql("SELECT \"user\" FROM x"), "SELECT \"user\" FROM x");
    }

    #[test]
    fn urls_are_shown_without_passwords() {
        let shown = Location::parse("postgres://pat:s3cret@db.example:5432/pat?sslmode=disable")
            .to_string();
        assert_eq!(
            shown,
            "postgres://pat:***@db.example:5432/pat?sslmode=disable"
        );
        assert!(!shown.contains("s3cret"));
        let shown = Location::parse("postgresql://db/pat?user=pat&password=s3cret").to_string();
        assert_eq!(shown, "postgresql://db/pat?user=pat&password=***");
        assert_eq!(
            Location::parse("/var/lib/pat-admin").engine(),
            Engine::Sqlite
        );
    }

    #[test]
    fn sqlite_round_trips_every_value() {
        let conn = Connection::sqlite(rusqlite::Connection::open_in_memory().unwrap());
        conn.execute_batch("CREATE TABLE t (a INTEGER, b TEXT, c BLOB)")
            .unwrap();
        conn.execute(
            "INSERT INTO t VALUES (?1, ?2, ?3)",
            params![-5i64, "x", [1u8, 2].as_slice()],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO t VALUES (?1, ?2, ?3)",
            params![None::<i64>, None::<String>, None::<Vec<u8>>],
        )
        .unwrap();
        let rows = conn
            .rows("SELECT a, b, c FROM t ORDER BY a IS NULL", [], |r| {
                Ok((
                    r.get::<_, Option<i64>>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<Vec<u8>>>(2)?,
                ))
            })
            .unwrap();
        assert_eq!(rows[0], (Some(-5), Some("x".into()), Some(vec![1, 2])));
        assert_eq!(rows[1], (None, None, None));
        assert!(matches!(
            conn.query_row("SELECT a FROM t WHERE a = 99", [], |r| r.get::<_, i64>(0)),
            Err(DbError::NoRows)
        ));
        assert_eq!(
            conn.query_row("SELECT a FROM t WHERE a = 99", [], |r| r.get::<_, i64>(0))
                .optional()
                .unwrap(),
            None
        );
        assert!(
            u64::MAX.to_value().is_err(),
            "out of range for the store's integers"
        );
    }
}
