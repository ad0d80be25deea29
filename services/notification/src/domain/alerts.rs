//! Agent notifications: default preferences per kind, and who a private note
//! mentions.

use helpdesk_proto::notification::v1::{NotificationKind, NotificationPreference};

/// Every kind an agent can be notified of.
pub const KINDS: [NotificationKind; 8] = [
    NotificationKind::Assignment,
    NotificationKind::TransferOffer,
    NotificationKind::Mention,
    NotificationKind::MessageWhileAway,
    NotificationKind::SlaWarning,
    NotificationKind::SlaBreach,
    NotificationKind::QueueOverflow,
    NotificationKind::TicketAssigned,
];

/// The preference of a kind the agent never set: in the workbench always; by email
/// never (an agent opts in); a sound for what needs an answer now; a desktop
/// notification for what is addressed to the agent.
pub fn default_preference(kind: NotificationKind) -> NotificationPreference {
    use NotificationKind::*;
    NotificationPreference {
        kind: kind as i32,
        in_app: true,
        email: false,
        sound: matches!(kind, Assignment | TransferOffer | MessageWhileAway),
        desktop: matches!(kind, Assignment | TransferOffer | Mention | SlaBreach),
    }
}

/// The handles `@name` in `text`: letters, digits and `._-` after an `@` that starts
/// the text or follows a space or punctuation (not an email address), lowercased,
/// each once.
pub fn mentions(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if *c != '@' {
            continue;
        }
        if i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '.') {
            continue;
        }
        let handle: String = chars[i + 1..]
            .iter()
            .take_while(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'))
            .collect();
        let handle = handle.trim_end_matches(['.', '-']).to_lowercase();
        if !handle.is_empty() && !out.contains(&handle) {
            out.push(handle);
        }
    }
    out
}

/// The handle an agent is mentioned by besides their id: their name without spaces,
/// lowercased (`@AnaLima` for "Ana Lima").
pub fn handle_of_name(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_handles_not_email_addresses() {
        assert_eq!(
            mentions("@ana please look, cc @Li.Wei and @ana. Mail jo@example.com"),
            vec!["ana", "li.wei"]
        );
        assert!(mentions("no one here").is_empty());
        assert_eq!(mentions("(@bo)"), vec!["bo"]);
        assert_eq!(handle_of_name("Ana Lima"), "analima");
    }

    #[test]
    fn defaults_ring_for_what_needs_an_answer_now() {
        let offer = default_preference(NotificationKind::TransferOffer);
        assert!(offer.in_app && offer.sound && offer.desktop && !offer.email);
        let overflow = default_preference(NotificationKind::QueueOverflow);
        assert!(overflow.in_app && !overflow.sound && !overflow.desktop);
    }
}
