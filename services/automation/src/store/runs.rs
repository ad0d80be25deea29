//! The run log.

use chrono::{DateTime, Utc};
use helpdesk_kit::storage::StorageName;
use helpdesk_kit::time::to_timestamp;
use helpdesk_proto::automation::v1::{RuleRun, RunOutcome};
use prost::Message as _;
use sqlx::PgConnection;
use uuid::Uuid;

/// Records `run` (its id and time are set here), which acted on the `observed`
/// state, and returns it as stored.
pub async fn insert(
    conn: &mut PgConnection,
    account: &str,
    mut run: RuleRun,
    observed: &str,
) -> sqlx::Result<RuleRun> {
    let id = Uuid::now_v7();
    let now = Utc::now();
    run.id = id.to_string();
    run.create_time = Some(to_timestamp(now));
    let outcome = RunOutcome::try_from(run.outcome).unwrap_or_default();
    sqlx::query(
        "INSERT INTO rule_runs (account_id, id, rule_id, event_id, conversation_id, ticket_id,
           outcome, body, create_time, observed) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(account)
    .bind(id)
    .bind(run.rule_id.parse::<Uuid>().unwrap_or_default())
    .bind(&run.event_id)
    .bind(&run.conversation_id)
    .bind(&run.ticket_id)
    .bind(outcome.storage_name())
    .bind(run.encode_to_vec())
    .bind(now)
    .bind(observed)
    .execute(conn)
    .await?;
    Ok(run)
}

/// Whether the rule already acted on (or was stopped at) the `observed` state.
pub async fn seen(
    conn: &mut PgConnection,
    account: &str,
    rule_id: Uuid,
    observed: &str,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM rule_runs WHERE account_id = $1 AND rule_id = $2
           AND observed = $3)",
    )
    .bind(account)
    .bind(rule_id)
    .bind(observed)
    .fetch_one(conn)
    .await
}

/// Filters of the run log.
#[derive(Debug, Default)]
pub struct Filter {
    pub rule_id: Option<Uuid>,
    pub conversation_id: Option<String>,
    pub ticket_id: Option<String>,
    pub outcome: Option<&'static str>,
}

/// Runs newest first, before the `(time, id)` cursor.
pub async fn list(
    conn: &mut PgConnection,
    account: &str,
    filter: &Filter,
    before: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<(DateTime<Utc>, Uuid, RuleRun)>> {
    let (t, id) = before.unzip();
    let rows: Vec<(DateTime<Utc>, Uuid, Vec<u8>)> = sqlx::query_as(
        "SELECT create_time, id, body FROM rule_runs WHERE account_id = $1
           AND ($2::uuid IS NULL OR rule_id = $2)
           AND ($3::text IS NULL OR conversation_id = $3)
           AND ($4::text IS NULL OR ticket_id = $4)
           AND ($5::text IS NULL OR outcome = $5)
           AND ($6::timestamptz IS NULL OR (create_time, id) < ($6, $7))
         ORDER BY create_time DESC, id DESC LIMIT $8",
    )
    .bind(account)
    .bind(filter.rule_id)
    .bind(&filter.conversation_id)
    .bind(&filter.ticket_id)
    .bind(filter.outcome)
    .bind(t)
    .bind(id)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(t, id, body)| (t, id, RuleRun::decode(body.as_slice()).unwrap_or_default()))
        .collect())
}

/// Deletes runs older than `days`, a bounded batch at a time; how many went.
pub async fn prune(conn: &mut PgConnection, days: u32) -> sqlx::Result<u64> {
    let r = sqlx::query(
        "DELETE FROM rule_runs WHERE ctid IN (SELECT ctid FROM rule_runs
           WHERE create_time < now() - make_interval(days => $1) LIMIT 5000)",
    )
    .bind(i32::try_from(days).unwrap_or(i32::MAX))
    .execute(conn)
    .await?;
    Ok(r.rows_affected())
}
