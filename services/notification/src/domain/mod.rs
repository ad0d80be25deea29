//! Notification's pure decisions: signatures, which targets may be called, which
//! events an endpoint takes, what an answer means and when to try again, the JSON a
//! receiver gets. No I/O.

pub mod alerts;
pub mod body;
pub mod patterns;
pub mod schedule;
pub mod signature;
pub mod targets;
pub mod templates;

pub use helpdesk_kit::storage::StorageName;

/// Most endpoints an account registers.
pub const MAX_ENDPOINTS: i64 = 50;
/// Most event-type patterns on one endpoint.
pub const MAX_EVENT_TYPES: usize = 50;
/// Longest endpoint URL.
pub const MAX_URL_CHARS: usize = 2_048;
/// Longest endpoint description.
pub const MAX_DESCRIPTION_CHARS: usize = 500;
/// Highest per-endpoint rate limit (deliveries per second).
pub const MAX_RATE_LIMIT: u32 = 10_000;
/// How much of a response body a delivery keeps.
pub const RESPONSE_EXCERPT_BYTES: usize = 1_024;
/// Largest `data` a command may send.
pub const MAX_COMMAND_DATA_BYTES: usize = 256 * 1024;
/// Longest idempotency key of a command.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 200;
