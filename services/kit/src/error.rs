//! The one error type of service operations and its mappings: to a gRPC status for
//! callers, to a retry-or-park decision for event handlers and timers.

use tonic::{Code, Status};

use crate::consumer::HandlerError;
use crate::timers::TimerError;

/// Everything a service operation can fail with.
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
    /// What the caller tried to create exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// A concurrent change won; the call may be retried.
    #[error("{0}")]
    Aborted(String),
    /// A dependency (NATS, the database) cannot be reached now; retry later.
    #[error("{0}")]
    Unavailable(String),
    /// The change would produce an event larger than the platform publishes.
    #[error("{0}")]
    TooLarge(String),
    /// Already a status (validation, authentication).
    #[error("{0}")]
    Status(#[from] Status),
    /// Database failure.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

/// Result of a service operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Worth retrying later (the database or the bus is in trouble), as opposed to
    /// a request or event that can never succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Db(_) | Self::Unavailable(_) | Self::Aborted(_))
    }

    /// PostgreSQL rolled the transaction back whole for a deadlock or a
    /// serialization conflict with a concurrent one.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Db(sqlx::Error::Database(db))
            if matches!(db.code().as_deref(), Some("40P01" | "40001")))
    }
}

/// Attempts in all of [`retry_conflicts`].
pub const CONFLICT_ATTEMPTS: u32 = 3;

/// Runs `operation` again, after a short random pause, when PostgreSQL rolled it
/// back whole for a deadlock or a serialization conflict ([`Error::is_conflict`]), up
/// to [`CONFLICT_ATTEMPTS`] times in all; the caller sees ABORTED only if every
/// attempt conflicted. Safe only for an operation whose effects are all inside that
/// one transaction (what a retried call would redo), which is what every unary
/// mutation of the platform is.
pub async fn retry_conflicts<T, F, Fut>(mut operation: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut attempt = 1;
    loop {
        match operation().await {
            Err(e) if e.is_conflict() && attempt < CONFLICT_ATTEMPTS => {
                let pause = rand::random_range(5..25 * u64::from(attempt));
                tracing::info!(error = %e, attempt, "conflicting concurrent change; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// The one mapping to gRPC codes. A unique violation means the thing exists already
/// (ALREADY_EXISTS); a foreign-key violation names something that does not exist
/// (FAILED_PRECONDITION); an exhausted pool or a lock timeout is UNAVAILABLE; a
/// deadlock or serialization failure is ABORTED (the call was rolled back whole; a
/// retry is safe); a value PostgreSQL refuses is INVALID_ARGUMENT; any other database
/// error is logged with its cause and answered INTERNAL with a generic message.
impl From<Error> for Status {
    fn from(e: Error) -> Self {
        match e {
            Error::NotFound(what) => Status::not_found(format!("{what} not found")),
            Error::PermissionDenied(m) => Status::permission_denied(m),
            Error::FailedPrecondition(m) => Status::failed_precondition(m),
            Error::AlreadyExists(m) => Status::already_exists(m),
            Error::Aborted(m) => Status::aborted(m),
            Error::Unavailable(m) => Status::unavailable(m),
            Error::TooLarge(m) => Status::invalid_argument(m),
            Error::Status(s) => s,
            Error::Db(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                Status::already_exists("already exists")
            }
            Error::Db(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
                Status::failed_precondition("refers to something that does not exist")
            }
            // Waited too long for a lock: the thing is busy, try again shortly.
            Error::Db(sqlx::Error::Database(db)) if db.code().as_deref() == Some("55P03") => {
                Status::unavailable("busy; retry")
            }
            // A deadlock or serialization conflict rolled this call back whole.
            Error::Db(sqlx::Error::Database(db))
                if matches!(db.code().as_deref(), Some("40P01" | "40001")) =>
            {
                Status::aborted("conflicting concurrent change; retry")
            }
            // PostgreSQL refused a value (a NUL character in text, a number out of
            // range): the request's fault, and nothing was stored.
            Error::Db(sqlx::Error::Database(db))
                if db.code().is_some_and(|c| c.starts_with("22")) =>
            {
                Status::invalid_argument(
                    "a value is not acceptable (text with a NUL character, or out of range)",
                )
            }
            Error::Db(sqlx::Error::PoolTimedOut) => {
                Status::new(Code::Unavailable, "database busy or unreachable; retry")
            }
            // The connection broke or could not be made: the database is down or
            // restarting, not a bug. Nothing of the call was committed.
            Error::Db(
                sqlx::Error::Io(_)
                | sqlx::Error::PoolClosed
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_),
            ) => Status::unavailable("database unreachable; retry"),
            Error::Db(sqlx::Error::Database(db)) if db.code().is_some_and(|c| unreachable(&c)) => {
                Status::unavailable("database unavailable; retry")
            }
            Error::Db(other) => crate::grpc::internal(&other),
        }
    }
}

/// SQLSTATEs of a database going away or refusing connections: connection
/// exceptions (08…), an administrator or crash shutdown, not accepting connections
/// yet, too many connections.
fn unreachable(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
}

/// Transient failures are retried with backoff; anything else can never succeed and
/// is parked on the dead-letter subject with its reason.
impl From<Error> for HandlerError {
    fn from(e: Error) -> Self {
        if e.is_transient() {
            Self::Retry(e.to_string())
        } else {
            Self::Poison(e.to_string())
        }
    }
}

impl From<Error> for TimerError {
    fn from(e: Error) -> Self {
        Self(e.to_string())
    }
}
