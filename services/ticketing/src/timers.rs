//! Durable timers of ticketing: a solved ticket closes.

use helpdesk_kit::event::{Origin, system_actor};
use helpdesk_kit::timers::{Timer, TimerError, TimerHandler};
use helpdesk_proto::ticketing::v1::StatusCategory;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::ops::{self, CLOSE_TIMER, close_fingerprint};
use crate::store::{config, tickets};

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

impl TimerHandler for TicketTimers {
    async fn current_fingerprint(
        &self,
        conn: &mut PgConnection,
        timer: &Timer,
    ) -> Result<Option<String>, TimerError> {
        let Ok(id) = timer.key.parse::<Uuid>() else {
            return Ok(None);
        };
        if timer.kind != CLOSE_TIMER {
            return Ok(None);
        }
        let key = tickets::Key::Id(id);
        Ok(tickets::get(conn, &account(timer), key, true)
            .await?
            .filter(|t| t.category() == StatusCategory::Solved)
            .map(|t| close_fingerprint(t.solved_at)))
    }

    async fn fire(&self, conn: &mut PgConnection, timer: &Timer) -> Result<(), TimerError> {
        let account = account(timer);
        let Ok(id) = timer.key.parse::<Uuid>() else {
            return Ok(());
        };
        let Some(current) = tickets::get(conn, &account, tickets::Key::Id(id), true).await? else {
            return Ok(());
        };
        let statuses = config::statuses(conn, &account).await?;
        let mut next = current.clone();
        next.status = "closed".into();
        next.status_category = "closed".into();
        let origin = Origin::system(&account).acting_as(system_actor());
        let fields = ["status".to_string()];
        ops::update(
            conn,
            &origin,
            current,
            next,
            &fields,
            &statuses,
            self.close_after,
        )
        .await?;
        Ok(())
    }
}
