//! Durable timers: deadlines stored in the owning schema, claimed with
//! `FOR UPDATE SKIP LOCKED` so they fire once across replicas and survive restarts.
//! Each timer carries a fingerprint of the state it was set for; if the state has
//! moved on when it comes due, it is dropped instead of fired.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool, Row};
use tokio_util::sync::CancellationToken;

use crate::config::TimerConfig;

/// A due timer handed to its handler.
#[derive(Debug, Clone)]
pub struct Timer {
    /// Row id.
    pub id: i64,
    /// What kind of deadline (`conversation.snooze_wake`, …).
    pub kind: String,
    /// What it is about (usually an aggregate id); one timer per (kind, key).
    pub key: String,
    /// When it was due.
    pub due_at: DateTime<Utc>,
    /// The state it was set for.
    pub fingerprint: String,
    /// Extra data.
    pub payload: serde_json::Value,
    /// Failed attempts so far.
    pub attempts: i32,
}

/// Sets (or moves) the timer `(kind, key)` in the caller's transaction.
pub async fn schedule(
    conn: &mut PgConnection,
    kind: &str,
    key: &str,
    due_at: DateTime<Utc>,
    fingerprint: &str,
    payload: serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO timers (kind, key, due_at, fingerprint, payload) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (kind, key) DO UPDATE
         SET due_at = EXCLUDED.due_at, fingerprint = EXCLUDED.fingerprint, payload = EXCLUDED.payload,
             attempts = 0, last_error = NULL",
    )
    .bind(kind)
    .bind(key)
    .bind(due_at)
    .bind(fingerprint)
    .bind(payload)
    .execute(conn)
    .await?;
    Ok(())
}

/// Removes the timer `(kind, key)` if set.
pub async fn cancel(conn: &mut PgConnection, kind: &str, key: &str) -> Result<(), sqlx::Error> {
    cancel_kinds(conn, &[kind], key).await
}

/// Removes the timers of `key` of any of `kinds`, in one statement.
pub async fn cancel_kinds(
    conn: &mut PgConnection,
    kinds: &[&str],
    key: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM timers WHERE kind = ANY($1) AND key = $2")
        .bind(kinds)
        .bind(key)
        .execute(conn)
        .await?;
    Ok(())
}

/// A timer failed to fire; it is retried with backoff.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TimerError(pub String);

impl From<sqlx::Error> for TimerError {
    fn from(e: sqlx::Error) -> Self {
        Self(e.to_string())
    }
}

/// Fires timers of a service.
pub trait TimerHandler: Send + Sync + 'static {
    /// The fingerprint of the state the timer is about, as it is now (`None`: the
    /// thing is gone). The timer fires only if it equals the timer's fingerprint.
    fn current_fingerprint<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        timer: &'a Timer,
    ) -> impl Future<Output = Result<Option<String>, TimerError>> + Send + 'a;

    /// Applies the timer's effect in the claiming transaction.
    fn fire<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        timer: &'a Timer,
    ) -> impl Future<Output = Result<(), TimerError>> + Send + 'a;
}

/// Attempts after which a failing timer is moved to `timers_failed` (its retries back
/// off 1 s, 2 s … 256 s: about an hour in all).
pub const MAX_ATTEMPTS: i32 = 20;

/// What one claim attempt did.
#[derive(Debug, PartialEq, Eq)]
pub enum Tick {
    /// A timer fired.
    Fired,
    /// A timer was dropped because its state moved on.
    Stale,
    /// A timer failed and was pushed back.
    Failed,
    /// Nothing due.
    Idle,
}

/// Claims and fires due timers until `shutdown`.
pub async fn run_worker<H: TimerHandler>(
    pool: PgPool,
    handler: Arc<H>,
    config: TimerConfig,
    shutdown: CancellationToken,
) {
    let poll = Duration::from_millis(config.poll_interval_ms);
    loop {
        let (ticked, enqueued) = crate::outbox::tracked(tick(&pool, handler.as_ref())).await;
        if enqueued && matches!(ticked, Ok(Tick::Fired)) {
            crate::outbox::wake();
        }
        let wait = match ticked {
            Ok(Tick::Idle) => poll,
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "timer worker error");
                poll
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Claims at most one due timer and fires (or drops) it.
pub async fn tick<H: TimerHandler>(pool: &PgPool, handler: &H) -> Result<Tick, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let row = sqlx::query(
        "SELECT id, kind, key, due_at, fingerprint, payload, attempts FROM timers
         WHERE due_at <= now() ORDER BY due_at LIMIT 1 FOR UPDATE SKIP LOCKED",
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Ok(Tick::Idle);
    };
    let timer = Timer {
        id: row.get("id"),
        kind: row.get("kind"),
        key: row.get("key"),
        due_at: row.get("due_at"),
        fingerprint: row.get("fingerprint"),
        payload: row.get("payload"),
        attempts: row.get("attempts"),
    };
    let span = tracing::info_span!("timer.fire", kind = %timer.kind, key = %timer.key);
    let _guard = span.enter();
    let result = match handler.current_fingerprint(&mut tx, &timer).await {
        Ok(Some(current)) if current == timer.fingerprint => {
            handler.fire(&mut tx, &timer).await.map(|_| Tick::Fired)
        }
        Ok(_) => Ok(Tick::Stale),
        Err(e) => Err(e),
    };
    match result {
        Ok(outcome) => {
            sqlx::query("DELETE FROM timers WHERE id = $1")
                .bind(timer.id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            if outcome == Tick::Stale {
                tracing::info!("timer dropped: its state has moved on");
            }
            Ok(outcome)
        }
        Err(e) => {
            tx.rollback().await?;
            if timer.attempts + 1 >= MAX_ATTEMPTS {
                // It will not succeed by waiting: set aside where operators look,
                // rather than retried for ever.
                tracing::error!(error = %e, attempts = timer.attempts + 1, "timer gave up; moved to timers_failed");
                sqlx::query(
                    "WITH failed AS (DELETE FROM timers WHERE id = $1 RETURNING *)
                     INSERT INTO timers_failed (id, kind, key, due_at, fingerprint, payload, attempts, last_error)
                     SELECT id, kind, key, due_at, fingerprint, payload, attempts + 1, $2 FROM failed",
                )
                .bind(timer.id)
                .bind(&e.0)
                .execute(pool)
                .await?;
                return Ok(Tick::Failed);
            }
            let delay = Duration::from_secs(2u64.pow(timer.attempts.clamp(0, 8) as u32));
            tracing::warn!(error = %e, retry_in = ?delay, "timer failed");
            sqlx::query(
                "UPDATE timers SET attempts = attempts + 1, last_error = $2,
                 due_at = now() + make_interval(secs => $3) WHERE id = $1",
            )
            .bind(timer.id)
            .bind(&e.0)
            .bind(delay.as_secs_f64())
            .execute(pool)
            .await?;
            Ok(Tick::Failed)
        }
    }
}
