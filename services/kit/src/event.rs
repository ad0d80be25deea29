//! Building the [`EventMeta`] every event starts with.

use helpdesk_proto::common::v1::{Actor, ActorKind, EventMeta};
use uuid::Uuid;

use crate::time::to_timestamp;

/// Where a change came from: a fresh request, or an event being reacted to.
#[derive(Debug, Clone, Default)]
pub struct Causation {
    /// The event that directly caused this change (empty for a user request).
    pub causation_id: String,
    /// The id shared by the whole chain of changes.
    pub correlation_id: String,
}

impl Causation {
    /// A new chain started by a user or API request.
    pub fn request() -> Self {
        Self {
            causation_id: String::new(),
            correlation_id: Uuid::now_v7().to_string(),
        }
    }

    /// A change caused by `meta`'s event, continuing its chain.
    pub fn from_event(meta: &EventMeta) -> Self {
        let correlation_id = if meta.correlation_id.is_empty() {
            meta.event_id.clone()
        } else {
            meta.correlation_id.clone()
        };
        Self {
            causation_id: meta.event_id.clone(),
            correlation_id,
        }
    }
}

/// A new [`EventMeta`] with a fresh UUIDv7 id, stamped now.
pub fn meta(account_id: &str, actor: &Actor, causation: &Causation) -> EventMeta {
    EventMeta {
        event_id: Uuid::now_v7().to_string(),
        occurred_at: Some(to_timestamp(chrono::Utc::now())),
        account_id: account_id.to_string(),
        actor: Some(actor.clone()),
        causation_id: causation.causation_id.clone(),
        correlation_id: causation.correlation_id.clone(),
    }
}

/// The platform itself as an actor.
pub fn system_actor() -> Actor {
    Actor {
        kind: ActorKind::System as i32,
        id: "system".into(),
    }
}
