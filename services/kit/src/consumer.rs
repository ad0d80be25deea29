//! Event consumers: a durable pull consumer per service on the event stream, with
//! inbox de-duplication in the same transaction as the handler's effects, ack after
//! commit, nak with backoff on retryable failures, and terminate + dead-letter (with
//! the reason) for poison messages or when deliveries run out.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::bus::{Bus, BusError, header, headers};
use crate::config::ConsumerConfig;
use crate::event::{Event, Origin};
use helpdesk_proto::common::v1::EventMeta;

/// An event as delivered to a handler.
#[derive(Debug, Clone)]
pub struct IncomingEvent {
    /// Full subject.
    pub subject: String,
    /// Tenant (from the subject).
    pub account_id: String,
    /// `<aggregate>.<event>` (from the subject).
    pub kind: String,
    /// `ce-id`.
    pub event_id: String,
    /// `ce-type`.
    pub event_type: String,
    /// Encoded protobuf body.
    pub payload: Bytes,
    /// How many times this event has been delivered (1 the first time).
    pub delivered: i64,
}

impl IncomingEvent {
    /// Decodes the body; an undecodable body is poison.
    pub fn decode<M: prost::Message + Default>(&self) -> Result<M, HandlerError> {
        M::decode(self.payload.clone())
            .map_err(|e| HandlerError::Poison(format!("undecodable {}: {e}", self.event_type)))
    }
}

/// Why a handler did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Worth trying again later (database or network trouble).
    #[error("retryable: {0}")]
    Retry(String),
    /// Will never succeed (bad payload, impossible state): dead-lettered at once.
    #[error("poison: {0}")]
    Poison(String),
}

impl From<sqlx::Error> for HandlerError {
    fn from(e: sqlx::Error) -> Self {
        Self::Retry(e.to_string())
    }
}

/// Reacts to one event inside the consumer's transaction.
pub trait Handler: Send + Sync + 'static {
    /// Applies the event's effects on `conn`; they commit together with the inbox row.
    fn handle<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        event: &'a IncomingEvent,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send + 'a;

    /// Like [`Handler::handle`], as one of the events of the transaction `batch`
    /// (a number no other transaction of this process has): a handler may keep what
    /// it read for the other events of the same transaction.
    fn handle_in<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        event: &'a IncomingEvent,
        batch: u64,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send + 'a {
        let _ = batch;
        self.handle(conn, event)
    }

    /// Called once the events of the transaction `batch` were handled, before it
    /// commits: a handler that kept writes back for the whole batch makes them here.
    fn finish<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        batch: u64,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send + 'a {
        let _ = (conn, batch);
        std::future::ready(Ok(()))
    }
}

static BATCHES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A number for a new consumer transaction, unique in this process.
fn next_batch() -> u64 {
    BATCHES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// A decoded event handed to an [`On`] handler.
#[derive(Debug, Clone)]
pub struct Delivery<E> {
    /// Tenant (from the subject).
    pub account_id: String,
    /// `ce-id`.
    pub event_id: String,
    /// How many times this event has been delivered (1 the first time).
    pub delivered: i64,
    /// The transaction it is applied in (see [`Handler::handle_in`]).
    pub batch: u64,
    /// The event.
    pub event: E,
}

impl<E: Event> Delivery<E> {
    /// Decodes `incoming`'s body as `E`; an undecodable body is poison.
    pub fn decode(incoming: &IncomingEvent, batch: u64) -> Result<Self, HandlerError> {
        Ok(Self {
            account_id: incoming.account_id.clone(),
            event_id: incoming.event_id.clone(),
            delivered: incoming.delivered,
            batch,
            event: incoming.decode()?,
        })
    }

    /// The origin of the changes made in reaction: the event's actor and chain.
    pub fn origin(&self) -> Origin {
        let fallback;
        let meta = match self.event.meta() {
            Some(meta) => meta,
            None => {
                fallback = EventMeta {
                    event_id: self.event_id.clone(),
                    ..Default::default()
                };
                &fallback
            }
        };
        Origin::from_event(&self.account_id, meta)
    }
}

/// Handles one event type `E` inside the consumer's transaction.
pub trait On<E: Event>: Send + Sync + 'static {
    /// Applies the event's effects on `conn`; they commit together with the inbox row.
    fn on<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        delivery: &'a Delivery<E>,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send + 'a;
}

type BoxFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;
type Route<H> = for<'a> fn(
    &'a H,
    &'a mut PgConnection,
    &'a IncomingEvent,
    u64,
) -> BoxFuture<'a, Result<(), HandlerError>>;

fn route<'a, H: On<E>, E: Event>(
    handler: &'a H,
    conn: &'a mut PgConnection,
    incoming: &'a IncomingEvent,
    batch: u64,
) -> BoxFuture<'a, Result<(), HandlerError>> {
    Box::pin(async move {
        let delivery = Delivery::<E>::decode(incoming, batch)?;
        handler.on(conn, &delivery).await
    })
}

/// A service's event consumer: a durable name and one typed handler per event type.
/// The subjects it reads are derived from the types it handles.
///
/// ```ignore
/// Consumer::new("routing", RoutingEvents)
///     .on::<ConversationCreated>()
///     .on::<ConversationStatusChanged>()
/// ```
pub struct Consumer<H> {
    name: String,
    handler: H,
    routes: Vec<(&'static str, Route<H>)>,
}

impl<H: Send + Sync + 'static> Consumer<H> {
    /// A consumer named `name` (replicas share it) whose handlers live on `handler`.
    pub fn new(name: impl Into<String>, handler: H) -> Self {
        Self {
            name: name.into(),
            handler,
            routes: Vec::new(),
        }
    }

    /// Also handles events of type `E` (with `H`'s [`On<E>`]).
    pub fn on<E: Event>(mut self) -> Self
    where
        H: On<E>,
    {
        self.routes.push((E::KIND, route::<H, E>));
        self
    }

    /// Its durable name and the kinds it reads.
    pub fn spec(&self) -> ConsumerSpec {
        ConsumerSpec {
            name: self.name.clone(),
            kinds: self.routes.iter().map(|(k, _)| k.to_string()).collect(),
        }
    }
}

impl<H: Send + Sync + 'static> Handler for Consumer<H> {
    async fn handle(
        &self,
        conn: &mut PgConnection,
        event: &IncomingEvent,
    ) -> Result<(), HandlerError> {
        self.handle_in(conn, event, next_batch()).await
    }

    async fn handle_in(
        &self,
        conn: &mut PgConnection,
        event: &IncomingEvent,
        batch: u64,
    ) -> Result<(), HandlerError> {
        match self.routes.iter().find(|(kind, _)| *kind == event.kind) {
            Some((_, route)) => route(&self.handler, conn, event, batch).await,
            None => {
                tracing::debug!(kind = %event.kind, "no handler for this kind; skipped");
                Ok(())
            }
        }
    }
}

/// Which events a consumer reads.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// Durable name (the service name; replicas share it).
    pub name: String,
    /// Event kinds (`conversation.created`, …) from every account.
    pub kinds: Vec<String>,
}

/// What happened to one delivery.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Effects committed, acked.
    Applied,
    /// Already processed before; acked without effects.
    Duplicate,
    /// Failed, nak'ed for redelivery after the delay.
    Retry(Duration),
    /// Parked on the dead-letter subject and terminated.
    DeadLettered,
}

/// Runs a consumer until `shutdown`. The message being handled when shutdown comes
/// finishes first (drain).
pub async fn run<H: Handler>(
    bus: Bus,
    pool: PgPool,
    spec: ConsumerSpec,
    handler: Arc<H>,
    config: ConsumerConfig,
    shutdown: CancellationToken,
) -> Result<(), BusError> {
    let stream = bus
        .js
        .get_stream(&bus.stream_name)
        .await
        .map_err(BusError::js)?;
    let filters: Vec<String> = spec
        .kinds
        .iter()
        .map(|k| bus.subjects.event_kind_any_account(k))
        .collect();
    let consumer: pull::Stream = loop {
        let created = stream
            // Create, or update to the configured settings (ack wait, deliveries,
            // kinds), so a changed setting applies on start.
            .create_consumer(pull::Config {
                durable_name: Some(spec.name.clone()),
                filter_subjects: filters.clone(),
                ack_policy: AckPolicy::Explicit,
                deliver_policy: DeliverPolicy::All,
                ack_wait: Duration::from_secs(config.ack_wait_secs),
                // The kit counts deliveries itself and dead-letters at `max_deliver`;
                // JetStream keeps redelivering until it has, so an event whose
                // dead-lettering fails is retried, never dropped.
                max_deliver: -1,
                max_ack_pending: 1000,
                ..Default::default()
            })
            .await;
        match created {
            Ok(c) => match c
                .stream()
                .max_messages_per_batch(config.batch)
                .messages()
                .await
            {
                Ok(messages) => break messages,
                Err(e) => {
                    tracing::warn!(error = %e, consumer = %spec.name, "consumer stream failed; retrying")
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, consumer = %spec.name, "consumer setup failed; retrying")
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    };
    let mut messages = consumer;
    let mut prune = tokio::time::interval(INBOX_PRUNE_EVERY);
    loop {
        let next = tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = prune.tick() => {
                prune_inbox(&pool, &spec.name, config.inbox_retention_hours).await;
                crate::command::prune_results(&pool, config.inbox_retention_hours).await;
                continue;
            }
            next = messages.next() => next,
        };
        let first = match next {
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                tracing::warn!(error = %e, consumer = %spec.name, "consumer receive error");
                continue;
            }
            None => break,
        };
        // Whatever else has already arrived joins the batch (never waiting for more).
        let mut batch = vec![first];
        while batch.len() < config.batch.max(1) {
            match messages.next().now_or_never() {
                Some(Some(Ok(m))) => batch.push(m),
                Some(Some(Err(e))) => {
                    tracing::warn!(error = %e, consumer = %spec.name, "consumer receive error")
                }
                _ => break,
            }
        }
        let (applied, enqueued) = crate::outbox::tracked(apply_batch(
            &bus,
            &pool,
            &spec.name,
            handler.as_ref(),
            &batch,
        ))
        .await;
        if applied {
            if enqueued {
                crate::outbox::wake();
            }
            for message in &batch {
                acknowledge(&spec.name, message, &Ok(Outcome::Applied)).await;
            }
            continue;
        }
        // One at a time: a failure concerns one event only.
        for message in &batch {
            let (outcome, enqueued) = crate::outbox::tracked(process(
                &bus,
                &pool,
                &spec.name,
                handler.as_ref(),
                message,
                &config,
            ))
            .await;
            if enqueued && matches!(outcome, Ok(Outcome::Applied)) {
                crate::outbox::wake();
            }
            acknowledge(&spec.name, message, &outcome).await;
        }
    }
    Ok(())
}

async fn acknowledge(
    consumer: &str,
    message: &async_nats::jetstream::Message,
    outcome: &Result<Outcome, BusError>,
) {
    let ack = match outcome {
        Ok(Outcome::Applied | Outcome::Duplicate) => message.ack().await,
        Ok(Outcome::Retry(delay)) => message.ack_with(AckKind::Nak(Some(*delay))).await,
        Ok(Outcome::DeadLettered) => message.ack_with(AckKind::Term).await,
        Err(e) => {
            tracing::warn!(error = %e, %consumer, "could not dead-letter; will be redelivered");
            message
                .ack_with(AckKind::Nak(Some(Duration::from_secs(5))))
                .await
        }
    };
    if let Err(e) = ack {
        tracing::warn!(error = %e, %consumer, "ack failed; the event will be redelivered and deduplicated");
    }
}

/// The event a delivery carries, or `None` when it lacks an id or its subject is not
/// an event subject.
fn incoming(bus: &Bus, message: &async_nats::jetstream::Message) -> Option<IncomingEvent> {
    let hdrs = message.headers.as_ref();
    let event_id = header(hdrs, headers::ID)
        .or_else(|| header(hdrs, headers::NATS_MSG_ID))
        .filter(|id| !id.is_empty())?;
    let (account_id, kind) = bus.subjects.parse_event(&message.subject)?;
    Some(IncomingEvent {
        subject: message.subject.to_string(),
        account_id: account_id.to_string(),
        kind: kind.to_string(),
        event_id: event_id.to_string(),
        event_type: header(hdrs, headers::TYPE).unwrap_or_default().to_string(),
        payload: message.payload.clone(),
        delivered: message.info().map(|i| i.delivered).unwrap_or(1),
    })
}

/// Applies several deliveries in one transaction (one commit, one inbox write, one
/// outbox write): true
/// when every one was applied or was a duplicate. Anything else (a malformed
/// delivery, a failing handler, a database error) rolls the whole batch back, for the
/// caller to handle its deliveries one at a time.
async fn apply_batch<H: Handler>(
    bus: &Bus,
    pool: &PgPool,
    consumer: &str,
    handler: &H,
    batch: &[async_nats::jetstream::Message],
) -> bool {
    if batch.len() < 2 {
        return false;
    }
    let Some(events) = batch
        .iter()
        .map(|m| incoming(bus, m))
        .collect::<Option<Vec<_>>>()
    else {
        return false;
    };
    // Grouped by account (each account's events keep their order; accounts are
    // independent): a handler that locks per account takes its locks in one order,
    // so two consumers' batches cannot deadlock on them.
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by(|a, b| events[*a].account_id.cmp(&events[*b].account_id));
    let applied = crate::outbox::deferred(async {
        let transaction = next_batch();
        let mut tx = pool.begin().await?;
        let ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
        let subjects: Vec<&str> = events.iter().map(|e| e.subject.as_str()).collect();
        let fresh: Vec<String> = sqlx::query_scalar(
            "INSERT INTO inbox (consumer, event_id, subject)
             SELECT $1, id, subject FROM unnest($2::text[], $3::text[]) AS e(id, subject)
             ON CONFLICT DO NOTHING RETURNING event_id",
        )
        .bind(consumer)
        .bind(&ids)
        .bind(&subjects)
        .fetch_all(&mut *tx)
        .await?;
        let mut fresh: std::collections::HashSet<String> = fresh.into_iter().collect();
        for (event, message) in order.iter().map(|&i| (&events[i], &batch[i])) {
            // The same event twice in one batch is applied once.
            if !fresh.remove(&event.event_id) {
                continue;
            }
            let span = consume_span(consumer, &event.kind, message, event.delivered, batch.len());
            handler
                .handle_in(&mut tx, event, transaction)
                .instrument(span)
                .await?;
        }
        handler.finish(&mut tx, transaction).await?;
        crate::outbox::flush(&mut tx).await?;
        tx.commit().await?;
        Ok::<_, HandlerError>(())
    })
    .await;
    match applied {
        Ok(()) => true,
        Err(e) => {
            tracing::debug!(error = %e, %consumer, "batch rolled back; handling its events one at a time");
            false
        }
    }
}

/// Handles one delivery: dedup, effects and inbox row in one transaction.
async fn process<H: Handler>(
    bus: &Bus,
    pool: &PgPool,
    consumer: &str,
    handler: &H,
    message: &async_nats::jetstream::Message,
    config: &ConsumerConfig,
) -> Result<Outcome, BusError> {
    let delivered = message.info().map(|i| i.delivered).unwrap_or(1);
    let kind = bus
        .subjects
        .parse_event(&message.subject)
        .map_or("", |(_, kind)| kind);
    let span = consume_span(consumer, kind, message, delivered, 1);
    let failed = span.clone();
    async {
        let Some(event) = incoming(bus, message) else {
            dead_letter(
                bus,
                consumer,
                message,
                "missing ce-id header or malformed subject",
            )
            .await?;
            return Ok(Outcome::DeadLettered);
        };
        match apply(pool, consumer, handler, &event).await {
            Ok(outcome) => Ok(outcome),
            Err(HandlerError::Poison(reason)) => {
                failed.record("otel.status_code", "ERROR");
                tracing::error!(%reason, "poison event dead-lettered");
                dead_letter(bus, consumer, message, &reason).await?;
                Ok(Outcome::DeadLettered)
            }
            Err(HandlerError::Retry(reason)) if delivered >= config.max_deliver => {
                failed.record("otel.status_code", "ERROR");
                let reason = format!("gave up after {delivered} deliveries: {reason}");
                tracing::error!(%reason, "event dead-lettered");
                dead_letter(bus, consumer, message, &reason).await?;
                Ok(Outcome::DeadLettered)
            }
            Err(HandlerError::Retry(reason)) => {
                failed.record("otel.status_code", "ERROR");
                let delay = backoff(delivered);
                tracing::warn!(%reason, retry_in = ?delay, "event handling failed; will retry");
                Ok(Outcome::Retry(delay))
            }
        }
    }
    .instrument(span)
    .await
}

/// The span of one event's handling by `consumer`, with OpenTelemetry's messaging
/// attributes: a child of the publish span whose context the message carries.
fn consume_span(
    consumer: &str,
    kind: &str,
    message: &async_nats::jetstream::Message,
    delivered: i64,
    batch: usize,
) -> tracing::Span {
    let hdrs = message.headers.as_ref();
    let span = crate::telemetry::messaging_span(
        crate::telemetry::Messaging::Process,
        format_args!("{consumer} process {kind}"),
        &message.subject,
        header(hdrs, headers::ID).unwrap_or_default(),
        message.payload.len(),
        |k| header(hdrs, k),
    );
    span.record("messaging.consumer.group.name", consumer);
    span.record("messaging.nats.delivered", delivered);
    span.record("messaging.batch.message_count", batch);
    span
}

/// Runs the handler and records the event id in the inbox in one transaction.
/// Exposed so tests can deliver the same event twice.
pub async fn apply<H: Handler>(
    pool: &PgPool,
    consumer: &str,
    handler: &H,
    event: &IncomingEvent,
) -> Result<Outcome, HandlerError> {
    let mut tx = pool.begin().await?;
    let fresh = sqlx::query("INSERT INTO inbox (consumer, event_id, subject) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
        .bind(consumer)
        .bind(&event.event_id)
        .bind(&event.subject)
        .execute(&mut *tx)
        .await?
        .rows_affected()
        == 1;
    if !fresh {
        tx.rollback().await?;
        return Ok(Outcome::Duplicate);
    }
    crate::outbox::deferred(async {
        let batch = next_batch();
        handler.handle_in(&mut tx, event, batch).await?;
        handler.finish(&mut tx, batch).await?;
        crate::outbox::flush(&mut tx).await?;
        tx.commit().await?;
        Ok(Outcome::Applied)
    })
    .await
}

/// How often a consumer forgets the event ids it no longer needs.
const INBOX_PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Deletes `consumer`'s inbox rows older than `hours`, a bounded batch at a time.
pub async fn prune_inbox(pool: &PgPool, consumer: &str, hours: u64) -> u64 {
    let mut removed = 0;
    loop {
        let deleted = sqlx::query(
            "DELETE FROM inbox WHERE ctid IN (
                 SELECT ctid FROM inbox WHERE consumer = $1
                 AND processed_at < now() - make_interval(hours => $2) LIMIT 5000)",
        )
        .bind(consumer)
        .bind(i32::try_from(hours).unwrap_or(i32::MAX))
        .execute(pool)
        .await;
        match deleted {
            Ok(r) if r.rows_affected() > 0 => removed += r.rows_affected(),
            Ok(_) => return removed,
            Err(e) => {
                tracing::warn!(error = %e, %consumer, "inbox pruning failed; will retry");
                return removed;
            }
        }
    }
}

/// Nak delay for the n-th delivery: 1s, 2s, 4s … capped at 60s.
pub fn backoff(delivered: i64) -> Duration {
    let exp = (delivered.max(1) - 1).min(6) as u32;
    Duration::from_secs(2u64.pow(exp)).min(Duration::from_secs(60))
}

async fn dead_letter(
    bus: &Bus,
    consumer: &str,
    message: &async_nats::jetstream::Message,
    reason: &str,
) -> Result<(), BusError> {
    // Keep the CloudEvents and trace headers, but not `Nats-Msg-Id`: the dead-letter
    // stream must accept the message even if it was parked before.
    let mut h = HeaderMap::new();
    for name in [
        headers::SPECVERSION,
        headers::ID,
        headers::TYPE,
        headers::SOURCE,
        headers::TIME,
        headers::SUBJECT,
        headers::CONTENT_TYPE,
        headers::TRACEPARENT,
        headers::TRACESTATE,
    ] {
        if let Some(v) = header(message.headers.as_ref(), name) {
            h.insert(name, v);
        }
    }
    h.insert(
        headers::DLQ_REASON,
        reason.replace(['\r', '\n'], " ").as_str(),
    );
    h.insert(headers::DLQ_CONSUMER, consumer);
    h.insert(headers::DLQ_SUBJECT, message.subject.as_str());
    bus.js
        .publish_with_headers(
            bus.subjects.dead_letter(consumer),
            h,
            message.payload.clone(),
        )
        .await
        .map_err(BusError::js)?
        .await
        .map_err(BusError::js)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::backoff;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(4), Duration::from_secs(8));
        assert_eq!(backoff(50), Duration::from_secs(60));
    }
}
