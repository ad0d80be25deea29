//! The executors: claim due work (queued events, delayed runs) in every replica, run
//! it, and put back what must wait for another service, with growing pauses.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use helpdesk_kit::CancellationToken;
use helpdesk_kit::db::Wakeups;

use crate::ops::run::{Done, Runner};
use crate::store::{self, pending::WAKE_CHANNEL};

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

/// Runs work until `stop`.
pub async fn run(runner: Arc<Runner>, config: ExecutorConfig, stop: CancellationToken) {
    let pool = runner.pool.clone();
    let mut wakeups = Wakeups::new(pool.clone(), WAKE_CHANNEL);
    while !stop.is_cancelled() {
        wakeups.listen().await;
        let claimed = store::pending::claim(&pool, config.concurrency as i64, LEASE_MS).await;
        match claimed {
            Ok(batch) if !batch.is_empty() => {
                futures::stream::iter(batch)
                    .for_each_concurrent(config.concurrency, |p| {
                        let runner = runner.clone();
                        async move {
                            let give_up = p.attempts >= MAX_ATTEMPTS;
                            let result = runner.process(&p, give_up).await;
                            let why = match result {
                                Ok(Done::Finished) => return,
                                Ok(Done::RetryLater(why)) => why,
                                Err(e) => e.to_string(),
                            };
                            tracing::info!(event = %p.event_id, attempts = p.attempts, reason = %why, "automation run will be tried again");
                            if let Err(e) =
                                store::pending::retry_later(&runner.pool, &p, backoff_ms(p.attempts)).await
                            {
                                tracing::warn!(error = %e, "cannot put an automation run back; its claim will run out");
                            }
                        }
                    })
                    .await;
                // The next event of each aggregate may be due now.
                continue;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "claiming automation work failed; retrying"),
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = wakeups.wait() => {}
            _ = tokio::time::sleep(config.poll) => {}
        }
    }
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
