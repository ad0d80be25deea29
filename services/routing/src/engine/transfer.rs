//! Transfers with a handshake: the agent of a conversation (or a supervisor) offers it
//! to another agent, who accepts or rejects. Until the receiver accepts, the sender
//! keeps the conversation and its seat; on accept both move in one transaction.

use chrono::Utc;
use helpdesk_kit::auth::Role;
use helpdesk_kit::error::{Error, Result};
use helpdesk_kit::event::Origin;
use helpdesk_kit::outbox;
use helpdesk_proto::routing::v1::{
    AssignReason, ConversationUnassigned, TransferState, UnassignReason,
};
use std::collections::{BTreeMap, HashSet};

use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use super::account::Account;
use super::offers;
use super::{queue, seat};
use crate::domain::permissions::{Held, Permit, Receiver};
use crate::store::transfers::{self, TransferRow};
use crate::store::{directory, state};

/// Who acts on a transfer.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    /// The caller's agent id (token subject).
    pub id: &'a str,
    /// The caller's token role: what the account's transfer policy allows them.
    pub role: Role,
}

impl Actor<'_> {
    /// Whether the actor watches others' offers (supervisors, admins, integrations).
    pub fn oversees(&self) -> bool {
        matches!(
            self.role,
            Role::Admin | Role::Supervisor | Role::Integration
        )
    }
}

/// The teams of an agent (none when not in the directory).
async fn teams_of(conn: &mut PgConnection, account: &Account, id: &str) -> Result<HashSet<Uuid>> {
    if let Some(a) = account.agents.iter().find(|a| a.id == id) {
        return Ok(a.teams.clone());
    }
    Ok(directory::agent_teams(conn, &account.id, id).await?)
}

/// What the account's policy allows `id` acting with `role`.
pub(super) async fn permit<'a>(
    conn: &mut PgConnection,
    account: &'a Account,
    id: &'a str,
    role: Role,
) -> Result<Permit<'a>> {
    let teams = match role {
        Role::Agent | Role::Supervisor => teams_of(conn, account, id).await?,
        _ => HashSet::new(),
    };
    Ok(Permit {
        policy: &account.settings.transfer_policy,
        id,
        role,
        teams,
    })
}

/// PERMISSION_DENIED unless `permit` may move the conversation `held` (its agent's,
/// a supervisor's of its team, an admin's).
async fn may_move(
    conn: &mut PgConnection,
    account: &Account,
    permit: &Permit<'_>,
    held: &state::AssignmentRow,
) -> Result<()> {
    let agent_teams = teams_of(conn, account, &held.agent_id).await?;
    let held = Held {
        agent_id: &held.agent_id,
        team_id: held.team_id,
        agent_teams: &agent_teams,
    };
    if permit.may_move(held) {
        Ok(())
    } else {
        Err(Error::PermissionDenied(
            "only the conversation's agent, a supervisor of its team or an admin may do this"
                .into(),
        ))
    }
}

/// What the sender tells the receiver: free text, and a note template's fields.
#[derive(Debug, Clone, Default)]
pub struct Note {
    pub text: String,
    pub template_id: String,
    pub fields: BTreeMap<String, String>,
}

/// Where a transfer goes.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// This agent.
    Agent(&'a str),
    /// The team's agents, best-ranked first, one offer at a time.
    Team(Uuid),
    /// The agents having this skill, best level first, one offer at a time.
    Skill(&'a str),
}

/// Offers a conversation to an agent, or to a team's best-ranked agent, with a note.
/// The conversation must have an agent (the caller, unless a supervisor asks), the
/// receiver must be online with a free seat, and no other transfer of it may be
/// pending.
pub async fn request_transfer(
    conn: &mut PgConnection,
    origin: &Origin,
    by: Actor<'_>,
    conversation_id: Uuid,
    to: Target<'_>,
    note: Note,
) -> Result<TransferRow> {
    let account = Account::lock(conn, &origin.account).await?;
    let permit = permit(conn, &account, by.id, by.role).await?;
    if let Some(why) = permit.refuses_transfer() {
        return Err(Error::PermissionDenied(why));
    }
    let held = state::assignment(conn, &account.id, conversation_id)
        .await?
        .ok_or_else(|| Error::FailedPrecondition("the conversation has no agent".into()))?;
    may_move(conn, &account, &permit, &held).await?;
    let (receiver, team) = match to {
        Target::Agent(agent) => {
            if held.agent_id == agent {
                return Err(helpdesk_kit::grpc::invalid_field(
                    "to_agent_id",
                    "the conversation is already this agent's",
                )
                .into());
            }
            let view = directory::agent_views(conn, &account.id, Some(agent), false, None)
                .await?
                .pop()
                .ok_or(Error::NotFound("agent"))?;
            let teams = view.teams.iter().copied().collect();
            let receiver = Receiver {
                role: view.row.role(),
                teams: &teams,
            };
            if let Some(why) = permit.refuses_receiver(receiver) {
                return Err(Error::PermissionDenied(why));
            }
            let can_take = account.agents.iter().find(|a| a.id == agent);
            if !can_take.is_some_and(|a| a.has_room(&held.channel)) {
                return Err(Error::FailedPrecondition(
                    "the receiver is not online with a free seat".into(),
                ));
            }
            (agent.to_string(), None)
        }
        Target::Team(team) => {
            if let Some(why) = permit.refuses_team(team) {
                return Err(Error::PermissionDenied(why));
            }
            let pool = offers::Pool::Team(team);
            (pool_receiver(&account, &permit, &held, pool)?, Some(team))
        }
        Target::Skill(skill) => {
            let pool = offers::Pool::Skill(skill.to_string());
            (pool_receiver(&account, &permit, &held, pool)?, None)
        }
    };
    let to_skill = match to {
        Target::Skill(skill) => skill.to_string(),
        _ => String::new(),
    };
    none_pending(conn, &account.id, conversation_id).await?;
    let template = TransferRow {
        account_id: account.id.clone(),
        id: Uuid::nil(),
        conversation_id,
        from_agent_id: held.agent_id.clone(),
        to_agent_id: String::new(),
        note: note.text,
        state: String::new(),
        reason: String::new(),
        requested_by: by.id.to_string(),
        requested_at: Utc::now(),
        deadline: Utc::now(),
        decided_at: None,
        to_team_id: team,
        declined_by: Vec::new(),
        previous_id: None,
        next_id: None,
        exhausted: false,
        template_id: note.template_id,
        fields: Json(note.fields),
        to_skill,
        requester_role: by.role.to_string(),
    };
    let row = offers::new_offer(&account, template, receiver);
    offers::offer(conn, origin, &row).await?;
    Ok(row)
}

/// The first receiver of a team or skill transfer of the conversation `held`.
fn pool_receiver(
    account: &Account,
    permit: &Permit<'_>,
    held: &state::AssignmentRow,
    pool: offers::Pool,
) -> Result<String> {
    offers::next_receiver(account, permit, &pool, &held.channel, &held.agent_id, &[]).ok_or_else(
        || Error::FailedPrecondition("nobody else is online with a free seat for it".into()),
    )
}

/// PERMISSION_DENIED unless `by` sent or requested `t`, or may move its conversation.
async fn may_withdraw(
    conn: &mut PgConnection,
    account: &Account,
    by: Actor<'_>,
    t: &TransferRow,
) -> Result<()> {
    if t.from_agent_id == by.id || t.requested_by == by.id {
        return Ok(());
    }
    let permit = permit(conn, account, by.id, by.role).await?;
    let held = senders_assignment(conn, &account.id, t).await?;
    may_move(conn, account, &permit, &held).await
}

/// The conversation's assignment, while it is still the sender's of `t`.
async fn senders_assignment(
    conn: &mut PgConnection,
    account: &str,
    t: &TransferRow,
) -> Result<state::AssignmentRow> {
    state::assignment(conn, account, t.conversation_id)
        .await?
        .filter(|a| a.agent_id == t.from_agent_id)
        .ok_or_else(|| {
            Error::FailedPrecondition("the conversation is no longer the sender's".into())
        })
}

/// FAILED_PRECONDITION when a transfer of the conversation is pending.
async fn none_pending(conn: &mut PgConnection, account: &str, conversation_id: Uuid) -> Result<()> {
    if transfers::pending(conn, account, Some(conversation_id), None)
        .await?
        .is_empty()
    {
        Ok(())
    } else {
        Err(Error::FailedPrecondition(
            "a transfer of this conversation is already pending".into(),
        ))
    }
}

/// A pending transfer of the account, as `by` may act on it.
async fn pending(conn: &mut PgConnection, account: &str, id: Uuid) -> Result<TransferRow> {
    let t = transfers::get(conn, account, id)
        .await?
        .ok_or(Error::NotFound("transfer"))?;
    if t.state() != TransferState::Pending {
        return Err(Error::FailedPrecondition(format!(
            "the transfer is {} already",
            t.state
        )));
    }
    Ok(t)
}

/// The receiver takes the conversation: the sender's seat is freed (and filled from
/// the queue), the receiver's taken, in one transaction.
pub async fn accept_transfer(
    conn: &mut PgConnection,
    origin: &Origin,
    by: Actor<'_>,
    id: Uuid,
) -> Result<TransferRow> {
    let mut account = Account::lock(conn, &origin.account).await?;
    let t = pending(conn, &account.id, id).await?;
    if t.to_agent_id != by.id {
        return Err(Error::PermissionDenied(
            "only the receiver may accept a transfer".into(),
        ));
    }
    let held = senders_assignment(conn, &account.id, &t).await?;
    let has_room = account
        .agent_mut(&t.to_agent_id)
        .is_some_and(|a| a.has_room(&held.channel));
    if !has_room {
        return Err(Error::FailedPrecondition(
            "no free seat to take the conversation".into(),
        ));
    }
    let done = offers::settle(conn, origin, id, TransferState::Accepted, "")
        .await?
        .ok_or_else(|| Error::FailedPrecondition("the transfer is no longer pending".into()))?;
    state::release(conn, &account.id, t.conversation_id).await?;
    account.freed(&held);
    let receiver = account
        .agent_mut(&t.to_agent_id)
        .ok_or_else(|| Error::FailedPrecondition("the receiver went offline".into()))?;
    seat::assign_to(
        conn,
        origin,
        t.conversation_id,
        receiver,
        held.team_id,
        &held.channel,
        AssignReason::Transfer,
        0,
    )
    .await?;
    // The sender's freed seat goes to the next waiting chat.
    queue::assign_waiting(conn, origin, &mut account).await?;
    Ok(done)
}

/// The receiver declines; the sender keeps the conversation.
pub async fn reject_transfer(
    conn: &mut PgConnection,
    origin: &Origin,
    by: Actor<'_>,
    id: Uuid,
    reason: &str,
) -> Result<TransferRow> {
    let account = Account::lock(conn, &origin.account).await?;
    let t = pending(conn, &account.id, id).await?;
    if t.to_agent_id != by.id {
        return Err(Error::PermissionDenied(
            "only the receiver may reject a transfer".into(),
        ));
    }
    offers::declined(conn, origin, &account, &t, TransferState::Rejected, reason)
        .await?
        .ok_or_else(|| Error::FailedPrecondition("the transfer is no longer pending".into()))
}

/// The sender (or a supervisor) withdraws a pending transfer.
pub async fn cancel_transfer(
    conn: &mut PgConnection,
    origin: &Origin,
    by: Actor<'_>,
    id: Uuid,
) -> Result<TransferRow> {
    let account = Account::lock(conn, &origin.account).await?;
    let t = pending(conn, &account.id, id).await?;
    may_withdraw(conn, &account, by, &t).await?;
    offers::settle(
        conn,
        origin,
        id,
        TransferState::Cancelled,
        "cancelled by the sender",
    )
    .await?
    .ok_or_else(|| Error::FailedPrecondition("the transfer is no longer pending".into()))
}

/// After a team transfer nobody took, the sender (or a supervisor) leaves the
/// conversation in the team's queue, as having waited since the customer first did.
pub async fn leave_in_team_queue(
    conn: &mut PgConnection,
    origin: &Origin,
    by: Actor<'_>,
    id: Uuid,
) -> Result<()> {
    let mut account = Account::lock(conn, &origin.account).await?;
    let t = transfers::get(conn, &account.id, id)
        .await?
        .ok_or(Error::NotFound("transfer"))?;
    may_withdraw(conn, &account, by, &t).await?;
    let Some(team) = t.to_team_id.filter(|_| t.exhausted) else {
        return Err(Error::FailedPrecondition(
            "only after a team transfer that nobody took".into(),
        ));
    };
    let held = senders_assignment(conn, &account.id, &t).await?;
    none_pending(conn, &account.id, t.conversation_id).await?;
    let since = state::first_waiting_since(conn, &account.id, t.conversation_id)
        .await?
        .unwrap_or(held.assigned_at);
    state::release(conn, &account.id, t.conversation_id).await?;
    account.freed(&held);
    let event = ConversationUnassigned {
        conversation_id: t.conversation_id.to_string(),
        agent_id: held.agent_id.clone(),
        reason: UnassignReason::Transfer as i32,
        requeued: true,
        sequence: state::next_assignment_sequence(conn).await?,
        ..Default::default()
    };
    outbox::emit(conn, origin, event).await?;
    queue::requeue_in(conn, &mut account, &held, Some(team), since).await?;
    queue::assign_waiting(conn, origin, &mut account).await?;
    Ok(())
}

/// The deadline passed with nobody answering (the transfer timer): a team transfer
/// moves on to the team's next agent.
pub async fn transfer_timed_out(conn: &mut PgConnection, origin: &Origin, id: Uuid) -> Result<()> {
    let account = Account::lock(conn, &origin.account).await?;
    if let Some(t) = transfers::get(conn, &account.id, id).await?
        && t.state() == TransferState::Pending
    {
        offers::declined(conn, origin, &account, &t, TransferState::TimedOut, "").await?;
    }
    Ok(())
}
