//! Routing domain logic: enums as stored, settings, rule matching, agent selection,
//! business hours, the routing decision. Pure: no database, no I/O.

pub use helpdesk_kit::hours;
pub mod permissions;
pub mod recommend;
pub mod route;
pub mod rules;
pub mod select;
pub mod templates;

use helpdesk_proto::routing::v1::{
    OfflinePolicy, OverflowAction, PriorityClass, RoutingSettings, SkillLevel, Strategy,
};
use uuid::Uuid;

pub use helpdesk_kit::storage::StorageName;

/// Queue order value of a priority class (lower first).
pub fn class_rank(c: PriorityClass) -> i32 {
    match c {
        PriorityClass::Urgent => 1,
        PriorityClass::Skill => 2,
        PriorityClass::Normal | PriorityClass::Unspecified => 3,
    }
}

/// The class stored as a rank.
pub fn class_from_rank(rank: i32) -> PriorityClass {
    match rank {
        1 => PriorityClass::Urgent,
        2 => PriorityClass::Skill,
        _ => PriorityClass::Normal,
    }
}

/// Weight of a skill level in skill-weighted routing.
pub fn level_weight(level: i32) -> i64 {
    match SkillLevel::try_from(level).unwrap_or_default() {
        SkillLevel::Primary => 3,
        SkillLevel::Secondary => 2,
        SkillLevel::General | SkillLevel::Unspecified => 1,
    }
}

/// An account's routing settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub default_strategy: Strategy,
    pub skill_fallback_seconds: i32,
    pub max_queue_length: i32,
    pub max_wait_seconds: i32,
    pub overflow_action: OverflowAction,
    pub overflow_team_id: Option<Uuid>,
    pub leave_message_text: String,
    pub offline_policy: OfflinePolicy,
    pub pooled_mode: bool,
    pub presence_idle_seconds: i32,
    pub default_handle_seconds: i32,
    pub transfer_timeout_seconds: i32,
    pub transfer_policy: permissions::Policy,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            default_strategy: Strategy::LeastBusy,
            skill_fallback_seconds: 60,
            max_queue_length: 0,
            max_wait_seconds: 0,
            overflow_action: OverflowAction::LeaveMessage,
            overflow_team_id: None,
            leave_message_text:
                "All our agents are busy right now. Leave us a message and we will get back to you."
                    .into(),
            offline_policy: OfflinePolicy::Keep,
            pooled_mode: false,
            presence_idle_seconds: 120,
            default_handle_seconds: 300,
            transfer_timeout_seconds: 30,
            transfer_policy: permissions::Policy::default(),
        }
    }
}

impl Settings {
    /// As the API shows it.
    pub fn to_proto(&self, account: &str) -> RoutingSettings {
        RoutingSettings {
            account_id: account.to_string(),
            default_strategy: self.default_strategy as i32,
            skill_fallback_seconds: self.skill_fallback_seconds,
            max_queue_length: self.max_queue_length,
            max_wait_seconds: self.max_wait_seconds,
            overflow_action: self.overflow_action as i32,
            overflow_team_id: self
                .overflow_team_id
                .map(|t| t.to_string())
                .unwrap_or_default(),
            leave_message_text: self.leave_message_text.clone(),
            offline_policy: self.offline_policy as i32,
            pooled_mode: self.pooled_mode,
            presence_idle_seconds: self.presence_idle_seconds,
            default_handle_seconds: self.default_handle_seconds,
            transfer_timeout_seconds: self.transfer_timeout_seconds,
            transfer_policy: Some(self.transfer_policy.to_proto()),
        }
    }
}

pub use helpdesk_kit::validate::is_name;
