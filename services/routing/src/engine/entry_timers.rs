//! Timers of a queue entry: skill fallback and longest wait. A timer fires only while
//! the entry still has the fingerprint it was scheduled with.

use helpdesk_kit::error::Result;
use helpdesk_kit::timers;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::Settings;
use crate::store::state;

/// Timer: widen a skill-routed chat's requirements.
pub const FALLBACK_TIMER: &str = "routing.fallback";
/// Timer: the longest wait has passed.
pub const OVERFLOW_TIMER: &str = "routing.overflow";

/// Fingerprint of a queue entry for its timers.
pub fn entry_fingerprint(q: &state::QueueRow) -> String {
    format!(
        "{}:{}:{}",
        q.enqueued_at.timestamp_micros(),
        q.stage,
        q.team_id.map(|t| t.to_string()).unwrap_or_default()
    )
}

/// Schedules the entry's timers as the account's settings ask, from when it may be
/// assigned (opening time) on.
pub(super) async fn schedule(
    conn: &mut PgConnection,
    settings: &Settings,
    e: &state::QueueRow,
) -> Result<()> {
    let key = e.conversation_id.to_string();
    let payload = serde_json::json!({ "account_id": e.account_id });
    let fingerprint = entry_fingerprint(e);
    let start = e.not_before.unwrap_or(e.enqueued_at).max(e.enqueued_at);
    if settings.skill_fallback_seconds > 0
        && (!e.required_skills.is_empty() || e.stage == 1)
        && e.stage < 2
    {
        let due = start
            + chrono::Duration::seconds(
                i64::from(settings.skill_fallback_seconds) * i64::from(e.stage + 1),
            );
        timers::schedule(
            conn,
            FALLBACK_TIMER,
            &key,
            due,
            &fingerprint,
            payload.clone(),
        )
        .await?;
    }
    if settings.max_wait_seconds > 0 {
        let due = start + chrono::Duration::seconds(i64::from(settings.max_wait_seconds));
        timers::schedule(conn, OVERFLOW_TIMER, &key, due, &fingerprint, payload).await?;
    }
    Ok(())
}

/// Cancels the timers of a conversation's entry (it was assigned or left the queue).
pub(super) async fn cancel(conn: &mut PgConnection, conversation_id: Uuid) -> Result<()> {
    cancel_all(conn, &[conversation_id]).await
}

/// [`cancel`] for several entries, in one statement.
pub(super) async fn cancel_all(conn: &mut PgConnection, conversation_ids: &[Uuid]) -> Result<()> {
    let keys: Vec<String> = conversation_ids.iter().map(Uuid::to_string).collect();
    timers::cancel_kinds_of(conn, &[FALLBACK_TIMER, OVERFLOW_TIMER], &keys).await?;
    Ok(())
}
