//! Errors of pat-admin and the exit code each one maps to.
//!
//! | code | meaning |
//! | ---: | --- |
//! | 0 | success |
//! | 1 | failure: the store, a file, the network setup, or a bug |
//! | 2 | invalid input: usage, dates, method names, sets, URLs (nothing was changed) |
//! | 3 | authentication failed: wrong password (nothing was changed) |
//! | 4 | not found: the account, token or key does not exist |
//! | 5 | refused by a rule: limit reached, already exists, beyond the maximum lifetime, no signing key (nothing was changed) |
//! | 6 | an edge did not accept (publish, a change's push), could not be asked or is behind (status); a change was saved and signed |
//! | 7 | a change was saved, but not signed or pushed: no signing key is active |
//! | 8 | `list --expiring-within` / `--unused-for`: tokens expiring within the window, or unused for that long, were found |
//! | 9 | too many attempts: another password check for the account is under way; nothing was checked or changed, retry in the seconds the message says |
//!
//! A closed standard output (`pat-admin methods | head -1`) ends the command quietly with 0.

use std::path::PathBuf;

use crate::catalogue::CatalogueError;
use crate::expiry::ExpiryError;
use crate::store::db::{DbError, Location};

/// Exit codes (see the module documentation).
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// Store, file, network setup or unexpected failure.
    pub const FAILURE: u8 = 1;
    /// Invalid input; nothing changed.
    pub const INVALID: u8 = 2;
    /// Wrong password; nothing changed.
    pub const AUTH: u8 = 3;
    /// Account, token or key not found.
    pub const NOT_FOUND: u8 = 4;
    /// Refused by a rule (limit, duplicate, missing key).
    pub const REFUSED: u8 = 5;
    /// An edge did not accept, could not be reached, or is behind.
    pub const EDGE: u8 = 6;
    /// A change was saved but not signed (no signing key), so nothing was pushed.
    pub const UNSIGNED: u8 = 7;
    /// `list --expiring-within` / `--unused-for` found tokens.
    pub const EXPIRING: u8 = 8;
    /// Another password check for the account is under way; nothing checked or changed.
    pub const TOO_MANY_ATTEMPTS: u8 = 9;
}

/// Everything that can go wrong, with a message that says what failed, on what, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store could not be opened or used.
    #[error("store {store}: {message}")]
    Store {
        /// The store (a directory, or a database URL shown without its password).
        store: Location,
        /// What went wrong.
        message: String,
    },
    /// The store's database (SQLite or PostgreSQL) failed.
    #[error("store database: {0}")]
    Sql(#[from] DbError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file that must not be overwritten exists.
    #[error("{0} already exists; choose another file (pat-admin never overwrites a secret file)")]
    FileExists(PathBuf),
    /// Bad user input.
    #[error("{0}")]
    Invalid(String),
    /// A method or set name problem.
    #[error(transparent)]
    Catalogue(#[from] CatalogueError),
    /// A date problem.
    #[error(transparent)]
    Expiry(#[from] ExpiryError),
    /// Wrong password.
    #[error("wrong password for {0}; nothing was changed")]
    WrongPassword(String),
    /// Another password check for the account (or the client address) is waiting or
    /// running: this one was refused without a check.
    #[error(
        "too many attempts: another password check for this account is under way; nothing was checked or changed, retry in {retry_after} s"
    )]
    TooManyAttempts {
        /// Seconds until the check under way is expected to be over.
        retry_after: u64,
    },
    /// No password could be read.
    #[error("{0}")]
    Password(String),
    /// An account does not exist.
    #[error("no account named {0} (create it with: pat-admin user add {0})")]
    NoSuchUser(String),
    /// A token does not exist (for this account).
    #[error("{user} has no token {id} (see: pat-admin list --user {user})")]
    NoSuchToken {
        /// The account.
        user: String,
        /// The token id.
        id: i64,
    },
    /// A key does not exist.
    #[error("no signing key {0} (see: pat-admin key list)")]
    NoSuchKey(String),
    /// Something else looked for is not there.
    #[error("{0}")]
    NotFound(String),
    /// An edge is not configured.
    #[error("{0} is not a configured edge (see: pat-admin edge list)")]
    NoSuchEdge(String),
    /// There is no store in the directory, and the command does not create one.
    #[error(
        "no pat-admin store in {0}: create one with pat-admin user add NAME or pat-admin key generate, or point --store / PAT_ADMIN_STORE at the right directory or database"
    )]
    NoStore(Location),
    /// Something that should not fail did (the runtime, a task, encoding): not the input.
    #[error("{0}")]
    Internal(String),
    /// Standard output was closed by the reader (`| head`): the command stops quietly.
    #[error("standard output was closed")]
    BrokenPipe,
    /// A rule refused the change.
    #[error("{0}")]
    Refused(String),
    /// One or more edges did not accept.
    #[error("{0}")]
    Edges(String),
    /// The active signing key could not be used.
    #[error(
        "cannot sign a snapshot with key {key}: {message}; restore its key file, or make another key active (pat-admin key list, pat-admin key activate ID)"
    )]
    Signing {
        /// The key id.
        key: String,
        /// What went wrong (never key material).
        message: String,
    },
    /// The account is disabled (by the operator, or because the platform says it is
    /// suspended): it may not change tokens, and its tokens are on no edge.
    #[error(
        "{account} is disabled ({by}: {reason}); its tokens are on no edge and it may not change them{hint}"
    )]
    AccountDisabled {
        /// The account as shown.
        account: String,
        /// `by the operator` / `the platform says it is suspended`.
        by: String,
        /// Why.
        reason: String,
        /// What to do.
        hint: String,
    },
    /// The platform (platform mode) gave no usable answer.
    #[error(transparent)]
    Platform(#[from] crate::platform::PlatformError),
    /// Randomness was unavailable.
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Store { .. }
            | Self::Sql(_)
            | Self::Io { .. }
            | Self::Signing { .. }
            | Self::NoStore(_)
            | Self::Internal(_)
            | Self::Random(_)
            | Self::Platform(_) => exit::FAILURE,
            Self::BrokenPipe => exit::OK,
            Self::Expiry(ExpiryError::TooFar { .. } | ExpiryError::Required(_)) => exit::REFUSED,
            Self::Invalid(_) | Self::Catalogue(_) | Self::Expiry(_) | Self::Password(_) => {
                exit::INVALID
            }
            Self::WrongPassword(_) => exit::AUTH,
            Self::TooManyAttempts { .. } => exit::TOO_MANY_ATTEMPTS,
            Self::NoSuchUser(_)
            | Self::NoSuchToken { .. }
            | Self::NoSuchKey(_)
            | Self::NoSuchEdge(_)
            | Self::NotFound(_) => exit::NOT_FOUND,
            Self::FileExists(_) | Self::Refused(_) | Self::AccountDisabled { .. } => exit::REFUSED,
            Self::Edges(_) => exit::EDGE,
        }
    }

    /// Wraps an I/O error with the file it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sql(DbError::Sqlite(e))
    }
}
