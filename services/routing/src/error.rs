//! The service's error type and its one mapping to gRPC status codes.

use tonic::{Code, Status};

/// Everything a routing operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The thing does not exist (or the caller may not know it exists).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The caller may not do this.
    #[error("{0}")]
    PermissionDenied(String),
    /// Valid request, but the state does not allow it.
    #[error("{0}")]
    FailedPrecondition(String),
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
            Error::Status(s) => s,
            Error::Db(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                Status::already_exists("already exists")
            }
            Error::Db(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
                Status::failed_precondition("refers to something that does not exist")
            }
            Error::Db(sqlx::Error::PoolTimedOut) => {
                Status::new(Code::Unavailable, "database busy; retry")
            }
            Error::Db(other) => helpdesk_kit::grpc::internal(&other),
        }
    }
}

/// Result of a routing operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;
