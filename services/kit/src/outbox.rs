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
use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use chrono::{DateTime, Utc};
use helpdesk_proto::Event;
use sqlx::{PgConnection, PgPool, Row};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::bus::{Bus, headers};
use crate::config::OutboxConfig;
use crate::error::{Error, Result};
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

/// The largest encoded event the outbox accepts: NATS refuses messages over its
/// `max_payload` (1 MiB by default), and the CloudEvents headers need room too.
pub const MAX_EVENT_BYTES: usize = 960 * 1024;

/// Stamps `event` with a fresh meta of `origin` and writes it in the caller's
/// transaction: it is published if and only if the transaction commits. An event
/// over [`MAX_EVENT_BYTES`] is refused ([`Error::TooLarge`]), so the change that
/// would produce it fails instead of an event that can never be published.
pub async fn emit<E: Event>(conn: &mut PgConnection, origin: &Origin, mut event: E) -> Result<()> {
    event.set_meta(origin.meta());
    let event = OutboxEvent::of(&event);
    if event.payload.len() > MAX_EVENT_BYTES {
        return Err(Error::TooLarge(format!(
            "this change is too large: its {} event would be {} bytes (at most {MAX_EVENT_BYTES})",
            event.kind,
            event.payload.len()
        )));
    }
    enqueue(conn, event).await
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

/// An event written to the outbox with the trace context it was emitted in (and,
/// once read back by the relay, its row id and stored subject).
struct Pending {
    event: OutboxEvent,
    traceparent: String,
    tracestate: Option<String>,
    id: i64,
    subject: String,
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
    write(conn, rows).await
}

/// Inserts `rows` into the outbox in one statement, in their order.
async fn write(conn: &mut PgConnection, rows: Vec<Pending>) -> Result<(), sqlx::Error> {
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
pub async fn enqueue(conn: &mut PgConnection, event: OutboxEvent) -> Result<()> {
    let (traceparent, tracestate) = current_trace_headers();
    let mut row = Some(Pending {
        event,
        traceparent,
        tracestate,
        id: 0,
        subject: String::new(),
    });
    let _ = DEFERRED.try_with(|rows| rows.borrow_mut().extend(row.take()));
    // Still here when no deferral is in scope.
    if let Some(row) = row {
        write(conn, vec![row]).await?;
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
                    // At most a second: a backlog goes out soon after NATS is back.
                    let backoff = Duration::from_millis(100u64 << failures.min(6))
                        .min(Duration::from_secs(1));
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
    ///
    /// One relay per schema publishes at a time: it holds a session-level advisory
    /// lock on its own connection for the pass, and no transaction is open while it
    /// waits on NATS. The events of one aggregate (`ce-subject` within an account) are
    /// published one after the other, each once the previous one is acknowledged, so
    /// a lost publish can never let a later event of that aggregate onto the stream
    /// before an earlier one; different aggregates are in flight at once. Acknowledged
    /// rows are deleted; a row NATS refuses for good is parked (see [`park`]).
    pub async fn publish_batch(&self) -> Result<Published, RelayError> {
        let mut leader = Leader(Some(self.pool.acquire().await?));
        let conn = leader.conn()?;
        let locked: bool = sqlx::query_scalar(&format!("SELECT pg_try_advisory_lock({RELAY_KEY})"))
            .fetch_one(&mut *conn)
            .await?;
        if !locked {
            leader.release();
            return Ok(Published::Busy);
        }
        let outcome = self.publish_locked(conn).await;
        sqlx::query(&format!("SELECT pg_advisory_unlock({RELAY_KEY})"))
            .execute(&mut *conn)
            .await?;
        leader.release();
        outcome
    }

    async fn publish_locked(&self, conn: &mut PgConnection) -> Result<Published, RelayError> {
        // While NATS is away a publish would only wait for an ack that cannot come:
        // look again shortly instead, and publish the moment it is back.
        if self.bus.client.connection_state() != async_nats::connection::State::Connected {
            return Err(RelayError::Publish("not connected to NATS".into()));
        }
        let rows: Vec<Pending> = sqlx::query(
            "SELECT id, event_id, subject, event_type, ce_subject, payload, traceparent, tracestate, occurred_at
             FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1",
        )
        .bind(self.config.batch_size)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(Pending::from_row)
        .collect::<Result<_, sqlx::Error>>()?;
        if rows.is_empty() {
            return Ok(Published::Rows(0));
        }
        // Lanes: the rows of each aggregate in outbox order, lanes in order of first row.
        let mut lanes: Vec<Vec<usize>> = Vec::new();
        let mut lane_of: std::collections::HashMap<(&str, &str), usize> = Default::default();
        for (i, row) in rows.iter().enumerate() {
            let account = row.event.account_id.as_str();
            let lane = *lane_of
                .entry((account, row.event.ce_subject.as_str()))
                .or_insert_with(|| {
                    lanes.push(Vec::new());
                    lanes.len() - 1
                });
            lanes[lane].push(i);
        }
        let results = std::sync::Mutex::new(vec![Sent::No; rows.len()]);
        let set = |i: usize, sent: Sent| {
            if let Ok(mut r) = results.lock() {
                r[i] = sent;
            }
        };
        let lane = |indices: Vec<usize>| {
            let (rows, set) = (&rows, &set);
            async move {
                for i in indices {
                    let sent = self.send(&rows[i]).await;
                    let stop = matches!(sent, Sent::Failed(_));
                    set(i, sent);
                    if stop {
                        return;
                    }
                }
            }
        };
        let all = futures::future::join_all(lanes.into_iter().map(lane));
        let timed_out = tokio::time::timeout(ACK_DEADLINE, all).await.is_err();
        let results = results.into_inner().unwrap_or_default();

        let acked: Vec<i64> = rows
            .iter()
            .zip(&results)
            .filter(|(_, r)| matches!(r, Sent::Acked))
            .map(|(row, _)| row.id)
            .collect();
        if !acked.is_empty() {
            PUBLISHED.add(
                acked.len() as u64,
                &[opentelemetry::KeyValue::new("service", self.schema.clone())],
            );
            // JetStream holds them now; the stream is the record.
            sqlx::query("DELETE FROM outbox WHERE id = ANY($1)")
                .bind(&acked)
                .execute(&mut *conn)
                .await?;
        }
        let mut parked = 0;
        for (row, result) in rows.iter().zip(&results) {
            if let Sent::Refused(reason) = result {
                park(conn, &self.schema, row, reason).await?;
                parked += 1;
            }
        }
        let failed = results.iter().find_map(|r| match r {
            Sent::Failed(e) => Some(e.clone()),
            _ => None,
        });
        match (failed, timed_out) {
            (Some(e), _) => Err(RelayError::Publish(e)),
            (None, true) => Err(RelayError::Publish(format!(
                "no acknowledgement within {ACK_DEADLINE:?}"
            ))),
            (None, false) => Ok(Published::Rows(acked.len() + parked)),
        }
    }

    /// Publishes one row and waits for JetStream's acknowledgement, in a span of its
    /// own: a child of the context the event was written in, and the parent of every
    /// consumer's span (its context rides on the message).
    async fn send(&self, row: &Pending) -> Sent {
        let subject = format!("{}.evt.{}", self.bus.subjects.root(), row.subject);
        let kind = row.subject.split_once('.').map_or("", |(_, kind)| kind);
        let waited = (Utc::now() - row.event.occurred_at)
            .num_milliseconds()
            .max(0);
        let span = crate::telemetry::messaging_span(
            crate::telemetry::Messaging::Publish,
            format_args!("publish {kind}"),
            &subject,
            row.event.event_id,
            row.event.payload.len(),
            |k| match k {
                "traceparent" => Some(row.traceparent.as_str()).filter(|t| !t.is_empty()),
                "tracestate" => row.tracestate.as_deref(),
                _ => None,
            },
        );
        span.record("helpdesk.outbox.waited_ms", waited);
        let sent = async {
            match self.publish(row, subject).await {
                Ok(ack) => match ack.await {
                    Ok(_) => Sent::Acked,
                    Err(e) => Sent::Failed(e.to_string()),
                },
                Err(e) if e.kind() == PublishErrorKind::MaxPayloadExceeded => {
                    Sent::Refused(e.to_string())
                }
                Err(e) => Sent::Failed(e.to_string()),
            }
        }
        .instrument(span.clone())
        .await;
        if !matches!(sent, Sent::Acked) {
            span.record("otel.status_code", "ERROR");
        }
        sent
    }

    /// Sends one row to `subject`; the future resolves with JetStream's
    /// acknowledgement. The message carries the current (publish) span's trace
    /// context, or the stored one when spans are filtered out.
    async fn publish(
        &self,
        row: &Pending,
        subject: String,
    ) -> Result<async_nats::jetstream::context::PublishAckFuture, PublishError> {
        let event_id = row.event.event_id.to_string();
        let mut h = HeaderMap::new();
        h.insert(headers::SPECVERSION, "1.0");
        h.insert(headers::ID, event_id.as_str());
        h.insert(headers::NATS_MSG_ID, event_id.as_str());
        h.insert(headers::TYPE, row.event.event_type.as_str());
        h.insert(headers::SOURCE, self.source.as_str());
        h.insert(
            headers::TIME,
            row.event
                .occurred_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                .as_str(),
        );
        h.insert(headers::SUBJECT, row.event.ce_subject.as_str());
        h.insert(headers::CONTENT_TYPE, "application/protobuf");
        let (traceparent, tracestate) = if tracing::Span::current().is_disabled() {
            (row.traceparent.clone(), row.tracestate.clone())
        } else {
            current_trace_headers()
        };
        if !traceparent.is_empty() {
            h.insert(headers::TRACEPARENT, traceparent.as_str());
        }
        if let Some(ts) = &tracestate {
            h.insert(headers::TRACESTATE, ts.as_str());
        }
        self.bus
            .js
            .publish_with_headers(subject, h, row.event.payload.clone().into())
            .await
    }
}

static PUBLISHED: std::sync::LazyLock<opentelemetry::metrics::Counter<u64>> =
    std::sync::LazyLock::new(|| {
        crate::metrics::meter()
            .u64_counter("helpdesk.outbox.published")
            .with_unit("{event}")
            .with_description("Outbox events published to JetStream and acknowledged")
            .build()
    });

/// The advisory-lock key of the relays of the current schema.
const RELAY_KEY: &str = "hashtextextended(current_schema() || '.outbox_relay', 0)";

/// How long a relay pass waits, in all, for the acknowledgements of its batch.
const ACK_DEADLINE: Duration = Duration::from_secs(10);

/// What became of a row in a relay pass.
#[derive(Debug, Clone)]
enum Sent {
    /// Not sent (its lane stopped at an earlier failure, or time ran out).
    No,
    /// JetStream acknowledged it.
    Acked,
    /// Sending or acknowledging failed; it stays in the outbox.
    Failed(String),
    /// NATS refuses it for good (e.g. over `max_payload`).
    Refused(String),
}

/// The relay's connection while it may hold the relay lock. Unless released (lock
/// given back), it is closed rather than returned to the pool, which ends its
/// session and so its lock.
struct Leader(Option<sqlx::pool::PoolConnection<sqlx::Postgres>>);

impl Leader {
    fn conn(&mut self) -> Result<&mut PgConnection, RelayError> {
        self.0
            .as_deref_mut()
            .ok_or_else(|| RelayError::Publish("relay connection already released".into()))
    }

    /// Back to the pool: the lock is not held.
    fn release(&mut self) {
        self.0.take();
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            drop(conn.detach());
        }
    }
}

impl Pending {
    fn from_row(row: &sqlx::postgres::PgRow) -> Result<Self, sqlx::Error> {
        let subject: String = row.try_get("subject")?;
        let (account_id, _) = subject.split_once('.').unwrap_or((subject.as_str(), ""));
        Ok(Self {
            event: OutboxEvent {
                event_id: row.try_get("event_id")?,
                account_id: account_id.to_string(),
                kind: "",
                event_type: row.try_get("event_type")?,
                ce_subject: row.try_get("ce_subject")?,
                occurred_at: row.try_get("occurred_at")?,
                payload: row.try_get("payload")?,
            },
            id: row.try_get("id")?,
            subject: subject.clone(),
            traceparent: row
                .try_get::<Option<String>, _>("traceparent")?
                .unwrap_or_default(),
            tracestate: row.try_get("tracestate")?,
        })
    }
}

/// Moves a row NATS refuses for good into `outbox_parked` and records
/// `outbox.parked` (an event small enough to publish) in the same transaction, so the
/// events after it flow on. Operators find it in the table, the event and the log.
async fn park(
    conn: &mut PgConnection,
    schema: &str,
    row: &Pending,
    reason: &str,
) -> Result<(), RelayError> {
    tracing::error!(
        %schema,
        event_id = %row.event.event_id,
        subject = %row.subject,
        size = row.event.payload.len(),
        %reason,
        "outbox event refused by NATS for good; parked in outbox_parked"
    );
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    sqlx::query(
        "INSERT INTO outbox_parked (id, event_id, subject, event_type, ce_subject, payload, traceparent, tracestate,
             occurred_at, reason)
         SELECT id, event_id, subject, event_type, ce_subject, payload, traceparent, tracestate, occurred_at, $2
         FROM outbox WHERE id = $1
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(row.id)
    .bind(reason)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM outbox WHERE id = $1")
        .bind(row.id)
        .execute(&mut *tx)
        .await?;
    let event = helpdesk_proto::common::v1::OutboxEventParked {
        event_id: row.event.event_id.to_string(),
        subject: row.subject.clone(),
        event_type: row.event.event_type.clone(),
        size_bytes: row.event.payload.len() as i64,
        reason: reason.to_string(),
        schema: schema.to_string(),
        ..Default::default()
    };
    emit(&mut tx, &Origin::system(&row.event.account_id), event)
        .await
        .map_err(|e| match e {
            Error::Db(e) => RelayError::Db(e),
            other => RelayError::Publish(other.to_string()),
        })?;
    tx.commit().await?;
    PARKED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

/// Events parked by this process's relays since it started.
static PARKED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many events this process's relays have parked since it started.
pub fn parked_total() -> u64 {
    PARKED.load(std::sync::atomic::Ordering::Relaxed)
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
