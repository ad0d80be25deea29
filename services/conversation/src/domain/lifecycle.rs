//! How an inbox's quiet conversations end (inactivity warning and close, stale
//! pending and bot conversations), the lines that close a chat, and the satisfaction
//! survey asked on resolve.

use chrono::{DateTime, Utc};
use helpdesk_kit::grpc::Violations;
use helpdesk_proto::conversation::v1::{ConversationStatus, CsatSurvey, InboxLifecycle};
use serde::{Deserialize, Serialize};

use super::StorageName;

/// Timer kinds.
pub const INACTIVITY_WARNING: &str = "conversation.inactivity_warning";
pub const INACTIVITY_CLOSE: &str = "conversation.inactivity_close";
pub const PENDING_CLOSE: &str = "conversation.pending_close";
pub const BOT_CLOSE: &str = "conversation.bot_close";

/// Longest wait an inbox may set (30 days).
const MAX_SECONDS: i32 = 30 * 24 * 3600;
/// Longest line an inbox may set.
const MAX_LINE_CHARS: usize = 2000;

pub const DEFAULT_WARNING: &str =
    "This chat will close in {{minutes}} minutes if we don't hear from you.";
pub const DEFAULT_INACTIVITY_CLOSING: &str =
    "This chat was closed because we did not hear from you. Write again any time.";
pub const DEFAULT_QUESTION: &str = "How would you rate this conversation, from 1 to 5?";

/// An inbox's lifecycle, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Lifecycle {
    pub inactivity_warning_seconds: i32,
    pub inactivity_close_seconds: i32,
    pub warning_message: String,
    pub inactivity_closing_message: String,
    pub agent_closing_message: String,
    pub customer_closing_message: String,
    pub pending_close_seconds: i32,
    pub bot_close_seconds: i32,
}

fn seconds(v: &mut Violations, field: &str, value: i32) {
    if !(0..=MAX_SECONDS).contains(&value) {
        v.add(field, format!("0 (never) to {MAX_SECONDS} seconds"));
    }
}

fn line(v: &mut Violations, field: &str, value: &str) {
    if value.chars().count() > MAX_LINE_CHARS {
        v.add(field, format!("at most {MAX_LINE_CHARS} characters"));
    }
}

impl Lifecycle {
    /// Checks an inbox's lifecycle (`field` names it); `None` when unset.
    pub fn check(v: &mut Violations, field: &str, l: Option<&InboxLifecycle>) -> Option<Self> {
        let l = l?;
        seconds(
            v,
            &format!("{field}.inactivity_warning_seconds"),
            l.inactivity_warning_seconds,
        );
        seconds(
            v,
            &format!("{field}.inactivity_close_seconds"),
            l.inactivity_close_seconds,
        );
        seconds(
            v,
            &format!("{field}.pending_close_seconds"),
            l.pending_close_seconds,
        );
        seconds(
            v,
            &format!("{field}.bot_close_seconds"),
            l.bot_close_seconds,
        );
        if l.inactivity_close_seconds > 0 && l.inactivity_warning_seconds == 0 {
            v.add(
                format!("{field}.inactivity_warning_seconds"),
                "a chat is warned before it is closed: set the warning too",
            );
        }
        for (name, value) in [
            ("warning_message", &l.warning_message),
            ("inactivity_closing_message", &l.inactivity_closing_message),
            ("agent_closing_message", &l.agent_closing_message),
            ("customer_closing_message", &l.customer_closing_message),
        ] {
            line(v, &format!("{field}.{name}"), value);
        }
        Some(Self {
            inactivity_warning_seconds: l.inactivity_warning_seconds,
            inactivity_close_seconds: l.inactivity_close_seconds,
            warning_message: l.warning_message.trim().to_string(),
            inactivity_closing_message: l.inactivity_closing_message.trim().to_string(),
            agent_closing_message: l.agent_closing_message.trim().to_string(),
            customer_closing_message: l.customer_closing_message.trim().to_string(),
            pending_close_seconds: l.pending_close_seconds,
            bot_close_seconds: l.bot_close_seconds,
        })
    }

    pub fn to_proto(&self) -> InboxLifecycle {
        InboxLifecycle {
            inactivity_warning_seconds: self.inactivity_warning_seconds,
            inactivity_close_seconds: self.inactivity_close_seconds,
            warning_message: self.warning_message.clone(),
            inactivity_closing_message: self.inactivity_closing_message.clone(),
            agent_closing_message: self.agent_closing_message.clone(),
            customer_closing_message: self.customer_closing_message.clone(),
            pending_close_seconds: self.pending_close_seconds,
            bot_close_seconds: self.bot_close_seconds,
        }
    }

    /// The warning the customer reads, with the minutes left.
    pub fn warning(&self) -> String {
        let template = if self.warning_message.is_empty() {
            DEFAULT_WARNING
        } else {
            &self.warning_message
        };
        let minutes = (self.inactivity_close_seconds.max(1) as u32).div_ceil(60);
        template.replace("{{minutes}}", &minutes.to_string())
    }

    /// The line that closes a chat for inactivity.
    pub fn inactivity_closing(&self) -> &str {
        if self.inactivity_closing_message.is_empty() {
            DEFAULT_INACTIVITY_CLOSING
        } else {
            &self.inactivity_closing_message
        }
    }
}

/// An inbox's satisfaction survey, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Survey {
    pub enabled: bool,
    pub question: String,
    pub only_labels: Vec<String>,
    pub skip_on_auto_close: bool,
}

impl Survey {
    /// Checks an inbox's survey (`field` names it); `None` when unset.
    pub fn check(v: &mut Violations, field: &str, s: Option<&CsatSurvey>) -> Option<Self> {
        let s = s?;
        line(v, &format!("{field}.question"), &s.question);
        let only_labels =
            super::validate::labels(v, &format!("{field}.only_labels"), &s.only_labels);
        Some(Self {
            enabled: s.enabled,
            question: s.question.trim().to_string(),
            only_labels,
            skip_on_auto_close: s.skip_on_auto_close,
        })
    }

    pub fn to_proto(&self) -> CsatSurvey {
        CsatSurvey {
            enabled: self.enabled,
            question: self.question.clone(),
            only_labels: self.only_labels.clone(),
            skip_on_auto_close: self.skip_on_auto_close,
        }
    }

    /// Whether a conversation with `labels`, resolved this way, is asked.
    pub fn asks(&self, labels: &[String], auto_close: bool) -> bool {
        self.enabled
            && !(auto_close && self.skip_on_auto_close)
            && (self.only_labels.is_empty() || labels.iter().any(|l| self.only_labels.contains(l)))
    }

    /// The question the customer reads.
    pub fn question(&self) -> &str {
        if self.question.is_empty() {
            DEFAULT_QUESTION
        } else {
            &self.question
        }
    }
}

/// The state a quiet-conversation timer was set for: the status, whether the
/// customer is waiting for staff, and (for pending and bot conversations) the last
/// activity. A timer whose fingerprint no longer matches is dropped.
pub fn fingerprint(
    status: ConversationStatus,
    waiting_since: Option<DateTime<Utc>>,
    last_activity: DateTime<Utc>,
) -> String {
    let waiting = waiting_since.map_or(0, |t| t.timestamp_micros());
    match status {
        ConversationStatus::Open => format!("open:{waiting}"),
        other => format!(
            "{}:{}",
            other.storage_name(),
            last_activity.timestamp_micros()
        ),
    }
}
