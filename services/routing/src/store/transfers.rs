//! Transfers: a conversation offered by its agent to another.

use chrono::{DateTime, Utc};
use helpdesk_kit::storage::StorageName;
use helpdesk_kit::time::to_timestamp;
use helpdesk_proto::routing::v1::{Transfer, TransferState};
use std::collections::BTreeMap;

use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::domain::templates::Template;

/// A stored transfer.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TransferRow {
    pub account_id: String,
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub from_agent_id: String,
    pub to_agent_id: String,
    pub note: String,
    pub state: String,
    pub reason: String,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    pub to_team_id: Option<Uuid>,
    pub declined_by: Vec<String>,
    pub previous_id: Option<Uuid>,
    pub next_id: Option<Uuid>,
    pub exhausted: bool,
    pub template_id: String,
    pub fields: Json<BTreeMap<String, String>>,
    pub to_skill: String,
    /// The requester's token role (onward offers follow the policy for it).
    pub requester_role: String,
}

impl TransferRow {
    /// Its state.
    pub fn state(&self) -> TransferState {
        TransferState::from_storage(&self.state)
    }

    /// As the API and the events show it.
    pub fn to_proto(&self) -> Transfer {
        Transfer {
            id: self.id.to_string(),
            conversation_id: self.conversation_id.to_string(),
            from_agent_id: self.from_agent_id.clone(),
            to_agent_id: self.to_agent_id.clone(),
            note: self.note.clone(),
            state: self.state() as i32,
            reason: self.reason.clone(),
            requested_by: self.requested_by.clone(),
            request_time: Some(to_timestamp(self.requested_at)),
            deadline: Some(to_timestamp(self.deadline)),
            decide_time: self.decided_at.map(to_timestamp),
            to_team_id: self.to_team_id.map(|t| t.to_string()).unwrap_or_default(),
            declined_by: self.declined_by.clone(),
            previous_transfer_id: self.previous_id.map(|t| t.to_string()).unwrap_or_default(),
            next_transfer_id: self.next_id.map(|t| t.to_string()).unwrap_or_default(),
            exhausted: self.exhausted,
            template_id: self.template_id.clone(),
            fields: self.fields.0.clone().into_iter().collect(),
            to_skill: self.to_skill.clone(),
        }
    }
}

const COLUMNS: &str = "account_id, id, conversation_id, from_agent_id, to_agent_id, note, state, reason, \
    requested_by, requested_at, deadline, decided_at, to_team_id, declined_by, previous_id, next_id, exhausted, template_id, fields, to_skill, requester_role";

/// Stores a new pending transfer.
pub async fn insert(conn: &mut PgConnection, t: &TransferRow) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO transfers ({COLUMNS})
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)"
    ))
    .bind(&t.account_id)
    .bind(t.id)
    .bind(t.conversation_id)
    .bind(&t.from_agent_id)
    .bind(&t.to_agent_id)
    .bind(&t.note)
    .bind(&t.state)
    .bind(&t.reason)
    .bind(&t.requested_by)
    .bind(t.requested_at)
    .bind(t.deadline)
    .bind(t.decided_at)
    .bind(t.to_team_id)
    .bind(&t.declined_by)
    .bind(t.previous_id)
    .bind(t.next_id)
    .bind(t.exhausted)
    .bind(&t.template_id)
    .bind(&t.fields)
    .bind(&t.to_skill)
    .bind(&t.requester_role)
    .execute(conn)
    .await?;
    Ok(())
}

/// One transfer of the account.
pub async fn get(
    conn: &mut PgConnection,
    account: &str,
    id: Uuid,
) -> Result<Option<TransferRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM transfers WHERE account_id = $1 AND id = $2"
    ))
    .bind(account)
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// The pending transfers of a conversation (at most one), or offered to an agent.
pub async fn pending(
    conn: &mut PgConnection,
    account: &str,
    conversation_id: Option<Uuid>,
    to_agent_id: Option<&str>,
) -> Result<Vec<TransferRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM transfers WHERE account_id = $1 AND state = 'pending'
           AND ($2::uuid IS NULL OR conversation_id = $2) AND ($3::text IS NULL OR to_agent_id = $3)
         ORDER BY requested_at"
    ))
    .bind(account)
    .bind(conversation_id)
    .bind(to_agent_id)
    .fetch_all(conn)
    .await
}

/// How a pending transfer ended.
#[derive(Debug, Clone, Copy)]
pub struct Outcome<'a> {
    pub state: TransferState,
    pub reason: &'a str,
    /// The offer that follows it (team transfers).
    pub next_id: Option<Uuid>,
    /// Nobody else could be offered it (team transfers).
    pub exhausted: bool,
}

/// Ends a pending transfer; `None` when it was no longer pending.
pub async fn finish(
    conn: &mut PgConnection,
    account: &str,
    id: Uuid,
    outcome: Outcome<'_>,
) -> Result<Option<TransferRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE transfers SET state = $3, reason = $4, next_id = $5, exhausted = $6, decided_at = now()
         WHERE account_id = $1 AND id = $2 AND state = 'pending' RETURNING {COLUMNS}"
    ))
    .bind(account)
    .bind(id)
    .bind(outcome.state.storage_name())
    .bind(outcome.reason)
    .bind(outcome.next_id)
    .bind(outcome.exhausted)
    .fetch_optional(conn)
    .await
}

/// Agents who declined a transfer of the conversation, or let it time out, since
/// `since`.
pub async fn decliners(
    conn: &mut PgConnection,
    account: &str,
    conversation_id: Uuid,
    since: DateTime<Utc>,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT to_agent_id FROM transfers WHERE account_id = $1 AND conversation_id = $2
           AND state IN ('rejected', 'timed_out') AND decided_at >= $3",
    )
    .bind(account)
    .bind(conversation_id)
    .bind(since)
    .fetch_all(conn)
    .await
}

/// Transfer counts of one agent or team over a period.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StatsRow {
    pub key: String,
    pub offers: i64,
    pub accepted: i64,
    pub rejected: i64,
    pub timed_out: i64,
    pub cancelled: i64,
    pub pending: i64,
    pub average_seconds_to_accept: Option<f64>,
}

/// Offers requested in `[from, to)` counted per receiving agent, or per team.
pub async fn stats(
    conn: &mut PgConnection,
    account: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    by_team: bool,
) -> Result<(Vec<StatsRow>, Vec<(String, String, i64)>), sqlx::Error> {
    let key = if by_team {
        "to_team_id::text"
    } else {
        "to_agent_id"
    };
    let scope = "account_id = $1 AND requested_at >= $2 AND requested_at < $3";
    let rows = sqlx::query_as(&format!(
        "SELECT {key} AS key, count(*) AS offers,
                count(*) FILTER (WHERE state = 'accepted') AS accepted,
                count(*) FILTER (WHERE state = 'rejected') AS rejected,
                count(*) FILTER (WHERE state = 'timed_out') AS timed_out,
                count(*) FILTER (WHERE state = 'cancelled') AS cancelled,
                count(*) FILTER (WHERE state = 'pending') AS pending,
                (avg(extract(epoch FROM decided_at - requested_at)) FILTER (WHERE state = 'accepted'))::float8
                    AS average_seconds_to_accept
         FROM transfers WHERE {scope} AND {key} IS NOT NULL GROUP BY 1 ORDER BY 1"
    ))
    .bind(account)
    .bind(from)
    .bind(to)
    .fetch_all(&mut *conn)
    .await?;
    let reasons = sqlx::query_as(&format!(
        "SELECT {key} AS key, reason, count(*) AS n FROM transfers
         WHERE {scope} AND {key} IS NOT NULL AND state = 'rejected' AND reason <> ''
         GROUP BY 1, 2 ORDER BY 1, 3 DESC, 2"
    ))
    .bind(account)
    .bind(from)
    .bind(to)
    .fetch_all(conn)
    .await?;
    Ok((rows, reasons))
}

/// The account's own note templates (the built-in ones are not stored), by id.
pub async fn templates(
    conn: &mut PgConnection,
    account: &str,
) -> Result<Vec<Template>, sqlx::Error> {
    let rows: Vec<(String, String, Vec<String>)> = sqlx::query_as(
        "SELECT id, name, fields FROM transfer_templates WHERE account_id = $1 ORDER BY id",
    )
    .bind(account)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, name, fields)| Template {
            id,
            name,
            fields,
            built_in: false,
        })
        .collect())
}

/// Stores a template; false when the account has one with that id already.
pub async fn insert_template(
    conn: &mut PgConnection,
    account: &str,
    t: &Template,
) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "INSERT INTO transfer_templates (account_id, id, name, fields) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING",
    )
    .bind(account)
    .bind(&t.id)
    .bind(&t.name)
    .bind(&t.fields)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// Deletes a template; false when there was none.
pub async fn delete_template(
    conn: &mut PgConnection,
    account: &str,
    id: &str,
) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM transfer_templates WHERE account_id = $1 AND id = $2")
            .bind(account)
            .bind(id)
            .execute(conn)
            .await?
            .rows_affected()
            == 1,
    )
}

/// A conversation's transfers, oldest first.
pub async fn of_conversation(
    conn: &mut PgConnection,
    account: &str,
    conversation_id: Uuid,
) -> Result<Vec<TransferRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM transfers WHERE account_id = $1 AND conversation_id = $2
         ORDER BY requested_at, id"
    ))
    .bind(account)
    .bind(conversation_id)
    .fetch_all(conn)
    .await
}
