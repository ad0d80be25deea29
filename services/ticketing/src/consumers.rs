//! Ticketing reacts to routing: a chat whose visitor is asked to leave a message
//! becomes a ticket when its inbox says so.

use std::time::Duration;

use helpdesk_kit::bus::Bus;
use helpdesk_kit::consumer::{Consumer, Delivery, HandlerError, On};
use helpdesk_kit::error::Error;
use helpdesk_kit::event::system_actor;
use helpdesk_proto::routing::v1::{ConversationOverflowed, OverflowAction};
use helpdesk_proto::ticketing::v1::TicketSource;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::ops::{self, chat};
use crate::store::config;
use crate::store::tickets::{self, TicketRow};

/// Durable consumer name.
pub const CONSUMER: &str = "ticketing";

/// The ticketing service's consumer.
pub fn consumer(events: ChatEvents) -> Consumer<ChatEvents> {
    Consumer::new(CONSUMER, events).on::<ConversationOverflowed>()
}

/// Turns leave-a-message chats into tickets.
pub struct ChatEvents {
    pub bus: Bus,
    /// Deadline of the command that reads the chat.
    pub command_timeout: Duration,
    /// How long after solving a ticket closes.
    pub close_after: chrono::Duration,
}

/// The request id of a conversation's leave-a-message ticket: one per conversation.
pub fn leave_message_request(conversation: Uuid) -> String {
    format!("leave-message:{conversation}")
}

impl On<ConversationOverflowed> for ChatEvents {
    async fn on(
        &self,
        conn: &mut PgConnection,
        d: &Delivery<ConversationOverflowed>,
    ) -> Result<(), HandlerError> {
        let e = &d.event;
        if e.action != OverflowAction::LeaveMessage as i32 {
            return Ok(());
        }
        let id = e.conversation_id.parse::<Uuid>().map_err(|_| {
            HandlerError::Poison(format!("bad conversation id {:?}", e.conversation_id))
        })?;
        let account = d.account_id.as_str();
        let request = leave_message_request(id);
        if tickets::by_request_id(conn, account, &request)
            .await?
            .is_some()
        {
            return Ok(()); // asked to leave a message again: one ticket per chat
        }
        let exported = match chat::export(&self.bus, self.command_timeout, account, id).await {
            Err(Error::NotFound(_)) => return Ok(()),
            other => other?,
        };
        if !exported
            .inbox
            .as_ref()
            .is_some_and(|i| i.ticket_on_leave_message)
        {
            return Ok(());
        }
        let ctx = ops::context(conn, account, self.close_after).await?;
        let definitions = config::fields(conn, account).await?;
        let mut row = TicketRow::blank(account, TicketSource::Chat);
        chat::fill_from_chat(&mut row, &exported, &definitions);
        row.request_id = Some(request);
        let origin = d.origin().acting_as(system_actor());
        let transcript = exported.transcript(id);
        ops::create(conn, &origin, row, Some(transcript), &ctx).await?;
        Ok(())
    }
}
