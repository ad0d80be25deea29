//! The work queue: events whose rules are to be run, and delayed runs, claimed by the
//! executors of every replica (one run of an aggregate at a time, in order).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// The channel executors wait on.
pub const WAKE_CHANNEL: &str = "automation_pending";

/// One unit of work.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Pending {
    pub id: i64,
    pub account_id: String,
    pub aggregate: String,
    pub event_id: String,
    pub event_kind: String,
    pub payload: Vec<u8>,
    pub previous: Option<Vec<u8>>,
    pub rule_id: Option<Uuid>,
    pub episode: String,
    pub due_at: DateTime<Utc>,
    pub attempts: i32,
}

/// An event to run the rules of.
pub struct NewEvent<'a> {
    pub account: &'a str,
    pub aggregate: &'a str,
    pub event_id: &'a str,
    pub kind: &'a str,
    pub payload: Vec<u8>,
    pub previous: Option<Vec<u8>>,
}

/// Queues `events` (each aggregate's in the order given) and wakes the executors at
/// commit.
pub async fn enqueue_all(conn: &mut PgConnection, events: &[NewEvent<'_>]) -> sqlx::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    macro_rules! column {
        ($field:ident) => {
            events.iter().map(|e| e.$field).collect::<Vec<_>>()
        };
    }
    sqlx::query(
        "INSERT INTO pending (account_id, aggregate, event_id, event_kind, payload, previous)
         SELECT a, g, e, k, p, v FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],
           $5::bytea[], $6::bytea[]) WITH ORDINALITY AS t(a, g, e, k, p, v, n)
         ORDER BY n",
    )
    .bind(column!(account))
    .bind(column!(aggregate))
    .bind(column!(event_id))
    .bind(column!(kind))
    .bind(
        events
            .iter()
            .map(|e| e.payload.as_slice())
            .collect::<Vec<_>>(),
    )
    .bind(
        events
            .iter()
            .map(|e| e.previous.as_deref())
            .collect::<Vec<_>>(),
    )
    .execute(&mut *conn)
    .await?;
    helpdesk_kit::db::wake(conn, WAKE_CHANNEL).await
}

/// Arms `rule`'s delayed run for the aggregate in `episode`, due at `due`. A run
/// already armed in the same episode keeps its time; one of an earlier episode is
/// replaced. True when a run was armed.
pub async fn arm(
    conn: &mut PgConnection,
    e: NewEvent<'_>,
    rule: Uuid,
    episode: &str,
    due: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let r = sqlx::query(
        "INSERT INTO pending (account_id, aggregate, event_id, event_kind, payload, previous,
           rule_id, episode, due_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (account_id, rule_id, aggregate) WHERE rule_id IS NOT NULL DO UPDATE SET
           event_id = EXCLUDED.event_id, event_kind = EXCLUDED.event_kind,
           payload = EXCLUDED.payload, previous = EXCLUDED.previous,
           episode = EXCLUDED.episode, due_at = EXCLUDED.due_at, attempts = 0,
           claimed_until = NULL
         WHERE pending.episode <> EXCLUDED.episode",
    )
    .bind(e.account)
    .bind(e.aggregate)
    .bind(e.event_id)
    .bind(e.kind)
    .bind(e.payload)
    .bind(e.previous)
    .bind(rule)
    .bind(episode)
    .bind(due)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Claims up to `limit` due runs for `lease_ms`: of each aggregate only the oldest
/// one, and none while an earlier one of it is claimed elsewhere or waits to be tried
/// again (a delayed run not yet due holds nothing up).
pub async fn claim(pool: &PgPool, limit: i64, lease_ms: i64) -> sqlx::Result<Vec<Pending>> {
    sqlx::query_as(
        "WITH picked AS MATERIALIZED (
           SELECT p.id FROM pending p
           WHERE p.due_at <= now() AND (p.claimed_until IS NULL OR p.claimed_until < now())
             AND NOT EXISTS (SELECT 1 FROM pending q WHERE q.aggregate = p.aggregate
                               AND q.id < p.id AND (q.rule_id IS NULL OR q.due_at <= now()))
           ORDER BY p.due_at, p.id LIMIT $1 FOR UPDATE SKIP LOCKED)
         UPDATE pending SET claimed_until = now() + make_interval(secs => $2::float8 / 1000),
           attempts = pending.attempts + 1
         FROM picked WHERE pending.id = picked.id
         RETURNING pending.id, account_id, aggregate, event_id, event_kind, payload, previous,
           rule_id, episode, due_at, attempts",
    )
    .bind(limit)
    .bind(lease_ms)
    .fetch_all(pool)
    .await
}

/// Removes finished runs (each only while the claim taken at its `due_at` still
/// holds it: a rearmed delayed run is another one).
pub async fn finish_all(conn: &mut PgConnection, done: &[&Pending]) -> sqlx::Result<()> {
    sqlx::query(
        "DELETE FROM pending p USING unnest($1::int8[], $2::timestamptz[], $3::text[])
           AS f(id, due_at, episode)
         WHERE p.id = f.id AND p.due_at = f.due_at AND p.episode = f.episode",
    )
    .bind(done.iter().map(|p| p.id).collect::<Vec<_>>())
    .bind(done.iter().map(|p| p.due_at).collect::<Vec<_>>())
    .bind(done.iter().map(|p| p.episode.as_str()).collect::<Vec<_>>())
    .execute(conn)
    .await?;
    Ok(())
}

/// Puts a run back to be tried again after `delay_ms`.
pub async fn retry_later(pool: &PgPool, p: &Pending, delay_ms: i64) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE pending SET claimed_until = NULL,
           due_at = now() + make_interval(secs => $3::float8 / 1000)
         WHERE id = $1 AND due_at = $2",
    )
    .bind(p.id)
    .bind(p.due_at)
    .bind(delay_ms)
    .execute(pool)
    .await?;
    Ok(())
}
