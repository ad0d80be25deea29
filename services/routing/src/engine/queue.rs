//! The queue: dispatching waiting chats to agents with room, their positions and
//! estimated waits, entering it (timers included) and leaving it by overflow.
//!
//! Positions are derived from the queue's order whenever they are read (never
//! stored): a chat leaving the head of a long queue costs the same as in a short one,
//! and nothing is written for the chats behind it. Waiting visitors read their
//! position through `WatchQueuePosition`, at most once a second.

use chrono::{DateTime, Utc};
use helpdesk_kit::error::Result;
use helpdesk_kit::event::Origin;
use helpdesk_kit::outbox;
use helpdesk_kit::storage::StorageName;
use helpdesk_proto::routing::v1::{
    AssignReason, ConversationOverflowed, OverflowAction, PriorityClass, Strategy,
};
use sqlx::PgConnection;
use uuid::Uuid;

use super::account::Account;
use super::{entry_timers, seat};
use crate::domain::route::Overflow;
use crate::domain::select::{self, Candidate, Need};
use crate::domain::{Settings, class_rank};
use crate::store::state;

/// Seconds `q` has waited at `now`.
pub(super) fn waited(q: &state::QueueRow, now: DateTime<Utc>) -> i32 {
    (now - q.enqueued_at)
        .num_seconds()
        .clamp(0, i64::from(i32::MAX)) as i32
}

/// Seconds one chat takes, for estimates: the recent average, else the setting.
pub(super) async fn handle_seconds(
    conn: &mut PgConnection,
    account: &str,
    settings: &Settings,
) -> Result<f64> {
    Ok(state::average_handle_seconds(conn, account)
        .await?
        .unwrap_or(f64::from(settings.default_handle_seconds))
        .max(1.0))
}

/// Estimated wait of the `position`-th chat of a queue served by `agents` agents.
pub fn estimate(position: i32, agents: usize, handle_seconds: f64, opens_in: i64) -> i32 {
    let per_agent = f64::from(position) / agents.max(1) as f64;
    ((per_agent * handle_seconds).ceil() as i64 + opens_in.max(0)).clamp(0, i64::from(i32::MAX))
        as i32
}

/// Assigns queued chats that online agents with room can take, in queue order, at
/// most `limit` (the rest wait for the next call): the account lock is never held for
/// a whole drain. Returns how many.
pub async fn dispatch_some(
    conn: &mut PgConnection,
    origin: &Origin,
    limit: usize,
) -> Result<usize> {
    let mut account = Account::lock(conn, &origin.account).await?;
    // The queue is read from its head a page at a time, only as far as the seats
    // go: a batch costs the same however long the queue behind it.
    let mut assigned = 0;
    let mut after = None;
    while assigned < limit && account.has_room() {
        let mut page = state::queue_after(conn, &account.id, after, DISPATCH_PAGE).await?;
        let last_page = page.len() < DISPATCH_PAGE;
        after = page.last().map(state::QueueRow::order_key);
        let left = limit - assigned;
        assigned += seat_waiting(conn, origin, &mut account, &mut page, None, left)
            .await?
            .len();
        if last_page {
            break;
        }
    }
    Ok(assigned)
}

/// Queue entries [`dispatch_some`] reads at a time.
const DISPATCH_PAGE: usize = 500;

/// Assigns every queued chat that fits, within an operation that holds the lock and
/// the context.
pub(super) async fn assign_waiting(
    conn: &mut PgConnection,
    origin: &Origin,
    account: &mut Account,
) -> Result<Vec<Uuid>> {
    Ok(admit(conn, origin, account, None).await?.assigned)
}

/// What [`admit`] did.
pub(super) struct Admitted {
    /// Conversations assigned, in queue order.
    pub assigned: Vec<Uuid>,
    /// The new entry as stored in the queue (with its position and estimate), when it
    /// could not be assigned at once.
    pub waiting: Option<state::QueueRow>,
}

/// [`assign_waiting`] with a new entry taking its place in the queue first. The new
/// entry is written to the queue (with its timers) only when no agent takes it at
/// once; its position goes out in the caller's `routing.queued` event, not in a
/// position change.
pub(super) async fn admit(
    conn: &mut PgConnection,
    origin: &Origin,
    account: &mut Account,
    fresh: Option<state::QueueRow>,
) -> Result<Admitted> {
    // Nobody can take anything: the new entry only needs its place, which counting
    // the queue gives as long as it goes to the back of its class.
    let fresh = match fresh {
        Some(mut f) if !account.has_room() => match account.position_at_back(conn, &f).await? {
            Some(position) => {
                enqueue_row(conn, account, &f).await?;
                account.queued(&f);
                f.position = position;
                let handle = account.handle_seconds(conn).await?;
                f.estimate_secs = estimated_wait(&f, &account.agents, handle, Utc::now());
                return Ok(Admitted {
                    assigned: Vec::new(),
                    waiting: Some(f),
                });
            }
            None => Some(f),
        },
        other => other,
    };
    // On an error the transaction rolls back and the context goes with it.
    let mut entries = account.take_queue(conn).await?;
    let fresh_id = fresh.as_ref().map(|f| f.conversation_id);
    if let Some(f) = fresh {
        let at = entries.partition_point(|q| q.order_key() < f.order_key());
        entries.insert(at, f);
    }
    let assigned = seat_waiting(conn, origin, account, &mut entries, fresh_id, usize::MAX).await?;
    let waiting = fresh_id.and_then(|id| entries.iter().position(|q| q.conversation_id == id));
    if let Some(i) = waiting {
        enqueue_row(conn, account, &entries[i]).await?;
        place(conn, account, &mut entries, i).await?;
    }
    let waiting = waiting.map(|i| entries[i].clone());
    account.put_queue(entries);
    Ok(Admitted { assigned, waiting })
}

/// Seats the entries of `entries` an agent can take now (at most `limit`), removing
/// them from it (and from the queue table, except `fresh`, which is not stored yet).
async fn seat_waiting(
    conn: &mut PgConnection,
    origin: &Origin,
    account: &mut Account,
    entries: &mut Vec<state::QueueRow>,
    fresh: Option<Uuid>,
    limit: usize,
) -> Result<Vec<Uuid>> {
    // Pooled mode: chats wait until an agent picks them (or a supervisor assigns).
    if entries.is_empty() || account.settings.pooled_mode {
        return Ok(Vec::new());
    }
    let now = Utc::now();
    let mut assigned = Vec::new();
    // Stored entries assigned: taken out of the table together at the end.
    let mut leaving = Vec::new();
    let mut i = 0;
    // Once every online agent is full, nothing further down the queue fits: a chat
    // arriving while all seats are taken costs the same however long the queue is.
    while i < entries.len()
        && assigned.len() < limit
        && account.agents.iter().any(|a| a.active < a.max_chats)
    {
        let e = &entries[i];
        if e.not_before.is_some_and(|t| t > now) {
            i += 1;
            continue;
        }
        let skills: &[String] = if e.stage == 0 {
            &e.required_skills
        } else {
            &[]
        };
        let need = Need {
            team: e.team_id,
            skills,
            channel: &e.channel,
        };
        let strategy = Strategy::from_storage(&e.strategy);
        let Some(agent) = select::choose(&account.agents, &need, strategy, None) else {
            i += 1;
            continue;
        };
        let e = entries.remove(i);
        if Some(e.conversation_id) != fresh {
            leaving.push(e.conversation_id);
        }
        seat::assign_to(
            conn,
            origin,
            e.conversation_id,
            &mut account.agents[agent],
            e.team_id,
            &e.channel,
            AssignReason::Routed,
            waited(&e, now),
        )
        .await?;
        assigned.push(e.conversation_id);
    }
    if !leaving.is_empty() {
        state::dequeue_all(conn, &account.id, &leaving).await?;
        entry_timers::cancel_all(conn, &leaving).await?;
    }
    Ok(assigned)
}

/// Sets the position (in its team's queue) and estimated wait of `entries[i]`, a chat
/// that has just joined the queue, for its `routing.queued` event.
async fn place(
    conn: &mut PgConnection,
    account: &mut Account,
    entries: &mut [state::QueueRow],
    i: usize,
) -> Result<()> {
    let team = entries[i].team_id;
    let position = entries[..=i].iter().filter(|q| q.team_id == team).count();
    let handle = account.handle_seconds(conn).await?;
    let entry = &mut entries[i];
    entry.position = i32::try_from(position).unwrap_or(i32::MAX);
    entry.estimate_secs = estimated_wait(entry, &account.agents, handle, Utc::now());
    Ok(())
}

/// The estimated wait of `q` (its position derived) at `now`, served by `agents`.
fn estimated_wait(
    q: &state::QueueRow,
    agents: &[Candidate],
    handle: f64,
    now: DateTime<Utc>,
) -> i32 {
    let opens_in = q.not_before.map(|t| (t - now).num_seconds()).unwrap_or(0);
    estimate(q.position, serving(agents, q.team_id), handle, opens_in)
}

/// What estimated waits are computed from: the time one chat takes and the agents
/// online.
pub struct Estimates {
    handle: f64,
    agents: Vec<Candidate>,
}

impl Estimates {
    /// Reads them for `account`.
    pub async fn read(conn: &mut PgConnection, account: &str) -> Result<Self> {
        let settings = crate::store::config::settings(conn, account).await?;
        let handle = handle_seconds(conn, account, &settings).await?;
        let agents = super::account::online_agents(conn, account, None).await?;
        Ok(Self { handle, agents })
    }

    /// The estimated wait of `q` (its position derived) at `now`.
    pub fn wait(&self, q: &state::QueueRow, now: DateTime<Utc>) -> i32 {
        estimated_wait(q, &self.agents, self.handle, now)
    }
}

/// Online agents serving a team's queue (any agent for the team-less queue).
fn serving(agents: &[Candidate], team: Option<Uuid>) -> usize {
    agents
        .iter()
        .filter(|a| team.is_none_or(|t| a.teams.contains(&t)))
        .count()
}

/// Puts an entry in the queue and schedules its timers.
pub(super) async fn enqueue(
    conn: &mut PgConnection,
    account: &mut Account,
    entry: &state::QueueRow,
) -> Result<()> {
    enqueue_row(conn, account, entry).await?;
    account.queued(entry);
    Ok(())
}

/// Writes an entry and its timers (the context's queue is the caller's).
async fn enqueue_row(
    conn: &mut PgConnection,
    account: &Account,
    entry: &state::QueueRow,
) -> Result<()> {
    state::enqueue(conn, entry).await?;
    entry_timers::schedule(conn, &account.settings, entry).await
}

/// Puts a conversation whose agent was taken off back in the queue, in its team,
/// without skill requirements, behind those already waiting.
pub(super) async fn requeue(
    conn: &mut PgConnection,
    account: &mut Account,
    a: &state::AssignmentRow,
) -> Result<()> {
    requeue_in(conn, account, a, a.team_id, now_micros()).await
}

/// [`requeue`] into `team`'s queue, as having waited since `since`.
pub(super) async fn requeue_in(
    conn: &mut PgConnection,
    account: &mut Account,
    a: &state::AssignmentRow,
    team: Option<Uuid>,
    since: DateTime<Utc>,
) -> Result<()> {
    let entry = state::QueueRow {
        account_id: a.account_id.clone(),
        conversation_id: a.conversation_id,
        team_id: team,
        required_skills: Vec::new(),
        priority_class: class_rank(PriorityClass::Normal),
        strategy: Strategy::LeastBusy.storage_name().to_string(),
        channel: a.channel.clone(),
        enqueued_at: since,
        stage: 1,
        not_before: None,
        position: 0,
        estimate_secs: 0,
    };
    enqueue(conn, account, &entry).await
}

/// Takes a conversation out of the queue; true when it was queued.
pub(super) async fn leave(
    conn: &mut PgConnection,
    account: &mut Account,
    conversation_id: Uuid,
) -> Result<bool> {
    let dequeued = leave_stored(conn, &account.id, conversation_id).await?;
    account.dequeued(conversation_id);
    Ok(dequeued)
}

/// [`leave`] in the table only (the context's queue is the caller's).
async fn leave_stored(
    conn: &mut PgConnection,
    account: &str,
    conversation_id: Uuid,
) -> Result<bool> {
    let dequeued = state::dequeue(conn, account, conversation_id).await?;
    if dequeued {
        entry_timers::cancel(conn, conversation_id).await?;
    }
    Ok(dequeued)
}

/// Now, to the microsecond the database keeps, so that a queue entry in memory
/// orders as its row does.
pub(super) fn now_micros() -> DateTime<Utc> {
    use chrono::SubsecRound;
    Utc::now().trunc_subsecs(6)
}

/// Records an overflow from `from_team` and its event. Leaving a message takes the
/// conversation out of the queue; moving it to the overflow team is the caller's.
pub(super) async fn overflow(
    conn: &mut PgConnection,
    origin: &Origin,
    account: &mut Account,
    conversation_id: Uuid,
    from_team: Option<Uuid>,
    reason: &str,
    to: &Overflow,
) -> Result<()> {
    let (action, to_team_id, message) = match to {
        Overflow::Team(team) => (OverflowAction::OverflowTeam, team.to_string(), ""),
        Overflow::LeaveMessage(message) => (
            OverflowAction::LeaveMessage,
            String::new(),
            message.as_str(),
        ),
    };
    state::log_overflow(
        conn,
        &account.id,
        conversation_id,
        from_team,
        action.storage_name(),
        reason,
    )
    .await?;
    let event = ConversationOverflowed {
        conversation_id: conversation_id.to_string(),
        action: action as i32,
        from_team_id: from_team.map(|t| t.to_string()).unwrap_or_default(),
        to_team_id,
        reason: reason.to_string(),
        message: message.to_string(),
        sequence: state::next_assignment_sequence(conn).await?,
        ..Default::default()
    };
    outbox::emit(conn, origin, event).await?;
    if action == OverflowAction::LeaveMessage {
        state::dequeue(conn, &account.id, conversation_id).await?;
        entry_timers::cancel(conn, conversation_id).await?;
        account.dequeued(conversation_id);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::estimate;

    #[test]
    fn estimates_grow_with_position_and_shrink_with_agents() {
        assert_eq!(estimate(1, 1, 300.0, 0), 300);
        assert_eq!(estimate(4, 2, 300.0, 0), 600);
        assert_eq!(estimate(3, 0, 60.0, 0), 180);
        assert_eq!(estimate(1, 1, 60.0, 3600), 3660);
    }
}
