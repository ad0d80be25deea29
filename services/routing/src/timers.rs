//! Durable timers of routing: skill fallback, longest wait, idle workbenches.

use helpdesk_kit::timers::{Timer, TimerError, TimerHandler};
use helpdesk_proto::routing::v1::Presence;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::engine::{self, FALLBACK_TIMER, IDLE_TIMER, OVERFLOW_TIMER, TRANSFER_TIMER};
use crate::store::{directory, state};
use helpdesk_kit::event::Origin;

/// Fires routing timers.
pub struct RoutingTimers;

fn account(timer: &Timer) -> String {
    timer
        .payload
        .get("account_id")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string()
}

/// Fingerprint of an agent's idle timer: when it was last seen.
pub fn idle_fingerprint(last_seen: chrono::DateTime<chrono::Utc>) -> String {
    format!("seen:{}", last_seen.timestamp_micros())
}

impl TimerHandler for RoutingTimers {
    /// The account lock first, as every routing path takes it.
    async fn lock(&self, conn: &mut PgConnection, timer: &Timer) -> Result<(), TimerError> {
        crate::store::lock_account(conn, &account(timer)).await?;
        Ok(())
    }

    async fn current_fingerprint(
        &self,
        conn: &mut PgConnection,
        timer: &Timer,
    ) -> Result<Option<String>, TimerError> {
        let account = account(timer);
        match timer.kind.as_str() {
            FALLBACK_TIMER | OVERFLOW_TIMER => {
                let Ok(id) = timer.key.parse::<Uuid>() else {
                    return Ok(None);
                };
                Ok(state::queued(conn, &account, id)
                    .await?
                    .map(|q| engine::entry_fingerprint(&q)))
            }
            IDLE_TIMER => {
                let agent = directory::get_agent_row(conn, &account, &timer.key, true).await?;
                Ok(agent
                    .filter(|a| a.presence() == Presence::Online)
                    .and_then(|a| a.last_seen_at)
                    .map(idle_fingerprint))
            }
            TRANSFER_TIMER => {
                let Ok(id) = timer.key.parse::<Uuid>() else {
                    return Ok(None);
                };
                Ok(crate::store::transfers::get(conn, &account, id)
                    .await?
                    .filter(|t| t.state() == helpdesk_proto::routing::v1::TransferState::Pending)
                    .map(|_| engine::TRANSFER_PENDING.to_string()))
            }
            _ => Ok(None),
        }
    }

    async fn fire(&self, conn: &mut PgConnection, timer: &Timer) -> Result<(), TimerError> {
        let account = account(timer);
        let origin = Origin::system(&account);
        let result = match timer.kind.as_str() {
            FALLBACK_TIMER | OVERFLOW_TIMER => {
                let Ok(id) = timer.key.parse::<Uuid>() else {
                    return Ok(());
                };
                if timer.kind == FALLBACK_TIMER {
                    engine::fall_back(conn, &origin, id).await
                } else {
                    engine::wait_exceeded(conn, &origin, id).await
                }
            }
            TRANSFER_TIMER => match timer.key.parse::<Uuid>() {
                Ok(id) => engine::transfer_timed_out(conn, &origin, id).await,
                Err(_) => Ok(()),
            },
            IDLE_TIMER => engine::set_presence(conn, &origin, &timer.key, Presence::Away)
                .await
                .map(|_| ()),
            _ => Ok(()),
        };
        result.map_err(|e| TimerError(e.to_string()))
    }
}
