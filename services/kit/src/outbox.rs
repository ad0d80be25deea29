//! Transactional outbox: events are written in the same transaction as the state
//! change they describe; the [`Relay`] publishes them to JetStream with
//! `Nats-Msg-Id` = event id, many in flight at once, in commit order, and deletes them
//! once acknowledged. NATS down means events wait, never vanish.
//!
//! The relay is woken in-process: the kit's gRPC layer, consumers and timers run
//! their work under [`tracked`], and call [`wake`] when it wrote events, once it has
//! committed. Nothing on the write path takes a database-wide lock (PostgreSQL's
//! `NOTIFY` serialises every notifying commit); a fallback poll catches events written
//! by other processes.

use std::time::Duration;

use async_nats::HeaderMap;
use chrono::{DateTime, Utc};
use helpdesk_proto::Event;
use sqlx::{PgConnection, PgPool, Row};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::bus::{Bus, headers};
use crate::config::OutboxConfig;
use crate::event::Origin;
use crate::telemetry::current_trace_headers;

/// One event ready to be written to the outbox.
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    /// Event id (the meta's `event_id`).
    pub event_id: Uuid,
    /// Tenant (third token of the subject).
    pub account_id: String,
    /// `<aggregate>.<event>`, e.g. `conversation.created`.
    pub kind: &'static str,
    /// Protobuf full name of the body (`ce-type`).
    pub event_type: String,
    /// Aggregate id (`ce-subject`).
    pub ce_subject: String,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// Encoded protobuf body.
    pub payload: Vec<u8>,
}

impl OutboxEvent {
    /// Encodes `event`, whose meta must be set.
    pub fn of<E: Event>(event: &E) -> Self {
        let meta = event.meta().cloned().unwrap_or_default();
        let occurred_at = meta
            .occurred_at
            .as_ref()
            .and_then(crate::time::from_timestamp)
            .unwrap_or_else(Utc::now);
        Self {
            event_id: meta.event_id.parse().unwrap_or_else(|_| Uuid::now_v7()),
            account_id: meta.account_id,
            kind: E::KIND,
            event_type: E::full_name(),
            ce_subject: event.aggregate_id().to_string(),
            occurred_at,
            payload: event.encode_to_vec(),
        }
    }
}

/// Stamps `event` with a fresh meta of `origin` and writes it in the caller's
/// transaction: it is published if and only if the transaction commits.
pub async fn emit<E: Event>(
    conn: &mut PgConnection,
    origin: &Origin,
    mut event: E,
) -> Result<(), sqlx::Error> {
    event.set_meta(origin.meta());
    enqueue(conn, OutboxEvent::of(&event)).await
}

/// How long the relay lets events gather after a partial batch.
const LINGER: Duration = Duration::from_millis(1);

tokio::task_local! {
    static ENQUEUED: std::cell::Cell<bool>;
}

static WAKE: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Runs `work` and says whether it wrote events to an outbox (then call [`wake`]
/// once its transaction has committed).
pub async fn tracked<F: std::future::Future>(work: F) -> (F::Output, bool) {
    ENQUEUED
        .scope(std::cell::Cell::new(false), async {
            let out = work.await;
            (out, ENQUEUED.with(std::cell::Cell::get))
        })
        .await
}

/// Wakes the relays of this process: events were committed.
pub fn wake() {
    WAKE.notify_waiters();
}

/// An event written to the outbox with the trace context it was emitted in.
struct Pending {
    event: OutboxEvent,
    traceparent: String,
    tracestate: Option<String>,
}

tokio::task_local! {
    static DEFERRED: std::cell::RefCell<Vec<Pending>>;
}

/// Runs `work`, in which [`enqueue`] keeps events in memory instead of writing each
/// one; `work` calls [`flush`] on its transaction before committing, which writes
/// them all in one statement, in the order they were emitted. What is not flushed is
/// dropped with the scope (a transaction rolled back). The kit's consumers apply
/// their batches this way.
pub async fn deferred<F: std::future::Future>(work: F) -> F::Output {
    DEFERRED
        .scope(std::cell::RefCell::new(Vec::new()), work)
        .await
}

/// Writes the events [`deferred`] is holding in the caller's transaction.
pub async fn flush(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    let rows = DEFERRED
        .try_with(|rows| std::mem::take(&mut *rows.borrow_mut()))
        .unwrap_or_default();
    if rows.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(rows.len());
    let mut subjects = Vec::with_capacity(rows.len());
    let mut types = Vec::with_capacity(rows.len());
    let mut aggregates = Vec::with_capacity(rows.len());
    let mut payloads = Vec::with_capacity(rows.len());
    let mut parents = Vec::with_capacity(rows.len());
    let mut states = Vec::with_capacity(rows.len());
    let mut times = Vec::with_capacity(rows.len());
    for r in rows {
        ids.push(r.event.event_id);
        subjects.push(format!("{}.{}", r.event.account_id, r.event.kind));
        types.push(r.event.event_type);
        aggregates.push(r.event.ce_subject);
        payloads.push(r.event.payload);
        parents.push(r.traceparent);
        states.push(r.tracestate);
        times.push(r.event.occurred_at);
    }
    sqlx::query(
        "INSERT INTO outbox (event_id, subject, event_type, ce_subject, payload, traceparent, tracestate, occurred_at)
         SELECT event_id, subject, event_type, ce_subject, payload, traceparent, tracestate, occurred_at
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bytea[], $6::text[], $7::text[], $8::timestamptz[])
              WITH ORDINALITY AS e(event_id, subject, event_type, ce_subject, payload, traceparent, tracestate, occurred_at, n)
         ORDER BY n",
    )
    .bind(&ids)
    .bind(&subjects)
    .bind(&types)
    .bind(&aggregates)
    .bind(&payloads)
    .bind(&parents)
    .bind(&states)
    .bind(&times)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Writes `event` in the caller's transaction, with the current trace context (under
/// [`deferred`], keeps it for [`flush`]); under [`tracked`], marks the work as having
/// written events.
pub async fn enqueue(conn: &mut PgConnection, event: OutboxEvent) -> Result<(), sqlx::Error> {
    let (traceparent, tracestate) = current_trace_headers();
    let mut row = Some(Pending {
        event,
        traceparent,
        tracestate,
    });
    let _ = DEFERRED.try_with(|rows| rows.borrow_mut().extend(row.take()));
    // Still here when no deferral is in scope.
    if let Some(row) = row {
        sqlx::query(
            "INSERT INTO outbox (event_id, subject, event_type, ce_subject, payload, traceparent, tracestate, occurred_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(row.event.event_id)
        .bind(format!("{}.{}", row.event.account_id, row.event.kind))
        .bind(&row.event.event_type)
        .bind(&row.event.ce_subject)
        .bind(&row.event.payload)
        .bind(row.traceparent)
        .bind(row.tracestate)
        .bind(row.event.occurred_at)
        .execute(&mut *conn)
        .await?;
    }
    let _ = ENQUEUED.try_with(|flag| flag.set(true));
    Ok(())
}

/// Publishes pending outbox rows of one schema. Any number of replicas may run one;
/// a transaction-scoped advisory lock lets only one publish at a time, which keeps
/// commit order on the stream.
pub struct Relay {
    pool: PgPool,
    bus: Bus,
    schema: String,
    source: String,
    config: OutboxConfig,
}

impl Relay {
    /// A relay for `schema`; `source` becomes `ce-source` (e.g. `/helpdesk/conversation`).
    pub fn new(pool: PgPool, bus: Bus, schema: &str, config: OutboxConfig) -> Self {
        Self {
            pool,
            bus,
            schema: schema.to_string(),
            source: format!("/helpdesk/{schema}"),
            config,
        }
    }

    /// Runs until `shutdown`, then publishes what is pending one last time.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut failures: u32 = 0;
        loop {
            // Registered before looking, so a wake during the look is not lost.
            let woken = WAKE.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let wait = match self.publish_batch().await {
                Ok(Published::Rows(n)) if n as i64 >= self.config.batch_size => {
                    failures = 0;
                    continue;
                }
                // Events are flowing: let a few more commit, so the next pass
                // publishes a batch rather than one row.
                Ok(Published::Rows(n)) if n > 0 => {
                    failures = 0;
                    tokio::time::sleep(LINGER).await;
                    continue;
                }
                Ok(Published::Rows(_)) => {
                    failures = 0;
                    Duration::from_millis(self.config.poll_interval_ms)
                }
                // Another replica's relay is publishing; look again shortly, as it
                // may have looked before our rows committed.
                Ok(Published::Busy) => Duration::from_millis(10),
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let backoff = Duration::from_millis(100u64 << failures.min(6))
                        .min(Duration::from_secs(5));
                    tracing::warn!(error = %e, schema = %self.schema, retry_in = ?backoff, "outbox publish failed; events kept");
                    backoff
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
                _ = woken, if failures == 0 => {}
            }
        }
        if let Err(e) = self.publish_batch().await {
            tracing::warn!(error = %e, schema = %self.schema, "final outbox flush failed; events stay pending");
        }
    }

    /// Publishes up to one batch.
    pub async fn publish_batch(&self) -> Result<Published, RelayError> {
        let mut tx = self.pool.begin().await?;
        let locked: bool = sqlx::query_scalar(
            "SELECT pg_try_advisory_xact_lock(hashtext(current_schema() || '.outbox_relay'))",
        )
        .fetch_one(&mut *tx)
        .await?;
        if !locked {
            return Ok(Published::Busy);
        }
        let rows = sqlx::query(
            "SELECT id, event_id, subject, event_type, ce_subject, payload, traceparent, tracestate, occurred_at
             FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1",
        )
        .bind(self.config.batch_size)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(Published::Rows(0));
        }
        // Send every publish first (in order, on one connection), then collect acks.
        let mut pending = Vec::with_capacity(rows.len());
        let mut first_error = None;
        for row in &rows {
            let id: i64 = row.get("id");
            let event_id: Uuid = row.get("event_id");
            let subject: String = row.get("subject");
            let occurred_at: DateTime<Utc> = row.get("occurred_at");
            let mut h = HeaderMap::new();
            h.insert(headers::SPECVERSION, "1.0");
            h.insert(headers::ID, event_id.to_string().as_str());
            h.insert(headers::NATS_MSG_ID, event_id.to_string().as_str());
            h.insert(headers::TYPE, row.get::<String, _>("event_type").as_str());
            h.insert(headers::SOURCE, self.source.as_str());
            h.insert(
                headers::TIME,
                occurred_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                    .as_str(),
            );
            h.insert(
                headers::SUBJECT,
                row.get::<String, _>("ce_subject").as_str(),
            );
            h.insert(headers::CONTENT_TYPE, "application/protobuf");
            if let Some(tp) = row.get::<Option<String>, _>("traceparent") {
                h.insert(headers::TRACEPARENT, tp.as_str());
            }
            if let Some(ts) = row.get::<Option<String>, _>("tracestate") {
                h.insert(headers::TRACESTATE, ts.as_str());
            }
            let payload: Vec<u8> = row.get("payload");
            let full_subject = format!("{}.evt.{subject}", self.bus.subjects.root());
            match self
                .bus
                .js
                .publish_with_headers(full_subject, h, payload.into())
                .await
            {
                Ok(ack) => pending.push((id, ack)),
                Err(e) => {
                    first_error = Some(e.to_string());
                    break;
                }
            }
        }
        let mut published = Vec::with_capacity(pending.len());
        for (id, ack) in pending {
            match ack.await {
                Ok(_) => published.push(id),
                Err(e) => {
                    first_error.get_or_insert(e.to_string());
                }
            }
        }
        if !published.is_empty() {
            // JetStream holds them now; the stream is the record.
            sqlx::query("DELETE FROM outbox WHERE id = ANY($1)")
                .bind(&published)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        match first_error {
            Some(e) => Err(RelayError::Publish(e)),
            None => Ok(Published::Rows(published.len())),
        }
    }
}

/// What one relay pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// Published (and deleted) this many rows.
    Rows(usize),
    /// Another relay of the schema holds the lock.
    Busy,
}

/// The relay could not publish.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// Database failure.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// NATS did not accept or acknowledge a publish.
    #[error("publish: {0}")]
    Publish(String),
}
