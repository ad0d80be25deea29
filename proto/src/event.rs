//! The [`Event`] trait: what every event message of the platform has in common.
//!
//! An event is published on `<root>.evt.<account>.<KIND>` with its [`EventMeta`] in
//! field 1 and the id of the aggregate it is about as CloudEvents `ce-subject`. The
//! kit's outbox writes any `Event`, and its consumers dispatch on [`Event::KIND`], so a
//! service names an event by its type, never by a string.

use crate::common::v1::EventMeta;

/// An event message: its subject suffix, its aggregate id and its meta.
pub trait Event: prost::Message + prost::Name + Default + Clone + Send + Sync + 'static {
    /// `<aggregate>.<event>`, the last two tokens of the subject (`conversation.created`).
    const KIND: &'static str;

    /// The common header (field 1).
    fn meta(&self) -> Option<&EventMeta>;

    /// Replaces the common header.
    fn set_meta(&mut self, meta: EventMeta);

    /// The id of the aggregate the event is about (CloudEvents `ce-subject`).
    fn aggregate_id(&self) -> &str;
}

macro_rules! events {
    ($($ty:path => $kind:literal, |$e:ident| $aggregate:expr;)+) => {
        $(
            impl Event for $ty {
                const KIND: &'static str = $kind;

                fn meta(&self) -> Option<&EventMeta> {
                    self.meta.as_ref()
                }

                fn set_meta(&mut self, meta: EventMeta) {
                    self.meta = Some(meta);
                }

                fn aggregate_id(&self) -> &str {
                    let $e = self;
                    $aggregate
                }
            }
        )+

        /// Every event message of the platform, for tools that decode events they
        /// did not produce (by kind or by `ce-type`).
        pub fn catalog() -> Vec<CatalogEntry> {
            vec![$(CatalogEntry::of::<$ty>()),+]
        }
    };
}

/// One event message type: its kind and its protobuf full name (decode a body with
/// [`crate::json::event_json`]).
#[derive(Debug, Clone)]
pub struct CatalogEntry {
    /// `<aggregate>.<event>`.
    pub kind: &'static str,
    /// Protobuf full name (`ce-type`).
    pub full_name: String,
}

impl CatalogEntry {
    fn of<E: Event>() -> Self {
        Self {
            kind: E::KIND,
            full_name: E::full_name(),
        }
    }
}

fn conversation_id(c: Option<&crate::conversation::v1::Conversation>) -> &str {
    c.map(|c| c.id.as_str()).unwrap_or_default()
}

fn contact_id(c: Option<&crate::conversation::v1::Contact>) -> &str {
    c.map(|c| c.id.as_str()).unwrap_or_default()
}

fn transfer_conversation(t: Option<&crate::routing::v1::Transfer>) -> &str {
    t.map(|t| t.conversation_id.as_str()).unwrap_or_default()
}

fn ticket_id(t: Option<&crate::ticketing::v1::Ticket>) -> &str {
    t.map(|t| t.id.as_str()).unwrap_or_default()
}

fn inbox_id(i: Option<&crate::conversation::v1::Inbox>) -> &str {
    i.map(|i| i.id.as_str()).unwrap_or_default()
}

/// The team or inbox the hours are of.
fn hours_owner(h: Option<&crate::routing::v1::BusinessHours>) -> &str {
    h.map(|h| {
        if h.team_id.is_empty() {
            h.inbox_id.as_str()
        } else {
            h.team_id.as_str()
        }
    })
    .unwrap_or_default()
}

events! {
    crate::conversation::v1::ConversationCreated => "conversation.created", |e| conversation_id(e.conversation.as_ref());
    crate::conversation::v1::ConversationUpdated => "conversation.updated", |e| conversation_id(e.conversation.as_ref());
    crate::conversation::v1::ConversationStatusChanged => "conversation.status_changed", |e| conversation_id(e.conversation.as_ref());
    crate::conversation::v1::CsatSubmitted => "csat.submitted", |e| conversation_id(e.conversation.as_ref());
    crate::conversation::v1::MessageCreated => "message.created", |e| conversation_id(e.conversation.as_ref());
    crate::conversation::v1::ContactCreated => "contact.created", |e| contact_id(e.contact.as_ref());
    crate::conversation::v1::ContactUpdated => "contact.updated", |e| contact_id(e.contact.as_ref());
    crate::conversation::v1::InboxCreated => "inbox.created", |e| inbox_id(e.inbox.as_ref());
    crate::conversation::v1::InboxUpdated => "inbox.updated", |e| inbox_id(e.inbox.as_ref());
    crate::routing::v1::ConversationQueued => "routing.queued", |e| &e.conversation_id;
    crate::routing::v1::QueuePositionChanged => "routing.position_changed", |e| &e.conversation_id;
    crate::routing::v1::ConversationAssigned => "routing.assigned", |e| &e.conversation_id;
    crate::routing::v1::ConversationUnassigned => "routing.unassigned", |e| &e.conversation_id;
    crate::routing::v1::ConversationOverflowed => "routing.overflowed", |e| &e.conversation_id;
    crate::routing::v1::AgentPresenceChanged => "agent.presence_changed", |e| &e.agent_id;
    crate::routing::v1::AgentCreated => "agent.created", |e| e.agent.as_ref().map(|a| a.id.as_str()).unwrap_or_default();
    crate::routing::v1::AgentUpdated => "agent.updated", |e| e.agent.as_ref().map(|a| a.id.as_str()).unwrap_or_default();
    crate::routing::v1::BusinessHoursUpdated => "business_hours.updated", |e| hours_owner(e.hours.as_ref());
    crate::routing::v1::TransferRequested => "transfer.requested", |e| transfer_conversation(e.transfer.as_ref());
    crate::routing::v1::TransferAccepted => "transfer.accepted", |e| transfer_conversation(e.transfer.as_ref());
    crate::routing::v1::TransferRejected => "transfer.rejected", |e| transfer_conversation(e.transfer.as_ref());
    crate::routing::v1::TransferTimedOut => "transfer.timed_out", |e| transfer_conversation(e.transfer.as_ref());
    crate::routing::v1::TransferCancelled => "transfer.cancelled", |e| transfer_conversation(e.transfer.as_ref());
    crate::ticketing::v1::TicketCreated => "ticket.created", |e| ticket_id(e.ticket.as_ref());
    crate::ticketing::v1::TicketUpdated => "ticket.updated", |e| ticket_id(e.ticket.as_ref());
    crate::ticketing::v1::TicketStatusChanged => "ticket.status_changed", |e| ticket_id(e.ticket.as_ref());
    crate::ticketing::v1::TicketAssigned => "ticket.assigned", |e| ticket_id(e.ticket.as_ref());
    crate::ticketing::v1::TicketCommentAdded => "ticket.comment_added", |e| ticket_id(e.ticket.as_ref());
    crate::ticketing::v1::TicketMerged => "ticket.merged", |e| ticket_id(e.ticket.as_ref());
    crate::ticketing::v1::SlaWarning => "sla.warning", |e| &e.ticket_id;
    crate::ticketing::v1::SlaBreached => "sla.breached", |e| &e.ticket_id;
    crate::common::v1::OutboxEventParked => "outbox.parked", |e| &e.event_id;
    crate::notification::v1::EndpointDisabled => "notification.endpoint_disabled", |e| e.endpoint.as_ref().map(|x| x.id.as_str()).unwrap_or_default();
    crate::notification::v1::DeliveryFailed => "notification.delivery_failed", |e| e.delivery.as_ref().map(|x| x.endpoint_id.as_str()).unwrap_or_default();
    crate::notification::v1::AgentNotified => "notification.agent_notified", |e| e.notification.as_ref().map(|n| n.agent_id.as_str()).unwrap_or_default();
    crate::notification::v1::NotificationsRead => "notification.notifications_read", |e| &e.agent_id;
    crate::automation::v1::RuleExecuted => "automation.rule_executed", |e| e.run.as_ref().map(|r| r.rule_id.as_str()).unwrap_or_default();
    crate::automation::v1::RulesChanged => "automation.rules_changed", |e| &e.rule_id;
    crate::notification::v1::EmailFailed => "notification.email_failed", |e| e.email.as_ref().map(|x| x.id.as_str()).unwrap_or_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_unique_and_two_tokens() {
        let catalog = catalog();
        let mut kinds: Vec<_> = catalog.iter().map(|e| e.kind).collect();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), catalog.len());
        assert!(kinds.iter().all(|k| k.split('.').count() == 2));
    }
}
