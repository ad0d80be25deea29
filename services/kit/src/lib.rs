//! `helpdesk-kit`: what every helpdesk service is built from.
//!
//! - [`service`]: the [`Service`] trait, [`main`] and the [`Application`] every
//!   service runs as; a new service is its name, settings, migrations and [`Parts`].
//! - [`app`]: the machinery under it: startup error, connections, ordered workers.
//! - [`config`]: layered configuration (defaults → TOML → `HELPDESK_…` env), shared
//!   settings and each service's own section.
//! - [`telemetry`]: tracing, OTLP export, W3C context across gRPC and NATS.
//! - [`metrics`]: OpenTelemetry metrics, Prometheus text on the admin port.
//! - [`shutdown`]: SIGTERM / SIGINT handling.
//! - [`db`]: a pool bound to the service's schema, migrations, kit tables.
//! - [`bus`]: JetStream connection, subjects, streams, CloudEvents headers.
//! - [`command`]: request/reply between services, answered and called by type.
//! - [`event`]: [`event::Origin`] (who caused a change) and event metadata.
//! - [`outbox`]: transactional outbox ([`outbox::emit`]) and its relay.
//! - [`consumer`]: typed event consumers with inbox de-duplication and dead letters.
//! - [`timers`]: durable timers.
//! - [`live`]: one subscription per account fanned out to live streams, bounded.
//! - [`auth`]: JWT verification, minting, roles, [`auth::Caller`]; the interceptor.
//! - [`error`]: the one [`error::Error`] of service operations and its mappings.
//! - [`grpc`]: server bootstrap and error shapes; [`validate`] and [`page`]: field
//!   validators and AIP-158 page tokens; [`storage`]: enums' stored names.
//! - [`testing`] (feature `testing`): per-test environments on the servers of
//!   `helpdesk-devservers`, and [`testing::spawn`] for any service.

pub mod app;
pub mod auth;
pub mod bus;
mod calls;
pub mod command;
pub mod config;
pub mod consumer;
pub mod db;
pub mod error;
pub mod event;
pub mod grpc;
pub mod hours;
pub mod live;
pub mod metrics;
pub mod outbox;
pub mod page;
mod sampling;
pub mod service;
pub mod shutdown;
pub mod storage;
pub mod telemetry;
pub mod time;
pub mod timers;
pub mod validate;

#[cfg(feature = "testing")]
pub mod testing;

pub use async_nats;
pub use service::{Application, Ctx, Entry, NoSettings, Parts, Service, Settings, main};
pub use tokio_util::sync::CancellationToken;
