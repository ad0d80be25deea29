//! Reactions to routing and ticket events: assignments and overflow change the
//! conversation, and the customer sees queue, assignment and transfer activity in the
//! transcript (staff also read each transfer step as a note), and the tickets made
//! from the chat: their creation, status changes and staff's public replies.
//!
//! Queue position changes are not consumed: the routing service streams them live
//! (`WatchQueuePosition`), and a transcript line per move would flood the chat.

use helpdesk_kit::consumer::{Consumer, Delivery, HandlerError, On};
use helpdesk_kit::event::{Event, Origin, bot_actor, system_actor};
use helpdesk_proto::conversation::v1::{ActivityType, ConversationStatus, MessageKind};
use helpdesk_proto::routing::v1::{
    ConversationAssigned, ConversationOverflowed, ConversationQueued, ConversationUnassigned,
    OverflowAction, Transfer, TransferAccepted, TransferCancelled, TransferRejected,
    TransferRequested, TransferState, TransferTimedOut,
};
use helpdesk_proto::ticketing::v1::{
    Ticket, TicketCommentAdded, TicketCreated, TicketStatusChanged,
};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::ops;
use crate::store::{self, conversations::ConversationRow, conversations::Scope};

/// Durable consumer name.
pub const CONSUMER: &str = "conversation";

/// Bot id of the messages posted on behalf of routing.
pub const ROUTING_BOT: &str = "routing";
/// Activity line posted when a conversation goes back into the queue.
pub const REQUEUED_TEXT: &str =
    "You are back in the queue; the next available agent will join shortly.";

/// The conversation service's consumer: the routing events it applies.
pub fn consumer() -> Consumer<RoutingEvents> {
    Consumer::new(CONSUMER, RoutingEvents)
        .on::<ConversationAssigned>()
        .on::<ConversationUnassigned>()
        .on::<ConversationQueued>()
        .on::<ConversationOverflowed>()
        .on::<TransferRequested>()
        .on::<TransferAccepted>()
        .on::<TransferRejected>()
        .on::<TransferTimedOut>()
        .on::<TransferCancelled>()
        .on::<TicketCreated>()
        .on::<TicketStatusChanged>()
        .on::<TicketCommentAdded>()
}

/// What the customer reads while a transfer is offered.
pub const TRANSFERRING_TEXT: &str = "Transferring you to another agent…";
/// What the customer reads when an offered transfer did not happen.
pub const STAYING_TEXT: &str = "You are staying with your current agent.";

/// A transfer's step in the conversation: a note for staff (with the sender's note or
/// the receiver's reason) and, while the customer should know, a line for them (never
/// the note or the reason).
async fn transfer_step<E: Event>(
    conn: &mut PgConnection,
    d: &Delivery<E>,
    transfer: Option<&Transfer>,
) -> Result<(), HandlerError> {
    let Some(t) = transfer else {
        return Err(HandlerError::Poison(format!("{}: no transfer", E::KIND)));
    };
    let conv = load(conn, d, &t.conversation_id).await?;
    let origin = d.origin();
    let (from, to) = (&t.from_agent_id, &t.to_agent_id);
    let with_detail = |text: String, detail: &str| match non_empty(detail) {
        Some(detail) => format!("{text}: {detail}"),
        None => text,
    };
    let (activity, mut note, customer) = match TransferState::try_from(t.state).unwrap_or_default()
    {
        // The team's next agent after a decline: the customer was told already.
        TransferState::Pending if !t.previous_transfer_id.is_empty() => (
            ActivityType::Transfer,
            format!("The transfer from {from} is offered to {to}"),
            None,
        ),
        TransferState::Pending => (
            ActivityType::Transfer,
            with_detail(
                format!("{from} asked {to} to take this conversation"),
                &t.note,
            ) + &filled_in(t),
            Some(TRANSFERRING_TEXT),
        ),
        TransferState::Accepted => (
            ActivityType::TransferAccept,
            format!("{to} accepted the transfer from {from}"),
            None, // the customer reads the new agent joining
        ),
        TransferState::Rejected => (
            ActivityType::TransferReject,
            with_detail(format!("{to} declined the transfer"), &t.reason),
            Some(STAYING_TEXT),
        ),
        TransferState::TimedOut => (
            ActivityType::TransferTimeout,
            format!("{to} did not answer the transfer in time"),
            Some(STAYING_TEXT),
        ),
        TransferState::Cancelled | TransferState::Unspecified => (
            ActivityType::TransferCancel,
            with_detail(format!("The transfer to {to} was cancelled"), &t.reason),
            Some(STAYING_TEXT),
        ),
    };
    // A team transfer that moved on is not over for the customer.
    let customer = customer.filter(|_| t.next_transfer_id.is_empty());
    if t.exhausted {
        note.push_str(if t.to_skill.is_empty() {
            "; nobody else in the team could take it"
        } else {
            "; nobody else with the skill could take it"
        });
    }
    // The customer hears of it only while the sender still serves the open chat.
    let serving = conv.status() == ConversationStatus::Open
        && conv.assignee_id.as_deref() == Some(from.as_str());
    let mut conv = conv;
    if let Some(text) = customer.filter(|_| serving) {
        conv = ops::append_activity(conn, &origin, conv, MessageKind::Activity, activity, text)
            .await?;
    }
    ops::append_activity(conn, &origin, conv, MessageKind::Note, activity, &note).await?;
    Ok(())
}

/// A transfer's note template fields as lines ("\nCustomer problem: …"), in name order.
fn filled_in(t: &Transfer) -> String {
    let mut fields: Vec<_> = t.fields.iter().collect();
    fields.sort();
    fields
        .into_iter()
        .map(|(name, value)| {
            let words = name.replace(['_', '-'], " ");
            let mut chars = words.chars();
            let label: String = match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect(),
                None => String::new(),
            };
            format!("\n{label}: {value}")
        })
        .collect()
}

macro_rules! transfer_steps {
    ($($event:ty),+) => {$(
        impl On<$event> for RoutingEvents {
            async fn on(
                &self,
                conn: &mut PgConnection,
                d: &Delivery<$event>,
            ) -> Result<(), HandlerError> {
                transfer_step(conn, d, d.event.transfer.as_ref()).await
            }
        }
    )+};
}

transfer_steps!(
    TransferRequested,
    TransferAccepted,
    TransferRejected,
    TransferTimedOut,
    TransferCancelled
);

/// Applies routing events to conversations.
pub struct RoutingEvents;

/// The event's conversation in the event's account, locked for update.
async fn load<E: Event>(
    conn: &mut PgConnection,
    d: &Delivery<E>,
    conversation_id: &str,
) -> Result<ConversationRow, HandlerError> {
    let id = conversation_id_of::<E>(conversation_id)?;
    store::conversations::get(conn, &d.account_id, id, Scope::Account, true)
        .await?
        .ok_or_else(|| not_found(d, id))
}

/// The event's conversation, locked, once `sequence` is recorded as the newest routing
/// change (assignment, unassignment, queueing, overflow) applied to it; `None` when a newer one was applied already (this
/// event is stale). Sequence 0 (not stamped) always applies.
async fn claim<E: Event>(
    conn: &mut PgConnection,
    d: &Delivery<E>,
    conversation_id: &str,
    sequence: i64,
) -> Result<Option<ConversationRow>, HandlerError> {
    if sequence == 0 {
        return load(conn, d, conversation_id).await.map(Some);
    }
    let id = conversation_id_of::<E>(conversation_id)?;
    let claimed =
        store::conversations::claim_routing_sequence(conn, &d.account_id, id, sequence).await?;
    if claimed.is_none() {
        // Stale, or no such conversation at all.
        load(conn, d, conversation_id).await?;
    }
    Ok(claimed)
}

fn conversation_id_of<E: Event>(conversation_id: &str) -> Result<Uuid, HandlerError> {
    conversation_id.parse::<Uuid>().map_err(|_| {
        HandlerError::Poison(format!(
            "{}: conversation_id {conversation_id:?} is not a UUID",
            E::KIND
        ))
    })
}

fn not_found<E: Event>(d: &Delivery<E>, id: Uuid) -> HandlerError {
    HandlerError::Poison(format!(
        "{}: conversation {id} not found in account {}",
        E::KIND,
        d.account_id
    ))
}

/// Posts an activity line from the system actor.
async fn activity(
    conn: &mut PgConnection,
    origin: &Origin,
    conv: ConversationRow,
    text: &str,
) -> Result<ConversationRow, HandlerError> {
    let (_, conv) = ops::append(
        conn,
        origin,
        conv,
        MessageKind::Activity,
        &system_actor(),
        text,
        vec![],
        None,
    )
    .await?;
    Ok(conv)
}

/// Posts an outgoing message from the routing bot.
async fn bot_message(
    conn: &mut PgConnection,
    origin: &Origin,
    conv: ConversationRow,
    text: &str,
) -> Result<ConversationRow, HandlerError> {
    let (_, conv) = ops::append(
        conn,
        origin,
        conv,
        MessageKind::Outgoing,
        &bot_actor(ROUTING_BOT),
        text,
        vec![],
        None,
    )
    .await?;
    Ok(conv)
}

fn non_empty(s: &str) -> Option<String> {
    Some(s.trim().to_string()).filter(|s| !s.is_empty())
}

impl On<ConversationAssigned> for RoutingEvents {
    async fn on(
        &self,
        conn: &mut PgConnection,
        d: &Delivery<ConversationAssigned>,
    ) -> Result<(), HandlerError> {
        let e = &d.event;
        let Some(agent_id) = non_empty(&e.agent_id) else {
            return Err(HandlerError::Poison(format!(
                "{}: agent_id is empty",
                ConversationAssigned::KIND
            )));
        };
        let Some(mut conv) = claim(conn, d, &e.conversation_id, e.sequence).await? else {
            return Ok(()); // a later assignment change was applied already
        };
        if conv.assignee_id.as_deref() == Some(agent_id.as_str()) {
            return Ok(());
        }
        let origin = d.origin();
        let mut changed = vec!["assignee_id".to_string()];
        conv.assignee_id = Some(agent_id.clone());
        let team = non_empty(&e.team_id);
        if conv.team_id != team {
            conv.team_id = team;
            changed.push("team_id".into());
        }
        let conv = ops::save_changes(conn, &origin, conv, changed).await?;
        let name = non_empty(&e.agent_name).unwrap_or(agent_id);
        activity(
            conn,
            &origin,
            conv,
            &format!("{name} joined the conversation"),
        )
        .await?;
        Ok(())
    }
}

impl On<ConversationUnassigned> for RoutingEvents {
    async fn on(
        &self,
        conn: &mut PgConnection,
        d: &Delivery<ConversationUnassigned>,
    ) -> Result<(), HandlerError> {
        let e = &d.event;
        let Some(mut conv) = claim(conn, d, &e.conversation_id, e.sequence).await? else {
            return Ok(()); // a later assignment change was applied already
        };
        let origin = d.origin();
        let was_theirs = !e.agent_id.is_empty() && conv.assignee_id.as_deref() == Some(&e.agent_id);
        if was_theirs {
            conv.assignee_id = None;
            conv = ops::save_changes(conn, &origin, conv, vec!["assignee_id".into()]).await?;
        }
        // A stale event must not tell the customer they wait while another agent helps.
        if e.requeued && conv.assignee_id.is_none() {
            activity(conn, &origin, conv, REQUEUED_TEXT).await?;
        }
        Ok(())
    }
}

/// "You are number 3 in the queue. Estimated wait: about 2 minutes."
pub fn queue_text(position: i32, estimated_wait_seconds: i32) -> String {
    let mut parts = Vec::new();
    if position > 0 {
        parts.push(format!("You are number {position} in the queue."));
    }
    if estimated_wait_seconds > 0 {
        let minutes = (estimated_wait_seconds as u32).div_ceil(60).max(1);
        let unit = if minutes == 1 { "minute" } else { "minutes" };
        parts.push(format!("Estimated wait: about {minutes} {unit}."));
    }
    parts.join(" ")
}

impl On<ConversationQueued> for RoutingEvents {
    async fn on(
        &self,
        conn: &mut PgConnection,
        d: &Delivery<ConversationQueued>,
    ) -> Result<(), HandlerError> {
        let e = &d.event;
        let Some(mut conv) = claim(conn, d, &e.conversation_id, e.sequence).await? else {
            return Ok(()); // a later assignment change was applied already
        };
        let origin = d.origin();
        if let Some(text) = non_empty(&e.out_of_office_message) {
            conv = bot_message(conn, &origin, conv, &text).await?;
        }
        let text = queue_text(e.position, e.estimated_wait_seconds);
        if !text.is_empty() {
            activity(conn, &origin, conv, &text).await?;
        }
        Ok(())
    }
}

impl On<ConversationOverflowed> for RoutingEvents {
    async fn on(
        &self,
        conn: &mut PgConnection,
        d: &Delivery<ConversationOverflowed>,
    ) -> Result<(), HandlerError> {
        let e = &d.event;
        let Some(mut conv) = claim(conn, d, &e.conversation_id, e.sequence).await? else {
            return Ok(()); // a later assignment change was applied already
        };
        let origin = d.origin();
        match OverflowAction::try_from(e.action).unwrap_or_default() {
            OverflowAction::LeaveMessage => {
                if let Some(text) = non_empty(&e.message) {
                    conv = bot_message(conn, &origin, conv, &text).await?;
                }
                // Only a live chat waits for the customer's message; a resolved or
                // snoozed conversation keeps the state someone chose for it.
                if conv.status() == ConversationStatus::Open {
                    ops::change_status(
                        conn,
                        &origin.acting_as(system_actor()),
                        conv,
                        ConversationStatus::Pending,
                        None,
                    )
                    .await?;
                }
            }
            OverflowAction::OverflowTeam => {
                let team = non_empty(&e.to_team_id);
                if conv.team_id != team {
                    conv.team_id = team;
                    ops::save_changes(conn, &origin, conv, vec!["team_id".into()]).await?;
                }
            }
            OverflowAction::Unspecified => {
                tracing::debug!(conversation = %conv.id, "overflow without an action; ignored");
            }
        }
        Ok(())
    }
}

/// The conversations a ticket names that exist in the event's account, locked; with
/// `reopen`, a resolved one whose inbox says so is reopened first (routing routes it).
async fn linked<E: Event>(
    conn: &mut PgConnection,
    d: &Delivery<E>,
    ticket: Option<&Ticket>,
    reopen: bool,
) -> Result<Vec<ConversationRow>, HandlerError> {
    let Some(t) = ticket else {
        return Err(HandlerError::Poison(format!("{}: no ticket", E::KIND)));
    };
    let mut out = Vec::new();
    for id in t
        .conversation_ids
        .iter()
        .filter_map(|id| id.parse::<Uuid>().ok())
    {
        // A ticket may name a conversation that is not this account's: nothing to tell.
        let Some(mut conv) =
            store::conversations::get(conn, &d.account_id, id, Scope::Account, true).await?
        else {
            continue;
        };
        if reopen && conv.status() == ConversationStatus::Resolved {
            let inbox = store::inboxes::get(conn, &d.account_id, conv.inbox_id).await?;
            if inbox.is_some_and(|i| i.reopen_on_ticket_update) {
                let to = ConversationStatus::Open;
                conv = ops::change_status(conn, &d.origin(), conv, to, None).await?;
            }
        }
        out.push(conv);
    }
    Ok(out)
}

/// Tells the customer in each linked conversation (an activity line, which does not
/// reopen a resolved chat).
async fn tell_linked<E: Event>(
    conn: &mut PgConnection,
    d: &Delivery<E>,
    ticket: Option<&Ticket>,
    text: &str,
    reopen: bool,
) -> Result<(), HandlerError> {
    let origin = d.origin();
    for conv in linked(conn, d, ticket, reopen).await? {
        let (kind, activity) = (MessageKind::Activity, ActivityType::Ticket);
        ops::append_activity(conn, &origin, conv, kind, activity, text).await?;
    }
    Ok(())
}

impl On<TicketCreated> for RoutingEvents {
    async fn on(
        &self,
        conn: &mut PgConnection,
        d: &Delivery<TicketCreated>,
    ) -> Result<(), HandlerError> {
        let t = d.event.ticket.as_ref();
        let text = format!("Ticket #{} created", t.map_or(0, |t| t.number));
        tell_linked(conn, d, t, &text, false).await
    }
}

impl On<TicketStatusChanged> for RoutingEvents {
    async fn on(
        &self,
        conn: &mut PgConnection,
        d: &Delivery<TicketStatusChanged>,
    ) -> Result<(), HandlerError> {
        if !d.event.external_changed {
            return Ok(()); // nothing the customer would read differently
        }
        let t = d.event.ticket.as_ref();
        let text = format!(
            "Your ticket #{} is now: {}",
            t.map_or(0, |t| t.number),
            t.map(|t| t.external_status_label.as_str())
                .unwrap_or_default()
        );
        tell_linked(conn, d, t, &text, true).await
    }
}

impl On<TicketCommentAdded> for RoutingEvents {
    /// Staff's public replies reach the customer where they asked, as messages from
    /// the replying agent; internal notes and the customer's own replies do not.
    async fn on(
        &self,
        conn: &mut PgConnection,
        d: &Delivery<TicketCommentAdded>,
    ) -> Result<(), HandlerError> {
        let Some(c) = d.event.comment.as_ref().filter(|c| c.public) else {
            return Ok(());
        };
        let author = c.author.clone().unwrap_or_default();
        if author.kind == helpdesk_proto::common::v1::ActorKind::Contact as i32 {
            return Ok(());
        }
        let origin = d.origin().acting_as(author.clone());
        let attachments: Vec<store::messages::StoredAttachment> = c
            .attachments
            .iter()
            .map(|a| store::messages::StoredAttachment {
                name: a.name.clone(),
                content_type: a.content_type.clone(),
                size_bytes: a.size_bytes,
                url: a.url.clone(),
            })
            .collect();
        // A chat message is shorter than a ticket comment can be.
        let max = crate::domain::validate::MAX_CONTENT_CHARS;
        let mut body: String = c.body.chars().take(max).collect();
        if c.body.chars().count() > max {
            body.pop();
            body.push('…');
        }
        for conv in linked(conn, d, d.event.ticket.as_ref(), true).await? {
            let kind = MessageKind::Outgoing;
            ops::append(
                conn,
                &origin,
                conv,
                kind,
                &author,
                &body,
                attachments.clone(),
                None,
            )
            .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::queue_text;

    #[test]
    fn queue_text_rounds_the_wait_up_to_whole_minutes() {
        assert_eq!(
            queue_text(3, 150),
            "You are number 3 in the queue. Estimated wait: about 3 minutes."
        );
        assert_eq!(
            queue_text(1, 20),
            "You are number 1 in the queue. Estimated wait: about 1 minute."
        );
        assert_eq!(queue_text(2, 0), "You are number 2 in the queue.");
        assert_eq!(queue_text(0, 0), "");
    }
}
