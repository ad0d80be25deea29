//! An inbox's bot: who it is, and when a visitor asks it for a human.

use helpdesk_kit::auth::{Claims, Role};
use helpdesk_kit::grpc::Violations;
use helpdesk_kit::validate::is_name as is_choice;
use helpdesk_proto::conversation::v1::{HandoffTrigger, InboxBot, MenuOption};
use serde::{Deserialize, Serialize};

/// Most handoff phrases or choices an inbox keeps.
const MAX_TRIGGERS: usize = 20;
/// Longest handoff phrase.
const MAX_PHRASE_CHARS: usize = 100;
/// Most options one message offers.
pub const MAX_MENU_OPTIONS: usize = 10;
/// Longest option label.
const MAX_LABEL_CHARS: usize = 100;

/// An inbox's bot, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bot {
    pub enabled: bool,
    pub integration_id: String,
    pub handoff_phrases: Vec<String>,
    pub handoff_choices: Vec<String>,
}

/// The words of `s`, lower-cased (letters and digits; everything else separates).
fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

impl Bot {
    /// Checks an inbox's bot (`field` names it, e.g. `inbox.bot`); `None` when not
    /// enabled. Unset phrases on a new bot get the defaults.
    pub fn check(v: &mut Violations, field: &str, b: Option<&InboxBot>) -> Option<Self> {
        let b = b.filter(|b| b.enabled)?;
        let id = b.integration_id.trim();
        if id.len() > 128 || id.contains(char::is_whitespace) {
            v.add(
                format!("{field}.integration_id"),
                "an integration's token subject: at most 128 characters, no whitespace",
            );
        }
        let mut phrases: Vec<String> = b
            .handoff_phrases
            .iter()
            .map(|p| words(p).join(" "))
            .collect();
        for (i, p) in b.handoff_phrases.iter().enumerate() {
            if words(p).is_empty() || p.chars().count() > MAX_PHRASE_CHARS {
                v.add(
                    format!("{field}.handoff_phrases[{i}]"),
                    format!("1-{MAX_PHRASE_CHARS} characters with at least one word"),
                );
            }
        }
        if b.handoff_phrases.is_empty() {
            phrases = ["human", "agent", "real person"].map(String::from).to_vec();
        }
        for (i, c) in b.handoff_choices.iter().enumerate() {
            if !is_choice(c) {
                v.add(
                    format!("{field}.handoff_choices[{i}]"),
                    "1-64 characters of [a-z0-9_-]",
                );
            }
        }
        for (name, n) in [
            ("handoff_phrases", b.handoff_phrases.len()),
            ("handoff_choices", b.handoff_choices.len()),
        ] {
            if n > MAX_TRIGGERS {
                v.add(format!("{field}.{name}"), format!("at most {MAX_TRIGGERS}"));
            }
        }
        phrases.sort();
        phrases.dedup();
        let mut choices = b.handoff_choices.clone();
        choices.sort();
        choices.dedup();
        Some(Self {
            enabled: true,
            integration_id: id.to_string(),
            handoff_phrases: phrases,
            handoff_choices: choices,
        })
    }

    /// As the API shows it.
    pub fn to_proto(&self) -> InboxBot {
        InboxBot {
            enabled: self.enabled,
            integration_id: self.integration_id.clone(),
            handoff_phrases: self.handoff_phrases.clone(),
            handoff_choices: self.handoff_choices.clone(),
        }
    }

    /// Whether `claims` are this bot's: its integration, or any integration when the
    /// inbox names none.
    pub fn is_the_bot(&self, claims: &Claims) -> bool {
        claims.role == Role::Integration
            && (self.integration_id.is_empty() || self.integration_id == claims.sub)
    }

    /// Whether `claims` are an integration the inbox names as its bot (and so must
    /// not write once a human has the conversation).
    pub fn is_named_bot(&self, claims: &Claims) -> bool {
        claims.role == Role::Integration
            && !self.integration_id.is_empty()
            && self.integration_id == claims.sub
    }

    /// Whether a visitor's message asks for a human: one of the handoff choices
    /// picked, or one of the phrases among its words.
    pub fn asks_for_human(&self, content: &str, choice: &str) -> Option<HandoffTrigger> {
        if !choice.is_empty() && self.handoff_choices.iter().any(|c| c == choice) {
            return Some(HandoffTrigger::Menu);
        }
        let said = words(content);
        self.handoff_phrases
            .iter()
            .map(|p| p.split(' ').collect::<Vec<_>>())
            .any(|p| !p.is_empty() && said.windows(p.len()).any(|w| w == p.as_slice()))
            .then_some(HandoffTrigger::Phrase)
    }
}

/// Checks the options a message offers.
pub fn check_menu(v: &mut Violations, menu: &[MenuOption]) {
    if menu.len() > MAX_MENU_OPTIONS {
        v.add("menu", format!("at most {MAX_MENU_OPTIONS} options"));
    }
    for (i, o) in menu.iter().enumerate() {
        if !is_choice(&o.id) {
            v.add(format!("menu[{i}].id"), "1-64 characters of [a-z0-9_-]");
        }
        if o.label.trim().is_empty() || o.label.chars().count() > MAX_LABEL_CHARS {
            v.add(
                format!("menu[{i}].label"),
                format!("1-{MAX_LABEL_CHARS} characters"),
            );
        }
        if menu[..i].iter().any(|earlier| earlier.id == o.id) {
            v.add(format!("menu[{i}].id"), "listed twice");
        }
    }
}

/// Checks a visitor's menu choice.
pub fn check_choice(v: &mut Violations, choice: &str) {
    if !choice.is_empty() && !is_choice(choice) {
        v.add("menu_choice", "1-64 characters of [a-z0-9_-]");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bot(phrases: &[&str], choices: &[&str]) -> Bot {
        let mut v = Violations::new();
        let b = Bot::check(
            &mut v,
            "inbox.bot",
            Some(&InboxBot {
                enabled: true,
                integration_id: String::new(),
                handoff_phrases: phrases.iter().map(|s| s.to_string()).collect(),
                handoff_choices: choices.iter().map(|s| s.to_string()).collect(),
            }),
        );
        assert!(v.into_result().is_ok());
        b.expect("enabled")
    }

    #[test]
    fn phrases_match_whole_words_in_any_case() {
        let b = bot(&["Talk to a person", "human"], &["human"]);
        assert_eq!(
            b.asks_for_human("Can I TALK to a person, please?", ""),
            Some(HandoffTrigger::Phrase)
        );
        assert_eq!(b.asks_for_human("human!", ""), Some(HandoffTrigger::Phrase));
        assert_eq!(b.asks_for_human("inhuman service", ""), None);
        assert_eq!(b.asks_for_human("talk to a bot", ""), None);
        assert_eq!(b.asks_for_human("", "human"), Some(HandoffTrigger::Menu));
        assert_eq!(b.asks_for_human("", "billing"), None);
    }

    #[test]
    fn a_new_bot_has_default_phrases_and_bad_ones_are_named() {
        let b = bot(&[], &[]);
        assert_eq!(
            b.asks_for_human("I want an agent", ""),
            Some(HandoffTrigger::Phrase)
        );
        let mut v = Violations::new();
        let _ = Bot::check(
            &mut v,
            "inbox.bot",
            Some(&InboxBot {
                enabled: true,
                handoff_phrases: vec!["?!".into()],
                handoff_choices: vec!["Not A Choice".into()],
                ..Default::default()
            }),
        );
        let e = v.into_result().expect_err("bad triggers");
        let fields = helpdesk_kit::grpc::violated_fields(&e);
        assert_eq!(
            fields,
            vec![
                "inbox.bot.handoff_phrases[0]",
                "inbox.bot.handoff_choices[0]"
            ]
        );
    }
}
