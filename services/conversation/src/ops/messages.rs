//! Messages: appended to a conversation with its counters and timers kept current.

use chrono::Utc;
use helpdesk_kit::error::{Error, Result};
use helpdesk_kit::event::Origin;
use helpdesk_kit::outbox;
use helpdesk_kit::storage::StorageName;
use helpdesk_proto::common::v1::{Actor, ActorKind};
use helpdesk_proto::conversation::v1::{
    ActivityType, ChannelKind, ConversationStatus, MessageCreated, MessageKind, ReopenPolicy,
};
use sqlx::PgConnection;

use super::conversations::{change_status, create};
use crate::store::{
    self, conversations::ConversationRow, messages::MessageRow, messages::StoredAttachment,
};

/// Stores a message from `sender` in `conv`, updates the conversation's timers and
/// counters, and records `message.created` (with `sender` as its actor). Returns the
/// message and the updated conversation.
#[allow(clippy::too_many_arguments)]
pub async fn append(
    conn: &mut PgConnection,
    origin: &Origin,
    conv: ConversationRow,
    kind: MessageKind,
    sender: &Actor,
    content: &str,
    attachments: Vec<StoredAttachment>,
    client_message_id: Option<String>,
) -> Result<(MessageRow, ConversationRow)> {
    let row =
        store::messages::new_row(&conv, kind, sender, content, attachments, client_message_id);
    append_row(conn, origin, conv, row, sender).await
}

/// A line the platform writes from the system actor: `ACTIVITY` (everyone reads it)
/// or `NOTE` (staff only), recording `activity`. Returns the updated conversation.
pub async fn append_activity(
    conn: &mut PgConnection,
    origin: &Origin,
    conv: ConversationRow,
    kind: MessageKind,
    activity: ActivityType,
    text: &str,
) -> Result<ConversationRow> {
    let sender = helpdesk_kit::event::system_actor();
    append_line(conn, origin, conv, kind, activity, text, &sender).await
}

/// [`append_activity`] from `sender` (a bot's handoff summary).
pub async fn append_line(
    conn: &mut PgConnection,
    origin: &Origin,
    conv: ConversationRow,
    kind: MessageKind,
    activity: ActivityType,
    text: &str,
    sender: &Actor,
) -> Result<ConversationRow> {
    let mut row = store::messages::new_row(&conv, kind, sender, text, vec![], None);
    row.activity = activity.storage_name().to_string();
    Ok(append_row(conn, origin, conv, row, sender).await?.1)
}

/// Stores `row` in `conv` with the conversation's counters and timers kept current,
/// and records `message.created`.
pub async fn append_row(
    conn: &mut PgConnection,
    origin: &Origin,
    mut conv: ConversationRow,
    row: MessageRow,
    sender: &Actor,
) -> Result<(MessageRow, ConversationRow)> {
    let kind = row.kind();
    let now = Utc::now();
    conv.next_sequence += 1;
    conv.last_activity_at = now;
    match kind {
        MessageKind::Incoming => {
            conv.waiting_since.get_or_insert(now);
        }
        MessageKind::Outgoing if sender.kind == ActorKind::Agent as i32 => {
            conv.waiting_since = None;
            conv.first_reply_at.get_or_insert(now);
        }
        _ => {}
    }
    let (row, conv) = store::messages::insert_with_conversation(conn, &row, &conv).await?;
    super::lifecycle::after_message(conn, &conv, kind, sender).await?;
    let event = MessageCreated {
        message: Some(row.to_proto()),
        conversation: Some(conv.to_proto()),
        ..Default::default()
    };
    outbox::emit(conn, &origin.acting_as(sender.clone()), event).await?;
    Ok((row, conv))
}

/// The message stored earlier under `client_message_id` in this account.
pub async fn find_by_client_id(
    conn: &mut PgConnection,
    account: &str,
    client_message_id: &str,
) -> Result<Option<MessageRow>> {
    Ok(store::messages::by_client_id(conn, account, client_message_id).await?)
}

/// A customer writing reopens a pending or snoozed conversation; on a resolved one
/// the inbox's reopen policy decides: reopen it or start a new one (returned).
pub async fn wake_for_customer(
    conn: &mut PgConnection,
    origin: &Origin,
    conv: ConversationRow,
    content: &str,
) -> Result<ConversationRow> {
    let inbox = match conv.status() {
        ConversationStatus::Open | ConversationStatus::Bot | ConversationStatus::Unspecified => {
            return Ok(conv);
        }
        ConversationStatus::Pending | ConversationStatus::Snoozed => {
            return change_status(conn, origin, conv, ConversationStatus::Open, None).await;
        }
        ConversationStatus::Resolved => store::inboxes::get(conn, &conv.account_id, conv.inbox_id)
            .await?
            .ok_or(Error::NotFound("inbox"))?,
    };
    // A bot inbox's conversation goes back to its bot.
    let opening = inbox.opening_status();
    if inbox.reopen() != ReopenPolicy::NewConversation {
        return change_status(conn, origin, conv, opening, None).await;
    }
    let contact = store::contacts::get(conn, &conv.account_id, conv.contact_id)
        .await?
        .ok_or(Error::NotFound("contact"))?;
    let channel = ChannelKind::from_storage(&conv.channel_kind);
    let mut fresh = ConversationRow::new(
        &conv.account_id,
        conv.inbox_id,
        conv.contact_id,
        channel,
        &origin.actor,
    );
    fresh.status = opening.storage_name().to_string();
    create(conn, origin, fresh, &contact, content).await
}
