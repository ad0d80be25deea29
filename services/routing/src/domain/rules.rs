//! Routing rules: the first matching rule decides team, skills, class and strategy.

use std::collections::HashMap;

use helpdesk_proto::routing::v1::{PriorityClass, RuleCondition, Strategy};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A rule condition as stored; every non-empty part must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Condition {
    pub inbox_ids: Vec<Uuid>,
    pub channels: Vec<String>,
    pub contact_attributes: HashMap<String, String>,
    pub conversation_attributes: HashMap<String, String>,
    pub min_priority: i32,
    pub labels: Vec<String>,
    pub keywords: Vec<String>,
}

impl Condition {
    /// From the API form (ids already validated).
    pub fn from_proto(c: &RuleCondition) -> Self {
        Self {
            inbox_ids: c.inbox_ids.iter().filter_map(|i| i.parse().ok()).collect(),
            channels: c.channels.iter().map(|s| s.to_lowercase()).collect(),
            contact_attributes: c.contact_attributes.clone(),
            conversation_attributes: c.conversation_attributes.clone(),
            min_priority: c.min_priority,
            labels: c.labels.iter().map(|s| s.to_lowercase()).collect(),
            keywords: c.keywords.iter().map(|s| s.to_lowercase()).collect(),
        }
    }

    /// To the API form.
    pub fn to_proto(&self) -> RuleCondition {
        RuleCondition {
            inbox_ids: self.inbox_ids.iter().map(Uuid::to_string).collect(),
            channels: self.channels.clone(),
            contact_attributes: self.contact_attributes.clone(),
            conversation_attributes: self.conversation_attributes.clone(),
            min_priority: self.min_priority,
            labels: self.labels.clone(),
            keywords: self.keywords.clone(),
        }
    }

    /// Does the conversation match?
    pub fn matches(&self, f: &Facts) -> bool {
        let first = f.first_message.to_lowercase();
        (self.inbox_ids.is_empty() || self.inbox_ids.contains(&f.inbox_id))
            && (self.channels.is_empty() || self.channels.contains(&f.channel))
            && self.contact_attributes.iter().all(|(k, v)| {
                f.contact_attributes
                    .get(k)
                    .is_some_and(|x| x.eq_ignore_ascii_case(v))
            })
            && self.conversation_attributes.iter().all(|(k, v)| {
                f.attributes
                    .get(k)
                    .is_some_and(|x| x.eq_ignore_ascii_case(v))
            })
            && (self.min_priority == 0 || f.priority >= self.min_priority)
            && (self.labels.is_empty() || self.labels.iter().any(|l| f.labels.contains(l)))
            && (self.keywords.is_empty() || self.keywords.iter().any(|k| contains_word(&first, k)))
    }
}

/// `needle` appears in `text` as a whole word (or phrase).
fn contains_word(text: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    text.match_indices(needle).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + needle.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// What routing knows about a conversation when routing it.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub inbox_id: Uuid,
    pub channel: String,
    pub contact_attributes: HashMap<String, String>,
    pub attributes: HashMap<String, String>,
    /// Conversation priority (1 low … 4 urgent, 0 none).
    pub priority: i32,
    pub labels: Vec<String>,
    pub first_message: String,
}

/// A stored rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: Uuid,
    pub condition: Condition,
    pub target_team_id: Option<Uuid>,
    pub required_skills: Vec<String>,
    pub priority_class: PriorityClass,
    pub strategy: Strategy,
}

/// Where and how to route a conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub team_id: Option<Uuid>,
    pub skills: Vec<String>,
    pub class: PriorityClass,
    pub strategy: Strategy,
    pub rule_id: Option<Uuid>,
}

/// Conversation priority value of URGENT.
const URGENT: i32 = 4;

/// The first matching rule (rules in evaluation order), else the defaults. An urgent
/// conversation, or a contact with a VIP attribute, is always in the urgent class.
pub fn decide(rules: &[Rule], facts: &Facts, default_strategy: Strategy) -> Decision {
    let vip = facts.contact_attributes.iter().any(|(k, v)| {
        (k.eq_ignore_ascii_case("vip") || k.eq_ignore_ascii_case("vip_level"))
            && !v.is_empty()
            && !matches!(v.to_lowercase().as_str(), "false" | "no" | "0" | "none")
    });
    let urgent = facts.priority >= URGENT || vip;
    let matched = rules.iter().find(|r| r.condition.matches(facts));
    let (team_id, skills, class, strategy, rule_id) = match matched {
        Some(r) => (
            r.target_team_id,
            r.required_skills.clone(),
            r.priority_class,
            r.strategy,
            Some(r.id),
        ),
        None => (
            None,
            Vec::new(),
            PriorityClass::Unspecified,
            Strategy::Unspecified,
            None,
        ),
    };
    let class = match (urgent, class) {
        (true, _) => PriorityClass::Urgent,
        (false, PriorityClass::Unspecified) if !skills.is_empty() => PriorityClass::Skill,
        (false, PriorityClass::Unspecified) => PriorityClass::Normal,
        (false, c) => c,
    };
    let strategy = if strategy == Strategy::Unspecified {
        default_strategy
    } else {
        strategy
    };
    Decision {
        team_id,
        skills,
        class,
        strategy,
        rule_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(cond: Condition, team: u128, class: PriorityClass) -> Rule {
        Rule {
            id: Uuid::from_u128(team + 100),
            condition: cond,
            target_team_id: Some(Uuid::from_u128(team)),
            required_skills: vec![],
            priority_class: class,
            strategy: Strategy::Unspecified,
        }
    }

    #[test]
    fn first_matching_rule_wins_and_keywords_match_words() {
        let rules = vec![
            rule(
                Condition {
                    keywords: vec!["refund".into()],
                    ..Default::default()
                },
                1,
                PriorityClass::Unspecified,
            ),
            rule(
                Condition {
                    contact_attributes: [("language".into(), "de".into())].into(),
                    ..Default::default()
                },
                2,
                PriorityClass::Unspecified,
            ),
            rule(Condition::default(), 3, PriorityClass::Unspecified),
        ];
        let mut f = Facts {
            first_message: "I want a Refund, please".into(),
            ..Default::default()
        };
        assert_eq!(
            decide(&rules, &f, Strategy::LeastBusy).team_id,
            Some(Uuid::from_u128(1))
        );
        f.first_message = "refunds are nice".into();
        f.contact_attributes.insert("language".into(), "DE".into());
        assert_eq!(
            decide(&rules, &f, Strategy::LeastBusy).team_id,
            Some(Uuid::from_u128(2))
        );
        f.contact_attributes.clear();
        let d = decide(&rules, &f, Strategy::RoundRobin);
        assert_eq!(d.team_id, Some(Uuid::from_u128(3)));
        assert_eq!(d.strategy, Strategy::RoundRobin);
        assert_eq!(d.class, PriorityClass::Normal);
    }

    #[test]
    fn vip_and_urgent_go_first() {
        let mut f = Facts {
            priority: 4,
            ..Default::default()
        };
        assert_eq!(
            decide(&[], &f, Strategy::LeastBusy).class,
            PriorityClass::Urgent
        );
        f.priority = 0;
        f.contact_attributes
            .insert("vip_level".into(), "gold".into());
        assert_eq!(
            decide(&[], &f, Strategy::LeastBusy).class,
            PriorityClass::Urgent
        );
        f.contact_attributes
            .insert("vip_level".into(), "none".into());
        assert_eq!(
            decide(&[], &f, Strategy::LeastBusy).class,
            PriorityClass::Normal
        );
    }
}
