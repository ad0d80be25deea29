//! Comments: public replies and internal notes.

use chrono::{DateTime, Utc};
use helpdesk_kit::time::to_timestamp;
use helpdesk_proto::common::v1::Actor;
use helpdesk_proto::ticketing::v1::Comment;
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use super::StoredAttachment;

/// A stored comment.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CommentRow {
    pub account_id: String,
    pub id: Uuid,
    pub ticket_id: Uuid,
    pub author_kind: i32,
    pub author_id: String,
    pub body: String,
    pub public: bool,
    pub attachments: Json<Vec<StoredAttachment>>,
    pub client_comment_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl CommentRow {
    /// As the API shows it.
    pub fn to_proto(&self) -> Comment {
        Comment {
            id: self.id.to_string(),
            ticket_id: self.ticket_id.to_string(),
            author: Some(Actor {
                kind: self.author_kind,
                id: self.author_id.clone(),
            }),
            body: self.body.clone(),
            public: self.public,
            attachments: self
                .attachments
                .0
                .iter()
                .map(StoredAttachment::to_proto)
                .collect(),
            client_comment_id: self.client_comment_id.clone().unwrap_or_default(),
            create_time: Some(to_timestamp(self.created_at)),
        }
    }
}

const COLUMNS: &str = "account_id, id, ticket_id, author_kind, author_id, body, public, attachments, client_comment_id, created_at";

/// Stores a comment; returns it as stored.
pub async fn insert(conn: &mut PgConnection, c: &CommentRow) -> Result<CommentRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO comments ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now())
         RETURNING {COLUMNS}"
    ))
    .bind(&c.account_id)
    .bind(c.id)
    .bind(c.ticket_id)
    .bind(c.author_kind)
    .bind(&c.author_id)
    .bind(&c.body)
    .bind(c.public)
    .bind(&c.attachments)
    .bind(&c.client_comment_id)
    .fetch_one(conn)
    .await
}

/// The comment stored earlier under this client id.
pub async fn by_client_id(
    conn: &mut PgConnection,
    account: &str,
    client_comment_id: &str,
) -> Result<Option<CommentRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM comments WHERE account_id = $1 AND client_comment_id = $2"
    ))
    .bind(account)
    .bind(client_comment_id)
    .fetch_optional(conn)
    .await
}

/// A page of a ticket's comments (ids are time-ordered), oldest first.
pub async fn list(
    conn: &mut PgConnection,
    account: &str,
    ticket: Uuid,
    after: Option<Uuid>,
    public_only: bool,
    limit: usize,
) -> Result<Vec<CommentRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM comments WHERE account_id = $1 AND ticket_id = $2
         AND ($3::uuid IS NULL OR id > $3) AND (public OR NOT $4) ORDER BY id LIMIT $5"
    ))
    .bind(account)
    .bind(ticket)
    .bind(after)
    .bind(public_only)
    .bind(limit as i64)
    .fetch_all(conn)
    .await
}
