//! Durable timers: deadlines stored in the owning schema that fire once across
//! replicas and survive restarts. Each timer carries a fingerprint of the state it was
//! set for; if the state has moved on when it comes due, it is dropped instead of fired.
//!
//! Lock order: a domain path takes its own locks (an account lock, an agent or a
//! conversation row) and then sets or cancels timers, so a timer's row is always the
//! last lock of a transaction. Firing keeps that order: a due timer is first claimed
//! for a while in a statement of its own (`claimed_until`, `FOR UPDATE SKIP LOCKED`),
//! then fired in a transaction that takes the handler's locks
//! ([`TimerHandler::lock`], then whatever its fingerprint and effect read) and touches
//! the timer row only at its end, to delete it. Whether it still fires is decided by
//! its fingerprint, read under those locks: a path that moved the state on has either
//! committed before (the timer is stale) or waits until the firing commits.

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
             attempts = 0, last_error = NULL, claimed_until = NULL",
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
    cancel_kinds_of(conn, kinds, &[key.to_string()]).await
}

/// Removes the timers of any of `keys` of any of `kinds`, in one statement.
pub async fn cancel_kinds_of(
    conn: &mut PgConnection,
    kinds: &[&str],
    keys: &[String],
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM timers WHERE kind = ANY($1) AND key = ANY($2)")
        .bind(kinds)
        .bind(keys)
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
    /// Takes the locks the timer's effect needs that the service's other paths take
    /// first (an account lock, say), before anything else of the firing transaction.
    /// Row locks taken by [`Self::current_fingerprint`] come after these.
    fn lock<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        timer: &'a Timer,
    ) -> impl Future<Output = Result<(), TimerError>> + Send + 'a {
        let _ = (conn, timer);
        async { Ok(()) }
    }

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

/// How long a claimed timer is left to its worker before another may take it (the
/// worker died between claiming and firing).
pub const CLAIM_SECONDS: i32 = 30;

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
    // The claim is a statement of its own: no lock is held while the handler waits
    // for the locks of its domain.
    let row = sqlx::query(
        "UPDATE timers SET claimed_until = now() + make_interval(secs => $1)
         WHERE id = (SELECT id FROM timers
                     WHERE due_at <= now() AND (claimed_until IS NULL OR claimed_until <= now())
                     ORDER BY due_at LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING id, kind, key, due_at, fingerprint, payload, attempts, claimed_until",
    )
    .bind(f64::from(CLAIM_SECONDS))
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else {
        return Ok(Tick::Idle);
    };
    let claim: DateTime<Utc> = row.get("claimed_until");
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
    let mut tx = pool.begin().await?;
    let result = fire_claimed(&mut tx, handler, &timer).await;
    match result {
        Ok(outcome) => {
            // The last lock of the transaction. A timer the effect itself moved or
            // cancelled is left as the effect made it.
            sqlx::query("DELETE FROM timers WHERE id = $1 AND claimed_until = $2")
                .bind(timer.id)
                .bind(claim)
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
                    "WITH failed AS (DELETE FROM timers WHERE id = $1 AND claimed_until = $3 RETURNING *)
                     INSERT INTO timers_failed (id, kind, key, due_at, fingerprint, payload, attempts, last_error)
                     SELECT id, kind, key, due_at, fingerprint, payload, attempts + 1, $2 FROM failed",
                )
                .bind(timer.id)
                .bind(&e.0)
                .bind(claim)
                .execute(pool)
                .await?;
                return Ok(Tick::Failed);
            }
            let delay = Duration::from_secs(2u64.pow(timer.attempts.clamp(0, 8) as u32));
            tracing::warn!(error = %e, retry_in = ?delay, "timer failed");
            sqlx::query(
                "UPDATE timers SET attempts = attempts + 1, last_error = $2, claimed_until = NULL,
                 due_at = now() + make_interval(secs => $3) WHERE id = $1 AND claimed_until = $4",
            )
            .bind(timer.id)
            .bind(&e.0)
            .bind(delay.as_secs_f64())
            .bind(claim)
            .execute(pool)
            .await?;
            Ok(Tick::Failed)
        }
    }
}

/// The handler's part of firing: its locks, the fingerprint check, the effect.
async fn fire_claimed<H: TimerHandler>(
    conn: &mut PgConnection,
    handler: &H,
    timer: &Timer,
) -> Result<Tick, TimerError> {
    handler.lock(conn, timer).await?;
    match handler.current_fingerprint(conn, timer).await? {
        Some(current) if current == timer.fingerprint => {
            handler.fire(conn, timer).await.map(|_| Tick::Fired)
        }
        _ => Ok(Tick::Stale),
    }
}
