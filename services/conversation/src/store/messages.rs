//! Messages.

use chrono::{DateTime, Utc};
use helpdesk_kit::time::to_timestamp;
use helpdesk_proto::common::v1::Actor;
use helpdesk_proto::conversation::v1::{
    ActivityType, Attachment, MenuOption, Message, MessageKind,
};
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, PgConnection, Row};

use super::conversations::{
    COLUMNS as CONVERSATION_COLUMNS, ConversationRow, WRITE_BACK, bind_write_back,
};
use sqlx::types::Json;
use uuid::Uuid;

use crate::domain::StorageName;

/// Attachment metadata as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredAttachment {
    pub name: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub url: String,
}

impl From<&Attachment> for StoredAttachment {
    fn from(a: &Attachment) -> Self {
        Self {
            name: a.name.clone(),
            content_type: a.content_type.clone(),
            size_bytes: a.size_bytes,
            url: a.url.clone(),
        }
    }
}

/// A menu option as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredOption {
    pub id: String,
    pub label: String,
}

/// A stored message.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageRow {
    pub id: Uuid,
    pub account_id: String,
    pub conversation_id: Uuid,
    pub sequence: i64,
    pub kind: String,
    pub sender_kind: i32,
    pub sender_id: String,
    pub content: String,
    pub attachments: Json<Vec<StoredAttachment>>,
    pub client_message_id: Option<String>,
    pub created_at: DateTime<Utc>,
    /// What a platform line records (`ActivityType` storage name); empty otherwise.
    pub activity: String,
    /// Choices offered with the message.
    pub menu: Json<Vec<StoredOption>>,
    /// The option the customer picked (incoming); empty otherwise.
    pub menu_choice: String,
}

impl MessageRow {
    /// Message kind.
    pub fn kind(&self) -> MessageKind {
        MessageKind::from_storage(&self.kind)
    }

    /// As the API shows it.
    pub fn to_proto(&self) -> Message {
        Message {
            id: self.id.to_string(),
            account_id: self.account_id.clone(),
            conversation_id: self.conversation_id.to_string(),
            sequence: self.sequence,
            kind: self.kind() as i32,
            sender: Some(Actor {
                kind: self.sender_kind,
                id: self.sender_id.clone(),
            }),
            content: self.content.clone(),
            attachments: self
                .attachments
                .0
                .iter()
                .map(|a| Attachment {
                    name: a.name.clone(),
                    content_type: a.content_type.clone(),
                    size_bytes: a.size_bytes,
                    url: a.url.clone(),
                })
                .collect(),
            client_message_id: self.client_message_id.clone().unwrap_or_default(),
            create_time: Some(to_timestamp(self.created_at)),
            activity: ActivityType::from_storage(&self.activity) as i32,
            menu: self
                .menu
                .0
                .iter()
                .map(|o| MenuOption {
                    id: o.id.clone(),
                    label: o.label.clone(),
                })
                .collect(),
            menu_choice: self.menu_choice.clone(),
        }
    }
}

const COLUMNS: &str = "id, account_id, conversation_id, sequence, kind, sender_kind, sender_id, content, attachments, client_message_id, created_at, activity, menu, menu_choice";

/// Inserts a message and writes its conversation back (bumping its version) in one
/// statement. Returns both as stored.
pub async fn insert_with_conversation(
    conn: &mut PgConnection,
    m: &MessageRow,
    c: &ConversationRow,
) -> Result<(MessageRow, ConversationRow), sqlx::Error> {
    let sql = format!(
        "WITH message AS (
             INSERT INTO messages ({COLUMNS}) VALUES ($18, $19, $20, $21, $22, $23, $24, $25, $26, $27, now(), $28, $29, $30)
             RETURNING created_at
         )
         {WRITE_BACK}
         RETURNING {CONVERSATION_COLUMNS}, (SELECT created_at FROM message) AS message_created_at"
    );
    let row = bind_write_back(sqlx::query(&sql), c)
        .bind(m.id)
        .bind(&m.account_id)
        .bind(m.conversation_id)
        .bind(m.sequence)
        .bind(&m.kind)
        .bind(m.sender_kind)
        .bind(&m.sender_id)
        .bind(&m.content)
        .bind(&m.attachments)
        .bind(&m.client_message_id)
        .bind(&m.activity)
        .bind(&m.menu)
        .bind(&m.menu_choice)
        .fetch_one(conn)
        .await?;
    let conversation = ConversationRow::from_row(&row)?;
    let message = MessageRow {
        created_at: row.try_get("message_created_at")?,
        ..m.clone()
    };
    Ok((message, conversation))
}

/// The message stored earlier under this client id, if any.
pub async fn by_client_id(
    conn: &mut PgConnection,
    account: &str,
    client_message_id: &str,
) -> Result<Option<MessageRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM messages WHERE account_id = $1 AND client_message_id = $2"
    ))
    .bind(account)
    .bind(client_message_id)
    .fetch_optional(conn)
    .await
}

/// Messages of a conversation in order, after sequence `after`.
pub async fn list(
    conn: &mut PgConnection,
    account: &str,
    conversation_id: Uuid,
    after: i64,
    limit: usize,
    include_notes: bool,
) -> Result<Vec<MessageRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM messages WHERE account_id = $1 AND conversation_id = $2 AND sequence > $3
         AND ($4 OR kind <> 'note') ORDER BY sequence LIMIT $5"
    ))
    .bind(account)
    .bind(conversation_id)
    .bind(after)
    .bind(include_notes)
    .bind(limit as i64)
    .fetch_all(conn)
    .await
}

/// Up to `limit` messages just before sequence `before`, newest first.
pub async fn list_before(
    conn: &mut PgConnection,
    account: &str,
    conversation_id: Uuid,
    before: i64,
    limit: usize,
    include_notes: bool,
) -> Result<Vec<MessageRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM messages WHERE account_id = $1 AND conversation_id = $2 AND sequence < $3
         AND ($4 OR kind <> 'note') ORDER BY sequence DESC LIMIT $5"
    ))
    .bind(account)
    .bind(conversation_id)
    .bind(before)
    .bind(include_notes)
    .bind(limit as i64)
    .fetch_all(conn)
    .await
}

/// A new message row (sequence assigned by the caller from the conversation).
pub fn new_row(
    conversation: &crate::store::conversations::ConversationRow,
    kind: MessageKind,
    sender: &Actor,
    content: &str,
    attachments: Vec<StoredAttachment>,
    client_message_id: Option<String>,
) -> MessageRow {
    MessageRow {
        id: Uuid::now_v7(),
        account_id: conversation.account_id.clone(),
        conversation_id: conversation.id,
        sequence: conversation.next_sequence,
        kind: kind.storage_name().to_string(),
        sender_kind: sender.kind,
        sender_id: sender.id.clone(),
        content: content.to_string(),
        attachments: Json(attachments),
        client_message_id,
        created_at: Utc::now(),
        activity: String::new(),
        menu: Json(Vec::new()),
        menu_choice: String::new(),
    }
}
