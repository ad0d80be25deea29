//! `helpdesk-devservers`: private NATS and PostgreSQL servers for `helpdesk up` and
//! the tests. Development only: no service binary depends on this crate.
//!
//! - [`process`]: starting and stopping `nats-server` / PostgreSQL processes.
//! - [`shared`]: the test servers every test process of a machine user shares.
//! - [`PrivateNats`]: a NATS server owned by one test, to stop and restart.

pub mod process;
pub mod shared;

mod private_nats;

pub use private_nats::PrivateNats;
