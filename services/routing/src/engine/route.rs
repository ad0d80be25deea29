//! A conversation opening without an agent is routed: the facts are read under the
//! account lock, `domain::route::decide` decides, and the decision is applied here.
//! A conversation leaving the open state is released.

use chrono::{DateTime, Utc};
use helpdesk_kit::error::Result;
use helpdesk_kit::event::Origin;
use helpdesk_kit::outbox;
use helpdesk_kit::storage::StorageName;
use helpdesk_kit::time::to_timestamp;
use helpdesk_proto::routing::v1::{ConversationQueued, PriorityClass, Strategy};
use sqlx::PgConnection;
use tracing::Instrument;
use uuid::Uuid;

use super::account::{Account, Session};
use super::{offers, queue, seat};
use crate::domain::class_rank;
use crate::domain::route::{self, Entry, OpeningHours, Overflow, RouteDecision, Situation};
use crate::domain::rules::{self, Facts};
use crate::store::{directory, state};

/// Routes an open conversation that has no agent: straight to its previous agent
/// (reopened) or the contact's last agent when online with room, otherwise into the
/// queue (or away from it: closed hours, full queue).
pub async fn route(
    conn: &mut PgConnection,
    origin: &Origin,
    conversation_id: Uuid,
    reopened: bool,
) -> Result<()> {
    route_in(conn, &mut Session::new(), origin, conversation_id, reopened).await
}

/// [`route`] as one of the operations of `session`'s transaction.
pub async fn route_in(
    conn: &mut PgConnection,
    session: &mut Session,
    origin: &Origin,
    conversation_id: Uuid,
    reopened: bool,
) -> Result<()> {
    let account = session.account(conn, &origin.account).await?;
    let Some((conv, placed)) = state::routable(conn, &account.id, conversation_id).await? else {
        return Ok(());
    };
    let how = How {
        reopened,
        ..How::default()
    };
    route_row(conn, session, origin, &conv, placed, &how).await
}

/// How a conversation comes to be routed.
#[derive(Debug, Clone, Default)]
pub struct How {
    /// It was open before (back to its previous agent when possible).
    pub reopened: bool,
    /// A bot handed it over asking for this team (instead of the rules' choice).
    pub team_id: Option<Uuid>,
    /// A bot handed it over asking for these skills (instead of the rules' choice).
    pub skills: Vec<String>,
}

/// [`route_in`] of a conversation whose projection the caller has just read or
/// written: `placed` says whether it is already assigned or queued.
pub async fn route_row(
    conn: &mut PgConnection,
    session: &mut Session,
    origin: &Origin,
    conv: &state::ConversationRow,
    placed: bool,
    how: &How,
) -> Result<()> {
    if conv.status != "open" || placed {
        return Ok(());
    }
    let conversation_id = conv.id;
    let account = session.account(conn, &origin.account).await?;
    let known = Known::load(conn, account, conv, how).await?;
    // The decision's own span: what it chose from, how, and what came of it. The
    // events it records are its children.
    let span = tracing::info_span!(
        "routing.assign",
        otel.name = "routing assign",
        routing.conversation_id = %conversation_id,
        routing.channel = %conv.channel,
        routing.candidates = account.agents.len(),
        routing.strategy = known.target.strategy.as_str_name(),
        routing.team_id = %known.target.team_id.map(|t| t.to_string()).unwrap_or_default(),
        routing.outcome = tracing::field::Empty,
        routing.agent_id = tracing::field::Empty,
    );
    apply(conn, origin, account, conv, how, known)
        .instrument(span)
        .await
}

/// Decides where `conv` goes and applies it, in the span of [`route_row`].
async fn apply(
    conn: &mut PgConnection,
    origin: &Origin,
    account: &mut Account,
    conv: &state::ConversationRow,
    how: &How,
    known: Known,
) -> Result<()> {
    let (conversation_id, reopened) = (conv.id, how.reopened);
    let span = tracing::Span::current();
    let now = queue::now_micros();
    let decision = route::decide(&Situation {
        channel: &conv.channel,
        reopened,
        last_team_id: conv.last_team_id,
        target: &known.target,
        settings: &account.settings,
        agents: &account.agents,
        preferred: known.preferred.as_deref(),
        hours: known.hours.as_ref(),
        now,
        waiting: known.waiting,
    });
    match decision {
        RouteDecision::Assign {
            agent,
            team_id,
            reason,
        } => {
            let agent = &mut account.agents[agent];
            span.record("routing.outcome", "assigned");
            span.record("routing.agent_id", agent.id.as_str());
            seat::assign_to(
                conn,
                origin,
                conversation_id,
                agent,
                team_id,
                &conv.channel,
                reason,
                0,
            )
            .await?;
            Ok(())
        }
        RouteDecision::LeaveMessage {
            from_team_id,
            reason,
            message,
        } => {
            span.record("routing.outcome", "leave_message");
            let to = Overflow::LeaveMessage(message);
            queue::overflow(
                conn,
                origin,
                account,
                conversation_id,
                from_team_id,
                reason,
                &to,
            )
            .await
        }
        RouteDecision::Enqueue(entry) => {
            span.record("routing.outcome", "queued");
            enqueue(
                conn,
                origin,
                account,
                conversation_id,
                &conv.channel,
                entry,
                now,
            )
            .await
        }
    }
}

/// What the decision needs beyond the context and the conversation.
struct Known {
    /// Where and how the rules send the conversation.
    target: rules::Decision,
    preferred: Option<String>,
    hours: Option<OpeningHours>,
    waiting: usize,
}

impl Known {
    /// Reads them: the rules' target first, as the hours, the queue and the last
    /// agent that matter depend on it.
    async fn load(
        conn: &mut PgConnection,
        account: &mut Account,
        conv: &state::ConversationRow,
        how: &How,
    ) -> Result<Self> {
        let reopened = how.reopened;
        let (strategy, pooled_mode, max_queue_length) = (
            account.settings.default_strategy,
            account.settings.pooled_mode,
            account.settings.max_queue_length,
        );
        let facts = Facts {
            inbox_id: conv.inbox_id,
            channel: conv.channel.clone(),
            contact_attributes: conv.contact_attributes.0.clone(),
            attributes: conv.attributes.0.clone(),
            priority: conv.priority,
            labels: conv.labels.clone(),
            first_message: conv.first_message.clone(),
        };
        let mut target = rules::decide(account.rules(conn).await?, &facts, strategy);
        // A bot's handoff names where it goes; an unknown team is left to the rules.
        if let Some(team) = how.team_id {
            if directory::unknown_teams(conn, &account.id, &[team])
                .await?
                .is_empty()
            {
                target.team_id = Some(team);
            } else {
                tracing::warn!(%team, conversation = %conv.id, "handoff to an unknown team; the rules decide");
            }
        }
        if !how.skills.is_empty() {
            target.skills = how.skills.clone();
            if target.class == PriorityClass::Normal {
                target.class = PriorityClass::Skill;
            }
        }

        // Back to the agent who served before.
        let preferred = if reopened {
            conv.last_agent_id.clone()
        } else if target.strategy == Strategy::LastAgent && !pooled_mode {
            state::last_agent_of_contact(conn, &account.id, conv.contact_id).await?
        } else {
            None
        };

        // Business hours of the team, else of the inbox.
        let hours = match target.team_id {
            Some(t) => account.hours(conn, "team", t).await?,
            None => None,
        };
        let hours = match hours {
            Some(h) => Some(h),
            None => account.hours(conn, "inbox", conv.inbox_id).await?,
        };
        let hours = hours.and_then(|h| {
            Some(OpeningHours {
                hours: h.spec.compile()?,
                policy: h.policy,
                out_of_office_message: h.out_of_office_message,
            })
        });

        // Only a queue with a maximum length needs counting.
        let waiting = if max_queue_length > 0 {
            account.waiting(conn, target.team_id).await?
        } else {
            0
        };
        Ok(Self {
            target,
            preferred,
            hours,
            waiting,
        })
    }
}

/// Applies [`RouteDecision::Enqueue`]: the overflow it went through, the entry and its
/// timers, a dispatch; then `routing.queued` with its position unless it was assigned.
async fn enqueue(
    conn: &mut PgConnection,
    origin: &Origin,
    account: &mut Account,
    conversation_id: Uuid,
    channel: &str,
    entry: Entry,
    now: DateTime<Utc>,
) -> Result<()> {
    if let Some(o) = &entry.overflowed {
        let to = Overflow::Team(o.to_team_id);
        let (from, reason) = (o.from_team_id, o.reason);
        queue::overflow(conn, origin, account, conversation_id, from, reason, &to).await?;
    }
    let row = state::QueueRow {
        account_id: account.id.clone(),
        conversation_id,
        team_id: entry.team_id,
        required_skills: entry.skills.clone(),
        priority_class: class_rank(entry.class),
        strategy: entry.strategy.storage_name().to_string(),
        channel: channel.to_string(),
        enqueued_at: now,
        stage: 0,
        not_before: entry.not_before,
        position: 0,
        estimate_secs: 0,
    };
    let admitted = queue::admit(conn, origin, account, Some(row)).await?;
    let Some(waiting) = admitted.waiting else {
        // Assigned at once: the queue had no one ahead and an agent had room.
        tracing::Span::current().record("routing.outcome", "assigned");
        return Ok(());
    };
    let (position, estimate) = (waiting.position, waiting.estimate_secs);
    let event = ConversationQueued {
        conversation_id: conversation_id.to_string(),
        team_id: entry.team_id.map(|t| t.to_string()).unwrap_or_default(),
        position,
        estimated_wait_seconds: estimate,
        priority_class: entry.class as i32,
        required_skills: entry.skills,
        opens_at: entry.not_before.map(to_timestamp),
        out_of_office_message: entry.out_of_office_message,
        sequence: state::next_assignment_sequence(conn).await?,
        ..Default::default()
    };
    outbox::emit(conn, origin, event).await?;
    Ok(())
}

/// The conversation left the open state (pending, snoozed, resolved): its agent's
/// slot frees up and it leaves the queue; waiting chats move up.
pub async fn release(
    conn: &mut PgConnection,
    origin: &Origin,
    conversation_id: Uuid,
) -> Result<()> {
    release_in(conn, &mut Session::new(), origin, conversation_id).await
}

/// [`release`] as one of the operations of `session`'s transaction.
pub async fn release_in(
    conn: &mut PgConnection,
    session: &mut Session,
    origin: &Origin,
    conversation_id: Uuid,
) -> Result<()> {
    let account = session.account(conn, &origin.account).await?;
    let freed = state::release(conn, &account.id, conversation_id).await?;
    if let Some(a) = &freed {
        account.freed(a);
        let reason = "the conversation left the open state";
        offers::cancel_for(conn, origin, conversation_id, reason).await?;
    }
    let dequeued = queue::leave(conn, account, conversation_id).await?;
    if freed.is_some() || dequeued {
        queue::assign_waiting(conn, origin, account).await?;
    }
    Ok(())
}
