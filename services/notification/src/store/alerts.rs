//! Agent notifications and preferences.

use chrono::{DateTime, Utc};
use helpdesk_kit::time::{opt_timestamp, to_timestamp};
use helpdesk_proto::notification::v1::{
    AgentNotification, NotificationKind, NotificationPreference,
};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::StorageName;

/// A notification as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AlertRow {
    pub id: Uuid,
    pub agent_id: String,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub conversation_id: String,
    pub ticket_id: String,
    pub transfer_id: String,
    pub deadline: Option<DateTime<Utc>>,
    pub count: i32,
    pub read_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, agent_id, kind, title, body, conversation_id, ticket_id, transfer_id, \
     deadline, count, read_at, created_at, updated_at";

impl AlertRow {
    /// The contract's view, with the workbench flags of `pref`.
    pub fn to_proto(&self, pref: &NotificationPreference) -> AgentNotification {
        AgentNotification {
            id: self.id.to_string(),
            agent_id: self.agent_id.clone(),
            kind: NotificationKind::from_storage(&self.kind) as i32,
            title: self.title.clone(),
            body: self.body.clone(),
            conversation_id: self.conversation_id.clone(),
            ticket_id: self.ticket_id.clone(),
            transfer_id: self.transfer_id.clone(),
            deadline: opt_timestamp(self.deadline),
            count: self.count,
            read: self.read_at.is_some(),
            sound: pref.sound,
            desktop: pref.desktop,
            create_time: Some(to_timestamp(self.created_at)),
            update_time: Some(to_timestamp(self.updated_at)),
        }
    }
}

/// A notification to record.
#[derive(Debug, Clone, Default)]
pub struct NewAlert {
    pub agent_id: String,
    pub kind: NotificationKind,
    pub title: String,
    pub body: String,
    pub conversation_id: String,
    pub ticket_id: String,
    pub transfer_id: String,
    pub deadline: Option<DateTime<Utc>>,
    pub collapse_key: String,
}

/// Records a notification, or collapses it into the agent's unread one with the
/// same key (which then counts one more and carries the latest text).
pub async fn record(
    conn: &mut PgConnection,
    account: &str,
    a: &NewAlert,
) -> Result<AlertRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO agent_notifications (account_id, id, agent_id, kind, title, body,
             conversation_id, ticket_id, transfer_id, deadline, collapse_key)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (account_id, agent_id, collapse_key) WHERE read_at IS NULL
         DO UPDATE SET count = agent_notifications.count + 1, title = EXCLUDED.title,
             body = EXCLUDED.body, deadline = EXCLUDED.deadline, updated_at = now()
         RETURNING {COLUMNS}"
    ))
    .bind(account)
    .bind(Uuid::now_v7())
    .bind(&a.agent_id)
    .bind(a.kind.storage_name())
    .bind(&a.title)
    .bind(&a.body)
    .bind(&a.conversation_id)
    .bind(&a.ticket_id)
    .bind(&a.transfer_id)
    .bind(a.deadline)
    .bind(&a.collapse_key)
    .fetch_one(conn)
    .await
}

/// The agent's unread notification with `collapse_key`, if any.
pub async fn unread_by_key(
    conn: &mut PgConnection,
    account: &str,
    agent: &str,
    collapse_key: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM agent_notifications
         WHERE account_id = $1 AND agent_id = $2 AND collapse_key = $3 AND read_at IS NULL",
    )
    .bind(account)
    .bind(agent)
    .bind(collapse_key)
    .fetch_optional(conn)
    .await
}

/// How many of the agent's notifications are unread.
pub async fn unread(
    conn: &mut PgConnection,
    account: &str,
    agent: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM agent_notifications
         WHERE account_id = $1 AND agent_id = $2 AND read_at IS NULL",
    )
    .bind(account)
    .bind(agent)
    .fetch_one(conn)
    .await
}

/// The agent's notifications newest first, before `(created_at, id)`.
pub async fn list(
    conn: &mut PgConnection,
    account: &str,
    agent: &str,
    unread_only: bool,
    before: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<AlertRow>, sqlx::Error> {
    let (at, id) = before.unzip();
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM agent_notifications WHERE account_id = $1 AND agent_id = $2
         AND (NOT $3 OR read_at IS NULL)
         AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5))
         ORDER BY created_at DESC, id DESC LIMIT $6"
    ))
    .bind(account)
    .bind(agent)
    .bind(unread_only)
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Marks the agent's notifications `ids` (all when `None`) read; the ids it changed.
pub async fn mark_read(
    conn: &mut PgConnection,
    account: &str,
    agent: &str,
    ids: Option<&[Uuid]>,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE agent_notifications SET read_at = now()
         WHERE account_id = $1 AND agent_id = $2 AND read_at IS NULL
           AND ($3::uuid[] IS NULL OR id = ANY($3))
         RETURNING id",
    )
    .bind(account)
    .bind(agent)
    .bind(ids)
    .fetch_all(conn)
    .await
}

/// The agent's preferences: each kind's stored one, or its default.
pub async fn preferences(
    conn: &mut PgConnection,
    account: &str,
    agent: &str,
) -> Result<Vec<NotificationPreference>, sqlx::Error> {
    let stored: Vec<(String, bool, bool, bool, bool)> = sqlx::query_as(
        "SELECT kind, in_app, email, sound, desktop FROM notification_preferences
         WHERE account_id = $1 AND agent_id = $2",
    )
    .bind(account)
    .bind(agent)
    .fetch_all(conn)
    .await?;
    Ok(crate::domain::alerts::KINDS
        .iter()
        .map(|kind| {
            stored
                .iter()
                .find(|(k, ..)| k == kind.storage_name())
                .map(
                    |(_, in_app, email, sound, desktop)| NotificationPreference {
                        kind: *kind as i32,
                        in_app: *in_app,
                        email: *email,
                        sound: *sound,
                        desktop: *desktop,
                    },
                )
                .unwrap_or_else(|| crate::domain::alerts::default_preference(*kind))
        })
        .collect())
}

/// Stores the agent's preference of one kind.
pub async fn set_preference(
    conn: &mut PgConnection,
    account: &str,
    agent: &str,
    p: &NotificationPreference,
) -> Result<(), sqlx::Error> {
    let kind = NotificationKind::try_from(p.kind).unwrap_or_default();
    sqlx::query(
        "INSERT INTO notification_preferences (account_id, agent_id, kind, in_app, email, sound, desktop)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (account_id, agent_id, kind) DO UPDATE
         SET in_app = $4, email = $5, sound = $6, desktop = $7",
    )
    .bind(account)
    .bind(agent)
    .bind(kind.storage_name())
    .bind(p.in_app)
    .bind(p.email)
    .bind(p.sound)
    .bind(p.desktop)
    .execute(conn)
    .await?;
    Ok(())
}
