//! The routing service: every new or reopened conversation is assigned to an eligible
//! agent with free capacity, or waits in a persisted queue whose position the visitor
//! sees, and is assigned the moment capacity frees.

pub mod commands;
pub mod consumers;
pub mod dispatcher;
pub mod domain;
pub mod engine;
pub mod gates;
pub mod grpc;
pub mod metrics;
pub mod startup;
pub mod store;
pub mod timers;

pub use startup::Routing;
