//! What a service's `Application` shares: its startup error.

use crate::bus::BusError;
use crate::db::DbError;

/// A service failed to start, or its server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// Database setup.
    #[error(transparent)]
    Db(#[from] DbError),
    /// NATS setup.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// Binding the gRPC port.
    #[error("binding {addr}: {source}")]
    Bind {
        /// Address.
        addr: std::net::SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// Binds `addr` and returns the listener with its actual port (`:0` picks one).
pub async fn bind(
    addr: std::net::SocketAddr,
) -> Result<(tokio::net::TcpListener, u16), StartupError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartupError::Bind { addr, source })?;
    let port = listener
        .local_addr()
        .map_err(|source| StartupError::Bind { addr, source })?
        .port();
    Ok((listener, port))
}
