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

#[cfg(feature = "network")]
impl From<crate::certificate::CertificateError> for Error {
    fn from(error: crate::certificate::CertificateError) -> Self {
        Error::Certificate(Box::new(error))
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
