//! Conversation domain: status rules, enum storage names, and input limits.

pub mod bot;
pub mod identity;
pub mod lifecycle;
pub mod validate;

use helpdesk_proto::conversation::v1::ConversationStatus;

pub use helpdesk_kit::storage::StorageName;

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
