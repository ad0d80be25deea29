//! Durable timers of the conversation service: waking snoozed conversations, and
//! the inbox's lifecycle (inactivity warning and close, stale pending and bot
//! conversations resolved).

use helpdesk_kit::event::Origin;
use helpdesk_kit::timers::{Timer, TimerError, TimerHandler};
use helpdesk_proto::conversation::v1::ConversationStatus;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{self, lifecycle};
use crate::ops;
use crate::store::{self, conversations::ConversationRow, conversations::Scope};

/// The conversation service's timers.
pub struct ConversationTimers;

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

impl TimerHandler for ConversationTimers {
    async fn current_fingerprint(
        &self,
        conn: &mut PgConnection,
        timer: &Timer,
    ) -> Result<Option<String>, TimerError> {
        let lifecycle_timer = matches!(
            timer.kind.as_str(),
            lifecycle::INACTIVITY_WARNING
                | lifecycle::INACTIVITY_CLOSE
                | lifecycle::PENDING_CLOSE
                | lifecycle::BOT_CLOSE
        );
        if timer.kind != domain::SNOOZE_WAKE && !lifecycle_timer {
            return Ok(None);
        }
        Ok(load(conn, timer).await?.map(|c| {
            if lifecycle_timer {
                lifecycle::fingerprint(c.status(), c.waiting_since, c.last_activity_at)
            } else {
                domain::snooze_fingerprint(c.status(), c.snoozed_until)
            }
        }))
    }

    async fn fire(&self, conn: &mut PgConnection, timer: &Timer) -> Result<(), TimerError> {
        let Some(conv) = load(conn, timer).await? else {
            return Ok(());
        };
        let origin = Origin::system(&conv.account_id);
        match timer.kind.as_str() {
            domain::SNOOZE_WAKE => {
                ops::change_status(conn, &origin, conv, ConversationStatus::Open, None).await?;
            }
            lifecycle::INACTIVITY_WARNING => ops::warn_inactive(conn, &origin, conv).await?,
            _ => {
                let closing = ops::Closing {
                    inactivity: true,
                    ..Default::default()
                };
                ops::resolve(conn, &origin, conv, closing).await?;
            }
        }
        Ok(())
    }
}
