//! Stable storage names of the contracts' enums: what the database holds instead of
//! enum numbers, so a stored row never changes meaning when a contract grows.
//!
//! The mappings live here, next to the trait, for every service's enums (a service
//! crate may not implement a kit trait for a contract type).

use helpdesk_proto::automation::v1::{Episode, RunOutcome};
use helpdesk_proto::conversation::v1::{
    ActivityType, ChannelKind, ConversationStatus, MessageKind, Priority, ReopenPolicy,
};
use helpdesk_proto::notification::v1::{DeliveryStatus, EmailKind, EmailStatus, NotificationKind};
use helpdesk_proto::routing::v1::{
    OfflinePolicy, OutsideHoursPolicy, OverflowAction, Presence, StaffRole, Strategy, TransferState,
};
use helpdesk_proto::ticketing::v1::{
    FieldType, SlaMetric, SlaState, StatusCategory, TicketPriority, TicketSource, TicketType,
};

/// An enum stored by name.
pub trait StorageName: Sized {
    /// Name stored in the database.
    fn storage_name(self) -> &'static str;
    /// Parses a stored name (unknown → the enum's default for storage).
    fn from_storage(s: &str) -> Self;
}

macro_rules! storage_names {
    ($ty:ty { $($variant:ident => $name:literal),+ $(,)? } default $default:ident) => {
        impl StorageName for $ty {
            fn storage_name(self) -> &'static str {
                match self {
                    $(<$ty>::$variant => $name,)+
                    #[allow(unreachable_patterns)]
                    _ => "unspecified",
                }
            }
            fn from_storage(s: &str) -> Self {
                match s {
                    $($name => <$ty>::$variant,)+
                    _ => <$ty>::$default,
                }
            }
        }
    };
}

// conversation
storage_names!(ConversationStatus {
    Open => "open", Pending => "pending", Snoozed => "snoozed", Resolved => "resolved", Bot => "bot",
} default Unspecified);
storage_names!(ChannelKind {
    WebWidget => "web_widget", MobileSdk => "mobile_sdk", Api => "api", Email => "email",
} default Unspecified);
storage_names!(ReopenPolicy { Reopen => "reopen", NewConversation => "new_conversation" } default Reopen);
storage_names!(Priority {
    Unspecified => "none", Low => "low", Medium => "medium", High => "high", Urgent => "urgent",
} default Unspecified);
storage_names!(ActivityType {
    Unspecified => "", Transfer => "transfer", TransferAccept => "transfer_accept",
    TransferReject => "transfer_reject", TransferTimeout => "transfer_timeout", TransferCancel => "transfer_cancel",
    Handoff => "handoff", Ticket => "ticket", InactivityWarning => "inactivity_warning",
    Closed => "closed", CsatSurvey => "csat_survey",
} default Unspecified);
storage_names!(MessageKind {
    Incoming => "incoming", Outgoing => "outgoing", Note => "note", Activity => "activity",
} default Unspecified);

// routing
storage_names!(Presence { Online => "online", Away => "away", Busy => "busy", Offline => "offline" } default Offline);
storage_names!(Strategy {
    RoundRobin => "round_robin", LeastBusy => "least_busy", SkillWeighted => "skill_weighted", LastAgent => "last_agent",
} default LeastBusy);
storage_names!(OverflowAction { LeaveMessage => "leave_message", OverflowTeam => "overflow_team" } default LeaveMessage);
storage_names!(StaffRole {
    Agent => "agent", Supervisor => "supervisor", Admin => "admin",
} default Agent);
storage_names!(OfflinePolicy { Keep => "keep", Requeue => "requeue" } default Keep);
storage_names!(OutsideHoursPolicy { LeaveMessage => "leave_message", Wait => "wait" } default LeaveMessage);
storage_names!(TransferState {
    Pending => "pending", Accepted => "accepted", Rejected => "rejected", TimedOut => "timed_out", Cancelled => "cancelled",
} default Pending);

/// The storage name of a raw enum number (`"unspecified"` when unknown).
pub fn name_of<E: StorageName + TryFrom<i32> + Default>(value: i32) -> &'static str {
    E::try_from(value).unwrap_or_default().storage_name()
}

// ticketing
storage_names!(TicketPriority {
    Low => "low", Normal => "normal", High => "high", Urgent => "urgent",
} default Normal);
storage_names!(TicketType {
    Unspecified => "", Question => "question", Incident => "incident", Problem => "problem", Task => "task",
} default Unspecified);
storage_names!(TicketSource {
    Chat => "chat", Email => "email", Api => "api", Web => "web", Automation => "automation",
} default Api);
storage_names!(StatusCategory {
    New => "new", Open => "open", Pending => "pending", OnHold => "on_hold", Solved => "solved", Closed => "closed",
} default Unspecified);
storage_names!(SlaMetric {
    FirstReply => "first_reply", NextReply => "next_reply", PeriodicUpdate => "periodic_update",
    Resolution => "resolution", AgentWork => "agent_work", RequesterWait => "requester_wait",
} default Unspecified);
storage_names!(SlaState {
    Active => "active", Paused => "paused", Achieved => "achieved", Breached => "breached",
} default Unspecified);
storage_names!(FieldType {
    Text => "text", Number => "number", Date => "date", Option => "option",
} default Text);

// notification
storage_names!(DeliveryStatus {
    Pending => "pending", Succeeded => "succeeded", Failed => "failed",
} default Unspecified);
storage_names!(NotificationKind {
    Assignment => "assignment", TransferOffer => "transfer_offer", Mention => "mention",
    MessageWhileAway => "message_while_away", SlaWarning => "sla_warning", SlaBreach => "sla_breach",
    QueueOverflow => "queue_overflow", TicketAssigned => "ticket_assigned",
} default Unspecified);
storage_names!(EmailStatus { Queued => "queued", Sent => "sent", Failed => "failed" } default Unspecified);
storage_names!(EmailKind {
    TicketCreated => "ticket_created", TicketStatusChanged => "ticket_status_changed",
    TicketReply => "ticket_reply", ConversationTranscript => "conversation_transcript",
    AutomaticReply => "automatic_reply", TeamAlert => "team_alert",
    ConversationReply => "conversation_reply",
} default Unspecified);

// automation
storage_names!(RunOutcome {
    Fired => "fired", Scheduled => "scheduled", Dropped => "dropped", Stopped => "stopped", Failed => "failed",
} default Unspecified);
storage_names!(Episode {
    Status => "status", LastMessage => "last_message", CustomerMessage => "customer_message",
} default Status);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in [
            ConversationStatus::Open,
            ConversationStatus::Pending,
            ConversationStatus::Snoozed,
            ConversationStatus::Resolved,
        ] {
            assert_eq!(ConversationStatus::from_storage(s.storage_name()), s);
        }
        for p in [
            Priority::Unspecified,
            Priority::Low,
            Priority::Medium,
            Priority::High,
            Priority::Urgent,
        ] {
            assert_eq!(Priority::from_storage(p.storage_name()), p);
        }
        assert_eq!(Priority::Unspecified.storage_name(), "none");
        assert_eq!(ReopenPolicy::from_storage("bogus"), ReopenPolicy::Reopen);
        assert_eq!(Strategy::from_storage("bogus"), Strategy::LeastBusy);
        assert_eq!(name_of::<ChannelKind>(1), "web_widget");
        assert_eq!(name_of::<ChannelKind>(99), "unspecified");
    }
}
