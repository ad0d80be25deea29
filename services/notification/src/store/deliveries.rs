//! Deliveries (one per event per endpoint) and their attempts.

use chrono::{DateTime, Utc};
use helpdesk_kit::time::{opt_timestamp, to_timestamp};
use helpdesk_proto::notification::v1::{Delivery, DeliveryAttempt, DeliveryStatus};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::StorageName;

/// The channel that wakes the senders when deliveries are added.
pub const WAKE_CHANNEL: &str = "notification_deliveries";

/// A delivery to add.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub id: Uuid,
    pub account_id: String,
    pub endpoint_id: Uuid,
    pub event_id: String,
    pub event_type: String,
    pub body: String,
}

/// Adds deliveries, skipping any an endpoint already has for that event; how many
/// were added (the caller wakes the senders).
pub async fn insert_many(conn: &mut PgConnection, new: &[NewDelivery]) -> Result<u64, sqlx::Error> {
    if new.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Uuid> = new.iter().map(|d| d.id).collect();
    let accounts: Vec<&str> = new.iter().map(|d| d.account_id.as_str()).collect();
    let endpoints: Vec<Uuid> = new.iter().map(|d| d.endpoint_id).collect();
    let events: Vec<&str> = new.iter().map(|d| d.event_id.as_str()).collect();
    let types: Vec<&str> = new.iter().map(|d| d.event_type.as_str()).collect();
    let bodies: Vec<&str> = new.iter().map(|d| d.body.as_str()).collect();
    let added = sqlx::query(
        "WITH added AS (
             INSERT INTO deliveries (id, account_id, endpoint_id, event_id, event_type, body, status,
                 traceparent)
             SELECT id, account_id, endpoint_id, event_id, event_type, body, 'pending', $7
             FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::text[], $6::text[])
                  AS d(id, account_id, endpoint_id, event_id, event_type, body)
             ON CONFLICT (endpoint_id, event_id) DO NOTHING
             RETURNING id, endpoint_id)
         INSERT INTO queue (delivery_id, endpoint_id) SELECT id, endpoint_id FROM added",
    )
    .bind(&ids)
    .bind(&accounts)
    .bind(&endpoints)
    .bind(&events)
    .bind(&types)
    .bind(&bodies)
    .bind(helpdesk_kit::telemetry::current_trace_headers().0)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(added)
}

/// Adds one delivery, or finds the one the endpoint already has for that event id.
pub async fn insert_one(conn: &mut PgConnection, new: &NewDelivery) -> Result<Uuid, sqlx::Error> {
    let id: Option<Uuid> = sqlx::query_scalar(
        "WITH added AS (
             INSERT INTO deliveries (id, account_id, endpoint_id, event_id, event_type, body, status,
                 traceparent)
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7)
             ON CONFLICT (endpoint_id, event_id) DO NOTHING RETURNING id, endpoint_id)
         INSERT INTO queue (delivery_id, endpoint_id) SELECT id, endpoint_id FROM added
         RETURNING delivery_id",
    )
    .bind(new.id)
    .bind(&new.account_id)
    .bind(new.endpoint_id)
    .bind(&new.event_id)
    .bind(&new.event_type)
    .bind(&new.body)
    .bind(helpdesk_kit::telemetry::current_trace_headers().0)
    .fetch_optional(&mut *conn)
    .await?;
    match id {
        Some(id) => {
            wake(conn).await?;
            Ok(id)
        }
        None => {
            sqlx::query_scalar("SELECT id FROM deliveries WHERE endpoint_id = $1 AND event_id = $2")
                .bind(new.endpoint_id)
                .bind(&new.event_id)
                .fetch_one(conn)
                .await
        }
    }
}

/// Tells the senders (of every replica) that deliveries are due, at commit.
pub async fn wake(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    helpdesk_kit::db::wake(conn, WAKE_CHANNEL).await
}

/// A delivery as stored (without its body).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: Uuid,
    pub account_id: String,
    pub endpoint_id: Uuid,
    pub event_id: String,
    pub event_type: String,
    pub status: String,
    pub attempts: i32,
    pub step: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub response_code: i32,
    pub latency_ms: i32,
    pub response_excerpt: String,
    pub error: String,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, account_id, endpoint_id, event_id, event_type, status, attempts, step, \
     next_attempt_at, response_code, latency_ms, response_excerpt, error, created_at, delivered_at";

impl DeliveryRow {
    /// The contract's view.
    pub fn to_proto(&self) -> Delivery {
        let status = DeliveryStatus::from_storage(&self.status);
        Delivery {
            id: self.id.to_string(),
            endpoint_id: self.endpoint_id.to_string(),
            event_id: self.event_id.clone(),
            event_type: self.event_type.clone(),
            status: status as i32,
            attempts: self.attempts,
            next_attempt_time: (status == DeliveryStatus::Pending)
                .then(|| to_timestamp(self.next_attempt_at)),
            response_code: self.response_code,
            latency_ms: self.latency_ms,
            response_excerpt: self.response_excerpt.clone(),
            error: self.error.clone(),
            create_time: Some(to_timestamp(self.created_at)),
            delivered_time: opt_timestamp(self.delivered_at),
        }
    }
}

/// One delivery of the account.
pub async fn get(
    conn: &mut PgConnection,
    account: &str,
    id: Uuid,
) -> Result<Option<DeliveryRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM deliveries WHERE account_id = $1 AND id = $2"
    ))
    .bind(account)
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// An endpoint's deliveries newest first, before `(created_at, id)`, optionally of
/// one status.
pub async fn list(
    conn: &mut PgConnection,
    endpoint: Uuid,
    status: Option<&str>,
    before: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    let (at, id) = before.unzip();
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM deliveries WHERE endpoint_id = $1
         AND ($2::text IS NULL OR status = $2)
         AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4))
         ORDER BY created_at DESC, id DESC LIMIT $5"
    ))
    .bind(endpoint)
    .bind(status)
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(conn)
    .await
}

#[derive(sqlx::FromRow)]
struct AttemptRow {
    attempt: i32,
    at: DateTime<Utc>,
    response_code: i32,
    latency_ms: i32,
    response_excerpt: String,
    error: String,
    succeeded: bool,
}

/// A delivery's attempts, oldest first.
pub async fn attempts(
    conn: &mut PgConnection,
    delivery: Uuid,
) -> Result<Vec<DeliveryAttempt>, sqlx::Error> {
    let rows: Vec<AttemptRow> = sqlx::query_as(
        "SELECT attempt, at, response_code, latency_ms, response_excerpt, error, succeeded
         FROM attempts WHERE delivery_id = $1 ORDER BY attempt",
    )
    .bind(delivery)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| DeliveryAttempt {
            attempt: r.attempt,
            time: Some(to_timestamp(r.at)),
            response_code: r.response_code,
            latency_ms: r.latency_ms,
            response_excerpt: r.response_excerpt,
            error: r.error,
            succeeded: r.succeeded,
        })
        .collect())
}

/// Puts a delivery back at the start of its schedule, due now.
pub async fn restart(
    conn: &mut PgConnection,
    account: &str,
    id: Uuid,
) -> Result<Option<DeliveryRow>, sqlx::Error> {
    let row: Option<DeliveryRow> = sqlx::query_as(&format!(
        "UPDATE deliveries SET status = 'pending', step = 0, next_attempt_at = now()
         WHERE account_id = $1 AND id = $2 RETURNING {COLUMNS}"
    ))
    .bind(account)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = &row {
        // An attempt in flight no longer records: the redelivery starts afresh.
        sqlx::query(
            "INSERT INTO queue (delivery_id, endpoint_id) VALUES ($1, $2)
             ON CONFLICT (delivery_id) DO UPDATE SET due_at = now(), claimed_until = NULL",
        )
        .bind(row.id)
        .bind(row.endpoint_id)
        .execute(&mut *conn)
        .await?;
        wake(conn).await?;
    }
    Ok(row)
}

/// A delivery taken by a sender, with what it needs to send it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub id: Uuid,
    pub account_id: String,
    pub endpoint_id: Uuid,
    pub event_id: String,
    pub body: String,
    pub step: i32,
    pub url: String,
    pub secret: String,
    /// The rotated secret, while it still signs.
    pub previous_secret: Option<String>,
    pub rate_limit_per_second: Option<i32>,
    /// The claim's end: the token its outcome is recorded with (a claim that ran
    /// out and was taken again no longer records).
    pub claimed_until: DateTime<Utc>,
    /// The trace context the delivery was queued in.
    pub traceparent: String,
}

/// Claims due deliveries (from the queue) for `claim_ms`: at most `caps` (endpoint, room) of each
/// endpoint named there and `default_cap` of any other (never more than its rate
/// limit), `limit` in all; only of enabled endpoints that are not paused. Each
/// endpoint's oldest due deliveries come first, and every endpoint gets its share, so a
/// backlog on one never starves another.
pub async fn claim(
    pool: &PgPool,
    caps: &[(Uuid, i32)],
    default_cap: i32,
    limit: i64,
    claim_ms: i64,
) -> Result<Vec<Claimed>, sqlx::Error> {
    let (cap_ids, cap_rooms): (Vec<Uuid>, Vec<i32>) = caps.iter().copied().unzip();
    sqlx::query_as(
        "WITH due AS (
             SELECT endpoint_id, min(due_at) AS oldest FROM queue
             WHERE due_at <= now() AND (claimed_until IS NULL OR claimed_until < now())
             GROUP BY endpoint_id
         ), picked AS (
             SELECT p.delivery_id, e.url, e.secret,
                    CASE WHEN e.previous_secret_until > now() THEN e.previous_secret END AS previous_secret,
                    e.rate_limit_per_second
             FROM due JOIN endpoints e ON e.id = due.endpoint_id
             LEFT JOIN unnest($1::uuid[], $2::int[]) AS c(endpoint_id, room) ON c.endpoint_id = e.id
             CROSS JOIN LATERAL (
                 SELECT q.delivery_id FROM queue q
                 WHERE q.endpoint_id = e.id AND q.due_at <= now()
                   AND (q.claimed_until IS NULL OR q.claimed_until < now())
                 ORDER BY q.due_at
                 LIMIT LEAST(COALESCE(c.room, $3), COALESCE(e.rate_limit_per_second, $3))
                 FOR UPDATE OF q SKIP LOCKED
             ) p
             WHERE e.enabled AND (e.throttled_until IS NULL OR e.throttled_until <= now())
               AND COALESCE(c.room, $3) > 0
             ORDER BY due.oldest
             LIMIT $4
         ), claimed AS (
             UPDATE queue q SET claimed_until = now() + make_interval(secs => $5::float8 / 1000)
             FROM picked WHERE q.delivery_id = picked.delivery_id
             RETURNING q.delivery_id, q.claimed_until
         )
         SELECT d.id, d.account_id, d.endpoint_id, d.event_id, d.body, d.step,
                picked.url, picked.secret, picked.previous_secret, picked.rate_limit_per_second,
                claimed.claimed_until, d.traceparent
         FROM claimed JOIN picked USING (delivery_id) JOIN deliveries d ON d.id = claimed.delivery_id",
    )
    .bind(&cap_ids)
    .bind(&cap_rooms)
    .bind(default_cap)
    .bind(limit)
    .bind(claim_ms as f64)
    .fetch_all(pool)
    .await
}

/// What came of one attempt, to record.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub delivery_id: Uuid,
    pub endpoint_id: Uuid,
    pub response_code: i32,
    pub latency_ms: i32,
    pub response_excerpt: String,
    pub error: String,
    pub succeeded: bool,
    /// The claim it was made under ([`Claimed::claimed_until`]).
    pub claim: DateTime<Utc>,
}

/// Logs attempts (numbered after the delivery's earlier ones).
pub async fn log_attempts(
    conn: &mut PgConnection,
    records: &[AttemptRecord],
) -> Result<(), sqlx::Error> {
    let ids: Vec<Uuid> = records.iter().map(|r| r.delivery_id).collect();
    let endpoints: Vec<Uuid> = records.iter().map(|r| r.endpoint_id).collect();
    let codes: Vec<i32> = records.iter().map(|r| r.response_code).collect();
    let latencies: Vec<i32> = records.iter().map(|r| r.latency_ms).collect();
    let excerpts: Vec<&str> = records
        .iter()
        .map(|r| r.response_excerpt.as_str())
        .collect();
    let errors: Vec<&str> = records.iter().map(|r| r.error.as_str()).collect();
    let succeeded: Vec<bool> = records.iter().map(|r| r.succeeded).collect();
    sqlx::query(
        "INSERT INTO attempts (delivery_id, attempt, endpoint_id, response_code, latency_ms,
             response_excerpt, error, succeeded)
         SELECT u.id, d.attempts + 1, u.endpoint_id, u.code, u.latency, u.excerpt, u.error, u.ok
         FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::int[], $5::text[], $6::text[], $7::bool[])
              AS u(id, endpoint_id, code, latency, excerpt, error, ok)
         JOIN deliveries d ON d.id = u.id
         ON CONFLICT DO NOTHING",
    )
    .bind(&ids)
    .bind(&endpoints)
    .bind(&codes)
    .bind(&latencies)
    .bind(&excerpts)
    .bind(&errors)
    .bind(&succeeded)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks deliveries delivered by their last attempt.
pub async fn mark_delivered(
    conn: &mut PgConnection,
    records: &[&AttemptRecord],
) -> Result<(), sqlx::Error> {
    let ids: Vec<Uuid> = records.iter().map(|r| r.delivery_id).collect();
    let codes: Vec<i32> = records.iter().map(|r| r.response_code).collect();
    let latencies: Vec<i32> = records.iter().map(|r| r.latency_ms).collect();
    let excerpts: Vec<&str> = records
        .iter()
        .map(|r| r.response_excerpt.as_str())
        .collect();
    let claims: Vec<DateTime<Utc>> = records.iter().map(|r| r.claim).collect();
    // Only under the claim still held: a claim that ran out (and was taken again)
    // records nothing.
    sqlx::query(
        "WITH done AS (
             DELETE FROM queue q USING unnest($1::uuid[], $5::timestamptz[]) AS c(id, claim)
             WHERE q.delivery_id = c.id AND q.claimed_until = c.claim
             RETURNING q.delivery_id
         )
         UPDATE deliveries d SET status = 'succeeded', attempts = d.attempts + 1,
             response_code = u.code, latency_ms = u.latency,
             response_excerpt = u.excerpt, error = '', delivered_at = now()
         FROM unnest($1::uuid[], $2::int[], $3::int[], $4::text[]) AS u(id, code, latency, excerpt)
         WHERE d.id = u.id AND d.id IN (SELECT delivery_id FROM done)",
    )
    .bind(&ids)
    .bind(&codes)
    .bind(&latencies)
    .bind(&excerpts)
    .bind(&claims)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records a failed attempt, under the claim it was made under only: the delivery
/// waits for attempt `step` at `next` or, without one, has failed for good.
pub async fn mark_failed(
    conn: &mut PgConnection,
    r: &AttemptRecord,
    step: i32,
    next: Option<DateTime<Utc>>,
) -> Result<Option<DeliveryRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "WITH held AS (
             SELECT delivery_id FROM queue WHERE delivery_id = $1 AND claimed_until = $8
             FOR UPDATE
         ), waiting AS (
             UPDATE queue SET due_at = $2, claimed_until = NULL
             WHERE delivery_id IN (SELECT delivery_id FROM held) AND $2::timestamptz IS NOT NULL
         ), done AS (
             DELETE FROM queue
             WHERE delivery_id IN (SELECT delivery_id FROM held) AND $2::timestamptz IS NULL
         )
         UPDATE deliveries SET attempts = attempts + 1,
             status = CASE WHEN $2::timestamptz IS NULL THEN 'failed' ELSE 'pending' END,
             step = $3, next_attempt_at = COALESCE($2, next_attempt_at),
             response_code = $4, latency_ms = $5, response_excerpt = $6, error = $7
         WHERE id = $1 AND EXISTS (SELECT 1 FROM held) RETURNING {COLUMNS}"
    ))
    .bind(r.delivery_id)
    .bind(next)
    .bind(step)
    .bind(r.response_code)
    .bind(r.latency_ms)
    .bind(&r.response_excerpt)
    .bind(&r.error)
    .bind(r.claim)
    .fetch_optional(conn)
    .await
}

/// Attempts and successes of an endpoint since `since`, its pending and failed
/// deliveries, and its last success and failure.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Health {
    pub attempts: i64,
    pub successes: i64,
    pub pending: i64,
    pub failed: i64,
    pub last_success: Option<DateTime<Utc>>,
    pub last_failure: Option<DateTime<Utc>>,
}

/// See [`Health`].
pub async fn health(
    conn: &mut PgConnection,
    endpoint: Uuid,
    since: DateTime<Utc>,
) -> Result<Health, sqlx::Error> {
    sqlx::query_as(
        "SELECT
             (SELECT count(*) FROM attempts WHERE endpoint_id = $1 AND at >= $2) AS attempts,
             (SELECT count(*) FROM attempts WHERE endpoint_id = $1 AND at >= $2 AND succeeded) AS successes,
             (SELECT count(*) FROM queue WHERE endpoint_id = $1) AS pending,
             (SELECT count(*) FROM deliveries WHERE endpoint_id = $1 AND status = 'failed') AS failed,
             (SELECT max(at) FROM attempts WHERE endpoint_id = $1 AND succeeded) AS last_success,
             (SELECT max(at) FROM attempts WHERE endpoint_id = $1 AND NOT succeeded) AS last_failure",
    )
    .bind(endpoint)
    .bind(since)
    .fetch_one(conn)
    .await
}

/// Deletes up to `limit` finished deliveries created before `before` (see
/// [`super::delete_older`]); how many.
pub async fn delete_finished(
    pool: &PgPool,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<u64, sqlx::Error> {
    super::delete_older(pool, "deliveries", "pending", before, limit).await
}

/// Vacuums the queue (skipped when another replica is at it): it churns faster than
/// autovacuum visits it, and its dead rows would slow every claim down.
pub async fn vacuum_queue(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("VACUUM (SKIP_LOCKED) queue")
        .execute(pool)
        .await?;
    Ok(())
}
