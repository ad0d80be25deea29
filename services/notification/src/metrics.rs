//! The notification service's metrics: webhook attempts by outcome with their
//! latency, emails by outcome, and the queues of both (sampled).

use std::sync::LazyLock;
use std::time::Duration;

use helpdesk_kit::CancellationToken;
use helpdesk_kit::metrics::{SECONDS_BUCKETS, meter, sample_every};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram};
use sqlx::PgPool;

static WEBHOOK_ATTEMPTS: LazyLock<Histogram<f64>> = LazyLock::new(|| {
    meter()
        .f64_histogram("helpdesk.webhook.attempt.duration")
        .with_unit("s")
        .with_description(
            "Webhook delivery attempts by outcome (delivered, throttled, gone, failed, unreachable) and how long each took",
        )
        .with_boundaries(SECONDS_BUCKETS.to_vec())
        .build()
});

static EMAILS: LazyLock<Counter<u64>> = LazyLock::new(|| {
    meter()
        .u64_counter("helpdesk.email.attempts")
        .with_unit("{email}")
        .with_description("Emails handed to the SMTP server, by outcome (sent, retry, failed)")
        .build()
});

helpdesk_kit::sampled!(
    QUEUED,
    "helpdesk.notification.queue",
    "{item}",
    "Webhook deliveries and emails waiting to be sent (kind = webhook | email)"
);

helpdesk_kit::sampled!(
    OLDEST,
    "helpdesk.notification.queue.oldest",
    "s",
    "How long the oldest due webhook delivery or email has been waiting"
);

/// Records one webhook attempt.
pub fn webhook_attempt(outcome: &'static str, took: Duration) {
    WEBHOOK_ATTEMPTS.record(took.as_secs_f64(), &[KeyValue::new("outcome", outcome)]);
}

/// Records one email attempt.
pub fn email_attempt(outcome: &'static str) {
    EMAILS.add(1, &[KeyValue::new("outcome", outcome)]);
}

/// Samples the queues until `stop`.
pub async fn sample(pool: PgPool, stop: CancellationToken) {
    sample_every(helpdesk_kit::metrics::SAMPLE_EVERY, stop, || async {
        let (webhooks, webhook_age, emails, email_age): (i64, f64, i64, f64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM queue),
                    (SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(due_at)), 0)::float8
                       FROM queue WHERE due_at <= now()),
                    (SELECT count(*) FROM emails WHERE status = 'queued'),
                    (SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(next_attempt_at)), 0)::float8
                       FROM emails WHERE status = 'queued' AND next_attempt_at <= now())",
        )
        .fetch_one(&pool)
        .await?;
        let kind = |k: &'static str| vec![KeyValue::new("kind", k)];
        QUEUED.set(
            "notification",
            vec![
                (kind("webhook"), webhooks as f64),
                (kind("email"), emails as f64),
            ],
        );
        OLDEST.set(
            "notification",
            vec![
                (kind("webhook"), webhook_age.max(0.0)),
                (kind("email"), email_age.max(0.0)),
            ],
        );
        Ok::<_, sqlx::Error>(())
    })
    .await
}
