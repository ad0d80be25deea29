//! Inboxes.

use chrono::{DateTime, Utc};
use helpdesk_kit::time::to_timestamp;
use helpdesk_proto::conversation::v1::{ChannelKind, ConversationStatus, Inbox, ReopenPolicy};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::domain::StorageName;
use crate::domain::bot::Bot;
use crate::domain::lifecycle::{Lifecycle, Survey};

/// A stored inbox.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InboxRow {
    pub id: Uuid,
    pub account_id: String,
    pub name: String,
    pub channel_kind: String,
    pub public_key: String,
    pub greeting_message: String,
    pub reopen_policy: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Key of visitors' identity hashes.
    pub identity_secret: String,
    /// Conversation attributes anonymous visitors may set.
    pub visitor_attribute_keys: Vec<String>,
    /// The bot that answers first, if any.
    pub bot: Option<Json<Bot>>,
    /// Leave-a-message chats become tickets.
    pub ticket_on_leave_message: bool,
    /// Resolved chats reopen when their ticket tells the customer something.
    pub reopen_on_ticket_update: bool,
    /// How quiet conversations end, and closing lines.
    pub lifecycle: Option<Json<Lifecycle>>,
    /// The satisfaction survey on resolve.
    pub csat_survey: Option<Json<Survey>>,
}

impl InboxRow {
    /// Channel kind.
    pub fn channel(&self) -> ChannelKind {
        ChannelKind::from_storage(&self.channel_kind)
    }

    /// Reopen policy.
    pub fn reopen(&self) -> ReopenPolicy {
        ReopenPolicy::from_storage(&self.reopen_policy)
    }

    /// How the inbox's quiet conversations end (nothing when unset).
    pub fn lifecycle(&self) -> Lifecycle {
        self.lifecycle
            .as_ref()
            .map(|l| l.0.clone())
            .unwrap_or_default()
    }

    /// The inbox's satisfaction survey (none when unset).
    pub fn survey(&self) -> Survey {
        self.csat_survey
            .as_ref()
            .map(|s| s.0.clone())
            .unwrap_or_default()
    }

    /// The inbox's bot, when it has one enabled.
    pub fn bot(&self) -> Option<&Bot> {
        self.bot.as_ref().map(|b| &b.0).filter(|b| b.enabled)
    }

    /// The status a conversation of this inbox starts in: with its bot, or open.
    pub fn opening_status(&self) -> ConversationStatus {
        if self.bot().is_some() {
            ConversationStatus::Bot
        } else {
            ConversationStatus::Open
        }
    }

    /// As the API shows it.
    pub fn to_proto(&self) -> Inbox {
        Inbox {
            id: self.id.to_string(),
            account_id: self.account_id.clone(),
            name: self.name.clone(),
            channel_kind: self.channel() as i32,
            public_key: self.public_key.clone(),
            greeting_message: self.greeting_message.clone(),
            reopen_policy: self.reopen() as i32,
            create_time: Some(to_timestamp(self.created_at)),
            update_time: Some(to_timestamp(self.updated_at)),
            identity_secret: String::new(),
            visitor_attribute_keys: self.visitor_attribute_keys.clone(),
            bot: self.bot().map(Bot::to_proto),
            ticket_on_leave_message: self.ticket_on_leave_message,
            reopen_on_ticket_update: self.reopen_on_ticket_update,
            lifecycle: self.lifecycle.as_ref().map(|l| l.0.to_proto()),
            csat_survey: self.csat_survey.as_ref().map(|s| s.0.to_proto()),
        }
    }

    /// As an admin sees it: with the identity secret.
    pub fn to_admin_proto(&self) -> Inbox {
        Inbox {
            identity_secret: self.identity_secret.clone(),
            ..self.to_proto()
        }
    }
}

const COLUMNS: &str = "id, account_id, name, channel_kind, public_key, greeting_message, reopen_policy, created_at, updated_at, \
    identity_secret, visitor_attribute_keys, bot, ticket_on_leave_message, \
    reopen_on_ticket_update, lifecycle, csat_survey";

/// Inserts a new inbox.
pub async fn insert(conn: &mut PgConnection, row: &InboxRow) -> Result<InboxRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO inboxes ({COLUMNS}, announced) VALUES ($1, $2, $3, $4, $5, $6, $7, now(), now(), $8, $9, $10, $11, $12, $13, $14, true)
         RETURNING {COLUMNS}"
    ))
    .bind(row.id)
    .bind(&row.account_id)
    .bind(&row.name)
    .bind(&row.channel_kind)
    .bind(&row.public_key)
    .bind(&row.greeting_message)
    .bind(&row.reopen_policy)
    .bind(&row.identity_secret)
    .bind(&row.visitor_attribute_keys)
    .bind(&row.bot)
    .bind(row.ticket_on_leave_message)
    .bind(row.reopen_on_ticket_update)
    .bind(&row.lifecycle)
    .bind(&row.csat_survey)
    .fetch_one(conn)
    .await
}

/// One inbox of the account.
pub async fn get(
    conn: &mut PgConnection,
    account: &str,
    id: Uuid,
) -> Result<Option<InboxRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM inboxes WHERE account_id = $1 AND id = $2"
    ))
    .bind(account)
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// The inbox with this public key (any account: the key identifies the account).
pub async fn by_public_key(
    conn: &mut PgConnection,
    key: &str,
) -> Result<Option<InboxRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM inboxes WHERE public_key = $1"
    ))
    .bind(key)
    .fetch_optional(conn)
    .await
}

/// A page of the account's inboxes after `after` (ids are time-ordered UUIDv7).
pub async fn list(
    conn: &mut PgConnection,
    account: &str,
    after: Option<Uuid>,
    limit: usize,
) -> Result<Vec<InboxRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM inboxes WHERE account_id = $1 AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3"
    ))
    .bind(account)
    .bind(after)
    .bind(limit as i64)
    .fetch_all(conn)
    .await
}

/// Writes the mutable fields back.
pub async fn update(conn: &mut PgConnection, row: &InboxRow) -> Result<InboxRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE inboxes SET name = $3, channel_kind = $4, greeting_message = $5, reopen_policy = $6,
             identity_secret = $7, visitor_attribute_keys = $8, bot = $9,
             ticket_on_leave_message = $10, reopen_on_ticket_update = $11, lifecycle = $12,
             csat_survey = $13, updated_at = now()
         WHERE account_id = $1 AND id = $2 RETURNING {COLUMNS}"
    ))
    .bind(&row.account_id)
    .bind(row.id)
    .bind(&row.name)
    .bind(&row.channel_kind)
    .bind(&row.greeting_message)
    .bind(&row.reopen_policy)
    .bind(&row.identity_secret)
    .bind(&row.visitor_attribute_keys)
    .bind(&row.bot)
    .bind(row.ticket_on_leave_message)
    .bind(row.reopen_on_ticket_update)
    .bind(&row.lifecycle)
    .bind(&row.csat_survey)
    .fetch_one(conn)
    .await
}

/// Up to `limit` inboxes whose `inbox.created` was never published (they predate the
/// event), locked so that one replica announces each.
pub async fn unannounced(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Vec<InboxRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM inboxes WHERE NOT announced ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED"
    ))
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Records that `inbox.created` of these inboxes is in the outbox.
pub async fn mark_announced(conn: &mut PgConnection, ids: &[Uuid]) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE inboxes SET announced = true WHERE id = ANY($1)")
        .bind(ids)
        .execute(conn)
        .await?;
    Ok(())
}
