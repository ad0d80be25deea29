//! Where a change came from ([`Origin`]) and the [`EventMeta`] every event starts with.

use helpdesk_proto::common::v1::{Actor, ActorKind, CommandOrigin, EventMeta};
use uuid::Uuid;

use crate::time::to_timestamp;

pub use helpdesk_proto::Event;

/// Most automation rules an event's chain names (a command naming more is cut).
pub const MAX_CHAIN: usize = 32;

/// The causation chain of a change: a fresh request, or an event being reacted to.
#[derive(Debug, Clone, Default)]
pub struct Causation {
    /// The event that directly caused this change (empty for a user request).
    pub causation_id: String,
    /// The id shared by the whole chain of changes.
    pub correlation_id: String,
    /// The automation rules that acted in the chain so far, oldest first.
    pub automation_chain: Vec<String>,
}

impl Causation {
    /// A new chain started by a user or API request.
    pub fn request() -> Self {
        Self {
            causation_id: String::new(),
            correlation_id: Uuid::now_v7().to_string(),
            automation_chain: Vec::new(),
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
            automation_chain: meta.automation_chain.clone(),
        }
    }
}

/// Who caused the events of one operation, in which account and chain: a request
/// ([`Origin::request`]), an incoming event ([`Origin::from_event`]) or the platform
/// itself ([`Origin::system`]).
#[derive(Debug, Clone)]
pub struct Origin {
    /// Tenant.
    pub account: String,
    /// Who acted.
    pub actor: Actor,
    /// The chain this change belongs to.
    pub causation: Causation,
}

impl Origin {
    /// A request by `actor`: a new chain.
    pub fn request(account: &str, actor: Actor) -> Self {
        Self {
            account: account.to_string(),
            actor,
            causation: Causation::request(),
        }
    }

    /// The platform acting on its own (timers, sweeps): a new chain.
    pub fn system(account: &str) -> Self {
        Self::request(account, system_actor())
    }

    /// A reaction to an incoming event: its actor (the system when it names none)
    /// and its chain.
    pub fn from_event(account: &str, meta: &EventMeta) -> Self {
        Self {
            account: account.to_string(),
            actor: meta.actor.clone().unwrap_or_else(system_actor),
            causation: Causation::from_event(meta),
        }
    }

    /// The same account and chain with another actor.
    pub fn acting_as(&self, actor: Actor) -> Self {
        Self {
            actor,
            ..self.clone()
        }
    }

    /// The origin a command carries ([`CommandOrigin`]): the events the answering
    /// service records continue this chain, with its actor.
    pub fn from_command(account: &str, command: &CommandOrigin) -> Self {
        let correlation_id = if command.correlation_id.is_empty() {
            Uuid::now_v7().to_string()
        } else {
            command.correlation_id.clone()
        };
        Self {
            account: account.to_string(),
            actor: command.actor.clone().unwrap_or_else(system_actor),
            causation: Causation {
                causation_id: command.causation_id.clone(),
                correlation_id,
                automation_chain: command
                    .automation_chain
                    .iter()
                    .take(MAX_CHAIN)
                    .cloned()
                    .collect(),
            },
        }
    }

    /// This origin as a command carries it.
    pub fn to_command(&self) -> CommandOrigin {
        CommandOrigin {
            actor: Some(self.actor.clone()),
            causation_id: self.causation.causation_id.clone(),
            correlation_id: self.causation.correlation_id.clone(),
            automation_chain: self.causation.automation_chain.clone(),
        }
    }

    /// A new [`EventMeta`] for an event of this origin.
    pub fn meta(&self) -> EventMeta {
        meta(&self.account, &self.actor, &self.causation)
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
        automation_chain: causation.automation_chain.clone(),
    }
}

/// The platform itself as an actor.
pub fn system_actor() -> Actor {
    Actor {
        kind: ActorKind::System as i32,
        id: "system".into(),
    }
}

/// A bot (greeting, routing announcements) as an actor.
pub fn bot_actor(id: &str) -> Actor {
    Actor {
        kind: ActorKind::Bot as i32,
        id: id.into(),
    }
}

/// A customer, by contact id, as an actor.
pub fn contact_actor(contact_id: impl ToString) -> Actor {
    Actor {
        kind: ActorKind::Contact as i32,
        id: contact_id.to_string(),
    }
}
