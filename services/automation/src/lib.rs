//! The automation service: rules admins describe as "when this happens, if these
//! hold, do that", run once per event in order however the state was reached, delayed
//! rules that act when a state has lasted, loops stopped, and every run logged.

pub mod cache;
pub mod consumers;
pub mod domain;
pub mod executor;
pub mod grpc;
pub mod ops;
pub mod startup;
pub mod store;

pub use startup::{Automation, AutomationSettings};
