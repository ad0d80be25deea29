//! Cross-service scenarios, load generation and benchmarks for the helpdesk platform.

pub mod bench;
pub mod load;
pub mod pgbench;
pub mod platform;
pub mod prometheus_text;
pub mod protobuf_json;
pub mod rules;
pub mod soak;
