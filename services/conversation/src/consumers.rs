//! Reactions to routing events: assignments and overflow change the conversation,
//! and the customer sees queue and assignment activity in the transcript.
//!
//! Queue position changes are not consumed: the routing service streams them live
//! (`WatchQueuePosition`), and a transcript line per move would flood the chat.

use helpdesk_kit::consumer::{ConsumerSpec, Handler, HandlerError, IncomingEvent};
use helpdesk_kit::event::{self, Causation, system_actor};
use helpdesk_proto::common::v1::{Actor, ActorKind, EventMeta};
use helpdesk_proto::conversation::v1::{ConversationStatus, MessageKind};
use helpdesk_proto::routing::v1::{
    ConversationAssigned, ConversationOverflowed, ConversationQueued, ConversationUnassigned,
    OverflowAction,
};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::Error;
use crate::events;
use crate::grpc::{append, change_status};
use crate::store::{self, conversations::ConversationRow, conversations::Scope};

/// Durable consumer name.
pub const CONSUMER: &str = "conversation";
/// `routing.assigned`.
pub const ROUTING_ASSIGNED: &str = "routing.assigned";
/// `routing.unassigned`.
pub const ROUTING_UNASSIGNED: &str = "routing.unassigned";
/// `routing.queued`.
pub const ROUTING_QUEUED: &str = "routing.queued";
/// `routing.overflowed`.
pub const ROUTING_OVERFLOWED: &str = "routing.overflowed";

/// Bot id of the messages posted on behalf of routing.
pub const ROUTING_BOT: &str = "routing";
/// Activity line posted when a conversation goes back into the queue.
pub const REQUEUED_TEXT: &str =
    "You are back in the queue; the next available agent will join shortly.";

/// The conversation service's consumer: its name and the routing events it reads.
pub fn spec() -> ConsumerSpec {
    ConsumerSpec {
        name: CONSUMER.into(),
        kinds: [
            ROUTING_ASSIGNED,
            ROUTING_UNASSIGNED,
            ROUTING_QUEUED,
            ROUTING_OVERFLOWED,
        ]
        .map(String::from)
        .to_vec(),
    }
}

/// Applies routing events to conversations.
pub struct RoutingEvents;

impl Handler for RoutingEvents {
    async fn handle(
        &self,
        conn: &mut PgConnection,
        event: &IncomingEvent,
    ) -> Result<(), HandlerError> {
        match event.kind.as_str() {
            ROUTING_ASSIGNED => assigned(conn, event, event.decode()?).await,
            ROUTING_UNASSIGNED => unassigned(conn, event, event.decode()?).await,
            ROUTING_QUEUED => queued(conn, event, event.decode()?).await,
            ROUTING_OVERFLOWED => overflowed(conn, event, event.decode()?).await,
            other => {
                tracing::debug!(kind = other, "ignoring event kind");
                Ok(())
            }
        }
    }
}

/// Who and what caused the changes made for one incoming event.
struct Origin {
    actor: Actor,
    causation: Causation,
}

impl Origin {
    fn new(event: &IncomingEvent, meta: Option<EventMeta>) -> Self {
        let meta = meta.unwrap_or_else(|| EventMeta {
            event_id: event.event_id.clone(),
            ..Default::default()
        });
        Self {
            actor: meta.actor.clone().unwrap_or_else(system_actor),
            causation: Causation::from_event(&meta),
        }
    }
}

/// Database trouble is retried; anything else can never succeed.
fn handler_error(e: Error) -> HandlerError {
    match e {
        Error::Db(e) => HandlerError::Retry(e.to_string()),
        other => HandlerError::Poison(other.to_string()),
    }
}

/// The event's conversation in the event's account, locked for update.
async fn load(
    conn: &mut PgConnection,
    event: &IncomingEvent,
    conversation_id: &str,
) -> Result<ConversationRow, HandlerError> {
    let id = conversation_id.parse::<Uuid>().map_err(|_| {
        HandlerError::Poison(format!(
            "{}: conversation_id {conversation_id:?} is not a UUID",
            event.kind
        ))
    })?;
    store::conversations::get(conn, &event.account_id, id, Scope::Account, true)
        .await?
        .ok_or_else(|| {
            HandlerError::Poison(format!(
                "{}: conversation {id} not found in account {}",
                event.kind, event.account_id
            ))
        })
}

/// Records `sequence` as the newest routing assignment change applied to the
/// conversation; false when a newer one was applied already (this event is stale).
/// Sequence 0 (not stamped) always applies.
async fn claim_sequence(
    conn: &mut PgConnection,
    conv: &ConversationRow,
    sequence: i64,
) -> Result<bool, HandlerError> {
    if sequence == 0 {
        return Ok(true);
    }
    let claimed = sqlx::query(
        "UPDATE conversations SET routing_sequence = $3 WHERE account_id = $1 AND id = $2 AND routing_sequence < $3",
    )
    .bind(&conv.account_id)
    .bind(conv.id)
    .bind(sequence)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(claimed == 1)
}

/// Saves `conv` and records `conversation.updated` when `changed` is not empty.
async fn save_changes(
    conn: &mut PgConnection,
    conv: ConversationRow,
    changed: Vec<String>,
    origin: &Origin,
) -> Result<ConversationRow, HandlerError> {
    if changed.is_empty() {
        return Ok(conv);
    }
    let conv = store::conversations::update(conn, &conv).await?;
    let meta = event::meta(&conv.account_id, &origin.actor, &origin.causation);
    events::conversation_updated(conn, meta, &conv.to_proto(), changed).await?;
    Ok(conv)
}

/// Posts an activity line from the system actor.
async fn activity(
    conn: &mut PgConnection,
    conv: ConversationRow,
    text: &str,
    origin: &Origin,
) -> Result<ConversationRow, HandlerError> {
    let (_, conv) = append(
        conn,
        conv,
        MessageKind::Activity,
        &system_actor(),
        text,
        vec![],
        None,
        &origin.causation,
    )
    .await
    .map_err(handler_error)?;
    Ok(conv)
}

/// Posts an outgoing message from the routing bot.
async fn bot_message(
    conn: &mut PgConnection,
    conv: ConversationRow,
    text: &str,
    origin: &Origin,
) -> Result<ConversationRow, HandlerError> {
    let bot = Actor {
        kind: ActorKind::Bot as i32,
        id: ROUTING_BOT.into(),
    };
    let (_, conv) = append(
        conn,
        conv,
        MessageKind::Outgoing,
        &bot,
        text,
        vec![],
        None,
        &origin.causation,
    )
    .await
    .map_err(handler_error)?;
    Ok(conv)
}

fn non_empty(s: &str) -> Option<String> {
    Some(s.trim().to_string()).filter(|s| !s.is_empty())
}

async fn assigned(
    conn: &mut PgConnection,
    event: &IncomingEvent,
    e: ConversationAssigned,
) -> Result<(), HandlerError> {
    let Some(agent_id) = non_empty(&e.agent_id) else {
        return Err(HandlerError::Poison(format!(
            "{}: agent_id is empty",
            event.kind
        )));
    };
    let mut conv = load(conn, event, &e.conversation_id).await?;
    if !claim_sequence(conn, &conv, e.sequence).await? {
        return Ok(()); // a later assignment change was applied already
    }
    if conv.assignee_id.as_deref() == Some(agent_id.as_str()) {
        return Ok(());
    }
    let origin = Origin::new(event, e.meta);
    let mut changed = vec!["assignee_id".to_string()];
    conv.assignee_id = Some(agent_id.clone());
    let team = non_empty(&e.team_id);
    if conv.team_id != team {
        conv.team_id = team;
        changed.push("team_id".into());
    }
    let conv = save_changes(conn, conv, changed, &origin).await?;
    let name = non_empty(&e.agent_name).unwrap_or(agent_id);
    activity(
        conn,
        conv,
        &format!("{name} joined the conversation"),
        &origin,
    )
    .await?;
    Ok(())
}

async fn unassigned(
    conn: &mut PgConnection,
    event: &IncomingEvent,
    e: ConversationUnassigned,
) -> Result<(), HandlerError> {
    let mut conv = load(conn, event, &e.conversation_id).await?;
    if !claim_sequence(conn, &conv, e.sequence).await? {
        return Ok(()); // a later assignment change was applied already
    }
    let origin = Origin::new(event, e.meta);
    let was_theirs = !e.agent_id.is_empty() && conv.assignee_id.as_deref() == Some(&e.agent_id);
    if was_theirs {
        conv.assignee_id = None;
        conv = save_changes(conn, conv, vec!["assignee_id".into()], &origin).await?;
    }
    // A stale event must not tell the customer they wait while another agent helps.
    if e.requeued && conv.assignee_id.is_none() {
        activity(conn, conv, REQUEUED_TEXT, &origin).await?;
    }
    Ok(())
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

async fn queued(
    conn: &mut PgConnection,
    event: &IncomingEvent,
    e: ConversationQueued,
) -> Result<(), HandlerError> {
    let mut conv = load(conn, event, &e.conversation_id).await?;
    let origin = Origin::new(event, e.meta);
    if let Some(text) = non_empty(&e.out_of_office_message) {
        conv = bot_message(conn, conv, &text, &origin).await?;
    }
    let text = queue_text(e.position, e.estimated_wait_seconds);
    if !text.is_empty() {
        activity(conn, conv, &text, &origin).await?;
    }
    Ok(())
}

async fn overflowed(
    conn: &mut PgConnection,
    event: &IncomingEvent,
    e: ConversationOverflowed,
) -> Result<(), HandlerError> {
    let mut conv = load(conn, event, &e.conversation_id).await?;
    let origin = Origin::new(event, e.meta);
    match OverflowAction::try_from(e.action).unwrap_or_default() {
        OverflowAction::LeaveMessage => {
            if let Some(text) = non_empty(&e.message) {
                conv = bot_message(conn, conv, &text, &origin).await?;
            }
            // Only a live chat waits for the customer's message; a resolved or
            // snoozed conversation keeps the state someone chose for it.
            if conv.status() == ConversationStatus::Open {
                change_status(
                    conn,
                    conv,
                    ConversationStatus::Pending,
                    None,
                    &system_actor(),
                    &origin.causation,
                )
                .await
                .map_err(handler_error)?;
            }
        }
        OverflowAction::OverflowTeam => {
            let team = non_empty(&e.to_team_id);
            if conv.team_id != team {
                conv.team_id = team;
                save_changes(conn, conv, vec!["team_id".into()], &origin).await?;
            }
        }
        OverflowAction::Unspecified => {
            tracing::debug!(conversation = %conv.id, "overflow without an action; ignored");
        }
    }
    Ok(())
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
