//! Routing reacts to conversation events: new and reopened conversations are routed,
//! conversations leaving the open state free their agent, resolutions and ratings
//! credit the agent.

use helpdesk_kit::consumer::{Handler, HandlerError, IncomingEvent};
use helpdesk_kit::event::Causation;
use helpdesk_proto::conversation::v1::{
    ChannelKind, Conversation, ConversationCreated, ConversationStatus, ConversationStatusChanged,
    MessageCreated, MessageKind,
};
use prost::Message as _;
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::engine;
use crate::error::Error;
use crate::events::Origin;
use crate::store::{directory, state};

/// Event kinds routing consumes.
pub const KINDS: &[&str] = &[
    "conversation.created",
    "conversation.status_changed",
    "message.created",
    "conversation.rated",
];

/// The routing service's event handler.
pub struct ConversationEvents;

fn channel_name(kind: i32) -> &'static str {
    match ChannelKind::try_from(kind).unwrap_or_default() {
        ChannelKind::WebWidget => "web_widget",
        ChannelKind::MobileSdk => "mobile_sdk",
        ChannelKind::Api => "api",
        ChannelKind::Email => "email",
        ChannelKind::Unspecified => "unspecified",
    }
}

fn status_name(status: i32) -> &'static str {
    match ConversationStatus::try_from(status).unwrap_or_default() {
        ConversationStatus::Open => "open",
        ConversationStatus::Pending => "pending",
        ConversationStatus::Snoozed => "snoozed",
        ConversationStatus::Resolved => "resolved",
        ConversationStatus::Unspecified => "unspecified",
    }
}

fn projection(
    account: &str,
    c: &Conversation,
    contact_attributes: std::collections::HashMap<String, String>,
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
        channel: channel_name(c.channel_kind).to_string(),
        status: status_name(c.status).to_string(),
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

fn retry(e: Error) -> HandlerError {
    match e {
        Error::Db(e) => HandlerError::Retry(e.to_string()),
        other => HandlerError::Poison(other.to_string()),
    }
}

impl Handler for ConversationEvents {
    async fn handle(
        &self,
        conn: &mut PgConnection,
        event: &IncomingEvent,
    ) -> Result<(), HandlerError> {
        let account = event.account_id.as_str();
        match event.kind.as_str() {
            "conversation.created" => {
                let e: ConversationCreated = event.decode()?;
                let origin = Origin::system(
                    account,
                    e.meta
                        .as_ref()
                        .map(Causation::from_event)
                        .unwrap_or_default(),
                );
                let conv = e
                    .conversation
                    .ok_or_else(|| HandlerError::Poison("no conversation".into()))?;
                let attrs = e.contact.map(|c| c.custom_attributes).unwrap_or_default();
                let row = projection(account, &conv, attrs, e.initial_message)?;
                if !state::upsert_conversation(conn, &row).await? {
                    return Ok(()); // a newer change was already applied
                }
                engine::route(conn, &origin, row.id, false)
                    .await
                    .map_err(retry)?;
            }
            "conversation.status_changed" => {
                let e: ConversationStatusChanged = event.decode()?;
                let origin = Origin::system(
                    account,
                    e.meta
                        .as_ref()
                        .map(Causation::from_event)
                        .unwrap_or_default(),
                );
                let conv = e
                    .conversation
                    .ok_or_else(|| HandlerError::Poison("no conversation".into()))?;
                let row = projection(account, &conv, Default::default(), String::new())?;
                if !state::upsert_conversation(conn, &row).await? {
                    return Ok(()); // a newer change was already applied
                }
                let to = ConversationStatus::try_from(e.to).unwrap_or_default();
                if to == ConversationStatus::Open {
                    engine::route(
                        conn,
                        &origin,
                        row.id,
                        e.from != ConversationStatus::Open as i32,
                    )
                    .await
                    .map_err(retry)?;
                } else {
                    engine::release(conn, &origin, row.id)
                        .await
                        .map_err(retry)?;
                    if to == ConversationStatus::Resolved && !conv.assignee_id.is_empty() {
                        directory::credit(conn, account, &conv.assignee_id, 1, None).await?;
                    }
                }
            }
            "message.created" => {
                let e: MessageCreated = event.decode()?;
                if let Some(m) = e.message.filter(|m| m.kind == MessageKind::Incoming as i32)
                    && let Ok(id) = m.conversation_id.parse::<Uuid>()
                {
                    state::set_first_message(conn, account, id, &m.content).await?;
                }
            }
            "conversation.rated" => {
                // Decoded by field number so routing does not depend on a newer
                // conversation contract than it needs: conversation = 2, rating = 3.
                #[derive(Clone, PartialEq, prost::Message)]
                struct Rated {
                    #[prost(message, optional, tag = "2")]
                    conversation: Option<Conversation>,
                    #[prost(int32, tag = "3")]
                    rating: i32,
                }
                let e = Rated::decode(event.payload.clone())
                    .map_err(|e| HandlerError::Poison(e.to_string()))?;
                let assignee = e.conversation.map(|c| c.assignee_id).unwrap_or_default();
                if !assignee.is_empty() && (1..=5).contains(&e.rating) {
                    directory::credit(conn, account, &assignee, 0, Some(i64::from(e.rating)))
                        .await?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}
