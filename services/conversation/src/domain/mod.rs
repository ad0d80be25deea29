//! Conversation domain: status rules, enum storage names, and input limits.

pub mod validate;

use helpdesk_proto::conversation::v1::{
    ChannelKind, ConversationStatus, MessageKind, Priority, ReopenPolicy,
};

/// Stable storage names of enums (what the database holds).
pub trait StorageName: Sized {
    /// Name stored in the database.
    fn storage_name(self) -> &'static str;
    /// Parses a stored name (unknown → the unspecified value).
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

storage_names!(ConversationStatus {
    Open => "open", Pending => "pending", Snoozed => "snoozed", Resolved => "resolved",
} default Unspecified);
storage_names!(ChannelKind {
    WebWidget => "web_widget", MobileSdk => "mobile_sdk", Api => "api", Email => "email",
} default Unspecified);
storage_names!(ReopenPolicy { Reopen => "reopen", NewConversation => "new_conversation" } default Reopen);
storage_names!(Priority {
    Unspecified => "none", Low => "low", Medium => "medium", High => "high", Urgent => "urgent",
} default Unspecified);
storage_names!(MessageKind {
    Incoming => "incoming", Outgoing => "outgoing", Note => "note", Activity => "activity",
} default Unspecified);

/// Timer kind that reopens a snoozed conversation.
pub const SNOOZE_WAKE: &str = "conversation.snooze_wake";

/// The fingerprint of a conversation's snooze state, which a snooze timer must match.
pub fn snooze_fingerprint(
    status: ConversationStatus,
    snoozed_until: Option<chrono::DateTime<chrono::Utc>>,
) -> String {
    match (status, snoozed_until) {
        (ConversationStatus::Snoozed, Some(until)) => {
            format!("snoozed:{}", until.timestamp_micros())
        }
        (other, _) => format!("status:{}", other.storage_name()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_names_round_trip() {
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
        assert_eq!(ReopenPolicy::from_storage("bogus"), ReopenPolicy::Reopen);
    }

    #[test]
    fn snooze_fingerprint_changes_with_the_wake_time() {
        let t = chrono::Utc::now();
        let a = snooze_fingerprint(ConversationStatus::Snoozed, Some(t));
        let b = snooze_fingerprint(
            ConversationStatus::Snoozed,
            Some(t + chrono::Duration::seconds(1)),
        );
        assert_ne!(a, b);
        assert_ne!(a, snooze_fingerprint(ConversationStatus::Open, Some(t)));
    }
}
