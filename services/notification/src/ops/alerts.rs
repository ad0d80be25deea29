//! Agent notifications: what the platform's events tell an agent about, by their
//! preferences (in the workbench, by email), with repeats collapsed while unread; and
//! the projections of other services' data this needs (agents, tickets).

use helpdesk_kit::consumer::{HandlerError, IncomingEvent};
use helpdesk_kit::error::{Error, Result};
use helpdesk_kit::event::Origin;
use helpdesk_proto::Event;
use helpdesk_proto::common::v1::ActorKind;
use helpdesk_proto::conversation::v1::{ConversationStatus, MessageCreated, MessageKind};
use helpdesk_proto::notification::v1::{
    AgentNotified, EmailKind, NotificationKind, NotificationsRead,
};
use helpdesk_proto::routing::v1::{
    AgentCreated, AgentPresenceChanged, AgentUpdated, AssignReason, ConversationAssigned,
    ConversationOverflowed, Presence, StaffRole, TransferAccepted, TransferCancelled,
    TransferRejected, TransferRequested, TransferTimedOut,
};
use helpdesk_proto::ticketing::v1::{
    SlaBreached, SlaMetric, SlaWarning, Ticket, TicketAssigned, TicketCreated, TicketStatusChanged,
    TicketUpdated,
};
use sqlx::PgConnection;
use uuid::Uuid;

use super::emails::{self, Compose, MailPolicy};
use crate::domain::StorageName;
use crate::domain::alerts::{default_preference, handle_of_name, mentions};
use crate::domain::templates::Rendered;
use crate::store::agents::{self, AgentRow};
use crate::store::alerts::{self, NewAlert};

/// Longest excerpt of a message in a notification.
const EXCERPT_CHARS: usize = 200;

fn excerpt(text: &str) -> String {
    let mut s: String = text.chars().take(EXCERPT_CHARS).collect();
    if text.chars().count() > EXCERPT_CHARS {
        s.push('…');
    }
    s
}

fn origin_of<E: Event>(incoming: &IncomingEvent, e: &E) -> Origin {
    let meta = e
        .meta()
        .cloned()
        .unwrap_or_else(|| helpdesk_proto::common::v1::EventMeta {
            event_id: incoming.event_id.clone(),
            ..Default::default()
        });
    Origin::from_event(&incoming.account_id, &meta)
}

/// The id of the agent who caused the event, if an agent did.
fn acting_agent<E: Event>(e: &E) -> Option<String> {
    let actor = e.meta()?.actor.as_ref()?;
    (actor.kind == ActorKind::Agent as i32).then(|| actor.id.clone())
}

/// Tells `a.agent_id` about something, the way their preference for its kind says:
/// recorded (or collapsed into the unread one like it) and pushed live with the
/// unread count; emailed when they chose email and their address is known.
pub async fn notify(
    conn: &mut PgConnection,
    origin: &Origin,
    mail: &MailPolicy,
    cause: &str,
    a: NewAlert,
) -> Result<()> {
    let account = origin.account.clone();
    let pref = alerts::preferences(conn, &account, &a.agent_id)
        .await?
        .into_iter()
        .find(|p| p.kind == a.kind as i32)
        .unwrap_or_else(|| default_preference(a.kind));
    if pref.in_app {
        let row = alerts::record(conn, &account, &a).await?;
        let unread_count = alerts::unread(conn, &account, &a.agent_id).await?;
        let event = AgentNotified {
            notification: Some(row.to_proto(&pref)),
            unread_count,
            ..Default::default()
        };
        helpdesk_kit::outbox::emit(conn, origin, event).await?;
    }
    if pref.email && mail.enabled {
        let address = agents::get(conn, &account, &a.agent_id)
            .await?
            .map(|agent| agent.email)
            .filter(|e| e.contains('@'));
        if let Some(to) = address {
            let compose = Compose {
                kind: EmailKind::TeamAlert,
                dedupe_key: format!("{cause}:{}:{}", a.agent_id, a.kind.storage_name()),
                to: vec![to],
                given: Rendered {
                    subject: a.title.clone(),
                    text: format!("{}\n\n{}", a.title, a.body),
                    html: format!(
                        "<p><strong>{}</strong></p><p>{}</p>",
                        crate::domain::templates::escape(&a.title),
                        crate::domain::templates::escape(&a.body)
                    ),
                },
                values: [
                    ("subject".to_string(), a.title.clone()),
                    ("body".to_string(), a.body.clone()),
                ]
                .into(),
                ..Default::default()
            };
            match emails::compose(conn, &account, mail, compose).await {
                Ok(_) | Err(Error::FailedPrecondition(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Marks the agent's unread notification with `collapse_key` read, if there is one
/// (an offer that was answered), telling their tabs.
async fn settle(conn: &mut PgConnection, origin: &Origin, agent: &str, key: &str) -> Result<()> {
    let Some(id) = alerts::unread_by_key(conn, &origin.account, agent, key).await? else {
        return Ok(());
    };
    mark_read(conn, origin, agent, Some(&[id])).await?;
    Ok(())
}

/// Marks the agent's notifications read (all of them without `ids`) and tells their
/// other tabs; the unread count after.
pub async fn mark_read(
    conn: &mut PgConnection,
    origin: &Origin,
    agent: &str,
    ids: Option<&[Uuid]>,
) -> Result<i64> {
    let changed = alerts::mark_read(conn, &origin.account, agent, ids).await?;
    let unread_count = alerts::unread(conn, &origin.account, agent).await?;
    if !changed.is_empty() {
        let event = NotificationsRead {
            agent_id: agent.to_string(),
            ids: changed.iter().map(Uuid::to_string).collect(),
            unread_count,
            ..Default::default()
        };
        helpdesk_kit::outbox::emit(conn, origin, event).await?;
    }
    Ok(unread_count)
}

fn agent_row(a: &helpdesk_proto::routing::v1::Agent) -> AgentRow {
    AgentRow {
        id: a.id.clone(),
        name: a.name.clone(),
        email: a.email.clone(),
        role: StaffRole::try_from(a.role)
            .unwrap_or_default()
            .storage_name()
            .to_string(),
        team_ids: a.team_ids.clone(),
        presence: Presence::try_from(a.presence)
            .unwrap_or(Presence::Offline)
            .storage_name()
            .to_string(),
    }
}

async fn keep_ticket(conn: &mut PgConnection, account: &str, t: &Ticket) -> Result<()> {
    agents::set_ticket(conn, account, &t.id, t.number, &t.subject, &t.assignee_id).await?;
    Ok(())
}

fn metric_name(metric: i32) -> &'static str {
    match SlaMetric::try_from(metric).unwrap_or_default() {
        SlaMetric::FirstReply => "first reply",
        SlaMetric::NextReply => "next reply",
        SlaMetric::Resolution => "resolution",
        SlaMetric::PeriodicUpdate => "periodic update",
        _ => "SLA",
    }
}

/// What an event means for agents.
pub async fn on_event(
    conn: &mut PgConnection,
    event: &IncomingEvent,
    mail: &MailPolicy,
) -> std::result::Result<(), HandlerError> {
    let account = event.account_id.as_str();
    let cause = event.event_id.as_str();
    match event.kind.as_str() {
        AgentCreated::KIND => {
            let e: AgentCreated = event.decode()?;
            if let Some(a) = &e.agent {
                agents::upsert(conn, account, &agent_row(a)).await?;
            }
        }
        AgentUpdated::KIND => {
            let e: AgentUpdated = event.decode()?;
            if let Some(a) = &e.agent {
                agents::upsert(conn, account, &agent_row(a)).await?;
            }
        }
        AgentPresenceChanged::KIND => {
            let e: AgentPresenceChanged = event.decode()?;
            let to = Presence::try_from(e.to).unwrap_or(Presence::Offline);
            agents::set_presence(conn, account, &e.agent_id, to.storage_name()).await?;
        }
        ConversationAssigned::KIND => {
            let e: ConversationAssigned = event.decode()?;
            let own_doing = matches!(
                AssignReason::try_from(e.reason).unwrap_or_default(),
                AssignReason::Transfer | AssignReason::Picked
            ) || acting_agent(&e).as_deref() == Some(e.agent_id.as_str());
            if !own_doing && !e.agent_id.is_empty() {
                let body = if e.waited_seconds > 0 {
                    format!("The customer waited {} s in the queue.", e.waited_seconds)
                } else {
                    String::new()
                };
                let a = NewAlert {
                    agent_id: e.agent_id.clone(),
                    kind: NotificationKind::Assignment,
                    title: "A conversation was assigned to you".into(),
                    body,
                    conversation_id: e.conversation_id.clone(),
                    collapse_key: format!("assignment:{}", e.conversation_id),
                    ..Default::default()
                };
                notify(conn, &origin_of(event, &e), mail, cause, a).await?;
            }
        }
        TransferAccepted::KIND
        | TransferRejected::KIND
        | TransferTimedOut::KIND
        | TransferCancelled::KIND => {
            // The offer was answered or withdrawn: it no longer waits in the receiver's list.
            let transfer = match event.kind.as_str() {
                TransferAccepted::KIND => event.decode::<TransferAccepted>()?.transfer,
                TransferRejected::KIND => event.decode::<TransferRejected>()?.transfer,
                TransferTimedOut::KIND => event.decode::<TransferTimedOut>()?.transfer,
                _ => event.decode::<TransferCancelled>()?.transfer,
            };
            if let Some(t) = transfer.filter(|t| !t.to_agent_id.is_empty()) {
                let origin = Origin::system(account);
                let key = format!("transfer:{}", t.id);
                settle(conn, &origin, &t.to_agent_id, &key).await?;
            }
        }
        TransferRequested::KIND => {
            let e: TransferRequested = event.decode()?;
            let Some(t) = &e.transfer else {
                return Ok(());
            };
            if !t.to_agent_id.is_empty() {
                let from = agents::get(conn, account, &t.from_agent_id)
                    .await?
                    .map(|a| a.name)
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| t.from_agent_id.clone());
                let a = NewAlert {
                    agent_id: t.to_agent_id.clone(),
                    kind: NotificationKind::TransferOffer,
                    title: format!("{from} offers you a conversation"),
                    body: excerpt(&t.note),
                    conversation_id: t.conversation_id.clone(),
                    transfer_id: t.id.clone(),
                    deadline: t
                        .deadline
                        .as_ref()
                        .and_then(helpdesk_kit::time::from_timestamp),
                    collapse_key: format!("transfer:{}", t.id),
                    ..Default::default()
                };
                notify(conn, &origin_of(event, &e), mail, cause, a).await?;
            }
        }
        MessageCreated::KIND => {
            let e: MessageCreated = event.decode()?;
            let Some(m) = &e.message else {
                return Ok(());
            };
            let sender = m.sender.clone().unwrap_or_default();
            let kind = MessageKind::try_from(m.kind).unwrap_or_default();
            let origin = origin_of(event, &e);
            if kind == MessageKind::Note && sender.kind == ActorKind::Agent as i32 {
                let handles = mentions(&m.content);
                if handles.is_empty() {
                    return Ok(());
                }
                let directory = agents::all(conn, account).await?;
                let author = directory
                    .iter()
                    .find(|a| a.id == sender.id)
                    .map(|a| a.name.clone())
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| sender.id.clone());
                for agent in directory.iter().filter(|a| {
                    a.id != sender.id
                        && handles
                            .iter()
                            .any(|h| *h == a.id.to_lowercase() || *h == handle_of_name(&a.name))
                }) {
                    let a = NewAlert {
                        agent_id: agent.id.clone(),
                        kind: NotificationKind::Mention,
                        title: format!("{author} mentioned you"),
                        body: excerpt(&m.content),
                        conversation_id: m.conversation_id.clone(),
                        collapse_key: format!("mention:{}", m.id),
                        ..Default::default()
                    };
                    notify(conn, &origin, mail, cause, a).await?;
                }
            } else if kind == MessageKind::Incoming {
                // The conversation as it is with this message: open and assigned.
                let Some(c) = e.conversation.as_ref().filter(|c| {
                    c.status == ConversationStatus::Open as i32 && !c.assignee_id.is_empty()
                }) else {
                    return Ok(());
                };
                let assignee = c.assignee_id.clone();
                // An agent not yet known (no directory event seen) is not guessed at.
                let away = agents::get(conn, account, &assignee)
                    .await?
                    .is_some_and(|a| a.presence != Presence::Online.storage_name());
                if away {
                    let a = NewAlert {
                        agent_id: assignee,
                        kind: NotificationKind::MessageWhileAway,
                        title: "The customer wrote while you were away".into(),
                        body: excerpt(&m.content),
                        conversation_id: m.conversation_id.clone(),
                        collapse_key: format!("message:{}", m.conversation_id),
                        ..Default::default()
                    };
                    notify(conn, &origin, mail, cause, a).await?;
                }
            }
        }
        TicketCreated::KIND => {
            let e: TicketCreated = event.decode()?;
            if let Some(t) = &e.ticket {
                keep_ticket(conn, account, t).await?;
                if !t.assignee_id.is_empty()
                    && acting_agent(&e).as_deref() != Some(t.assignee_id.as_str())
                {
                    ticket_assigned(conn, &origin_of(event, &e), mail, cause, t).await?;
                }
            }
        }
        TicketUpdated::KIND => {
            let e: TicketUpdated = event.decode()?;
            if let Some(t) = &e.ticket {
                keep_ticket(conn, account, t).await?;
            }
        }
        TicketStatusChanged::KIND => {
            let e: TicketStatusChanged = event.decode()?;
            if let Some(t) = &e.ticket {
                keep_ticket(conn, account, t).await?;
            }
        }
        TicketAssigned::KIND => {
            let e: TicketAssigned = event.decode()?;
            if let Some(t) = &e.ticket {
                keep_ticket(conn, account, t).await?;
                if !e.to.is_empty() && acting_agent(&e).as_deref() != Some(e.to.as_str()) {
                    ticket_assigned(conn, &origin_of(event, &e), mail, cause, t).await?;
                }
            }
        }
        SlaWarning::KIND => {
            let e: SlaWarning = event.decode()?;
            let (kind, what) = (NotificationKind::SlaWarning, "is due soon");
            sla(
                conn,
                event,
                &e,
                mail,
                (&e.ticket_id, e.ticket_number, e.metric),
                kind,
                what,
            )
            .await?;
        }
        SlaBreached::KIND => {
            let e: SlaBreached = event.decode()?;
            let (kind, what) = (NotificationKind::SlaBreach, "is overdue");
            sla(
                conn,
                event,
                &e,
                mail,
                (&e.ticket_id, e.ticket_number, e.metric),
                kind,
                what,
            )
            .await?;
        }
        ConversationOverflowed::KIND => {
            let e: ConversationOverflowed = event.decode()?;
            let origin = origin_of(event, &e);
            let why = match e.reason.as_str() {
                "queue_full" => "the queue is full",
                "wait_exceeded" => "customers waited too long",
                "no_skilled_agent" => "no agent with the needed skills is available",
                // Outside business hours is the plan, not an alarm.
                _ => return Ok(()),
            };
            let supervisors: Vec<AgentRow> = agents::all(conn, account)
                .await?
                .into_iter()
                .filter(|a| a.role == StaffRole::Supervisor.storage_name())
                .filter(|a| e.from_team_id.is_empty() || a.team_ids.contains(&e.from_team_id))
                .collect();
            for s in supervisors {
                let a = NewAlert {
                    agent_id: s.id,
                    kind: NotificationKind::QueueOverflow,
                    title: "Conversations are overflowing".into(),
                    body: format!("A conversation overflowed: {why}."),
                    conversation_id: e.conversation_id.clone(),
                    collapse_key: format!("overflow:{}", e.from_team_id),
                    ..Default::default()
                };
                notify(conn, &origin, mail, cause, a).await?;
            }
        }
        _ => {}
    }
    Ok(())
}

async fn ticket_assigned(
    conn: &mut PgConnection,
    origin: &Origin,
    mail: &MailPolicy,
    cause: &str,
    t: &Ticket,
) -> Result<()> {
    let a = NewAlert {
        agent_id: t.assignee_id.clone(),
        kind: NotificationKind::TicketAssigned,
        title: format!("Ticket #{} was assigned to you", t.number),
        body: excerpt(&t.subject),
        ticket_id: t.id.clone(),
        collapse_key: format!("ticket:{}", t.id),
        ..Default::default()
    };
    notify(conn, origin, mail, cause, a).await
}

async fn sla<E: Event>(
    conn: &mut PgConnection,
    incoming: &IncomingEvent,
    e: &E,
    mail: &MailPolicy,
    (ticket_id, number, metric): (&str, i64, i32),
    kind: NotificationKind,
    what: &str,
) -> Result<()> {
    let Some((_, subject, assignee)) =
        agents::ticket(conn, &incoming.account_id, ticket_id).await?
    else {
        return Ok(());
    };
    if assignee.is_empty() {
        return Ok(());
    }
    let a = NewAlert {
        agent_id: assignee,
        kind,
        title: format!(
            "Ticket #{number}: the {} target {what}",
            metric_name(metric)
        ),
        body: excerpt(&subject),
        ticket_id: ticket_id.to_string(),
        collapse_key: format!("{}:{ticket_id}:{metric}", kind.storage_name()),
        ..Default::default()
    };
    notify(conn, &origin_of(incoming, e), mail, &incoming.event_id, a).await
}
