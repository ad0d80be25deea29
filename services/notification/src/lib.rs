//! The notification service: the platform's events delivered to the outside world as
//! webhooks signed the Standard Webhooks way, durably, once per event per endpoint.

pub mod commands;
pub mod consumers;
pub mod domain;
pub mod grpc;
pub mod mailer;
pub mod metrics;
pub mod ops;
pub mod sender;
pub mod startup;
pub mod store;

pub use startup::{Notification, NotificationSettings};
