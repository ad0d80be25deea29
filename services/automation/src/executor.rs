//! The executors: claim due work (queued events, delayed runs) in every replica, run
//! it, and put back what must wait for another service, with growing pauses.

use std::sync::Arc;
use std::time::Duration;

use helpdesk_kit::CancellationToken;
use helpdesk_kit::db::Wakeups;

use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::ops::run::{Completed, Done, Runner};
use crate::store::{self, pending::Pending, pending::WAKE_CHANNEL};

/// How long a claim holds (longer than any run takes; a replica that dies leaves
/// its claims to others after this).
const LEASE_MS: i64 = 120_000;
/// After this many tries, actions still waiting for a service are logged as failed.
const MAX_ATTEMPTS: i32 = 12;

/// How the executors work.
#[derive(Debug, Clone)]
pub struct ExecutorConfig {
    /// Runs in progress at once per replica.
    pub concurrency: usize,
    /// How often due runs are looked for when nothing wakes the executor.
    pub poll: Duration,
}

/// Pause before try `attempts + 1`: 1 s, 2 s, 4 s … at most 5 minutes.
fn backoff_ms(attempts: i32) -> i64 {
    let exp = u32::try_from(attempts.clamp(1, 10) - 1).unwrap_or(0);
    (1_000i64 << exp).min(300_000)
}

/// Runs work until `stop`: claims as many due runs as there are free slots, runs
/// each as soon as it is claimed, claims again as slots free up, and hands what the
/// runs decided to one writer that records many in a transaction.
pub async fn run(runner: Arc<Runner>, config: ExecutorConfig, stop: CancellationToken) {
    let pool = runner.pool.clone();
    let mut wakeups = Wakeups::new(pool.clone(), WAKE_CHANNEL);
    let slots = Arc::new(Semaphore::new(config.concurrency));
    let freed = Arc::new(Notify::new());
    let (done, finished) = mpsc::channel(config.concurrency);
    let writer = tokio::spawn(write(runner.clone(), finished));
    let mut running = JoinSet::new();
    while !stop.is_cancelled() {
        while running.try_join_next().is_some() {}
        wakeups.listen().await;
        let room = slots.available_permits();
        let mut claimed_any = false;
        // Claim when a good share of the slots is free: each claim looks past the
        // events waiting behind those in progress.
        if room > 0 && (room * 4 >= config.concurrency || running.is_empty()) {
            match store::pending::claim(&pool, room as i64, LEASE_MS).await {
                Ok(batch) => {
                    claimed_any = !batch.is_empty();
                    for p in batch {
                        let Ok(slot) = slots.clone().try_acquire_owned() else {
                            // Never held without a slot: another claim takes it.
                            let _ = store::pending::retry_later(&pool, &p, 0).await;
                            continue;
                        };
                        let (runner, freed, done) = (runner.clone(), freed.clone(), done.clone());
                        running.spawn(async move {
                            if let Some(completed) = one(&runner, p).await {
                                // The slot frees once the writer took it: a slow writer
                                // slows the claiming down.
                                let _ = done.send(completed).await;
                            }
                            drop(slot);
                            freed.notify_one();
                        });
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "claiming automation work failed; retrying")
                }
            }
        }
        if claimed_any && slots.available_permits() > 0 {
            continue; // more may be due (the next event of an aggregate just finished)
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = freed.notified() => {
                // Let a few more finish before claiming again.
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            _ = wakeups.wait() => {}
            _ = tokio::time::sleep(config.poll) => {}
        }
    }
    while running.join_next().await.is_some() {}
    drop(done);
    let _ = writer.await;
}

/// Most runs recorded in one transaction.
const WRITE_BATCH: usize = 256;

/// Records finished runs, many to a transaction, until the executor stops. A batch
/// that cannot be written is tried again; after that its claims run out and the
/// events are run again (their actions are not done twice).
async fn write(runner: Arc<Runner>, mut finished: mpsc::Receiver<Box<Completed>>) {
    while let Some(first) = finished.recv().await {
        let mut batch = vec![*first];
        while batch.len() < WRITE_BATCH {
            match finished.try_recv() {
                Ok(next) => batch.push(*next),
                Err(_) => break,
            }
        }
        for attempt in 1..=3 {
            match runner.record_all(&batch).await {
                Ok(()) => break,
                Err(e) if attempt < 3 => {
                    tracing::info!(error = %e, "recording automation runs failed; trying again");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, runs = batch.len(), "recording automation runs failed; they will be run again")
                }
            }
        }
    }
}

/// Runs one piece of work: what to record, or `None` when it was put back to be
/// tried again.
async fn one(runner: &Runner, p: Pending) -> Option<Box<Completed>> {
    let give_up = p.attempts >= MAX_ATTEMPTS;
    // A child of the consumer that queued the event: the rules' run in its trace.
    let span = tracing::info_span!(
        "automation.run",
        otel.name = %format!("automation run {}", p.event_kind),
        otel.status_code = tracing::field::Empty,
        messaging.message.id = %p.event_id,
        helpdesk.automation.delayed_rule = %p.rule_id.map(|r| r.to_string()).unwrap_or_default(),
        helpdesk.automation.attempt = p.attempts,
    );
    helpdesk_kit::telemetry::set_parent_traceparent(&span, &p.traceparent);
    let why = match runner.process(&p, give_up).instrument(span.clone()).await {
        Ok(Done::Finished(completed)) => return Some(completed),
        Ok(Done::RetryLater(why)) => why,
        Err(e) => e.to_string(),
    };
    span.record("otel.status_code", "ERROR");
    tracing::info!(event = %p.event_id, attempts = p.attempts, reason = %why, "automation run will be tried again");
    if let Err(e) = store::pending::retry_later(&runner.pool, &p, backoff_ms(p.attempts)).await {
        tracing::warn!(error = %e, "cannot put an automation run back; its claim will run out");
    }
    None
}

/// Forgets runs older than `days`, every ten minutes, until `stop`.
pub async fn retention(pool: sqlx::PgPool, days: u32, stop: CancellationToken) {
    loop {
        if let Ok(mut conn) = pool.acquire().await {
            loop {
                match store::runs::prune(&mut conn, days).await {
                    Ok(n) if n > 0 => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "pruning the rule run log failed; will retry");
                        break;
                    }
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(600)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff_ms(1), 1_000);
        assert_eq!(backoff_ms(2), 2_000);
        assert_eq!(backoff_ms(4), 8_000);
        assert_eq!(backoff_ms(50), 300_000);
    }
}
