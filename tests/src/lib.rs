//! Cross-service scenarios and load generation for the helpdesk platform.

pub mod load;
pub mod platform;
