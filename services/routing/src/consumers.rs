//! Routing reacts to conversation events: new and reopened conversations are routed,
//! conversations leaving the open state free their agent, resolutions and ratings
//! credit the agent.

use helpdesk_kit::consumer::{Consumer, Delivery, HandlerError, On};
use helpdesk_kit::event::{Origin, system_actor};
use helpdesk_kit::storage::name_of;
use helpdesk_proto::conversation::v1::{
    ChannelKind, Conversation, ConversationCreated, ConversationStatus, ConversationStatusChanged,
    CsatSubmitted, InboxCreated, MessageCreated, MessageKind,
};
use std::collections::{HashMap, HashSet};

use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::engine;
use crate::store::{directory, state};

/// Durable consumer name.
pub const CONSUMER: &str = "routing";

/// The routing service's consumer: the conversation events it follows.
pub fn consumer() -> Consumer<ConversationEvents> {
    Consumer::new(CONSUMER, ConversationEvents::default())
        .on::<ConversationCreated>()
        .on::<ConversationStatusChanged>()
        .on::<MessageCreated>()
        .on::<CsatSubmitted>()
        .on::<InboxCreated>()
}

/// The routing service's event handlers. The events of one consumer transaction
/// share one engine session: each account is locked and read once per batch.
#[derive(Default)]
pub struct ConversationEvents {
    session: tokio::sync::Mutex<Option<(u64, engine::Session)>>,
    /// Conversations whose `conversation.created` carried the first customer message
    /// (their `message.created` for it has nothing to add). Bounded; forgetting only
    /// costs a no-op update.
    first_message_known: std::sync::Mutex<HashSet<Uuid>>,
}

/// Conversations remembered in `first_message_known` before it starts over.
const FIRST_MESSAGES_REMEMBERED: usize = 100_000;

impl ConversationEvents {
    /// Notes that `id`'s `conversation.created` carried its first customer message.
    fn note_first_message(&self, id: Uuid) {
        if let Ok(mut known) = self.first_message_known.lock() {
            if known.len() >= FIRST_MESSAGES_REMEMBERED {
                known.clear();
            }
            known.insert(id);
        }
    }

    /// Whether `id`'s first customer message came with its creation.
    fn first_message_known(&self, id: Uuid) -> bool {
        self.first_message_known
            .lock()
            .is_ok_and(|known| known.contains(&id))
    }

    /// The engine session of transaction `batch` (a new one for a new transaction).
    async fn session(&self, batch: u64) -> tokio::sync::MappedMutexGuard<'_, engine::Session> {
        let mut slot = self.session.lock().await;
        if slot.as_ref().is_some_and(|(b, _)| *b != batch) {
            *slot = None;
        }
        tokio::sync::MutexGuard::map(slot, |s| {
            &mut s.get_or_insert_with(|| (batch, engine::Session::new())).1
        })
    }
}

fn projection(
    account: &str,
    c: &Conversation,
    contact_attributes: HashMap<String, String>,
    first_message: String,
) -> Result<state::ConversationRow, HandlerError> {
    let parse = |s: &str, what: &str| {
        s.parse::<Uuid>()
            .map_err(|_| HandlerError::Poison(format!("bad {what} id {s:?}")))
    };
    Ok(state::ConversationRow {
        account_id: account.to_string(),
        id: parse(&c.id, "conversation")?,
        inbox_id: parse(&c.inbox_id, "inbox")?,
        contact_id: parse(&c.contact_id, "contact")?,
        channel: name_of::<ChannelKind>(c.channel_kind).to_string(),
        status: name_of::<ConversationStatus>(c.status).to_string(),
        priority: c.priority,
        labels: c.labels.clone(),
        attributes: Json(c.custom_attributes.clone()),
        contact_attributes: Json(contact_attributes),
        first_message,
        last_agent_id: None,
        last_team_id: None,
        version: c.version,
    })
}

/// Refreshes the projection from an event's conversation and returns it as stored,
/// with whether it is placed; `None` when a newer change was applied already.
async fn project<E: helpdesk_kit::event::Event>(
    conn: &mut PgConnection,
    d: &Delivery<E>,
    conv: Option<&Conversation>,
    contact_attributes: HashMap<String, String>,
    first_message: String,
) -> Result<Option<(state::ConversationRow, bool)>, HandlerError> {
    let conv = conv.ok_or_else(|| HandlerError::Poison("no conversation".into()))?;
    let row = projection(&d.account_id, conv, contact_attributes, first_message)?;
    Ok(state::upsert_conversation(conn, &row).await?)
}

/// Routing decides on its own account of the event: the system acts, in the event's
/// chain.
fn origin<E: helpdesk_kit::event::Event>(d: &Delivery<E>) -> Origin {
    d.origin().acting_as(system_actor())
}

impl On<ConversationCreated> for ConversationEvents {
    async fn on(
        &self,
        conn: &mut PgConnection,
        d: &Delivery<ConversationCreated>,
    ) -> Result<(), HandlerError> {
        let e = &d.event;
        let attrs = e
            .contact
            .as_ref()
            .map(|c| c.custom_attributes.clone())
            .unwrap_or_default();
        let conv = e.conversation.as_ref();
        let first = e.initial_message.clone();
        let Some((row, placed)) = project(conn, d, conv, attrs, first).await? else {
            return Ok(()); // a newer change was already applied
        };
        if !e.initial_message.is_empty() {
            self.note_first_message(row.id);
        }
        let mut session = self.session(d.batch).await;
        let how = engine::How::default();
        engine::route_row(conn, &mut session, &origin(d), &row, placed, &how).await?;
        Ok(())
    }
}

impl On<ConversationStatusChanged> for ConversationEvents {
    async fn on(
        &self,
        conn: &mut PgConnection,
        d: &Delivery<ConversationStatusChanged>,
    ) -> Result<(), HandlerError> {
        let e = &d.event;
        let conv = e.conversation.as_ref();
        let Some((row, placed)) = project(conn, d, conv, HashMap::new(), String::new()).await?
        else {
            return Ok(()); // a newer change was already applied
        };
        let assignee = conv.map(|c| c.assignee_id.as_str()).unwrap_or_default();
        let to = ConversationStatus::try_from(e.to).unwrap_or_default();
        let session = &mut *self.session(d.batch).await;
        if to == ConversationStatus::Open {
            // From the bot it is the conversation's first routing, as the handoff asks.
            let from_bot = e.from == ConversationStatus::Bot as i32;
            let handoff = e.handoff.as_ref().filter(|_| from_bot);
            let how = engine::How {
                reopened: !from_bot && e.from != ConversationStatus::Open as i32,
                team_id: handoff.and_then(|h| h.team_id.parse::<Uuid>().ok()),
                skills: handoff
                    .map(|h| h.required_skills.clone())
                    .unwrap_or_default(),
            };
            engine::route_row(conn, session, &origin(d), &row, placed, &how).await?;
        } else {
            engine::release_in(conn, session, &origin(d), row.id).await?;
            if to == ConversationStatus::Resolved && !assignee.is_empty() {
                directory::credit_resolution(conn, &d.account_id, assignee, row.id).await?;
            }
        }
        Ok(())
    }
}

impl On<MessageCreated> for ConversationEvents {
    async fn on(
        &self,
        conn: &mut PgConnection,
        d: &Delivery<MessageCreated>,
    ) -> Result<(), HandlerError> {
        let Some(m) = d
            .event
            .message
            .as_ref()
            .filter(|m| m.kind == MessageKind::Incoming as i32)
        else {
            return Ok(());
        };
        let Ok(id) = m.conversation_id.parse::<Uuid>() else {
            return Ok(());
        };
        // Usually the conversation's creation carried it (and applying that event
        // again, after a rollback, writes it again); else a no-op once it is set.
        if !self.first_message_known(id) {
            state::set_first_message(conn, &d.account_id, id, &m.content).await?;
        }
        Ok(())
    }
}

impl On<CsatSubmitted> for ConversationEvents {
    async fn on(
        &self,
        conn: &mut PgConnection,
        d: &Delivery<CsatSubmitted>,
    ) -> Result<(), HandlerError> {
        let e = &d.event;
        let conv = e.conversation.as_ref();
        let who = directory::Rated {
            agent: conv.map(|c| c.assignee_id.as_str()).unwrap_or_default(),
            team: conv.and_then(|c| c.team_id.parse::<Uuid>().ok()),
        };
        let id = conv.and_then(|c| c.id.parse::<Uuid>().ok());
        let counts = (!who.agent.is_empty() || who.team.is_some()) && (1..=5).contains(&e.rating);
        if let Some(id) = id.filter(|_| counts) {
            let rating = i64::from(e.rating);
            directory::credit_rating(conn, &d.account_id, who, id, rating).await?;
        }
        Ok(())
    }
}

impl On<InboxCreated> for ConversationEvents {
    async fn on(
        &self,
        conn: &mut PgConnection,
        d: &Delivery<InboxCreated>,
    ) -> Result<(), HandlerError> {
        let id = d
            .event
            .inbox
            .as_ref()
            .and_then(|i| i.id.parse::<Uuid>().ok());
        match id {
            Some(id) => directory::know_inbox(conn, &d.account_id, id).await?,
            None => {
                return Err(HandlerError::Poison(
                    "inbox.created without an inbox id".into(),
                ));
            }
        }
        Ok(())
    }
}
