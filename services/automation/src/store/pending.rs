//! The work queue: events whose rules are to be run, and delayed runs, claimed by the
//! executors of every replica (one run of an aggregate at a time, in order).
//!
//! Each aggregate's events form a lane whose oldest event is its head; only heads
//! (and due delayed runs, heads of their own) are claimed. Whoever adds to a lane or
//! finishes its head holds the lane's lock, so that a lane always has exactly one
//! head while it has events.

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
    /// The trace context it was queued in.
    pub traceparent: String,
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

/// Takes the locks of the lanes of `aggregates` until the transaction ends (in one
/// order, so that two transactions cannot deadlock on them).
async fn lock_lanes(conn: &mut PgConnection, aggregates: &[&str]) -> sqlx::Result<()> {
    sqlx::query(
        "SELECT count(pg_advisory_xact_lock(hashtextextended('automation.lane:' || g, 0)))
         FROM (SELECT DISTINCT g FROM unnest($1::text[]) AS g ORDER BY g) AS lanes",
    )
    .bind(aggregates)
    .execute(conn)
    .await?;
    Ok(())
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
    lock_lanes(conn, &column!(aggregate)).await?;
    // The first event of a lane that has none waiting is its head.
    sqlx::query(
        "INSERT INTO pending (account_id, aggregate, event_id, event_kind, payload, previous,
           head, traceparent)
         SELECT a, g, e, k, p, v,
           row_number() OVER (PARTITION BY g ORDER BY n) = 1
             AND NOT EXISTS (SELECT 1 FROM pending q WHERE q.aggregate = t.g
                               AND q.rule_id IS NULL),
           $7
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[],
           $6::bytea[]) WITH ORDINALITY AS t(a, g, e, k, p, v, n)
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
    .bind(helpdesk_kit::telemetry::current_trace_headers().0)
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
           rule_id, episode, due_at, head, traceparent)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, true, $10)
         ON CONFLICT (account_id, rule_id, aggregate) WHERE rule_id IS NOT NULL DO UPDATE SET
           event_id = EXCLUDED.event_id, event_kind = EXCLUDED.event_kind,
           payload = EXCLUDED.payload, previous = EXCLUDED.previous,
           episode = EXCLUDED.episode, due_at = EXCLUDED.due_at, attempts = 0,
           claimed_until = NULL, traceparent = EXCLUDED.traceparent
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
    .bind(helpdesk_kit::telemetry::current_trace_headers().0)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Claims up to `limit` due runs for `lease_ms`: lane heads and due delayed runs,
/// none of an aggregate that has a run in progress, one per aggregate. Claims are
/// made one at a time across replicas.
pub async fn claim(pool: &PgPool, limit: i64, lease_ms: i64) -> sqlx::Result<Vec<Pending>> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('automation.claim', 0))")
        .execute(&mut *tx)
        .await?;
    let claimed = sqlx::query_as(
        "WITH due AS MATERIALIZED (
           SELECT p.id, p.aggregate, p.due_at FROM pending p
           WHERE p.head AND p.due_at <= now()
             AND (p.claimed_until IS NULL OR p.claimed_until < now())
             AND NOT EXISTS (SELECT 1 FROM pending q WHERE q.aggregate = p.aggregate
                               AND q.claimed_until > now() AND q.id <> p.id)
           ORDER BY p.due_at, p.id LIMIT $1 * 2
         ), picked AS (
           SELECT DISTINCT ON (aggregate) id, due_at FROM due ORDER BY aggregate, due_at, id
         ), taken AS (
           SELECT id FROM picked ORDER BY due_at, id LIMIT $1
         )
         UPDATE pending SET claimed_until = now() + make_interval(secs => $2::float8 / 1000),
           attempts = pending.attempts + 1
         FROM taken WHERE pending.id = taken.id AND pending.head AND pending.due_at <= now()
           AND (pending.claimed_until IS NULL OR pending.claimed_until < now())
         RETURNING pending.id, account_id, aggregate, event_id, event_kind, payload, previous,
           rule_id, episode, due_at, attempts, traceparent",
    )
    .bind(limit)
    .bind(lease_ms)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(claimed)
}

/// Removes finished runs (each only while the claim taken at its `due_at` still
/// holds it: a rearmed delayed run is another one).
pub async fn finish_all(conn: &mut PgConnection, done: &[&Pending]) -> sqlx::Result<()> {
    if done.is_empty() {
        return Ok(());
    }
    let lanes: Vec<&str> = done
        .iter()
        .filter(|p| p.rule_id.is_none())
        .map(|p| p.aggregate.as_str())
        .collect();
    lock_lanes(conn, &lanes).await?;
    sqlx::query(
        "DELETE FROM pending p USING unnest($1::int8[], $2::timestamptz[], $3::text[])
           AS f(id, due_at, episode)
         WHERE p.id = f.id AND p.due_at = f.due_at AND p.episode = f.episode",
    )
    .bind(done.iter().map(|p| p.id).collect::<Vec<_>>())
    .bind(done.iter().map(|p| p.due_at).collect::<Vec<_>>())
    .bind(done.iter().map(|p| p.episode.as_str()).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    // Each lane's next event becomes its head.
    sqlx::query(
        "UPDATE pending SET head = true WHERE NOT head AND id IN (
           SELECT (SELECT min(q.id) FROM pending q WHERE q.aggregate = g AND q.rule_id IS NULL)
           FROM unnest($1::text[]) AS g)",
    )
    .bind(&lanes)
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
