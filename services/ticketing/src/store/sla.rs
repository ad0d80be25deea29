//! Calendars, SLA policies, and each ticket's log of clock marks.

use chrono::{DateTime, Utc};
use helpdesk_proto::ticketing::v1::SlaMetric;
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::domain::StorageName;
use crate::domain::calendar::CalendarSpec;
use crate::domain::sla::{Entry, Filter, Mark, Standing, Target};

/// A stored calendar.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CalendarRow {
    pub id: Uuid,
    pub name: String,
    pub spec: Json<CalendarSpec>,
}

/// Stores a calendar.
pub async fn insert_calendar(
    conn: &mut PgConnection,
    account: &str,
    c: &CalendarRow,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO calendars (account_id, id, name, spec) VALUES ($1, $2, $3, $4)")
        .bind(account)
        .bind(c.id)
        .bind(&c.name)
        .bind(&c.spec)
        .execute(conn)
        .await?;
    Ok(())
}

/// Replaces a calendar's name and spec; whether it exists.
pub async fn update_calendar(
    conn: &mut PgConnection,
    account: &str,
    c: &CalendarRow,
) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("UPDATE calendars SET name = $3, spec = $4 WHERE account_id = $1 AND id = $2")
            .bind(account)
            .bind(c.id)
            .bind(&c.name)
            .bind(&c.spec)
            .execute(conn)
            .await?;
    Ok(done.rows_affected() > 0)
}

/// The account's calendars by name.
pub async fn calendars(
    conn: &mut PgConnection,
    account: &str,
) -> Result<Vec<CalendarRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, name, spec FROM calendars WHERE account_id = $1 ORDER BY name, id")
        .bind(account)
        .fetch_all(conn)
        .await
}

/// A stored policy.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PolicyRow {
    pub id: Uuid,
    pub name: String,
    pub position: i32,
    pub filter: Json<Filter>,
    pub targets: Json<Vec<Target>>,
    pub calendar_id: Option<Uuid>,
    pub warning_seconds: i64,
}

/// Stores a policy.
pub async fn insert_policy(
    conn: &mut PgConnection,
    account: &str,
    p: &PolicyRow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sla_policies (account_id, id, name, position, filter, targets, calendar_id, warning_seconds)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(account)
    .bind(p.id)
    .bind(&p.name)
    .bind(p.position)
    .bind(&p.filter)
    .bind(&p.targets)
    .bind(p.calendar_id)
    .bind(p.warning_seconds)
    .execute(conn)
    .await?;
    Ok(())
}

/// The account's policies in order.
pub async fn policies(
    conn: &mut PgConnection,
    account: &str,
) -> Result<Vec<PolicyRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, name, position, filter, targets, calendar_id, warning_seconds FROM sla_policies
         WHERE account_id = $1 ORDER BY position, created_at, id",
    )
    .bind(account)
    .fetch_all(conn)
    .await
}

/// Removes a policy; whether it existed.
pub async fn delete_policy(
    conn: &mut PgConnection,
    account: &str,
    id: Uuid,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM sla_policies WHERE account_id = $1 AND id = $2")
        .bind(account)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Appends marks to a ticket's log.
pub async fn append(
    conn: &mut PgConnection,
    account: &str,
    ticket: Uuid,
    entries: &[Entry],
) -> Result<(), sqlx::Error> {
    if entries.is_empty() {
        return Ok(());
    }
    let metrics: Vec<&str> = entries.iter().map(|e| e.metric.storage_name()).collect();
    let marks: Vec<&str> = entries.iter().map(|e| e.mark.name()).collect();
    let at: Vec<DateTime<Utc>> = entries.iter().map(|e| e.at).collect();
    // One statement; `seq` follows the order of the arrays.
    sqlx::query(
        "INSERT INTO sla_marks (account_id, ticket_id, metric, mark, at)
         SELECT $1, $2, m.metric, m.mark, m.at
         FROM UNNEST($3::text[], $4::text[], $5::timestamptz[]) WITH ORDINALITY AS m(metric, mark, at, n)
         ORDER BY m.n",
    )
    .bind(account)
    .bind(ticket)
    .bind(metrics)
    .bind(marks)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A ticket's log, in order.
pub async fn log(
    conn: &mut PgConnection,
    account: &str,
    ticket: Uuid,
) -> Result<Vec<Entry>, sqlx::Error> {
    let rows: Vec<(String, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT metric, mark, at FROM sla_marks WHERE account_id = $1 AND ticket_id = $2 ORDER BY seq",
    )
    .bind(account)
    .bind(ticket)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(metric, mark, at)| {
            Some(Entry {
                metric: SlaMetric::from_storage(&metric),
                mark: Mark::parse(&mark)?,
                at,
            })
        })
        .collect())
}

/// Stores a ticket's policy and standings (derived: no new version).
pub async fn set_standings(
    conn: &mut PgConnection,
    account: &str,
    ticket: Uuid,
    policy: Option<Uuid>,
    standings: &[Standing],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE tickets SET sla_policy_id = $3, sla = $4 WHERE account_id = $1 AND id = $2",
    )
    .bind(account)
    .bind(ticket)
    .bind(policy)
    .bind(Json(standings))
    .execute(conn)
    .await?;
    Ok(())
}

/// The account's tickets that are not closed (their clocks may change).
pub async fn open_tickets(
    conn: &mut PgConnection,
    account: &str,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM tickets WHERE account_id = $1 AND status_category <> 'closed' ORDER BY id",
    )
    .bind(account)
    .fetch_all(conn)
    .await
}

/// Holds the account's SLA policies still for the rest of the transaction (shared:
/// ticket changes; exclusive: policy changes, which then see every ticket change
/// that read the policies before them, and make later ones wait).
pub async fn hold_policies(
    conn: &mut PgConnection,
    account: &str,
    exclusive: bool,
) -> Result<(), sqlx::Error> {
    let sql = if exclusive {
        "SELECT pg_advisory_xact_lock(hashtextextended('ticketing.sla:' || $1, 0))"
    } else {
        "SELECT pg_advisory_xact_lock_shared(hashtextextended('ticketing.sla:' || $1, 0))"
    };
    sqlx::query(sql).bind(account).execute(conn).await?;
    Ok(())
}
