//! What attempts came to: each is logged; a 2xx delivers; a failure waits for the
//! next attempt of the schedule or gives up; the endpoint's failure record follows,
//! and an endpoint that answers 410 or fails for too long is disabled, with an event.

use std::time::Duration;

use helpdesk_kit::error::Result;
use helpdesk_kit::event::Origin;
use helpdesk_proto::notification::v1::{DeliveryFailed, DeliveryStatus, EndpointDisabled};
use sqlx::PgConnection;

use super::Policy;
use crate::domain::StorageName;
use crate::domain::schedule::{Verdict, next_delay};
use crate::store::deliveries::{self, AttemptRecord};
use crate::store::endpoints;

/// One finished attempt.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// What is logged.
    pub record: AttemptRecord,
    /// The delivery's account.
    pub account_id: String,
    /// The schedule step this attempt was.
    pub step: i32,
    /// What the answer means.
    pub verdict: Verdict,
    /// The answer's `Retry-After`.
    pub retry_after: Option<Duration>,
}

/// Records `outcomes` in the caller's transaction.
pub async fn record(
    conn: &mut PgConnection,
    policy: &Policy,
    outcomes: &mut [Outcome],
) -> Result<()> {
    // One lock order for every writer: the batch's endpoints first, by id, then the
    // deliveries.
    outcomes.sort_by_key(|o| (o.record.endpoint_id, o.record.delivery_id));
    let mut endpoint_ids: Vec<_> = outcomes.iter().map(|o| o.record.endpoint_id).collect();
    endpoint_ids.dedup();
    endpoints::lock(conn, &endpoint_ids).await?;
    let records: Vec<AttemptRecord> = outcomes.iter().map(|o| o.record.clone()).collect();
    deliveries::log_attempts(conn, &records).await?;
    let delivered: Vec<&AttemptRecord> = outcomes
        .iter()
        .filter(|o| o.verdict == Verdict::Delivered)
        .map(|o| &o.record)
        .collect();
    if !delivered.is_empty() {
        deliveries::mark_delivered(conn, &delivered).await?;
        let mut ids: Vec<_> = delivered.iter().map(|r| r.endpoint_id).collect();
        ids.dedup();
        endpoints::record_successes(conn, &ids).await?;
    }
    for o in outcomes.iter().filter(|o| o.verdict != Verdict::Delivered) {
        failed(conn, policy, o).await?;
    }
    Ok(())
}

async fn failed(conn: &mut PgConnection, policy: &Policy, o: &Outcome) -> Result<()> {
    let now = chrono::Utc::now();
    let origin = Origin::system(&o.account_id);
    let (step, next) = match o.verdict {
        Verdict::Gone => (o.step, None),
        _ => {
            let step = o.step + 1;
            let delay = next_delay(&policy.schedule, step as usize, o.retry_after);
            (
                step,
                delay.map(|d| now + chrono::Duration::from_std(d).unwrap_or_default()),
            )
        }
    };
    let delivery = deliveries::mark_failed(conn, &o.record, step, next).await?;
    // A failure to deliver news of a failure is not news again: two endpoints that
    // take `notification.*` and both fail would otherwise feed each other for ever.
    if let Some(d) = &delivery
        && DeliveryStatus::from_storage(&d.status) == DeliveryStatus::Failed
        && !d.event_type.starts_with("notification.")
    {
        let event = DeliveryFailed {
            delivery: Some(d.to_proto()),
            ..Default::default()
        };
        helpdesk_kit::outbox::emit(conn, &origin, event).await?;
    }
    let pause = match (o.verdict, o.retry_after) {
        (Verdict::Throttled, Some(after)) => {
            Some(now + chrono::Duration::from_std(after).unwrap_or_default())
        }
        _ => None,
    };
    let Some((enabled, failing_since)) =
        endpoints::record_failure(conn, o.record.endpoint_id, pause).await?
    else {
        return Ok(());
    };
    let failing_for = (now - failing_since).to_std().unwrap_or_default();
    let reason = if o.verdict == Verdict::Gone {
        "the endpoint answered 410 Gone".to_string()
    } else if failing_for >= policy.disable_after {
        format!(
            "every attempt failed for {} s (since {})",
            failing_for.as_secs(),
            failing_since.to_rfc3339()
        )
    } else {
        return Ok(());
    };
    if !enabled {
        return Ok(());
    }
    if let Some(endpoint) = endpoints::disable(conn, o.record.endpoint_id, &reason).await? {
        tracing::warn!(endpoint = %endpoint.id, account = %endpoint.account_id, %reason, "webhook endpoint disabled");
        let event = EndpointDisabled {
            endpoint: Some(endpoint.to_proto()),
            reason,
            ..Default::default()
        };
        helpdesk_kit::outbox::emit(conn, &origin, event).await?;
    }
    Ok(())
}
