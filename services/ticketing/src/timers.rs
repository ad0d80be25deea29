//! Durable timers of ticketing: a solved ticket closes; SLA targets warn and breach.

use helpdesk_kit::event::{Origin, system_actor};
use helpdesk_kit::timers::{Timer, TimerError, TimerHandler};
use helpdesk_proto::ticketing::v1::{SlaMetric, StatusCategory};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::StorageName;
use crate::ops::sla::{BREACH_TIMER, WARNING_TIMER};
use crate::ops::{self, CLOSE_TIMER, close_fingerprint};
use crate::store::tickets::{self, Key, TicketRow};

/// Fires ticketing timers.
pub struct TicketTimers {
    /// How long after solving a ticket closes (for tickets solved again meanwhile).
    pub close_after: chrono::Duration,
}

fn account(timer: &Timer) -> String {
    timer
        .payload
        .get("account_id")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string()
}

/// The ticket (locked) and, for an SLA timer, the metric its key names.
async fn subject(
    conn: &mut PgConnection,
    timer: &Timer,
) -> Result<Option<(TicketRow, Option<SlaMetric>)>, TimerError> {
    let (id, metric) = match timer.key.split_once(':') {
        Some((id, metric)) => (id, Some(SlaMetric::from_storage(metric))),
        None => (timer.key.as_str(), None),
    };
    let Ok(id) = id.parse::<Uuid>() else {
        return Ok(None);
    };
    Ok(tickets::get(conn, &account(timer), Key::Id(id), true)
        .await?
        .map(|t| (t, metric)))
}

impl TimerHandler for TicketTimers {
    /// The account's policies held first, as every ticket change takes them.
    async fn lock(&self, conn: &mut PgConnection, timer: &Timer) -> Result<(), TimerError> {
        crate::store::sla::hold_policies(conn, &account(timer), false).await?;
        Ok(())
    }

    async fn current_fingerprint(
        &self,
        conn: &mut PgConnection,
        timer: &Timer,
    ) -> Result<Option<String>, TimerError> {
        let Some((ticket, metric)) = subject(conn, timer).await? else {
            return Ok(None);
        };
        match (timer.kind.as_str(), metric) {
            (CLOSE_TIMER, None) => Ok((ticket.category() == StatusCategory::Solved)
                .then(|| close_fingerprint(ticket.solved_at))),
            (BREACH_TIMER | WARNING_TIMER, Some(metric)) => {
                let policies = ops::sla::policies(conn, &ticket.account_id).await?;
                let warning = timer.kind == WARNING_TIMER;
                Ok(ops::sla::current(conn, &ticket, metric, &policies, warning).await?)
            }
            _ => Ok(None),
        }
    }

    async fn fire(&self, conn: &mut PgConnection, timer: &Timer) -> Result<(), TimerError> {
        let Some((current, metric)) = subject(conn, timer).await? else {
            return Ok(());
        };
        let account = current.account_id.clone();
        let origin = Origin::system(&account).acting_as(system_actor());
        let ctx = ops::context(conn, &account, self.close_after).await?;
        match (timer.kind.as_str(), metric) {
            (CLOSE_TIMER, None) => {
                let mut next = current.clone();
                next.status = "closed".into();
                next.status_category = "closed".into();
                let fields = ["status".to_string()];
                ops::update(conn, &origin, current, next, &fields, &ctx).await?;
            }
            (BREACH_TIMER, Some(metric)) => {
                ops::sla::breached(conn, &origin, current, metric, &ctx.policies).await?;
            }
            (WARNING_TIMER, Some(metric)) => {
                ops::sla::warn(conn, &origin, &current, metric, &ctx.policies).await?;
            }
            _ => {}
        }
        Ok(())
    }
}
