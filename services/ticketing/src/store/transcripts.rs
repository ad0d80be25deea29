//! The chat a ticket was made from, kept as it was.

use chrono::{DateTime, Utc};
use helpdesk_kit::time::to_timestamp;
use helpdesk_proto::common::v1::Actor;
use helpdesk_proto::ticketing::v1::{Transcript, TranscriptLine};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use super::StoredAttachment;

/// One line as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Line {
    pub sequence: i64,
    pub kind: String,
    pub sender_kind: i32,
    pub sender_id: String,
    pub content: String,
    pub attachments: Vec<StoredAttachment>,
    pub at: DateTime<Utc>,
    pub internal: bool,
}

impl Line {
    fn to_proto(&self) -> TranscriptLine {
        TranscriptLine {
            sequence: self.sequence,
            kind: self.kind.clone(),
            sender: Some(Actor {
                kind: self.sender_kind,
                id: self.sender_id.clone(),
            }),
            content: self.content.clone(),
            attachments: self
                .attachments
                .iter()
                .map(StoredAttachment::to_proto)
                .collect(),
            time: Some(to_timestamp(self.at)),
            internal: self.internal,
        }
    }
}

/// Stores a ticket's transcript.
pub async fn insert(
    conn: &mut PgConnection,
    account: &str,
    ticket: Uuid,
    conversation: Uuid,
    lines: &[Line],
    truncated: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO transcripts (account_id, ticket_id, conversation_id, lines, truncated)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(account)
    .bind(ticket)
    .bind(conversation)
    .bind(Json(lines))
    .bind(truncated)
    .execute(conn)
    .await?;
    Ok(())
}

/// A ticket's transcript, if it was made from a chat.
pub async fn get(
    conn: &mut PgConnection,
    account: &str,
    ticket: Uuid,
) -> Result<Option<Transcript>, sqlx::Error> {
    let row: Option<(Uuid, Json<Vec<Line>>, bool)> = sqlx::query_as(
        "SELECT conversation_id, lines, truncated FROM transcripts WHERE account_id = $1 AND ticket_id = $2",
    )
    .bind(account)
    .bind(ticket)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(conversation, lines, truncated)| Transcript {
        ticket_id: ticket.to_string(),
        conversation_id: conversation.to_string(),
        lines: lines.0.iter().map(Line::to_proto).collect(),
        truncated,
    }))
}
