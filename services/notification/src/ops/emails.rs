//! Email: composing from templates (with the account's sender and overrides), the
//! emails the platform's events call for, and recording what sending came to.

use std::collections::BTreeMap;
use std::time::Duration;

use helpdesk_kit::consumer::{HandlerError, IncomingEvent};
use helpdesk_kit::error::{Error, Result};
use helpdesk_kit::event::Origin;
use helpdesk_proto::Event as _;
use helpdesk_proto::common::v1::ActorKind;
use helpdesk_proto::conversation::v1::{
    ChannelKind, ContactCreated, ContactUpdated, ConversationCreated, MessageCreated, MessageKind,
};
use helpdesk_proto::notification::v1::{EmailFailed, EmailKind, EmailStatus};
use helpdesk_proto::ticketing::v1::{
    Ticket, TicketCommentAdded, TicketCreated, TicketStatusChanged,
};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::StorageName;
use crate::domain::templates::{self, Rendered};
use crate::store::contacts;
use crate::store::emails::{self, NewEmail};

/// The service's mail settings the use cases need.
#[derive(Debug, Clone, Default)]
pub struct MailPolicy {
    /// Whether an SMTP server is configured (no server: no email).
    pub enabled: bool,
    /// The sender of accounts that set none: `Name <address>` or an address.
    pub default_from: String,
    /// Delay before each attempt (the first 0).
    pub schedule: Vec<Duration>,
}

/// What to send.
#[derive(Debug, Clone, Default)]
pub struct Compose {
    pub kind: EmailKind,
    pub dedupe_key: String,
    pub to: Vec<String>,
    pub values: BTreeMap<String, String>,
    /// Parts given outright (each replaces the template's when not empty).
    pub given: Rendered,
    pub ticket_id: String,
    /// The email that starts the ticket's thread (its Message-ID is the thread's).
    pub thread_root: bool,
    /// The conversation whose thread it joins (when it is about no ticket).
    pub conversation_id: String,
}

/// The mailbox part of `Name <address>` or a bare address.
fn address(mailbox: &str) -> &str {
    match (mailbox.rfind('<'), mailbox.rfind('>')) {
        (Some(a), Some(b)) if a < b => &mailbox[a + 1..b],
        _ => mailbox.trim(),
    }
}

fn domain(mailbox: &str) -> String {
    address(mailbox)
        .rsplit_once('@')
        .map(|(_, d)| d.to_string())
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "helpdesk.invalid".into())
}

/// The `Auto-Submitted` value of a kind (RFC 3834): acknowledgements and automatic
/// replies answer the customer; status changes and alerts are generated; an agent's
/// reply is neither.
fn auto_submitted(kind: EmailKind) -> &'static str {
    match kind {
        EmailKind::TicketCreated | EmailKind::AutomaticReply => "auto-replied",
        EmailKind::TicketStatusChanged | EmailKind::TeamAlert => "auto-generated",
        _ => "",
    }
}

/// Queues an email of the account's sender; its id and Message-ID. The same dedupe
/// key again finds the first one. No sender (neither the account's nor the
/// service's): FAILED_PRECONDITION.
pub async fn compose(
    conn: &mut PgConnection,
    account: &str,
    policy: &MailPolicy,
    c: Compose,
) -> Result<(Uuid, String)> {
    let settings = emails::settings(conn, account).await?;
    compose_with(conn, account, policy, settings, c).await
}

/// [`compose`] with the account's settings already read.
async fn compose_with(
    conn: &mut PgConnection,
    account: &str,
    policy: &MailPolicy,
    settings: emails::SettingsRow,
    mut c: Compose,
) -> Result<(Uuid, String)> {
    if !policy.enabled {
        return Err(Error::FailedPrecondition(
            "email is not configured (notification.smtp_host)".into(),
        ));
    }
    let sender = if settings.from_address.is_empty() {
        policy.default_from.clone()
    } else if settings.from_name.is_empty() {
        settings.from_address.clone()
    } else {
        format!(
            "\"{}\" <{}>",
            settings.from_name.replace(['"', '\\', '\r', '\n'], ""),
            settings.from_address
        )
    };
    if sender.is_empty() {
        return Err(Error::FailedPrecondition(
            "the account has no email sender and the service no default (notification.email_from)"
                .into(),
        ));
    }
    let sender_name = if settings.from_name.is_empty() {
        sender_name_of(&policy.default_from)
    } else {
        settings.from_name.clone()
    };
    c.values.entry("sender.name".into()).or_insert(sender_name);
    let template = templates::overlay(
        templates::built_in(c.kind),
        settings.templates.0.get(c.kind.storage_name()),
    );
    let mut r = templates::render(&template, &c.values);
    if !c.given.subject.is_empty() {
        r.subject = c.given.subject.replace(['\r', '\n'], " ");
    }
    if !c.given.text.is_empty() {
        r.text = c.given.text.clone();
    }
    if !c.given.html.is_empty() {
        r.html = c.given.html.clone();
    }
    let id = Uuid::now_v7();
    let host = domain(&sender);
    let thread = if !c.ticket_id.is_empty() {
        Some(format!("<ticket-{}@{host}>", c.ticket_id))
    } else {
        (!c.conversation_id.is_empty())
            .then(|| format!("<conversation-{}@{host}>", c.conversation_id))
    };
    let (message_id, in_reply_to) = match (&thread, c.thread_root) {
        (Some(root), true) => (root.clone(), String::new()),
        (Some(root), _) => (format!("<{id}@{host}>"), root.clone()),
        (None, _) => (format!("<{id}@{host}>"), String::new()),
    };
    let new = NewEmail {
        id,
        account_id: account.to_string(),
        dedupe_key: c.dedupe_key,
        kind: c.kind,
        sender,
        reply_to: settings.reply_to,
        recipients: c.to,
        subject: r.subject,
        text: r.text,
        html: r.html,
        message_id,
        in_reply_to,
        auto_submitted: auto_submitted(c.kind).into(),
        ticket_id: c.ticket_id,
    };
    Ok(emails::insert(conn, &new).await?)
}

fn sender_name_of(mailbox: &str) -> String {
    match mailbox.find('<') {
        Some(i) if i > 0 => mailbox[..i].trim().trim_matches('"').to_string(),
        _ => "Support".into(),
    }
}

fn ticket_values(t: &Ticket) -> BTreeMap<String, String> {
    let requester = t.requester.clone().unwrap_or_default();
    BTreeMap::from([
        ("ticket.number".into(), t.number.to_string()),
        ("ticket.subject".into(), t.subject.clone()),
        ("ticket.status".into(), t.external_status_label.clone()),
        ("ticket.id".into(), t.id.clone()),
        (
            "requester.name".into(),
            if requester.name.is_empty() {
                "there".into()
            } else {
                requester.name
            },
        ),
    ])
}

/// The emails an event calls for: the requester of a ticket hears of its creation,
/// of an agent's public reply and of a change of its customer-facing status. One
/// email per event and kind, however often the event comes; both an agent's reply
/// and the status change made with it are sent.
pub async fn on_event(
    conn: &mut PgConnection,
    event: &IncomingEvent,
    policy: &MailPolicy,
) -> Result<(), HandlerError> {
    if event.kind.starts_with("contact.") || event.kind.starts_with("conversation.") {
        return keep_contact(conn, event).await;
    }
    if event.kind == MessageCreated::KIND {
        return conversation_email(conn, event, policy).await;
    }
    if !policy.enabled || !event.kind.starts_with("ticket.") {
        return Ok(());
    }
    let (kind, ticket, mut values) = match event.kind.as_str() {
        TicketCreated::KIND => {
            let e: TicketCreated = event.decode()?;
            (EmailKind::TicketCreated, e.ticket, BTreeMap::new())
        }
        TicketStatusChanged::KIND => {
            let e: TicketStatusChanged = event.decode()?;
            if !e.external_changed {
                return Ok(());
            }
            (EmailKind::TicketStatusChanged, e.ticket, BTreeMap::new())
        }
        TicketCommentAdded::KIND => {
            let e: TicketCommentAdded = event.decode()?;
            let comment = e.comment.unwrap_or_default();
            let by_agent = comment
                .author
                .as_ref()
                .is_some_and(|a| a.kind == ActorKind::Agent as i32);
            if !comment.public || !by_agent {
                return Ok(());
            }
            let values = BTreeMap::from([("comment.body".to_string(), comment.body)]);
            (EmailKind::TicketReply, e.ticket, values)
        }
        _ => return Ok(()),
    };
    let Some(ticket) = ticket else {
        return Ok(());
    };
    let to = ticket
        .requester
        .as_ref()
        .map(|r| r.email.trim().to_string())
        .filter(|e| e.contains('@'));
    let Some(to) = to else {
        return Ok(());
    };
    let settings = emails::settings(conn, &event.account_id).await?;
    if settings.ticket_emails_disabled {
        return Ok(());
    }
    values.extend(ticket_values(&ticket));
    let c = Compose {
        kind,
        dedupe_key: format!("{}:{}", event.event_id, kind.storage_name()),
        to: vec![to],
        values,
        given: Rendered::default(),
        ticket_id: ticket.id.clone(),
        thread_root: kind == EmailKind::TicketCreated,
        ..Default::default()
    };
    match compose_with(conn, &event.account_id, policy, settings, c).await {
        Ok(_) => Ok(()),
        // No sender for this account: nothing to send (said once per event at debug).
        Err(Error::FailedPrecondition(why)) => {
            tracing::debug!(account = %event.account_id, %why, "ticket email not sent");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Keeps the name and address of the contact an event carries.
async fn keep_contact(conn: &mut PgConnection, event: &IncomingEvent) -> Result<(), HandlerError> {
    let contact = match event.kind.as_str() {
        ContactCreated::KIND => event.decode::<ContactCreated>()?.contact,
        ContactUpdated::KIND => event.decode::<ContactUpdated>()?.contact,
        ConversationCreated::KIND => event.decode::<ConversationCreated>()?.contact,
        _ => None,
    };
    if let Some(c) = contact.filter(|c| !c.id.is_empty()) {
        let row = contacts::ContactRow {
            name: c.name,
            email: c.email.trim().to_string(),
            verified: c.identity_verified,
        };
        contacts::save(conn, &event.account_id, &c.id, &row).await?;
    }
    Ok(())
}

/// The bots whose lines belong to live chat only (queue positions and the like).
const CHAT_ONLY_BOTS: &[&str] = &["routing"];

/// A conversation of an email inbox is answered by email: an agent's public reply
/// as a reply, the automatic lines (a rule's answer, the greeting, closing
/// messages) as automatic replies, to the contact's proven address, all in one
/// thread.
async fn conversation_email(
    conn: &mut PgConnection,
    event: &IncomingEvent,
    policy: &MailPolicy,
) -> Result<(), HandlerError> {
    if !policy.enabled {
        return Ok(());
    }
    let e: MessageCreated = event.decode()?;
    let (Some(conversation), Some(message)) = (e.conversation, e.message) else {
        return Ok(());
    };
    if conversation.channel_kind != ChannelKind::Email as i32
        || message.kind != MessageKind::Outgoing as i32
        || message.content.trim().is_empty()
    {
        return Ok(());
    }
    let sender = message.sender.clone().unwrap_or_default();
    let kind = match ActorKind::try_from(sender.kind).unwrap_or_default() {
        ActorKind::Agent => EmailKind::ConversationReply,
        ActorKind::Bot if CHAT_ONLY_BOTS.contains(&sender.id.as_str()) => return Ok(()),
        ActorKind::Bot | ActorKind::Automation | ActorKind::Integration | ActorKind::System => {
            EmailKind::AutomaticReply
        }
        _ => return Ok(()),
    };
    // Only to a proven address: a visitor cannot have the platform write to anyone.
    let contact = contacts::get(conn, &event.account_id, &conversation.contact_id).await?;
    let Some(contact) = contact.filter(|c| c.verified && c.email.contains('@')) else {
        tracing::debug!(conversation = %conversation.id, "no proven address for an email reply");
        return Ok(());
    };
    let (name, to) = (contact.name, contact.email);
    let subject = conversation
        .custom_attributes
        .get("subject")
        .filter(|s| !s.trim().is_empty())
        .cloned()
        .unwrap_or_else(|| "your message".into());
    let c = Compose {
        kind,
        dedupe_key: format!("{}:{}", event.event_id, kind.storage_name()),
        to: vec![to],
        values: BTreeMap::from([
            ("subject".to_string(), subject),
            ("body".to_string(), message.content),
            (
                "requester.name".to_string(),
                if name.is_empty() {
                    "there".into()
                } else {
                    name
                },
            ),
        ]),
        conversation_id: conversation.id,
        ..Default::default()
    };
    match compose(conn, &event.account_id, policy, c).await {
        Ok(_) => Ok(()),
        Err(Error::FailedPrecondition(why)) => {
            tracing::debug!(account = %event.account_id, %why, "conversation email not sent");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Records a failed attempt of `email` at `step`: retried on the schedule unless
/// `permanent`; an email failed for good emits `notification.email_failed`.
pub async fn failed(
    conn: &mut PgConnection,
    policy: &MailPolicy,
    email: &emails::EmailRow,
    permanent: bool,
    error: &str,
) -> Result<()> {
    let step = email.step + 1;
    let next = (!permanent)
        .then(|| crate::domain::schedule::next_delay(&policy.schedule, step as usize, None))
        .flatten()
        .map(|d| chrono::Utc::now() + chrono::Duration::from_std(d).unwrap_or_default());
    let row = emails::mark_failed(conn, email.id, step, next, error).await?;
    if let Some(row) = row
        && EmailStatus::from_storage(&row.status) == EmailStatus::Failed
    {
        let event = EmailFailed {
            email: Some(row.to_proto()),
            ..Default::default()
        };
        helpdesk_kit::outbox::emit(conn, &Origin::system(&row.account_id), event).await?;
    }
    Ok(())
}
