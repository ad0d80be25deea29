//! What a rule's conditions look at: the facts of one event (the conversation, its
//! message, contact and inbox, the ticket, a rating) and the attributes read from
//! them.

use std::borrow::Cow;

use helpdesk_kit::storage::StorageName;
use helpdesk_proto::conversation::v1::{
    ChannelKind, Contact, Conversation, ConversationStatus, Inbox, Message, MessageKind, Priority,
};
use helpdesk_proto::ticketing::v1::{StatusCategory, Ticket, TicketPriority, TicketType};

/// The facts of one event, as a rule sees them.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub conversation: Option<Conversation>,
    /// The conversation before the event (for `changed`).
    pub previous_conversation: Option<Conversation>,
    pub message: Option<Message>,
    pub contact: Option<Contact>,
    pub inbox: Option<Inbox>,
    pub ticket: Option<Ticket>,
    /// The ticket before the event (for `changed`).
    pub previous_ticket: Option<Ticket>,
    /// A customer's rating and comment (`csat.submitted`).
    pub csat: Option<(i32, String)>,
    /// Whether the conversation's business hours (its team's, else its inbox's) are
    /// open now; `None` when not looked up.
    pub within_hours: Option<bool>,
    /// The message's content in lower case, folded once for all the rules.
    pub folded_content: std::sync::OnceLock<String>,
}

/// An attribute's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Missing,
    Text(Cow<'a, str>),
    /// Text already in lower case.
    Folded(&'a str),
    List(&'a [String]),
    Number(f64),
    Bool(bool),
}

impl Value<'_> {
    /// Shown in a run's log (lists joined with ", ", cut to 200 characters).
    pub fn render(&self) -> String {
        let s = match self {
            Value::Missing => String::new(),
            Value::Text(t) => t.to_string(),
            Value::Folded(t) => t.to_string(),
            Value::List(l) => l.join(", "),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
        };
        s.chars().take(200).collect()
    }

    /// Present and not empty.
    pub fn is_present(&self) -> bool {
        match self {
            Value::Missing => false,
            Value::Text(t) => !t.is_empty(),
            Value::Folded(t) => !t.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Number(_) | Value::Bool(_) => true,
        }
    }
}

/// An attribute a condition may test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attr {
    ConversationStatus,
    ConversationPriority,
    ConversationLabels,
    ConversationInbox,
    ConversationChannel,
    ConversationTeam,
    ConversationAssignee,
    ConversationCsat,
    ConversationWithinHours,
    ConversationCustom(String),
    MessageContent,
    MessageKind,
    ContactName,
    ContactEmail,
    ContactCountry,
    ContactVipLevel,
    ContactLanguage,
    ContactVerified,
    ContactCustom(String),
    InboxName,
    InboxChannel,
    TicketStatus,
    TicketStatusCategory,
    TicketPriority,
    TicketType,
    TicketCategory,
    TicketTags,
    TicketAssignee,
    TicketGroup,
    TicketSubject,
    TicketCustom(String),
    CsatRating,
    CsatComment,
}

/// A custom attribute's key: 1 to 64 characters of letters, digits, `_` and `-`.
fn is_key(k: &str) -> bool {
    (1..=64).contains(&k.len())
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Attr {
    /// The attribute named `name` (`conversation.status`, `contact.custom_attributes.plan`).
    pub fn parse(name: &str) -> Option<Attr> {
        if let Some(k) = name.strip_prefix("conversation.custom_attributes.") {
            return is_key(k).then(|| Attr::ConversationCustom(k.to_string()));
        }
        if let Some(k) = name.strip_prefix("contact.custom_attributes.") {
            return is_key(k).then(|| Attr::ContactCustom(k.to_string()));
        }
        if let Some(k) = name.strip_prefix("ticket.custom_fields.") {
            return is_key(k).then(|| Attr::TicketCustom(k.to_string()));
        }
        Some(match name {
            "conversation.status" => Attr::ConversationStatus,
            "conversation.priority" => Attr::ConversationPriority,
            "conversation.labels" => Attr::ConversationLabels,
            "conversation.inbox_id" => Attr::ConversationInbox,
            "conversation.channel" => Attr::ConversationChannel,
            "conversation.team_id" => Attr::ConversationTeam,
            "conversation.assignee_id" => Attr::ConversationAssignee,
            "conversation.csat_rating" => Attr::ConversationCsat,
            "conversation.within_business_hours" => Attr::ConversationWithinHours,
            "message.content" => Attr::MessageContent,
            "message.kind" => Attr::MessageKind,
            "contact.name" => Attr::ContactName,
            "contact.email" => Attr::ContactEmail,
            "contact.country" => Attr::ContactCountry,
            "contact.vip_level" => Attr::ContactVipLevel,
            "contact.language" => Attr::ContactLanguage,
            "contact.identity_verified" => Attr::ContactVerified,
            "inbox.name" => Attr::InboxName,
            "inbox.channel" => Attr::InboxChannel,
            "ticket.status" => Attr::TicketStatus,
            "ticket.status_category" => Attr::TicketStatusCategory,
            "ticket.priority" => Attr::TicketPriority,
            "ticket.type" => Attr::TicketType,
            "ticket.category" => Attr::TicketCategory,
            "ticket.tags" => Attr::TicketTags,
            "ticket.assignee_id" => Attr::TicketAssignee,
            "ticket.group_id" => Attr::TicketGroup,
            "ticket.subject" => Attr::TicketSubject,
            "csat.rating" => Attr::CsatRating,
            "csat.comment" => Attr::CsatComment,
            _ => return None,
        })
    }

    /// Whether `facts` know its value before the event (`changed` needs it): the
    /// conversation's and the ticket's attributes, when the earlier state is known.
    pub fn has_before(&self, facts: &Facts) -> bool {
        use Attr::*;
        match self {
            ConversationStatus
            | ConversationPriority
            | ConversationLabels
            | ConversationInbox
            | ConversationChannel
            | ConversationTeam
            | ConversationAssignee
            | ConversationCsat
            | ConversationCustom(_) => facts.previous_conversation.is_some(),
            TicketStatus | TicketStatusCategory | TicketPriority | TicketType | TicketCategory
            | TicketTags | TicketAssignee | TicketGroup | TicketSubject | TicketCustom(_) => {
                facts.previous_ticket.is_some()
            }
            _ => false,
        }
    }

    /// Whether its values are numbers (greater_than / less_than apply).
    pub fn is_numeric(&self) -> bool {
        matches!(self, Attr::ConversationCsat | Attr::CsatRating)
    }

    /// Its value in `facts` as conditions compare it: text may come already in
    /// lower case (the message's content, folded once per event).
    pub fn comparable<'a>(&self, facts: &'a Facts) -> Value<'a> {
        match (self, facts.message.as_ref()) {
            (Attr::MessageContent, Some(m)) if !m.content.is_empty() => Value::Folded(
                facts
                    .folded_content
                    .get_or_init(|| m.content.to_lowercase()),
            ),
            _ => self.value(facts, false),
        }
    }

    /// Its value in `facts` (before the event with `before`).
    pub fn value<'a>(&self, facts: &'a Facts, before: bool) -> Value<'a> {
        let conv = if before {
            facts.previous_conversation.as_ref()
        } else {
            facts.conversation.as_ref()
        };
        let ticket = if before {
            facts.previous_ticket.as_ref()
        } else {
            facts.ticket.as_ref()
        };
        let contact = facts.contact.as_ref();
        match self {
            Attr::ConversationStatus => {
                conv.map_or(Value::Missing, |c| name::<ConversationStatus>(c.status))
            }
            Attr::ConversationPriority => {
                conv.map_or(Value::Missing, |c| name::<Priority>(c.priority))
            }
            Attr::ConversationLabels => conv.map_or(Value::Missing, |c| Value::List(&c.labels)),
            Attr::ConversationInbox => conv.map_or(Value::Missing, |c| text(&c.inbox_id)),
            Attr::ConversationChannel => {
                conv.map_or(Value::Missing, |c| name::<ChannelKind>(c.channel_kind))
            }
            Attr::ConversationTeam => conv.map_or(Value::Missing, |c| text(&c.team_id)),
            Attr::ConversationAssignee => conv.map_or(Value::Missing, |c| text(&c.assignee_id)),
            Attr::ConversationCsat => conv
                .filter(|c| c.csat_rating > 0)
                .map_or(Value::Missing, |c| Value::Number(f64::from(c.csat_rating))),
            Attr::ConversationWithinHours => facts
                .within_hours
                .filter(|_| conv.is_some())
                .map_or(Value::Missing, Value::Bool),
            Attr::ConversationCustom(k) => conv
                .and_then(|c| c.custom_attributes.get(k))
                .map_or(Value::Missing, |v| text(v)),
            Attr::MessageContent => facts
                .message
                .as_ref()
                .map_or(Value::Missing, |m| text(&m.content)),
            Attr::MessageKind => facts
                .message
                .as_ref()
                .map_or(Value::Missing, |m| name::<MessageKind>(m.kind)),
            Attr::ContactName => contact.map_or(Value::Missing, |c| text(&c.name)),
            Attr::ContactEmail => contact.map_or(Value::Missing, |c| text(&c.email)),
            Attr::ContactCountry => custom(contact, "country"),
            Attr::ContactVipLevel => custom(contact, "vip_level"),
            Attr::ContactLanguage => match custom(contact, "language") {
                Value::Missing => contact
                    .and_then(|c| c.device.as_ref())
                    .map_or(Value::Missing, |d| text(&d.locale)),
                v => v,
            },
            Attr::ContactVerified => {
                contact.map_or(Value::Missing, |c| Value::Bool(c.identity_verified))
            }
            Attr::ContactCustom(k) => custom(contact, k),
            Attr::InboxName => facts
                .inbox
                .as_ref()
                .map_or(Value::Missing, |i| text(&i.name)),
            Attr::InboxChannel => facts
                .inbox
                .as_ref()
                .map_or(Value::Missing, |i| name::<ChannelKind>(i.channel_kind)),
            Attr::TicketStatus => ticket.map_or(Value::Missing, |t| text(&t.status)),
            Attr::TicketStatusCategory => ticket.map_or(Value::Missing, |t| {
                name::<StatusCategory>(t.status_category)
            }),
            Attr::TicketPriority => {
                ticket.map_or(Value::Missing, |t| name::<TicketPriority>(t.priority))
            }
            Attr::TicketType => ticket.map_or(Value::Missing, |t| name::<TicketType>(t.r#type)),
            Attr::TicketCategory => ticket.map_or(Value::Missing, |t| text(&t.category)),
            Attr::TicketTags => ticket.map_or(Value::Missing, |t| Value::List(&t.tags)),
            Attr::TicketAssignee => ticket.map_or(Value::Missing, |t| text(&t.assignee_id)),
            Attr::TicketGroup => ticket.map_or(Value::Missing, |t| text(&t.group_id)),
            Attr::TicketSubject => ticket.map_or(Value::Missing, |t| text(&t.subject)),
            Attr::TicketCustom(k) => ticket
                .and_then(|t| t.custom_fields.get(k))
                .map_or(Value::Missing, |v| text(v)),
            Attr::CsatRating => facts
                .csat
                .as_ref()
                .map_or(Value::Missing, |(r, _)| Value::Number(f64::from(*r))),
            Attr::CsatComment => facts.csat.as_ref().map_or(Value::Missing, |(_, c)| text(c)),
        }
    }
}

fn text(s: &str) -> Value<'_> {
    if s.is_empty() {
        Value::Missing
    } else {
        Value::Text(Cow::Borrowed(s))
    }
}

fn name<E: StorageName + TryFrom<i32>>(n: i32) -> Value<'static> {
    match E::try_from(n) {
        Ok(e) => Value::Text(Cow::Borrowed(e.storage_name())),
        Err(_) => Value::Missing,
    }
}

fn custom<'a>(contact: Option<&'a Contact>, key: &str) -> Value<'a> {
    contact
        .and_then(|c| c.custom_attributes.get(key))
        .map_or(Value::Missing, |v| text(v))
}
