//! Escalation of a waiting chat by its timers: skill fallback widens its
//! requirements, the longest wait overflows it.

use helpdesk_kit::error::Result;
use helpdesk_kit::event::Origin;
use sqlx::PgConnection;
use uuid::Uuid;

use super::account::Account;
use super::{entry_timers, queue};
use crate::domain::route::{self, NO_SKILLED_AGENT, Overflow, WAIT_EXCEEDED};
use crate::store::state;

/// The skill fallback timer: widen to the whole team, then to the overflow team.
pub async fn fall_back(
    conn: &mut PgConnection,
    origin: &Origin,
    conversation_id: Uuid,
) -> Result<()> {
    let mut account = Account::lock(conn, &origin.account).await?;
    let Some(mut entry) = state::queued(conn, &account.id, conversation_id).await? else {
        return Ok(());
    };
    entry.stage += 1;
    if entry.stage >= 2 {
        // Last widening: the overflow team, when there is one; otherwise the chat keeps
        // waiting for any agent of its team.
        let Some(team) = route::overflow_team(&account.settings, entry.team_id) else {
            return Ok(());
        };
        let to = Overflow::Team(team);
        queue::overflow(
            conn,
            origin,
            &mut account,
            conversation_id,
            entry.team_id,
            NO_SKILLED_AGENT,
            &to,
        )
        .await?;
        entry.team_id = Some(team);
    }
    state::update_entry(conn, &entry).await?;
    entry_timers::schedule(conn, &account.settings, &entry).await?;
    queue::assign_waiting(conn, origin, &mut account).await?;
    Ok(())
}

/// The longest-wait timer: overflow per the account's settings.
pub async fn wait_exceeded(
    conn: &mut PgConnection,
    origin: &Origin,
    conversation_id: Uuid,
) -> Result<()> {
    let mut account = Account::lock(conn, &origin.account).await?;
    let Some(mut entry) = state::queued(conn, &account.id, conversation_id).await? else {
        return Ok(());
    };
    let settings = &account.settings;
    let to = route::overflow(settings, entry.team_id, settings.overflow_action);
    queue::overflow(
        conn,
        origin,
        &mut account,
        conversation_id,
        entry.team_id,
        WAIT_EXCEEDED,
        &to,
    )
    .await?;
    if let Overflow::Team(team) = to {
        entry.team_id = Some(team);
        entry.stage = 2;
        state::update_entry(conn, &entry).await?;
    }
    queue::assign_waiting(conn, origin, &mut account).await?;
    Ok(())
}
