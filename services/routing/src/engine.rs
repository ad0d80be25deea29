//! The routing engine: routes conversations, keeps the queue moving, and applies
//! manual changes. Every public function takes the account's routing lock first, so
//! with any number of replicas no conversation is assigned twice and no agent goes
//! over capacity (only a supervisor, explicitly).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use helpdesk_kit::time::to_timestamp;
use helpdesk_kit::timers;
use helpdesk_proto::routing::v1::{
    AgentPresenceChanged, AssignReason, ConversationAssigned, ConversationOverflowed,
    ConversationQueued, ConversationUnassigned, OfflinePolicy, OutsideHoursPolicy, OverflowAction,
    Presence, PriorityClass, QueuePositionChanged, Strategy, UnassignReason,
};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::rules::{self, Facts};
use crate::domain::select::{self, Candidate, Need};
use crate::domain::{Settings, class_rank};
use crate::store::{self, config, directory, state};
use helpdesk_kit::error::{Error, Result};
use helpdesk_kit::event::Origin;
use helpdesk_kit::outbox;
use helpdesk_kit::storage::StorageName;

/// Timer: widen a skill-routed chat's requirements.
pub const FALLBACK_TIMER: &str = "routing.fallback";
/// Timer: the longest wait has passed.
pub const OVERFLOW_TIMER: &str = "routing.overflow";
/// Timer: an agent's workbench went quiet.
pub const IDLE_TIMER: &str = "routing.presence_idle";

/// Fingerprint of a queue entry for its timers.
pub fn entry_fingerprint(q: &state::QueueRow) -> String {
    format!(
        "{}:{}:{}",
        q.enqueued_at.timestamp_micros(),
        q.stage,
        q.team_id.map(|t| t.to_string()).unwrap_or_default()
    )
}

fn waited(q: &state::QueueRow, now: DateTime<Utc>) -> i32 {
    (now - q.enqueued_at)
        .num_seconds()
        .clamp(0, i64::from(i32::MAX)) as i32
}

async fn candidates(conn: &mut PgConnection, account: &str) -> Result<Vec<Candidate>> {
    Ok(directory::agent_views(conn, account, None, true, None)
        .await?
        .iter()
        .map(directory::AgentView::candidate)
        .collect())
}

/// Records an assignment and its event.
#[allow(clippy::too_many_arguments)]
async fn assign_to(
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
    let previous = state::conversation(conn, account, conversation_id)
        .await?
        .and_then(|c| c.last_agent_id);
    let now = Utc::now();
    let row = state::AssignmentRow {
        account_id: account.clone(),
        conversation_id,
        agent_id: agent.id.clone(),
        team_id,
        channel: channel.to_string(),
        assigned_at: now,
    };
    state::assign(conn, &row, reason.as_str_name(), waited_seconds).await?;
    state::set_last_agent(conn, account, conversation_id, &agent.id, team_id).await?;
    agent.take(channel, now);
    let key = conversation_id.to_string();
    timers::cancel(conn, FALLBACK_TIMER, &key).await?;
    timers::cancel(conn, OVERFLOW_TIMER, &key).await?;
    let event = ConversationAssigned {
        conversation_id: key,
        agent_id: agent.id.clone(),
        agent_name: agent.name.clone(),
        team_id: team_id.map(|t| t.to_string()).unwrap_or_default(),
        previous_agent_id: previous.filter(|p| *p != agent.id).unwrap_or_default(),
        reason: reason as i32,
        waited_seconds,
        sequence: state::next_assignment_sequence(conn).await?,
        ..Default::default()
    };
    outbox::emit(conn, origin, event).await?;
    Ok(row)
}

/// Seconds one chat takes, for estimates.
async fn handle_seconds(
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

/// Assigns every queued chat that an online agent with room can take, in queue order,
/// then publishes the positions that moved. `fresh` is a chat just queued whose
/// position goes out in its `routing.queued` event instead. Returns assigned ids.
pub async fn dispatch(
    conn: &mut PgConnection,
    origin: &Origin,
    fresh: Option<Uuid>,
) -> Result<Vec<Uuid>> {
    let account = origin.account.clone();
    store::lock_account(conn, &account).await?;
    let entries = state::queue(conn, &account).await?;
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let mut agents = candidates(conn, &account).await?;
    let now = Utc::now();
    let mut assigned = Vec::new();
    // Pooled mode: chats wait until an agent picks them (or a supervisor assigns).
    let settings = config::settings(conn, &account).await?;
    let automatic = !settings.pooled_mode;
    for e in entries.iter().filter(|_| automatic) {
        if e.not_before.is_some_and(|t| t > now) {
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
        let Some(i) = select::choose(&agents, &need, strategy, None) else {
            continue;
        };
        state::dequeue(conn, &account, e.conversation_id).await?;
        let team = e.team_id;
        assign_to(
            conn,
            origin,
            e.conversation_id,
            &mut agents[i],
            team,
            &e.channel,
            AssignReason::Routed,
            waited(e, now),
        )
        .await?;
        assigned.push(e.conversation_id);
    }
    if entries.len() > assigned.len() {
        publish_positions(conn, origin, &settings, &entries, &assigned, &agents, fresh).await?;
    }
    Ok(assigned)
}

async fn publish_positions(
    conn: &mut PgConnection,
    origin: &Origin,
    settings: &Settings,
    entries: &[state::QueueRow],
    assigned: &[Uuid],
    agents: &[Candidate],
    fresh: Option<Uuid>,
) -> Result<()> {
    let account = &origin.account;
    let handle = handle_seconds(conn, account, settings).await?;
    let now = Utc::now();
    let mut next: HashMap<Option<Uuid>, i32> = HashMap::new();
    for e in entries
        .iter()
        .filter(|e| !assigned.contains(&e.conversation_id))
    {
        let position = next.entry(e.team_id).or_insert(0);
        *position += 1;
        let serving = agents
            .iter()
            .filter(|a| e.team_id.is_none_or(|t| a.teams.contains(&t)))
            .count();
        let opens_in = e.not_before.map(|t| (t - now).num_seconds()).unwrap_or(0);
        let est = estimate(*position, serving, handle, opens_in);
        if *position == e.position && (est - e.estimate_secs).abs() < 30 {
            continue;
        }
        state::set_position(conn, account, e.conversation_id, *position, est).await?;
        if Some(e.conversation_id) != fresh && *position != e.position {
            let event = QueuePositionChanged {
                conversation_id: e.conversation_id.to_string(),
                team_id: e.team_id.map(|t| t.to_string()).unwrap_or_default(),
                position: *position,
                estimated_wait_seconds: est,
                ..Default::default()
            };
            outbox::emit(conn, origin, event).await?;
        }
    }
    Ok(())
}

/// Sends a conversation away from the queue: leave-a-message, or the overflow team.
/// Returns the team it should now queue in (`Some`) or `None` when it left.
#[allow(clippy::too_many_arguments)]
async fn overflow(
    conn: &mut PgConnection,
    origin: &Origin,
    settings: &Settings,
    conversation_id: Uuid,
    from_team: Option<Uuid>,
    reason: &str,
    message: Option<String>,
    action: OverflowAction,
) -> Result<Option<Uuid>> {
    let account = &origin.account;
    let to_team = settings.overflow_team_id.filter(|t| Some(*t) != from_team);
    // Without an overflow team to go to, the visitor is asked to leave a message.
    let action = match (action, to_team) {
        (OverflowAction::OverflowTeam, Some(_)) => OverflowAction::OverflowTeam,
        _ => OverflowAction::LeaveMessage,
    };
    state::log_overflow(
        conn,
        account,
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
        to_team_id: if action == OverflowAction::OverflowTeam {
            to_team.map(|t| t.to_string()).unwrap_or_default()
        } else {
            String::new()
        },
        reason: reason.to_string(),
        message: if action == OverflowAction::LeaveMessage {
            message.unwrap_or_else(|| settings.leave_message_text.clone())
        } else {
            String::new()
        },
        ..Default::default()
    };
    outbox::emit(conn, origin, event).await?;
    if action == OverflowAction::LeaveMessage {
        let key = conversation_id.to_string();
        state::dequeue(conn, account, conversation_id).await?;
        timers::cancel(conn, FALLBACK_TIMER, &key).await?;
        timers::cancel(conn, OVERFLOW_TIMER, &key).await?;
        return Ok(None);
    }
    Ok(to_team)
}

/// Routes an open conversation that has no agent: straight to its previous agent
/// (reopened) or the contact's last agent when online with room, otherwise into the
/// queue (or away from it: closed hours, full queue).
pub async fn route(
    conn: &mut PgConnection,
    origin: &Origin,
    conversation_id: Uuid,
    reopened: bool,
) -> Result<()> {
    let account = origin.account.clone();
    store::lock_account(conn, &account).await?;
    let Some(conv) = state::conversation(conn, &account, conversation_id).await? else {
        return Ok(());
    };
    if conv.status != "open"
        || state::assignment(conn, &account, conversation_id)
            .await?
            .is_some()
        || state::queued(conn, &account, conversation_id)
            .await?
            .is_some()
    {
        return Ok(());
    }
    let settings = config::settings(conn, &account).await?;
    let rules: Vec<rules::Rule> = config::rules(conn, &account)
        .await?
        .into_iter()
        .map(|r| r.rule)
        .collect();
    let facts = Facts {
        inbox_id: conv.inbox_id,
        channel: conv.channel.clone(),
        contact_attributes: conv.contact_attributes.0.clone(),
        attributes: conv.attributes.0.clone(),
        priority: conv.priority,
        labels: conv.labels.clone(),
        first_message: conv.first_message.clone(),
    };
    let mut decision = rules::decide(&rules, &facts, settings.default_strategy);

    // Back to the agent who served before, when online with room.
    let preferred = if reopened {
        conv.last_agent_id.clone()
    } else if decision.strategy == Strategy::LastAgent && !settings.pooled_mode {
        state::last_agent_of_contact(conn, &account, conv.contact_id).await?
    } else {
        None
    };
    if let Some(p) = preferred {
        let mut agents = candidates(conn, &account).await?;
        let need = Need {
            team: None,
            skills: &[],
            channel: &conv.channel,
        };
        if let Some(i) = agents
            .iter()
            .position(|a| a.id == p && select::eligible(a, &need))
        {
            let reason = if reopened {
                AssignReason::Reopened
            } else {
                AssignReason::LastAgent
            };
            let team = if reopened {
                conv.last_team_id
            } else {
                decision.team_id
            };
            assign_to(
                conn,
                origin,
                conversation_id,
                &mut agents[i],
                team,
                &conv.channel,
                reason,
                0,
            )
            .await?;
            return Ok(());
        }
    }

    // Business hours of the team, else of the inbox.
    let now = Utc::now();
    let hours = match decision.team_id {
        Some(t) => config::hours(conn, &account, "team", t).await?,
        None => None,
    };
    let hours = match hours {
        Some(h) => Some(h),
        None => config::hours(conn, &account, "inbox", conv.inbox_id).await?,
    };
    let mut not_before = None;
    let mut out_of_office = String::new();
    if let Some(h) = hours
        && let Some(compiled) = h.spec.compile()
        && !compiled.is_open(now)
    {
        if h.policy == OutsideHoursPolicy::Wait {
            not_before = compiled.next_open(now);
            out_of_office = h.out_of_office_message.clone();
        } else {
            let message = Some(h.out_of_office_message.clone()).filter(|m| !m.is_empty());
            overflow(
                conn,
                origin,
                &settings,
                conversation_id,
                decision.team_id,
                "outside_hours",
                message,
                OverflowAction::LeaveMessage,
            )
            .await?;
            return Ok(());
        }
    }

    // A full queue overflows at once.
    if settings.max_queue_length > 0 {
        let waiting = state::queue(conn, &account)
            .await?
            .iter()
            .filter(|q| q.team_id == decision.team_id)
            .count();
        if waiting >= settings.max_queue_length as usize {
            match overflow(
                conn,
                origin,
                &settings,
                conversation_id,
                decision.team_id,
                "queue_full",
                None,
                settings.overflow_action,
            )
            .await?
            {
                Some(team) => {
                    decision.team_id = Some(team);
                    decision.skills.clear();
                }
                None => return Ok(()),
            }
        }
    }

    let entry = state::QueueRow {
        account_id: account.clone(),
        conversation_id,
        team_id: decision.team_id,
        required_skills: decision.skills.clone(),
        priority_class: class_rank(decision.class),
        strategy: decision.strategy.storage_name().to_string(),
        channel: conv.channel.clone(),
        enqueued_at: now,
        stage: 0,
        not_before,
        position: 0,
        estimate_secs: 0,
    };
    state::enqueue(conn, &entry).await?;
    schedule_entry_timers(conn, &settings, &entry).await?;
    let assigned = dispatch(conn, origin, Some(conversation_id)).await?;
    if assigned.contains(&conversation_id) {
        return Ok(());
    }
    let stored = state::queued(conn, &account, conversation_id).await?;
    let (position, estimate) = stored
        .map(|q| (q.position, q.estimate_secs))
        .unwrap_or((0, 0));
    let event = ConversationQueued {
        conversation_id: conversation_id.to_string(),
        team_id: decision.team_id.map(|t| t.to_string()).unwrap_or_default(),
        position,
        estimated_wait_seconds: estimate,
        priority_class: decision.class as i32,
        required_skills: decision.skills,
        opens_at: not_before.map(to_timestamp),
        out_of_office_message: out_of_office,
        ..Default::default()
    };
    outbox::emit(conn, origin, event).await?;
    Ok(())
}

async fn schedule_entry_timers(
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

/// The conversation left the open state (pending, snoozed, resolved): its agent's
/// slot frees up and it leaves the queue; waiting chats move up.
pub async fn release(
    conn: &mut PgConnection,
    origin: &Origin,
    conversation_id: Uuid,
) -> Result<()> {
    let account = origin.account.clone();
    store::lock_account(conn, &account).await?;
    let freed = state::release(conn, &account, conversation_id)
        .await?
        .is_some();
    let dequeued = state::dequeue(conn, &account, conversation_id).await?;
    if dequeued {
        let key = conversation_id.to_string();
        timers::cancel(conn, FALLBACK_TIMER, &key).await?;
        timers::cancel(conn, OVERFLOW_TIMER, &key).await?;
    }
    if freed || dequeued {
        dispatch(conn, origin, None).await?;
    }
    Ok(())
}

/// A supervisor assigns a conversation to an agent.
pub async fn assign_manually(
    conn: &mut PgConnection,
    origin: &Origin,
    conversation_id: Uuid,
    agent_id: &str,
    allow_over_capacity: bool,
) -> Result<state::AssignmentRow> {
    let account = origin.account.clone();
    store::lock_account(conn, &account).await?;
    let conv = state::conversation(conn, &account, conversation_id)
        .await?
        .ok_or(Error::NotFound("conversation"))?;
    if conv.status != "open" {
        return Err(Error::FailedPrecondition(format!(
            "conversation is {}, not open",
            conv.status
        )));
    }
    let view = directory::agent_views(conn, &account, Some(agent_id), false, None).await?;
    let mut agent = view
        .first()
        .map(directory::AgentView::candidate)
        .ok_or(Error::NotFound("agent"))?;
    if let Some(current) = state::assignment(conn, &account, conversation_id).await? {
        if current.agent_id == agent_id {
            return Ok(current);
        }
        state::release(conn, &account, conversation_id).await?;
    }
    if !agent.has_room(&conv.channel) && !allow_over_capacity {
        return Err(Error::FailedPrecondition(format!(
            "agent {agent_id} is at capacity ({}/{}); set allow_over_capacity to exceed it",
            agent.active, agent.max_chats
        )));
    }
    let queued = state::queued(conn, &account, conversation_id).await?;
    state::dequeue(conn, &account, conversation_id).await?;
    let waited_s = queued.as_ref().map(|q| waited(q, Utc::now())).unwrap_or(0);
    let team = queued.and_then(|q| q.team_id).or(conv.last_team_id);
    let row = assign_to(
        conn,
        origin,
        conversation_id,
        &mut agent,
        team,
        &conv.channel,
        AssignReason::Manual,
        waited_s,
    )
    .await?;
    dispatch(conn, origin, None).await?;
    Ok(row)
}

/// A supervisor takes the agent off a conversation, optionally back into the queue.
pub async fn unassign(
    conn: &mut PgConnection,
    origin: &Origin,
    conversation_id: Uuid,
    requeue: bool,
) -> Result<()> {
    let account = origin.account.clone();
    store::lock_account(conn, &account).await?;
    let released = state::release(conn, &account, conversation_id)
        .await?
        .ok_or_else(|| Error::FailedPrecondition("conversation has no agent".into()))?;
    let event = ConversationUnassigned {
        conversation_id: conversation_id.to_string(),
        agent_id: released.agent_id.clone(),
        reason: UnassignReason::Manual as i32,
        requeued: requeue,
        sequence: state::next_assignment_sequence(conn).await?,
        ..Default::default()
    };
    outbox::emit(conn, origin, event).await?;
    if requeue {
        requeue_entry(conn, &released).await?;
    }
    dispatch(conn, origin, None).await?;
    Ok(())
}

async fn requeue_entry(conn: &mut PgConnection, a: &state::AssignmentRow) -> Result<()> {
    let entry = state::QueueRow {
        account_id: a.account_id.clone(),
        conversation_id: a.conversation_id,
        team_id: a.team_id,
        required_skills: Vec::new(),
        priority_class: class_rank(PriorityClass::Normal),
        strategy: Strategy::LeastBusy.storage_name().to_string(),
        channel: a.channel.clone(),
        enqueued_at: Utc::now(),
        stage: 1,
        not_before: None,
        position: 0,
        estimate_secs: 0,
    };
    state::enqueue(conn, &entry).await?;
    let settings = config::settings(conn, &a.account_id).await?;
    schedule_entry_timers(conn, &settings, &entry).await
}

/// An agent (pooled mode) takes a queued chat: the given one or the first it may serve.
pub async fn pick(
    conn: &mut PgConnection,
    origin: &Origin,
    agent_id: &str,
    conversation_id: Option<Uuid>,
) -> Result<state::AssignmentRow> {
    let account = origin.account.clone();
    store::lock_account(conn, &account).await?;
    let settings = config::settings(conn, &account).await?;
    if !settings.pooled_mode {
        return Err(Error::FailedPrecondition(
            "picking from the queue needs pooled mode".into(),
        ));
    }
    let view = directory::agent_views(conn, &account, Some(agent_id), false, None).await?;
    let view = view.first().ok_or(Error::NotFound("agent"))?;
    if view.row.presence() != Presence::Online {
        return Err(Error::FailedPrecondition("go online to pick chats".into()));
    }
    let mut agent = view.candidate();
    let entries = state::queue(conn, &account).await?;
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
    state::dequeue(conn, &account, entry.conversation_id).await?;
    let row = assign_to(
        conn,
        origin,
        entry.conversation_id,
        &mut agent,
        entry.team_id,
        &entry.channel,
        AssignReason::Picked,
        waited(&entry, Utc::now()),
    )
    .await?;
    dispatch(conn, origin, None).await?;
    Ok(row)
}

/// Sets an agent's presence: online assigns waiting chats; offline requeues the
/// agent's open chats when the account says so. Returns the previous presence.
pub async fn set_presence(
    conn: &mut PgConnection,
    origin: &Origin,
    agent_id: &str,
    presence: Presence,
) -> Result<Presence> {
    let account = origin.account.clone();
    store::lock_account(conn, &account).await?;
    let before = directory::set_presence(conn, &account, agent_id, presence)
        .await?
        .ok_or(Error::NotFound("agent"))?;
    if before == presence {
        return Ok(before);
    }
    let event = AgentPresenceChanged {
        agent_id: agent_id.to_string(),
        from: before as i32,
        to: presence as i32,
        ..Default::default()
    };
    outbox::emit(conn, origin, event).await?;
    if presence == Presence::Offline
        && config::settings(conn, &account).await?.offline_policy == OfflinePolicy::Requeue
    {
        for a in state::assignments_of(conn, &account, agent_id).await? {
            state::release(conn, &account, a.conversation_id).await?;
            let event = ConversationUnassigned {
                conversation_id: a.conversation_id.to_string(),
                agent_id: agent_id.to_string(),
                reason: UnassignReason::AgentOffline as i32,
                requeued: true,
                sequence: state::next_assignment_sequence(conn).await?,
                ..Default::default()
            };
            outbox::emit(conn, origin, event).await?;
            requeue_entry(conn, &a).await?;
        }
    }
    dispatch(conn, origin, None).await?;
    Ok(before)
}

/// The skill fallback timer: widen to the whole team, then to the overflow team.
pub async fn fall_back(
    conn: &mut PgConnection,
    origin: &Origin,
    conversation_id: Uuid,
) -> Result<()> {
    let account = origin.account.clone();
    store::lock_account(conn, &account).await?;
    let Some(mut entry) = state::queued(conn, &account, conversation_id).await? else {
        return Ok(());
    };
    let settings = config::settings(conn, &account).await?;
    entry.stage += 1;
    if entry.stage >= 2 {
        // Last widening: the overflow team, when there is one; otherwise the chat keeps
        // waiting for any agent of its team.
        let Some(team) = settings
            .overflow_team_id
            .filter(|t| Some(*t) != entry.team_id)
        else {
            return Ok(());
        };
        overflow(
            conn,
            origin,
            &settings,
            conversation_id,
            entry.team_id,
            "no_skilled_agent",
            None,
            OverflowAction::OverflowTeam,
        )
        .await?;
        entry.team_id = Some(team);
    }
    state::update_entry(conn, &entry).await?;
    schedule_entry_timers(conn, &settings, &entry).await?;
    dispatch(conn, origin, None).await?;
    Ok(())
}

/// The longest-wait timer: overflow per the account's settings.
pub async fn wait_exceeded(
    conn: &mut PgConnection,
    origin: &Origin,
    conversation_id: Uuid,
) -> Result<()> {
    let account = origin.account.clone();
    store::lock_account(conn, &account).await?;
    let Some(mut entry) = state::queued(conn, &account, conversation_id).await? else {
        return Ok(());
    };
    let settings = config::settings(conn, &account).await?;
    if let Some(team) = overflow(
        conn,
        origin,
        &settings,
        conversation_id,
        entry.team_id,
        "wait_exceeded",
        None,
        settings.overflow_action,
    )
    .await?
    {
        entry.team_id = Some(team);
        entry.stage = 2;
        state::update_entry(conn, &entry).await?;
    }
    dispatch(conn, origin, None).await?;
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
