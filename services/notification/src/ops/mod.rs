//! Notification's use cases, each in the caller's transaction: endpoints, turning
//! events into deliveries, recording what attempts came to, commands.

pub mod alerts;
pub mod emails;
pub mod endpoints;
pub mod fanout;
pub mod results;
pub mod targets;
pub mod webhooks;

use std::time::Duration;

use crate::domain::targets::TargetPolicy;

/// What the use cases need of the service's settings.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Delay before each attempt (the first usually 0).
    pub schedule: Vec<Duration>,
    /// An endpoint failing (every attempt) for this long is disabled.
    pub disable_after: Duration,
    /// Which non-public addresses endpoints may use.
    pub targets: TargetPolicy,
}
