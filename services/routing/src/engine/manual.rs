//! Manual changes: a supervisor assigns or unassigns, an agent picks from the pooled
//! queue.

use chrono::Utc;
use helpdesk_kit::error::{Error, Result};
use helpdesk_kit::event::Origin;
use helpdesk_kit::outbox;
use helpdesk_proto::routing::v1::{
    AssignReason, ConversationQueued, ConversationUnassigned, Presence, PriorityClass, Strategy,
    UnassignReason,
};
use sqlx::PgConnection;
use uuid::Uuid;

use super::account::Account;
use super::{offers, queue, seat};
use crate::domain::{StorageName, class_rank};
use crate::store::{directory, state};

/// A supervisor assigns a conversation to an agent.
pub async fn assign_manually(
    conn: &mut PgConnection,
    origin: &Origin,
    conversation_id: Uuid,
    agent_id: &str,
    allow_over_capacity: bool,
) -> Result<state::AssignmentRow> {
    let mut account = Account::lock(conn, &origin.account).await?;
    let conv = state::conversation(conn, &account.id, conversation_id)
        .await?
        .ok_or(Error::NotFound("conversation"))?;
    if conv.status != "open" {
        return Err(Error::FailedPrecondition(format!(
            "conversation is {}, not open",
            conv.status
        )));
    }
    // Any agent, whatever the presence (the context holds the online ones).
    let view = directory::agent_views(conn, &account.id, Some(agent_id), false, None).await?;
    let mut agent = view
        .first()
        .map(directory::AgentView::candidate)
        .ok_or(Error::NotFound("agent"))?;
    if let Some(current) = state::assignment(conn, &account.id, conversation_id).await? {
        if current.agent_id == agent_id {
            return Ok(current);
        }
        if let Some(released) = state::release(conn, &account.id, conversation_id).await? {
            account.freed(&released);
            let reason = "a supervisor assigned the conversation";
            offers::cancel_for(conn, origin, conversation_id, reason).await?;
        }
    }
    if !agent.has_room(&conv.channel) && !allow_over_capacity {
        return Err(Error::FailedPrecondition(format!(
            "agent {agent_id} is at capacity ({}/{}); set allow_over_capacity to exceed it",
            agent.active, agent.max_chats
        )));
    }
    let queued = state::queued(conn, &account.id, conversation_id).await?;
    queue::leave(conn, &mut account, conversation_id).await?;
    let waited_s = queued
        .as_ref()
        .map(|q| queue::waited(q, Utc::now()))
        .unwrap_or(0);
    let team = queued.and_then(|q| q.team_id).or(conv.last_team_id);
    // An online agent's load is the context's, for the dispatch that follows.
    let seat = account.agent_mut(agent_id).unwrap_or(&mut agent);
    let row = seat::assign_to(
        conn,
        origin,
        conversation_id,
        seat,
        team,
        &conv.channel,
        AssignReason::Manual,
        waited_s,
    )
    .await?;
    queue::assign_waiting(conn, origin, &mut account).await?;
    Ok(row)
}

/// A supervisor takes the agent off a conversation, optionally back into the queue.
pub async fn unassign(
    conn: &mut PgConnection,
    origin: &Origin,
    conversation_id: Uuid,
    requeue: bool,
) -> Result<()> {
    let mut account = Account::lock(conn, &origin.account).await?;
    let released = state::release(conn, &account.id, conversation_id)
        .await?
        .ok_or_else(|| Error::FailedPrecondition("conversation has no agent".into()))?;
    release_assignment(conn, origin, &mut account, released, requeue).await
}

/// Takes the conversation off its agent if it has one (never requeued) and forgets
/// who served it last, so that when it reopens it goes to whoever is free: an
/// automation rule's "assign agent: none".
pub async fn unassign_and_forget(
    conn: &mut PgConnection,
    origin: &Origin,
    conversation_id: Uuid,
) -> Result<()> {
    let mut account = Account::lock(conn, &origin.account).await?;
    state::forget_last_agent(conn, &account.id, conversation_id).await?;
    match state::release(conn, &account.id, conversation_id).await? {
        Some(released) => release_assignment(conn, origin, &mut account, released, false).await,
        None => Ok(()),
    }
}

async fn release_assignment(
    conn: &mut PgConnection,
    origin: &Origin,
    account: &mut Account,
    released: state::AssignmentRow,
    requeue: bool,
) -> Result<()> {
    let reason = "the conversation's agent was taken off";
    taken_off(conn, origin, account, &released, reason, requeue).await?;
    if requeue {
        queue::requeue(conn, account, &released).await?;
    }
    queue::assign_waiting(conn, origin, account).await?;
    Ok(())
}

/// The agent's seat freed, the conversation's pending transfers cancelled with
/// `reason`, and `routing.unassigned` (by hand) published.
async fn taken_off(
    conn: &mut PgConnection,
    origin: &Origin,
    account: &mut Account,
    released: &state::AssignmentRow,
    reason: &str,
    requeued: bool,
) -> Result<()> {
    account.freed(released);
    offers::cancel_for(conn, origin, released.conversation_id, reason).await?;
    let event = ConversationUnassigned {
        conversation_id: released.conversation_id.to_string(),
        agent_id: released.agent_id.clone(),
        reason: UnassignReason::Manual as i32,
        requeued,
        sequence: state::next_assignment_sequence(conn).await?,
        ..Default::default()
    };
    outbox::emit(conn, origin, event).await?;
    Ok(())
}

/// An automation rule's "assign team": the conversation goes to `team`, off its
/// agent (if it has one) and into the team's queue as having waited since it first
/// did, where the team's members take it (at once when one has room). A conversation
/// neither with an agent nor waiting (pending, resolved) is refused.
pub async fn move_to_team(
    conn: &mut PgConnection,
    origin: &Origin,
    conversation_id: Uuid,
    team: Uuid,
) -> Result<()> {
    let mut account = Account::lock(conn, &origin.account).await?;
    let (since, channel) = match state::release(conn, &account.id, conversation_id).await? {
        Some(released) => {
            let reason = "the conversation moved to another team";
            taken_off(conn, origin, &mut account, &released, reason, true).await?;
            let since = state::first_waiting_since(conn, &account.id, conversation_id)
                .await?
                .unwrap_or(released.assigned_at);
            (since, released.channel)
        }
        None => match state::queued(conn, &account.id, conversation_id).await? {
            Some(waiting) => {
                queue::leave(conn, &mut account, conversation_id).await?;
                (waiting.enqueued_at, waiting.channel)
            }
            None => {
                return Err(Error::FailedPrecondition(
                    "the conversation is neither with an agent nor waiting".into(),
                ));
            }
        },
    };
    let row = state::QueueRow {
        account_id: account.id.clone(),
        conversation_id,
        team_id: Some(team),
        required_skills: Vec::new(),
        priority_class: class_rank(PriorityClass::Normal),
        strategy: Strategy::LeastBusy.storage_name().to_string(),
        channel,
        enqueued_at: since,
        stage: 1,
        not_before: None,
        position: 0,
        estimate_secs: 0,
    };
    let admitted = queue::admit(conn, origin, &mut account, Some(row)).await?;
    if let Some(waiting) = admitted.waiting {
        let event = ConversationQueued {
            conversation_id: conversation_id.to_string(),
            team_id: team.to_string(),
            position: waiting.position,
            estimated_wait_seconds: waiting.estimate_secs,
            priority_class: PriorityClass::Normal as i32,
            sequence: state::next_assignment_sequence(conn).await?,
            ..Default::default()
        };
        outbox::emit(conn, origin, event).await?;
    }
    Ok(())
}

/// An agent (pooled mode) takes a queued chat: the given one or the first it may serve.
pub async fn pick(
    conn: &mut PgConnection,
    origin: &Origin,
    agent_id: &str,
    conversation_id: Option<Uuid>,
) -> Result<state::AssignmentRow> {
    let mut account = Account::lock(conn, &origin.account).await?;
    if !account.settings.pooled_mode {
        return Err(Error::FailedPrecondition(
            "picking from the queue needs pooled mode".into(),
        ));
    }
    let view = directory::agent_views(conn, &account.id, Some(agent_id), false, None).await?;
    let view = view.first().ok_or(Error::NotFound("agent"))?;
    if view.row.presence() != Presence::Online {
        return Err(Error::FailedPrecondition("go online to pick chats".into()));
    }
    let mut agent = view.candidate();
    let entries = state::queue(conn, &account.id).await?;
    let may_serve = |e: &&state::QueueRow| {
        let skills: &[String] = if e.stage == 0 {
            &e.required_skills
        } else {
            &[]
        };
        e.team_id.is_none_or(|t| agent.teams.contains(&t))
            && skills.iter().all(|s| agent.skills.contains_key(s))
    };
    let entry = match conversation_id {
        Some(id) => entries
            .iter()
            .find(|e| e.conversation_id == id)
            .ok_or(Error::NotFound("queued conversation"))?,
        None => entries
            .iter()
            .find(may_serve)
            .ok_or_else(|| Error::FailedPrecondition("nothing in the queue for you".into()))?,
    };
    if !may_serve(&entry) {
        return Err(Error::PermissionDenied(
            "this chat needs another team or skills".into(),
        ));
    }
    if !agent.has_room(&entry.channel) {
        return Err(Error::FailedPrecondition("you are at capacity".into()));
    }
    let entry = entry.clone();
    queue::leave(conn, &mut account, entry.conversation_id).await?;
    // Online, so the context holds the agent: its load stays current there.
    let seat = account.agent_mut(agent_id).unwrap_or(&mut agent);
    let row = seat::assign_to(
        conn,
        origin,
        entry.conversation_id,
        seat,
        entry.team_id,
        &entry.channel,
        AssignReason::Picked,
        queue::waited(&entry, Utc::now()),
    )
    .await?;
    queue::assign_waiting(conn, origin, &mut account).await?;
    Ok(row)
}
