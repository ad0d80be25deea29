//! `helpdesk-kit`: what every helpdesk service is built from.
//!
//! - [`app`]: the startup error and port binding every service shares.
//! - [`config`]: layered configuration (defaults → TOML → `HELPDESK_…` env).
//! - [`telemetry`]: tracing, OTLP export, W3C context across gRPC and NATS.
//! - [`shutdown`]: SIGTERM / SIGINT handling.
//! - [`db`]: a pool bound to the service's schema, migrations, kit tables.
//! - [`bus`]: JetStream connection, subjects, streams, CloudEvents headers.
//! - [`outbox`]: transactional outbox and its relay.
//! - [`consumer`]: event consumers with inbox de-duplication and dead letters.
//! - [`timers`]: durable timers.
//! - [`auth`]: JWT verification, minting, roles; the tonic interceptor.
//! - [`grpc`]: server bootstrap and error shapes.
//! - [`testing`] (feature `testing`): per-test environments on the servers of
//!   `helpdesk-devservers`.

pub mod app;
pub mod auth;
pub mod bus;
pub mod config;
pub mod consumer;
pub mod db;
pub mod error;
pub mod event;
pub mod grpc;
pub mod outbox;
pub mod page;
pub mod shutdown;
pub mod storage;
pub mod telemetry;
pub mod time;
pub mod timers;
pub mod validate;

#[cfg(feature = "testing")]
pub mod testing;

pub use async_nats;
pub use tokio_util::sync::CancellationToken;
