//! Conversations.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use helpdesk_kit::time::{opt_timestamp, to_timestamp};
use helpdesk_proto::common::v1::Actor;
use helpdesk_proto::conversation::v1::{ChannelKind, Conversation, ConversationStatus, Priority};
use sqlx::types::Json;
use sqlx::{FromRow, PgConnection, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::domain::StorageName;

/// A stored conversation.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConversationRow {
    pub id: Uuid,
    pub account_id: String,
    pub inbox_id: Uuid,
    pub contact_id: Uuid,
    pub channel_kind: String,
    pub status: String,
    pub snoozed_until: Option<DateTime<Utc>>,
    pub priority: String,
    pub labels: Vec<String>,
    pub custom_attributes: Json<HashMap<String, String>>,
    pub assignee_id: Option<String>,
    pub team_id: Option<String>,
    pub waiting_since: Option<DateTime<Utc>>,
    pub first_reply_at: Option<DateTime<Utc>>,
    pub last_activity_at: DateTime<Utc>,
    pub status_actor_kind: i32,
    pub status_actor_id: String,
    pub version: i64,
    pub next_sequence: i64,
    pub csat_rating: Option<i32>,
    pub csat_comment: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ConversationRow {
    /// A new open conversation.
    pub fn new(
        account: &str,
        inbox_id: Uuid,
        contact_id: Uuid,
        channel: ChannelKind,
        actor: &Actor,
    ) -> Self {
        let now = Utc::now();
        Self {
            id: Uuid::now_v7(),
            account_id: account.to_string(),
            inbox_id,
            contact_id,
            channel_kind: channel.storage_name().to_string(),
            status: ConversationStatus::Open.storage_name().to_string(),
            snoozed_until: None,
            priority: Priority::Unspecified.storage_name().to_string(),
            labels: Vec::new(),
            custom_attributes: Json(HashMap::new()),
            assignee_id: None,
            team_id: None,
            waiting_since: None,
            first_reply_at: None,
            last_activity_at: now,
            status_actor_kind: actor.kind,
            status_actor_id: actor.id.clone(),
            version: 1,
            next_sequence: 1,
            csat_rating: None,
            csat_comment: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// Current status.
    pub fn status(&self) -> ConversationStatus {
        ConversationStatus::from_storage(&self.status)
    }

    /// Moves to `to` (recording the actor); returns the previous status.
    pub fn set_status(&mut self, to: ConversationStatus, actor: &Actor) -> ConversationStatus {
        let from = self.status();
        self.status = to.storage_name().to_string();
        self.status_actor_kind = actor.kind;
        self.status_actor_id = actor.id.clone();
        if to != ConversationStatus::Snoozed {
            self.snoozed_until = None;
        }
        from
    }

    /// As the API shows it.
    pub fn to_proto(&self) -> Conversation {
        Conversation {
            id: self.id.to_string(),
            account_id: self.account_id.clone(),
            inbox_id: self.inbox_id.to_string(),
            contact_id: self.contact_id.to_string(),
            channel_kind: ChannelKind::from_storage(&self.channel_kind) as i32,
            status: self.status() as i32,
            snoozed_until: opt_timestamp(self.snoozed_until),
            priority: Priority::from_storage(&self.priority) as i32,
            labels: self.labels.clone(),
            custom_attributes: self.custom_attributes.0.clone(),
            assignee_id: self.assignee_id.clone().unwrap_or_default(),
            team_id: self.team_id.clone().unwrap_or_default(),
            waiting_since: opt_timestamp(self.waiting_since),
            first_reply_time: opt_timestamp(self.first_reply_at),
            last_activity_time: Some(to_timestamp(self.last_activity_at)),
            create_time: Some(to_timestamp(self.created_at)),
            update_time: Some(to_timestamp(self.updated_at)),
            status_actor: Some(Actor {
                kind: self.status_actor_kind,
                id: self.status_actor_id.clone(),
            }),
            version: self.version,
            csat_rating: self.csat_rating.unwrap_or_default(),
        }
    }
}

pub(crate) const COLUMNS: &str = "id, account_id, inbox_id, contact_id, channel_kind, status, snoozed_until, priority, labels, \
    custom_attributes, assignee_id, team_id, waiting_since, first_reply_at, last_activity_at, status_actor_kind, \
    status_actor_id, version, next_sequence, csat_rating, csat_comment, created_at, updated_at";

/// Inserts a conversation.
pub async fn insert(
    conn: &mut PgConnection,
    c: &ConversationRow,
) -> Result<ConversationRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO conversations ({COLUMNS}) VALUES
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)
         RETURNING {COLUMNS}"
    ))
    .bind(c.id)
    .bind(&c.account_id)
    .bind(c.inbox_id)
    .bind(c.contact_id)
    .bind(&c.channel_kind)
    .bind(&c.status)
    .bind(c.snoozed_until)
    .bind(&c.priority)
    .bind(&c.labels)
    .bind(&c.custom_attributes)
    .bind(&c.assignee_id)
    .bind(&c.team_id)
    .bind(c.waiting_since)
    .bind(c.first_reply_at)
    .bind(c.last_activity_at)
    .bind(c.status_actor_kind)
    .bind(&c.status_actor_id)
    .bind(c.version)
    .bind(c.next_sequence)
    .bind(c.csat_rating)
    .bind(&c.csat_comment)
    .bind(c.created_at)
    .bind(c.updated_at)
    .fetch_one(conn)
    .await
}

/// The conversation write-back: `UPDATE … SET` every mutable field (binds `$1`–`$17`,
/// see [`bind_write_back`]), bumping the version; the caller adds `RETURNING`.
pub(crate) const WRITE_BACK: &str = "UPDATE conversations SET status = $3, snoozed_until = $4, priority = $5,
    labels = $6, custom_attributes = $7, assignee_id = $8, team_id = $9, waiting_since = $10,
    first_reply_at = $11, last_activity_at = $12, status_actor_kind = $13, status_actor_id = $14,
    next_sequence = $15, csat_rating = $16, csat_comment = $17, version = version + 1, updated_at = now()
    WHERE account_id = $1 AND id = $2";

/// Binds `c` to [`WRITE_BACK`]'s parameters `$1`–`$17`.
pub(crate) fn bind_write_back<'q>(
    query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    c: &'q ConversationRow,
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    query
        .bind(&c.account_id)
        .bind(c.id)
        .bind(&c.status)
        .bind(c.snoozed_until)
        .bind(&c.priority)
        .bind(&c.labels)
        .bind(&c.custom_attributes)
        .bind(&c.assignee_id)
        .bind(&c.team_id)
        .bind(c.waiting_since)
        .bind(c.first_reply_at)
        .bind(c.last_activity_at)
        .bind(c.status_actor_kind)
        .bind(&c.status_actor_id)
        .bind(c.next_sequence)
        .bind(c.csat_rating)
        .bind(&c.csat_comment)
}

/// Writes every mutable field back and bumps the version.
pub async fn update(
    conn: &mut PgConnection,
    c: &ConversationRow,
) -> Result<ConversationRow, sqlx::Error> {
    let sql = format!("{WRITE_BACK} RETURNING {COLUMNS}");
    let row = bind_write_back(sqlx::query(&sql), c)
        .fetch_one(conn)
        .await?;
    ConversationRow::from_row(&row)
}

/// Who may see a conversation.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    /// Staff: the whole account.
    Account,
    /// A visitor: only this contact's conversations.
    Contact(Uuid),
}

/// One conversation, optionally locked `FOR UPDATE`.
pub async fn get(
    conn: &mut PgConnection,
    account: &str,
    id: Uuid,
    scope: Scope,
    lock: bool,
) -> Result<Option<ConversationRow>, sqlx::Error> {
    let contact = match scope {
        Scope::Account => None,
        Scope::Contact(c) => Some(c),
    };
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM conversations WHERE account_id = $1 AND id = $2 AND ($3::uuid IS NULL OR contact_id = $3){}",
        if lock { " FOR UPDATE" } else { "" }
    ))
    .bind(account)
    .bind(id)
    .bind(contact)
    .fetch_optional(conn)
    .await
}

/// Records `sequence` as the newest routing assignment change applied to the
/// conversation and returns it, locked; `None` when it does not exist or a newer
/// change was applied already.
pub async fn claim_routing_sequence(
    conn: &mut PgConnection,
    account: &str,
    id: Uuid,
    sequence: i64,
) -> Result<Option<ConversationRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE conversations SET routing_sequence = $3 WHERE account_id = $1 AND id = $2 AND routing_sequence < $3
         RETURNING {COLUMNS}"
    ))
    .bind(account)
    .bind(id)
    .bind(sequence)
    .fetch_optional(conn)
    .await
}

/// List filters (all optional).
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub status: Option<String>,
    pub inbox_id: Option<Uuid>,
    pub assignee_id: Option<String>,
    pub team_id: Option<String>,
    pub label: Option<String>,
    pub contact_id: Option<Uuid>,
    pub unassigned: bool,
}

/// A page of conversations, newest activity first, after the `(activity, id)` cursor.
pub async fn list(
    conn: &mut PgConnection,
    account: &str,
    filter: &Filter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: usize,
) -> Result<Vec<ConversationRow>, sqlx::Error> {
    let mut q: QueryBuilder<Postgres> = QueryBuilder::new(format!(
        "SELECT {COLUMNS} FROM conversations WHERE account_id = "
    ));
    q.push_bind(account);
    if let Some(s) = &filter.status {
        q.push(" AND status = ").push_bind(s);
    }
    if let Some(i) = filter.inbox_id {
        q.push(" AND inbox_id = ").push_bind(i);
    }
    if let Some(a) = &filter.assignee_id {
        q.push(" AND assignee_id = ").push_bind(a);
    }
    if filter.unassigned {
        q.push(" AND assignee_id IS NULL");
    }
    if let Some(t) = &filter.team_id {
        q.push(" AND team_id = ").push_bind(t);
    }
    if let Some(l) = &filter.label {
        q.push(" AND labels @> ARRAY[")
            .push_bind(l)
            .push("]::text[]");
    }
    if let Some(c) = filter.contact_id {
        q.push(" AND contact_id = ").push_bind(c);
    }
    if let Some((at, id)) = after {
        q.push(" AND (last_activity_at, id) < (")
            .push_bind(at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    q.push(" ORDER BY last_activity_at DESC, id DESC LIMIT ")
        .push_bind(limit as i64);
    q.build_query_as().fetch_all(conn).await
}
