//! Durable timers of the conversation service: waking snoozed conversations.

use helpdesk_kit::event::{Causation, system_actor};
use helpdesk_kit::timers::{Timer, TimerError, TimerHandler};
use helpdesk_proto::conversation::v1::ConversationStatus;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain;
use crate::grpc::change_status;
use crate::store::{self, conversations::ConversationRow, conversations::Scope};

/// Reopens a snoozed conversation when its snooze ends, unless it moved on.
pub struct SnoozeWake;

async fn load(
    conn: &mut PgConnection,
    timer: &Timer,
) -> Result<Option<ConversationRow>, TimerError> {
    let account = timer
        .payload
        .get("account_id")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    let Ok(id) = timer.key.parse::<Uuid>() else {
        return Ok(None);
    };
    Ok(store::conversations::get(conn, account, id, Scope::Account, true).await?)
}

impl TimerHandler for SnoozeWake {
    async fn current_fingerprint(
        &self,
        conn: &mut PgConnection,
        timer: &Timer,
    ) -> Result<Option<String>, TimerError> {
        if timer.kind != domain::SNOOZE_WAKE {
            return Ok(None);
        }
        Ok(load(conn, timer)
            .await?
            .map(|c| domain::snooze_fingerprint(c.status(), c.snoozed_until)))
    }

    async fn fire(&self, conn: &mut PgConnection, timer: &Timer) -> Result<(), TimerError> {
        let Some(conv) = load(conn, timer).await? else {
            return Ok(());
        };
        change_status(
            conn,
            conv,
            ConversationStatus::Open,
            None,
            &system_actor(),
            &Causation::request(),
        )
        .await
        .map_err(|e| TimerError(e.to_string()))?;
        Ok(())
    }
}
