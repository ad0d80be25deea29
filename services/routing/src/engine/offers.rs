//! Offers and their ends: a transfer offered to its receiver, and ended by its own
//! operations (accept, reject, cancel, timeout) or by others (the receiver leaving,
//! the conversation losing its agent). A team transfer whose receiver declines or
//! does not answer is offered to the team's next agent.

use chrono::Utc;
use helpdesk_kit::error::Result;
use helpdesk_kit::event::Origin;
use helpdesk_kit::storage::StorageName;
use helpdesk_kit::{outbox, timers};
use helpdesk_proto::routing::v1::{
    Strategy, TransferAccepted, TransferCancelled, TransferRejected, TransferRequested,
    TransferState, TransferTimedOut,
};
use sqlx::PgConnection;
use uuid::Uuid;

use super::account::Account;
use crate::domain::permissions::{Permit, Receiver};
use crate::domain::select::{self, Need};
use crate::store::state;
use crate::store::transfers::{self, Outcome, TransferRow};
use helpdesk_kit::auth::Role;

/// Timer: a pending transfer's deadline.
pub const TRANSFER_TIMER: &str = "routing.transfer_timeout";

/// The fingerprint a transfer's timer is set with: it fires only while pending.
pub const PENDING: &str = "pending";

/// A new pending offer to `to_agent_id`, from now until the account's deadline.
pub(super) fn new_offer(
    account: &Account,
    template: TransferRow,
    to_agent_id: String,
) -> TransferRow {
    let now = Utc::now();
    let timeout = chrono::Duration::seconds(i64::from(account.settings.transfer_timeout_seconds));
    TransferRow {
        id: Uuid::new_v4(),
        to_agent_id,
        state: TransferState::Pending.storage_name().to_string(),
        reason: String::new(),
        requested_at: now,
        deadline: now + timeout,
        decided_at: None,
        next_id: None,
        exhausted: false,
        ..template
    }
}

/// Stores a pending offer, sets its deadline and records `transfer.requested`.
pub(super) async fn offer(conn: &mut PgConnection, origin: &Origin, t: &TransferRow) -> Result<()> {
    transfers::insert(conn, t).await?;
    let payload = serde_json::json!({ "account_id": t.account_id });
    let key = t.id.to_string();
    timers::schedule(conn, TRANSFER_TIMER, &key, t.deadline, PENDING, payload).await?;
    let event = TransferRequested {
        transfer: Some(t.to_proto()),
        ..Default::default()
    };
    outbox::emit(conn, origin, event).await?;
    Ok(())
}

/// Who a team or skill transfer goes to: the team's agents (least busy first), or
/// the agents having the skill (best level first).
#[derive(Debug, Clone)]
pub(super) enum Pool {
    Team(Uuid),
    Skill(String),
}

impl Pool {
    /// The pool of a stored transfer; `None` for an agent transfer.
    pub(super) fn of(t: &TransferRow) -> Option<Self> {
        match (t.to_team_id, t.to_skill.as_str()) {
            (Some(team), _) => Some(Self::Team(team)),
            (None, "") => None,
            (None, skill) => Some(Self::Skill(skill.to_string())),
        }
    }
}

/// The pool's best-ranked agent online with a free seat on `channel` who may receive
/// from the requester, other than the sender and those who declined.
pub(super) fn next_receiver(
    account: &Account,
    permit: &Permit<'_>,
    pool: &Pool,
    channel: &str,
    sender: &str,
    declined: &[String],
) -> Option<String> {
    let open: Vec<_> = account
        .agents
        .iter()
        .filter(|a| a.id != sender && !declined.contains(&a.id))
        .filter(|a| permit.refuses_receiver(Receiver::from(*a)).is_none())
        .cloned()
        .collect();
    let (team, skills, strategy) = match pool {
        Pool::Team(team) => (Some(*team), Vec::new(), Strategy::LeastBusy),
        Pool::Skill(skill) => (None, vec![skill.clone()], Strategy::SkillWeighted),
    };
    let need = Need {
        team,
        skills: &skills,
        channel,
    };
    select::choose(&open, &need, strategy, None).map(|i| open[i].id.clone())
}

/// Ends `id` with `outcome`, cancels its timer and records its event; `None` when it
/// was no longer pending.
pub(super) async fn end(
    conn: &mut PgConnection,
    origin: &Origin,
    id: Uuid,
    outcome: Outcome<'_>,
) -> Result<Option<TransferRow>> {
    let Some(done) = transfers::finish(conn, &origin.account, id, outcome).await? else {
        return Ok(None);
    };
    timers::cancel(conn, TRANSFER_TIMER, &id.to_string()).await?;
    let transfer = Some(done.to_proto());
    crate::metrics::transfer_ended(match outcome.state {
        TransferState::Accepted => "accepted",
        TransferState::Rejected => "rejected",
        TransferState::TimedOut => "timed_out",
        _ => "cancelled",
    });
    match outcome.state {
        TransferState::Accepted => {
            let event = TransferAccepted {
                transfer,
                ..Default::default()
            };
            outbox::emit(conn, origin, event).await?
        }
        TransferState::Rejected => {
            let event = TransferRejected {
                transfer,
                ..Default::default()
            };
            outbox::emit(conn, origin, event).await?
        }
        TransferState::TimedOut => {
            let event = TransferTimedOut {
                transfer,
                ..Default::default()
            };
            outbox::emit(conn, origin, event).await?
        }
        TransferState::Cancelled | TransferState::Pending | TransferState::Unspecified => {
            let event = TransferCancelled {
                transfer,
                ..Default::default()
            };
            outbox::emit(conn, origin, event).await?
        }
    }
    Ok(Some(done))
}

/// Ends `id` as accepted or cancelled (nothing follows either).
pub(super) async fn settle(
    conn: &mut PgConnection,
    origin: &Origin,
    id: Uuid,
    state: TransferState,
    reason: &str,
) -> Result<Option<TransferRow>> {
    let outcome = Outcome {
        state,
        reason,
        next_id: None,
        exhausted: false,
    };
    end(conn, origin, id, outcome).await
}

/// The receiver of `t` declined, did not answer (`TimedOut`) or left: an agent
/// transfer ends there; a team transfer is offered to the team's next agent (never
/// one who declined it, nor the sender) and ends `exhausted` when nobody is left.
/// Returns the ended offer; `None` when it was no longer pending.
pub(super) async fn declined(
    conn: &mut PgConnection,
    origin: &Origin,
    account: &Account,
    t: &TransferRow,
    state: TransferState,
    reason: &str,
) -> Result<Option<TransferRow>> {
    let mut outcome = Outcome {
        state,
        reason,
        next_id: None,
        exhausted: false,
    };
    let Some(pool) = Pool::of(t) else {
        return end(conn, origin, t.id, outcome).await;
    };
    let mut declined = t.declined_by.clone();
    declined.push(t.to_agent_id.clone());
    let held = state::assignment(conn, &account.id, t.conversation_id).await?;
    // Onward offers follow the policy for the requester as they asked.
    let role = t.requester_role.parse().unwrap_or(Role::Agent);
    let permit = super::transfer::permit(conn, account, &t.requested_by, role).await?;
    let next = held.and_then(|a| {
        next_receiver(
            account,
            &permit,
            &pool,
            &a.channel,
            &t.from_agent_id,
            &declined,
        )
    });
    let Some(next) = next else {
        outcome.exhausted = true;
        return end(conn, origin, t.id, outcome).await;
    };
    let mut following = new_offer(account, t.clone(), next);
    following.declined_by = declined;
    following.previous_id = Some(t.id);
    outcome.next_id = Some(following.id);
    // The offer ends before the next is stored: one pending offer per conversation.
    let ended = end(conn, origin, t.id, outcome).await?;
    if ended.is_some() {
        offer(conn, origin, &following).await?;
    }
    Ok(ended)
}

/// Cancels the pending transfer of a conversation, if any (it lost its agent or left
/// the open state).
pub(super) async fn cancel_for(
    conn: &mut PgConnection,
    origin: &Origin,
    conversation_id: Uuid,
    reason: &str,
) -> Result<()> {
    for t in transfers::pending(conn, &origin.account, Some(conversation_id), None).await? {
        settle(conn, origin, t.id, TransferState::Cancelled, reason).await?;
    }
    Ok(())
}

/// Rejects the offers open to an agent who is no longer online (a team transfer
/// moves on to the next agent): an offer is only ever open to an agent who can take
/// it. `account` no longer counts the agent among the online ones.
pub(super) async fn reject_offered_to(
    conn: &mut PgConnection,
    origin: &Origin,
    account: &Account,
    agent_id: &str,
) -> Result<()> {
    for t in transfers::pending(conn, &origin.account, None, Some(agent_id)).await? {
        let reason = "the receiver went offline";
        declined(conn, origin, account, &t, TransferState::Rejected, reason).await?;
    }
    Ok(())
}
