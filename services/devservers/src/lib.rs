//! `helpdesk-devservers`: private NATS and PostgreSQL servers for `helpdesk up` and
//! the tests. Development only: no service binary depends on this crate.
//!
//! - [`process`]: starting and stopping `nats-server` / PostgreSQL processes.
//! - [`shared`]: the test servers every test process of a machine user shares.
//! - [`PrivateNats`], [`PrivatePostgres`]: servers owned by one test, to stop and
//!   start again.

pub mod process;
pub mod shared;

mod private_nats;
mod private_postgres;

pub use private_nats::PrivateNats;
pub use private_postgres::PrivatePostgres;
