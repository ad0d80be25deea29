//! Writing this service's events to the outbox.

use helpdesk_kit::event::{self, Causation};
use helpdesk_kit::outbox::{self, OutboxEvent};
use helpdesk_proto::common::v1::Actor;
use helpdesk_proto::routing::v1::{
    AgentPresenceChanged, ConversationAssigned, ConversationOverflowed, ConversationQueued,
    ConversationUnassigned, QueuePositionChanged,
};
use sqlx::PgConnection;

/// `routing.queued`.
pub const QUEUED: &str = "routing.queued";
/// `routing.position_changed`.
pub const POSITION_CHANGED: &str = "routing.position_changed";
/// `routing.assigned`.
pub const ASSIGNED: &str = "routing.assigned";
/// `routing.unassigned`.
pub const UNASSIGNED: &str = "routing.unassigned";
/// `routing.overflowed`.
pub const OVERFLOWED: &str = "routing.overflowed";
/// `agent.presence_changed`.
pub const PRESENCE_CHANGED: &str = "agent.presence_changed";

/// Who caused the events of one operation.
#[derive(Debug, Clone)]
pub struct Origin {
    pub account: String,
    pub actor: Actor,
    pub causation: Causation,
}

impl Origin {
    /// The platform deciding on its own (queue moves, timers).
    pub fn system(account: &str, causation: Causation) -> Self {
        Self {
            account: account.to_string(),
            actor: event::system_actor(),
            causation,
        }
    }

    fn meta(&self) -> helpdesk_proto::common::v1::EventMeta {
        event::meta(&self.account, &self.actor, &self.causation)
    }
}

macro_rules! emitter {
    ($fn:ident, $ty:ty, $kind:expr, $subject:ident) => {
        /// Records the event in the outbox.
        pub async fn $fn(
            conn: &mut PgConnection,
            origin: &Origin,
            mut event: $ty,
        ) -> Result<(), sqlx::Error> {
            let meta = origin.meta();
            event.meta = Some(meta.clone());
            let subject = event.$subject.clone();
            outbox::enqueue(conn, &OutboxEvent::new($kind, &meta, subject, &event)).await
        }
    };
}

emitter!(queued, ConversationQueued, QUEUED, conversation_id);
emitter!(
    position_changed,
    QueuePositionChanged,
    POSITION_CHANGED,
    conversation_id
);
emitter!(assigned, ConversationAssigned, ASSIGNED, conversation_id);
emitter!(
    unassigned,
    ConversationUnassigned,
    UNASSIGNED,
    conversation_id
);
emitter!(
    overflowed,
    ConversationOverflowed,
    OVERFLOWED,
    conversation_id
);
emitter!(
    presence_changed,
    AgentPresenceChanged,
    PRESENCE_CHANGED,
    agent_id
);
