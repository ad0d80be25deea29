//! A ticket's history: who changed what, when, from what to what.

use chrono::{DateTime, Utc};
use helpdesk_kit::time::to_timestamp;
use helpdesk_proto::common::v1::Actor;
use helpdesk_proto::ticketing::v1::{TicketChange, TicketEvent};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

/// One field's change.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Change {
    pub field: String,
    pub from: String,
    pub to: String,
}

/// A stored history entry.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    pub id: Uuid,
    pub ticket_id: Uuid,
    pub actor_kind: i32,
    pub actor_id: String,
    pub kind: String,
    pub changes: Json<Vec<Change>>,
    pub at: DateTime<Utc>,
}

impl EventRow {
    /// As the API shows it.
    pub fn to_proto(&self) -> TicketEvent {
        TicketEvent {
            id: self.id.to_string(),
            ticket_id: self.ticket_id.to_string(),
            actor: Some(Actor {
                kind: self.actor_kind,
                id: self.actor_id.clone(),
            }),
            time: Some(to_timestamp(self.at)),
            kind: self.kind.clone(),
            changes: self
                .changes
                .0
                .iter()
                .map(|c| TicketChange {
                    field: c.field.clone(),
                    from: c.from.clone(),
                    to: c.to.clone(),
                })
                .collect(),
        }
    }
}

/// Records an entry.
pub async fn record(
    conn: &mut PgConnection,
    account: &str,
    ticket: Uuid,
    actor: &Actor,
    kind: &str,
    changes: Vec<Change>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO ticket_events (account_id, id, ticket_id, actor_kind, actor_id, kind, changes)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(account)
    .bind(Uuid::now_v7())
    .bind(ticket)
    .bind(actor.kind)
    .bind(&actor.id)
    .bind(kind)
    .bind(Json(changes))
    .execute(conn)
    .await?;
    Ok(())
}

/// A page of a ticket's history, oldest first.
pub async fn list(
    conn: &mut PgConnection,
    account: &str,
    ticket: Uuid,
    after: Option<Uuid>,
    limit: usize,
) -> Result<Vec<EventRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, ticket_id, actor_kind, actor_id, kind, changes, at FROM ticket_events
         WHERE account_id = $1 AND ticket_id = $2 AND ($3::uuid IS NULL OR id > $3) ORDER BY id LIMIT $4",
    )
    .bind(account)
    .bind(ticket)
    .bind(after)
    .bind(limit as i64)
    .fetch_all(conn)
    .await
}
