//! Seating a conversation with an agent: the assignment, its history and its event.

use chrono::Utc;
use helpdesk_kit::error::Result;
use helpdesk_kit::event::Origin;
use helpdesk_kit::outbox;
use helpdesk_proto::routing::v1::{AssignReason, ConversationAssigned};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::select::Candidate;
use crate::store::state;

/// Records an assignment and its event; `agent`'s load counts the chat from now on.
/// A conversation taken from the queue has left it first (`queue::leave`, which also
/// cancels its entry timers).
#[allow(clippy::too_many_arguments)]
pub(super) async fn assign_to(
    conn: &mut PgConnection,
    origin: &Origin,
    conversation_id: Uuid,
    agent: &mut Candidate,
    team_id: Option<Uuid>,
    channel: &str,
    reason: AssignReason,
    waited_seconds: i32,
) -> Result<state::AssignmentRow> {
    let account = &origin.account;
    let now = Utc::now();
    let row = state::AssignmentRow {
        account_id: account.clone(),
        conversation_id,
        agent_id: agent.id.clone(),
        team_id,
        channel: channel.to_string(),
        assigned_at: now,
    };
    let recorded = state::assign(conn, &row, reason.as_str_name(), waited_seconds).await?;
    let team = team_id.map(|t| t.to_string()).unwrap_or_default();
    crate::metrics::assigned(reason.as_str_name(), &team, waited_seconds);
    agent.take(channel, now);
    let event = ConversationAssigned {
        conversation_id: conversation_id.to_string(),
        agent_id: agent.id.clone(),
        agent_name: agent.name.clone(),
        team_id: team_id.map(|t| t.to_string()).unwrap_or_default(),
        previous_agent_id: recorded
            .previous_agent_id
            .filter(|p| *p != agent.id)
            .unwrap_or_default(),
        reason: reason as i32,
        waited_seconds,
        sequence: recorded.sequence,
        ..Default::default()
    };
    outbox::emit(conn, origin, event).await?;
    Ok(row)
}
