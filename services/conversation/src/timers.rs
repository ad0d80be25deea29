//! Durable timers of the conversation service: waking snoozed conversations.

use helpdesk_kit::event::Origin;
use helpdesk_kit::timers::{Timer, TimerError, TimerHandler};
use helpdesk_proto::conversation::v1::ConversationStatus;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain;
use crate::ops;
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
        let origin = Origin::system(&conv.account_id);
        ops::change_status(conn, &origin, conv, ConversationStatus::Open, None).await?;
        Ok(())
    }
}
