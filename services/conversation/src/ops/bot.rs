//! Bot-first conversations: handed to a human by the bot, by staff, or by the
//! visitor asking for one.

use helpdesk_kit::error::{Error, Result};
use helpdesk_kit::event::Origin;
use helpdesk_proto::conversation::v1::{
    ActivityType, ConversationStatus, Handoff, HandoffTrigger, MessageKind,
};
use sqlx::PgConnection;

use super::conversations::change_status_with;
use super::messages::{append_activity, append_line};
use crate::store::{self, conversations::ConversationRow};

/// What the customer reads when a human is on the way.
pub const CONNECTING: &str = "Connecting you with an agent…";

/// Longest quote of the customer's words in an automatic handoff's summary.
const QUOTE_CHARS: usize = 200;

/// Hands `conv`, with its bot, to a human in one step: the summary as a private note
/// (from the actor of `origin`), the customer told, and the move to OPEN carrying the
/// handoff (routing routes it, to the handoff's team or skills when given).
/// FAILED_PRECONDITION when the conversation is not with a bot.
pub async fn hand_off(
    conn: &mut PgConnection,
    origin: &Origin,
    conv: ConversationRow,
    handoff: Handoff,
) -> Result<ConversationRow> {
    if conv.status() != ConversationStatus::Bot {
        return Err(Error::FailedPrecondition(
            "the conversation is not with a bot".into(),
        ));
    }
    let mut conv = conv;
    if !handoff.summary.trim().is_empty() {
        let (note, sender) = (handoff.summary.as_str(), &origin.actor);
        conv = append_line(
            conn,
            origin,
            conv,
            MessageKind::Note,
            ActivityType::Handoff,
            note,
            sender,
        )
        .await?;
    }
    let activity = (MessageKind::Activity, ActivityType::Handoff);
    conv = append_activity(conn, origin, conv, activity.0, activity.1, CONNECTING).await?;
    change_status_with(
        conn,
        origin,
        conv,
        ConversationStatus::Open,
        None,
        Some(handoff),
        Default::default(),
    )
    .await
}

/// After a customer message in `conv`: when the conversation is with a bot and the
/// message asks for a human (a handoff phrase or menu choice of the inbox), hands it
/// over. Returns the conversation as it is now.
pub async fn after_customer_message(
    conn: &mut PgConnection,
    origin: &Origin,
    conv: ConversationRow,
    content: &str,
    choice: &str,
) -> Result<ConversationRow> {
    if conv.status() != ConversationStatus::Bot {
        return Ok(conv);
    }
    let inbox = store::inboxes::get(conn, &conv.account_id, conv.inbox_id)
        .await?
        .ok_or(Error::NotFound("inbox"))?;
    let Some(trigger) = inbox.bot().and_then(|b| b.asks_for_human(content, choice)) else {
        return Ok(conv);
    };
    let summary = match trigger {
        HandoffTrigger::Menu => format!("The customer picked \"{choice}\" in the bot's menu."),
        _ => {
            let quote: String = content.trim().chars().take(QUOTE_CHARS).collect();
            format!("The customer asked for a person: \"{quote}\"")
        }
    };
    let handoff = Handoff {
        trigger: trigger as i32,
        summary,
        ..Default::default()
    };
    hand_off(conn, origin, conv, handoff).await
}
