//! The engine's error type.

use sea_orm::DbErr;

use crate::fsic::FsicError;

/// Everything that can go wrong in the sync engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A database statement failed; `context` says what the engine was doing.
    #[error("{context}: {source}")]
    Db {
        /// What the engine was doing.
        context: String,
        /// The database error.
        #[source]
        source: DbErr,
    },
    /// The database does not hold what Morango needs (tables missing, a model that cannot be synced, ...).
    #[error("schema: {0}")]
    Schema(String),
    /// Data received from a peer was rejected; nothing of it was written.
    #[error("invalid data from peer: {0}")]
    Invalid(String),
    /// A certificate or chain was refused.
    #[cfg(feature = "network")]
    #[error(transparent)]
    Certificate(Box<crate::certificate::CertificateError>),
    /// An FSIC could not be read or is not allowed for this transfer.
    #[error(transparent)]
    Fsic(#[from] FsicError),
    /// A sync or transfer session, certificate or other object does not exist (or no longer is active).
    #[error("not found: {0}")]
    NotFound(String),
    /// The request is understood but not allowed: outside a certificate's scope, the wrong direction, ...
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// A session is in a state where this cannot happen (a stage not reached yet, or one that failed).
    #[error("session: {0}")]
    Session(String),
    /// One of the application's stage hooks failed (see [`crate::hooks`]).
    #[error("hook: {0}")]
    Hook(String),
    /// A bound on what this side keeps was reached (a certificate's buffered bytes on a server).
    #[error("capacity: {0}")]
    Capacity(String),
    /// A peer answered an HTTP request with an error status.
    #[error("{method} {url} answered {status}: {message}")]
    Remote {
        /// The request method.
        method: String,
        /// The request URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The peer's error message (its JSON `detail`, or the body).
        message: String,
    },
    /// A peer could not be reached (after retries), or the connection broke.
    #[error("{url}: {message}")]
    Transport {
        /// The request URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The peer failed; `stage` is the stage that was running.
    #[error("peer failed during {stage}: {message}")]
    Peer {
        /// The transfer stage that failed.
        stage: &'static str,
        /// What the peer reported.
        message: String,
    },
}

/// A failure of the database's storage rather than of the request: the disk is full, the database is read-only, or
/// it cannot be reached. A server answers these with 507 or 503 and says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageFailure {
    /// No space left (SQLite `SQLITE_FULL`, PostgreSQL class 53: `disk_full`, `insufficient_resources`, …).
    Full,
    /// The database refuses writes (SQLite `SQLITE_READONLY`, PostgreSQL `read_only_sql_transaction`).
    ReadOnly,
    /// The database cannot be reached or read (I/O errors, a pool that gives no connection, busy beyond waiting).
    Unavailable,
    /// The database aborted a transaction that collided with another one (PostgreSQL `serialization_failure`,
    /// `deadlock_detected`): the same work succeeds when run again.
    Conflict,
}

impl StorageFailure {
    /// Says what failed, for an operator and a client.
    pub fn describe(self) -> &'static str {
        match self {
            StorageFailure::Full => "the server's database is out of space",
            StorageFailure::ReadOnly => "the server's database is read-only",
            StorageFailure::Unavailable => "the server's database is unavailable",
            StorageFailure::Conflict => "the server's database is busy with colliding transactions",
        }
    }
}

impl Error {
    /// The storage failure behind a database error, if it is one (see [`StorageFailure`]).
    pub fn storage_failure(&self) -> Option<StorageFailure> {
        let Error::Db { source, .. } = self else { return None };
        match source {
            DbErr::ConnectionAcquire(_) => Some(StorageFailure::Unavailable),
            DbErr::Conn(runtime) | DbErr::Exec(runtime) | DbErr::Query(runtime) => driver_failure(runtime),
            _ => None,
        }
    }

    /// True when the peer (or this database) does not know the session or object asked for: `NotFound`, or a
    /// remote 404.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound(_) | Error::Remote { status: 404, .. })
    }

    /// True when the peer could not be reached or the connection broke: the sync can be resumed later.
    pub fn is_transport(&self) -> bool {
        matches!(self, Error::Transport { .. })
    }
}

#[cfg(feature = "network")]
impl From<crate::certificate::CertificateError> for Error {
    fn from(error: crate::certificate::CertificateError) -> Self {
        Error::Certificate(Box::new(error))
    }
}

/// The storage failure a database driver reported, told apart by the driver's own error type.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn driver_failure(runtime: &sea_orm::RuntimeErr) -> Option<StorageFailure> {
    use sea_orm::{RuntimeErr, sqlx};
    let RuntimeErr::SqlxError(error) = runtime else { return None };
    match &**error {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => Some(StorageFailure::Unavailable),
        sqlx::Error::Database(error) => {
            let code = error.code().unwrap_or_default();
            #[cfg(feature = "postgres")]
            if error.try_downcast_ref::<sqlx::postgres::PgDatabaseError>().is_some() {
                return classify_sqlstate(&code);
            }
            #[cfg(feature = "sqlite")]
            if error.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                return classify_sqlite(&code);
            }
            None
        }
        _ => None,
    }
}

/// Without a database driver there is no driver failure.
#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
fn driver_failure(_runtime: &sea_orm::RuntimeErr) -> Option<StorageFailure> {
    None
}

/// An SQLite (extended) result code.
#[cfg(feature = "sqlite")]
fn classify_sqlite(code: &str) -> Option<StorageFailure> {
    match code.parse::<i32>().ok()? & 0xff {
        13 => Some(StorageFailure::Full),                     // SQLITE_FULL
        8 => Some(StorageFailure::ReadOnly),                  // SQLITE_READONLY
        5 | 6 | 10 | 14 => Some(StorageFailure::Unavailable), // BUSY, LOCKED, IOERR, CANTOPEN
        _ => None,
    }
}

/// A PostgreSQL SQLSTATE.
#[cfg(feature = "postgres")]
fn classify_sqlstate(code: &str) -> Option<StorageFailure> {
    match code {
        "25006" => Some(StorageFailure::ReadOnly), // read_only_sql_transaction
        "40001" | "40P01" => Some(StorageFailure::Conflict), // serialization_failure, deadlock_detected
        _ if code.starts_with("53") => Some(StorageFailure::Full), // insufficient resources: disk_full, out_of_memory
        // system errors (io_error …), connection exceptions, operator intervention (shutdown)
        _ if code.starts_with("58") || code.starts_with("08") || code.starts_with("57P") => {
            Some(StorageFailure::Unavailable)
        }
        _ => None,
    }
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds "what was being done" to database errors.
pub(crate) trait DbContext<T> {
    /// Wraps a database error with context.
    fn context(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> DbContext<T> for std::result::Result<T, DbErr> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Db { context: context(), source })
    }
}
