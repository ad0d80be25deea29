//! The routing service's metrics: assignments by reason, how long assigned chats
//! waited, transfer outcomes, and the queues per team (sampled).

use std::sync::LazyLock;

use helpdesk_kit::CancellationToken;
use helpdesk_kit::metrics::{WAIT_BUCKETS, meter, sample_every};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram};
use sqlx::{PgPool, Row};

static ASSIGNMENTS: LazyLock<Counter<u64>> = LazyLock::new(|| {
    meter()
        .u64_counter("helpdesk.assignments")
        .with_unit("{assignment}")
        .with_description("Conversations given to an agent, by reason")
        .build()
});

static WAITED: LazyLock<Histogram<f64>> = LazyLock::new(|| {
    meter()
        .f64_histogram("helpdesk.queue.wait")
        .with_unit("s")
        .with_description("How long assigned conversations waited in the queue, by team")
        .with_boundaries(WAIT_BUCKETS.to_vec())
        .build()
});

static TRANSFERS: LazyLock<Counter<u64>> = LazyLock::new(|| {
    meter()
        .u64_counter("helpdesk.transfers")
        .with_unit("{transfer}")
        .with_description("Transfers ended, by outcome (accepted, rejected, timed_out, cancelled)")
        .build()
});

helpdesk_kit::sampled!(
    QUEUE_LENGTH,
    "helpdesk.queue.length",
    "{conversation}",
    "Conversations waiting in the queue, by account and team"
);

helpdesk_kit::sampled!(
    QUEUE_OLDEST,
    "helpdesk.queue.oldest",
    "s",
    "How long the longest-waiting conversation has waited, by account and team"
);

/// Records an assignment (`team` empty without one); `waited` in seconds.
pub fn assigned(reason: &'static str, team: &str, waited: i32) {
    ASSIGNMENTS.add(1, &[KeyValue::new("reason", reason)]);
    if waited > 0 {
        WAITED.record(
            f64::from(waited),
            &[KeyValue::new("team", team.to_string())],
        );
    }
}

/// Records a transfer's end.
pub fn transfer_ended(outcome: &'static str) {
    TRANSFERS.add(1, &[KeyValue::new("outcome", outcome)]);
}

/// Samples the queues until `stop`.
pub async fn sample(pool: PgPool, stop: CancellationToken) {
    sample_every(helpdesk_kit::metrics::SAMPLE_EVERY, stop, || async {
        let rows = sqlx::query(
            "SELECT account_id, COALESCE(team_id::text, ''), count(*),
                    EXTRACT(EPOCH FROM now() - min(enqueued_at))::float8
               FROM queue GROUP BY 1, 2",
        )
        .fetch_all(&pool)
        .await?;
        let (mut length, mut oldest) = (Vec::new(), Vec::new());
        for row in rows {
            let attrs = vec![
                KeyValue::new("account", row.try_get::<String, _>(0)?),
                KeyValue::new("team", row.try_get::<String, _>(1)?),
            ];
            length.push((attrs.clone(), row.try_get::<i64, _>(2)? as f64));
            oldest.push((attrs, row.try_get::<f64, _>(3)?.max(0.0)));
        }
        QUEUE_LENGTH.set("routing", length);
        QUEUE_OLDEST.set("routing", oldest);
        Ok::<_, sqlx::Error>(())
    })
    .await
}
