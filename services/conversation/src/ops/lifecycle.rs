//! The lifecycle of quiet conversations (per inbox): the inactivity warning after a
//! staff reply and the close after it, stale pending and bot conversations resolved,
//! the line that closes a chat, and the satisfaction survey on resolve.

use chrono::Utc;
use helpdesk_kit::error::{Error, Result};
use helpdesk_kit::event::Origin;
use helpdesk_kit::timers;
use helpdesk_proto::common::v1::{Actor, ActorKind};
use helpdesk_proto::conversation::v1::{ActivityType, ConversationStatus, MessageKind};
use sqlx::PgConnection;

use super::conversations::Closing;
use super::messages::append_activity;
use crate::domain::lifecycle::{self, Lifecycle};
use crate::store::{self, conversations::ConversationRow};

async fn settings(
    conn: &mut PgConnection,
    conv: &ConversationRow,
) -> Result<crate::store::inboxes::InboxRow> {
    store::inboxes::get(conn, &conv.account_id, conv.inbox_id)
        .await?
        .ok_or(Error::NotFound("inbox"))
}

/// Sets the `kind` timer of `conv` for `seconds` from now, for its state as it is.
async fn arm(
    conn: &mut PgConnection,
    conv: &ConversationRow,
    kind: &str,
    seconds: i32,
) -> Result<()> {
    let fingerprint =
        lifecycle::fingerprint(conv.status(), conv.waiting_since, conv.last_activity_at);
    let due = Utc::now() + chrono::Duration::seconds(i64::from(seconds));
    let payload = serde_json::json!({ "account_id": conv.account_id });
    timers::schedule(conn, kind, &conv.id.to_string(), due, &fingerprint, payload).await?;
    Ok(())
}

/// The timer a conversation in `status` waits on while nobody writes, and after how
/// long (none: the inbox does not close such conversations).
fn quiet_timer(l: &Lifecycle, status: ConversationStatus) -> Option<(&'static str, i32)> {
    match status {
        ConversationStatus::Pending if l.pending_close_seconds > 0 => {
            Some((lifecycle::PENDING_CLOSE, l.pending_close_seconds))
        }
        ConversationStatus::Bot if l.bot_close_seconds > 0 => {
            Some((lifecycle::BOT_CLOSE, l.bot_close_seconds))
        }
        _ => None,
    }
}

/// After a message from `sender` in `conv`: a staff reply in an open conversation
/// starts the inactivity countdown (a customer reply makes it stale); any message in a
/// pending or bot conversation starts its quiet time again.
pub async fn after_message(
    conn: &mut PgConnection,
    conv: &ConversationRow,
    kind: MessageKind,
    sender: &Actor,
) -> Result<()> {
    let staff_reply = kind == MessageKind::Outgoing && sender.kind == ActorKind::Agent as i32;
    let status = conv.status();
    let quiet = matches!(
        status,
        ConversationStatus::Pending | ConversationStatus::Bot
    ) && matches!(kind, MessageKind::Incoming | MessageKind::Outgoing);
    let warns = staff_reply && status == ConversationStatus::Open;
    if !warns && !quiet {
        return Ok(());
    }
    let l = settings(conn, conv).await?.lifecycle();
    if status == ConversationStatus::Open {
        if l.inactivity_warning_seconds > 0 {
            arm(
                conn,
                conv,
                lifecycle::INACTIVITY_WARNING,
                l.inactivity_warning_seconds,
            )
            .await?;
        }
    } else if let Some((timer, seconds)) = quiet_timer(&l, status) {
        arm(conn, conv, timer, seconds).await?;
    }
    Ok(())
}

/// The inactivity warning is due: tells the customer, and starts the countdown to
/// the close.
pub async fn warn_inactive(
    conn: &mut PgConnection,
    origin: &Origin,
    conv: ConversationRow,
) -> Result<()> {
    let l = settings(conn, &conv).await?.lifecycle();
    if l.inactivity_warning_seconds == 0 {
        return Ok(()); // the inbox stopped warning meanwhile
    }
    let conv = append_activity(
        conn,
        origin,
        conv,
        MessageKind::Activity,
        ActivityType::InactivityWarning,
        &l.warning(),
    )
    .await?;
    if l.inactivity_close_seconds > 0 {
        arm(
            conn,
            &conv,
            lifecycle::INACTIVITY_CLOSE,
            l.inactivity_close_seconds,
        )
        .await?;
    }
    Ok(())
}

/// After `conv` moved to a new status: the quiet-time timer of that status; on
/// resolve, the line that closes the chat and the survey, as the inbox says.
pub async fn after_status(
    conn: &mut PgConnection,
    origin: &Origin,
    conv: ConversationRow,
    closing: Closing,
) -> Result<ConversationRow> {
    let status = conv.status();
    if !matches!(
        status,
        ConversationStatus::Pending | ConversationStatus::Bot | ConversationStatus::Resolved
    ) {
        return Ok(conv);
    }
    let inbox = settings(conn, &conv).await?;
    let l = inbox.lifecycle();
    if let Some((timer, seconds)) = quiet_timer(&l, status) {
        arm(conn, &conv, timer, seconds).await?;
    }
    if status != ConversationStatus::Resolved {
        return Ok(conv);
    }
    let line = if closing.inactivity {
        l.inactivity_closing().to_string()
    } else {
        match ActorKind::try_from(origin.actor.kind).unwrap_or_default() {
            ActorKind::Agent => l.agent_closing_message.clone(),
            ActorKind::Contact => l.customer_closing_message.clone(),
            _ => String::new(),
        }
    };
    let mut conv = conv;
    if !line.is_empty() {
        conv = append_activity(
            conn,
            origin,
            conv,
            MessageKind::Activity,
            ActivityType::Closed,
            &line,
        )
        .await?;
    }
    let survey = inbox.survey();
    if !closing.skip_survey && survey.asks(&conv.labels, closing.inactivity) {
        conv = append_activity(
            conn,
            origin,
            conv,
            MessageKind::Activity,
            ActivityType::CsatSurvey,
            survey.question(),
        )
        .await?;
    }
    Ok(conv)
}
