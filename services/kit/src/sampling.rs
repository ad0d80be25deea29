//! What every service samples for its gauges, every few seconds: its outbox (backlog,
//! age of the oldest unpublished event, parked events), its durable consumers
//! (pending, waiting for an ack, redelivered) and their dead letters.

use opentelemetry::KeyValue;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::bus::Bus;

crate::sampled!(
    BACKLOG,
    "helpdesk.outbox.backlog",
    "{event}",
    "Events written to the service's outbox and not yet published"
);
crate::sampled!(
    LAG,
    "helpdesk.outbox.lag",
    "s",
    "Age of the oldest unpublished outbox event (0 when none)"
);
crate::sampled!(
    PARKED,
    "helpdesk.outbox.parked",
    "{event}",
    "Outbox events NATS refused for good, parked for an operator"
);
crate::sampled!(
    PENDING,
    "helpdesk.consumer.pending",
    "{event}",
    "Events on the stream a durable consumer has not yet been given"
);
crate::sampled!(
    ACK_PENDING,
    "helpdesk.consumer.ack_pending",
    "{event}",
    "Events given to a durable consumer and not yet acknowledged"
);
crate::sampled!(
    REDELIVERED,
    "helpdesk.consumer.redelivered",
    "{event}",
    "Events being delivered to a durable consumer again"
);
crate::sampled!(
    DEAD_LETTERS,
    "helpdesk.dead_letters",
    "{event}",
    "Events a durable consumer dead-lettered, kept in the dead-letter stream"
);

/// Samples `service`'s outbox and `consumers` until `stop`.
pub(crate) async fn run(
    service: &'static str,
    pool: PgPool,
    bus: Bus,
    consumers: Vec<String>,
    stop: CancellationToken,
) {
    crate::metrics::sample_every(crate::metrics::SAMPLE_EVERY, stop, || {
        sample(service, &pool, &bus, &consumers)
    })
    .await
}

async fn sample(
    service: &'static str,
    pool: &PgPool,
    bus: &Bus,
    consumers: &[String],
) -> Result<(), String> {
    let label = || vec![KeyValue::new("service", service)];
    let (backlog, lag, parked): (i64, f64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM outbox WHERE published_at IS NULL),
                (SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(occurred_at)), 0)::float8
                   FROM outbox WHERE published_at IS NULL),
                (SELECT count(*) FROM outbox_parked)",
    )
    .fetch_one(pool)
    .await
    .map_err(|e| e.to_string())?;
    BACKLOG.set(service, vec![(label(), backlog as f64)]);
    LAG.set(service, vec![(label(), lag.max(0.0))]);
    PARKED.set(service, vec![(label(), parked as f64)]);

    let stream = bus
        .js
        .get_stream(&bus.stream_name)
        .await
        .map_err(|e| e.to_string())?;
    let dlq = bus
        .js
        .get_stream(bus.dead_letter_stream())
        .await
        .map_err(|e| e.to_string())?;
    let (mut pending, mut ack_pending, mut redelivered, mut dead) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for name in consumers {
        let attrs = vec![KeyValue::new("consumer", name.clone())];
        if let Ok(info) = stream.consumer_info(name).await {
            pending.push((attrs.clone(), info.num_pending as f64));
            ack_pending.push((attrs.clone(), info.num_ack_pending as f64));
            redelivered.push((attrs.clone(), info.num_redelivered as f64));
        }
        let subject = bus.subjects.dead_letter(name);
        let count = match dlq.info_with_subjects(&subject).await {
            Ok(counts) => {
                use futures::TryStreamExt;
                let counts: Vec<(String, usize)> =
                    counts.try_collect().await.map_err(|e| e.to_string())?;
                counts.iter().map(|(_, n)| *n).sum::<usize>()
            }
            Err(e) => return Err(e.to_string()),
        };
        dead.push((attrs, count as f64));
    }
    PENDING.set(service, pending);
    ACK_PENDING.set(service, ack_pending);
    REDELIVERED.set(service, redelivered);
    DEAD_LETTERS.set(service, dead);
    Ok(())
}
