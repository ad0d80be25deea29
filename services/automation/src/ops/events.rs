//! The events rules run on, decoded into what a rule sees: their meta, the rule
//! events they count as, and the facts they carry.

use helpdesk_kit::event::Event;
use helpdesk_proto::common::v1::{ActorKind, EventMeta};
use helpdesk_proto::conversation::v1::{
    ContactCreated, ContactUpdated, Conversation, ConversationCreated, ConversationStatus,
    ConversationStatusChanged, ConversationUpdated, CsatSubmitted, InboxCreated, InboxUpdated,
    MessageCreated, MessageKind,
};
use helpdesk_proto::routing::v1::{
    BusinessHours, BusinessHoursUpdated, ConversationOverflowed, ConversationQueued,
    TransferAccepted, TransferCancelled, TransferRejected, TransferTimedOut,
};
use helpdesk_proto::ticketing::v1::{
    SlaBreached, SlaWarning, TicketCommentAdded, TicketCreated, TicketStatusChanged, TicketUpdated,
};
use prost::Message as _;

use crate::domain::facts::Facts;

/// The bots the platform itself writes as (the inbox's greeting, routing's texts).
const PLATFORM_BOTS: &[&str] = &["greeting", "routing"];

/// Every event kind the service reads.
pub const KINDS: &[&str] = &[
    ConversationCreated::KIND,
    ConversationUpdated::KIND,
    ConversationStatusChanged::KIND,
    CsatSubmitted::KIND,
    MessageCreated::KIND,
    ContactCreated::KIND,
    ContactUpdated::KIND,
    InboxCreated::KIND,
    InboxUpdated::KIND,
    ConversationQueued::KIND,
    ConversationOverflowed::KIND,
    TransferAccepted::KIND,
    TransferRejected::KIND,
    TransferTimedOut::KIND,
    TransferCancelled::KIND,
    TicketCreated::KIND,
    TicketUpdated::KIND,
    TicketStatusChanged::KIND,
    TicketCommentAdded::KIND,
    SlaWarning::KIND,
    SlaBreached::KIND,
    BusinessHoursUpdated::KIND,
];

/// One event as the rules see it.
#[derive(Debug, Clone, Default)]
pub struct Incoming {
    pub meta: EventMeta,
    /// The rule events it counts as (none: it only feeds the projections).
    pub triggers: Vec<&'static str>,
    /// The facts it carries (the rest comes from the projections).
    pub facts: Facts,
    /// The conversation it is about (also when it carries only the id).
    pub conversation_id: String,
    /// The ticket it is about.
    pub ticket_id: String,
    /// Business hours it sets (only kept, never a rule's trigger).
    pub hours: Option<BusinessHours>,
}

impl Incoming {
    /// What runs of one aggregate are ordered by: the conversation, else the ticket.
    pub fn aggregate(&self) -> &str {
        if self.ticket_id.is_empty() {
            &self.conversation_id
        } else {
            &self.ticket_id
        }
    }
}

fn conv(c: Option<Conversation>) -> (String, Option<Conversation>) {
    (c.as_ref().map(|c| c.id.clone()).unwrap_or_default(), c)
}

fn transfer_conversation(t: Option<&helpdesk_proto::routing::v1::Transfer>) -> String {
    t.map(|t| t.conversation_id.clone()).unwrap_or_default()
}

/// Decodes an event of `kind`; `None` for a kind the service does not read, or an
/// undecodable body.
pub fn decode(kind: &str, payload: &[u8]) -> Option<Incoming> {
    let mut i = Incoming::default();
    macro_rules! read {
        ($ty:ty) => {{
            let e = <$ty>::decode(payload).ok()?;
            i.meta = e.meta.clone().unwrap_or_default();
            e
        }};
    }
    match kind {
        ConversationCreated::KIND => {
            let e = read!(ConversationCreated);
            (i.conversation_id, i.facts.conversation) = conv(e.conversation);
            i.facts.contact = e.contact;
            i.triggers = vec!["conversation.created"];
        }
        ConversationUpdated::KIND => {
            let e = read!(ConversationUpdated);
            (i.conversation_id, i.facts.conversation) = conv(e.conversation);
            i.triggers = vec!["conversation.updated"];
        }
        ConversationStatusChanged::KIND => {
            let e = read!(ConversationStatusChanged);
            (i.conversation_id, i.facts.conversation) = conv(e.conversation);
            i.triggers = vec!["conversation.status_changed"];
            match ConversationStatus::try_from(e.to) {
                Ok(ConversationStatus::Open) => i.triggers.push("conversation.opened"),
                Ok(ConversationStatus::Resolved) => i.triggers.push("conversation.resolved"),
                _ => {}
            }
        }
        CsatSubmitted::KIND => {
            let e = read!(CsatSubmitted);
            (i.conversation_id, i.facts.conversation) = conv(e.conversation);
            i.facts.csat = Some((e.rating, e.comment));
            i.triggers = vec!["csat.submitted"];
        }
        MessageCreated::KIND => {
            let e = read!(MessageCreated);
            (i.conversation_id, i.facts.conversation) = conv(e.conversation);
            // Staff, a bot or an integration writing: not the platform's own lines
            // (the greeting, routing's texts) nor a rule's messages.
            let written = e
                .message
                .as_ref()
                .and_then(|m| m.sender.as_ref())
                .is_some_and(|a| match ActorKind::try_from(a.kind).unwrap_or_default() {
                    ActorKind::Agent | ActorKind::Integration => true,
                    ActorKind::Bot => !PLATFORM_BOTS.contains(&a.id.as_str()),
                    _ => false,
                });
            match e.message.as_ref().map(|m| MessageKind::try_from(m.kind)) {
                Some(Ok(MessageKind::Incoming)) => {
                    i.triggers = vec!["message.created", "message.incoming"]
                }
                Some(Ok(MessageKind::Outgoing)) if written => {
                    i.triggers = vec!["message.created", "message.outgoing"]
                }
                _ => {}
            }
            i.facts.message = e.message;
        }
        ContactCreated::KIND => {
            i.facts.contact = read!(ContactCreated).contact;
        }
        ContactUpdated::KIND => {
            i.facts.contact = read!(ContactUpdated).contact;
        }
        InboxCreated::KIND => {
            i.facts.inbox = read!(InboxCreated).inbox;
        }
        InboxUpdated::KIND => {
            i.facts.inbox = read!(InboxUpdated).inbox;
        }
        ConversationQueued::KIND => {
            i.conversation_id = read!(ConversationQueued).conversation_id;
            i.triggers = vec!["routing.queued"];
        }
        ConversationOverflowed::KIND => {
            i.conversation_id = read!(ConversationOverflowed).conversation_id;
            i.triggers = vec!["routing.overflowed"];
        }
        TransferAccepted::KIND => {
            i.conversation_id = transfer_conversation(read!(TransferAccepted).transfer.as_ref());
            i.triggers = vec!["transfer.accepted"];
        }
        TransferRejected::KIND => {
            i.conversation_id = transfer_conversation(read!(TransferRejected).transfer.as_ref());
            i.triggers = vec!["transfer.rejected"];
        }
        TransferTimedOut::KIND => {
            i.conversation_id = transfer_conversation(read!(TransferTimedOut).transfer.as_ref());
            i.triggers = vec!["transfer.timed_out"];
        }
        TransferCancelled::KIND => {
            i.conversation_id = transfer_conversation(read!(TransferCancelled).transfer.as_ref());
            i.triggers = vec!["transfer.cancelled"];
        }
        TicketCreated::KIND => {
            i.facts.ticket = read!(TicketCreated).ticket;
            i.triggers = vec!["ticket.created"];
        }
        TicketUpdated::KIND => {
            i.facts.ticket = read!(TicketUpdated).ticket;
            i.triggers = vec!["ticket.updated"];
        }
        TicketStatusChanged::KIND => {
            i.facts.ticket = read!(TicketStatusChanged).ticket;
            i.triggers = vec!["ticket.status_changed"];
        }
        TicketCommentAdded::KIND => {
            i.facts.ticket = read!(TicketCommentAdded).ticket;
            i.triggers = vec!["ticket.comment_added"];
        }
        SlaWarning::KIND => {
            i.ticket_id = read!(SlaWarning).ticket_id;
            i.triggers = vec!["sla.warning"];
        }
        SlaBreached::KIND => {
            i.ticket_id = read!(SlaBreached).ticket_id;
            i.triggers = vec!["sla.breached"];
        }
        BusinessHoursUpdated::KIND => {
            i.hours = read!(BusinessHoursUpdated).hours;
        }
        _ => return None,
    }
    if let Some(t) = &i.facts.ticket {
        i.ticket_id = t.id.clone();
        if i.conversation_id.is_empty() {
            i.conversation_id = t.conversation_ids.first().cloned().unwrap_or_default();
        }
    }
    Some(i)
}
