//! The service's error type and its one mapping to gRPC status codes.

use tonic::{Code, Status};

/// Everything a conversation operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The thing does not exist, or the caller may not know it exists.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The caller is known but not allowed.
    #[error("{0}")]
    PermissionDenied(String),
    /// The request is valid but the state does not allow it.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A client-chosen id is already used differently.
    #[error("{0}")]
    AlreadyExists(String),
    /// A concurrent change won; the call may be retried.
    #[error("{0}")]
    Aborted(String),
    /// Already a status (validation, authentication).
    #[error("{0}")]
    Status(#[from] Status),
    /// Database failure.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        match e {
            Error::NotFound(what) => Status::not_found(format!("{what} not found")),
            Error::PermissionDenied(m) => Status::permission_denied(m),
            Error::FailedPrecondition(m) => Status::failed_precondition(m),
            Error::AlreadyExists(m) => Status::already_exists(m),
            Error::Aborted(m) => Status::aborted(m),
            Error::Status(s) => s,
            Error::Db(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                Status::aborted("a concurrent change conflicted with this one; retry")
            }
            Error::Db(sqlx::Error::PoolTimedOut) => {
                Status::new(Code::Unavailable, "database busy; retry")
            }
            Error::Db(other) => helpdesk_kit::grpc::internal(&other),
        }
    }
}

/// Result of a conversation operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;
