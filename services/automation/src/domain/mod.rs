//! Pure decisions of the automation service: rules checked and evaluated against the
//! facts of an event, the keys that make actions idempotent and delayed runs
//! episode-bound, and the placeholders of what rules write.

pub mod facts;
pub mod rules;

use facts::Facts;

/// An idempotency key from its parts: `auto:` and 40 hex digits of their digest.
pub fn key(parts: &[&str]) -> String {
    helpdesk_kit::command::derived_id("auto", &parts.join("\u{1f}"))
}

/// `text` with `{{contact.name}}`, `{{contact.email}}`, `{{conversation.id}}` and
/// `{{ticket.number}}` filled in from `facts` (empty when unknown).
pub fn fill(text: &str, facts: &Facts) -> String {
    if !text.contains("{{") {
        return text.to_string();
    }
    let contact = facts.contact.as_ref();
    let values = [
        ("{{contact.name}}", contact.map(|c| c.name.clone())),
        ("{{contact.email}}", contact.map(|c| c.email.clone())),
        (
            "{{conversation.id}}",
            facts.conversation.as_ref().map(|c| c.id.clone()),
        ),
        (
            "{{ticket.number}}",
            facts.ticket.as_ref().map(|t| t.number.to_string()),
        ),
    ];
    let mut out = text.to_string();
    for (name, value) in values {
        out = out.replace(name, &value.unwrap_or_default());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use helpdesk_proto::conversation::v1::Contact;

    #[test]
    fn keys_are_bounded_and_distinct() {
        let a = key(&["event", "rule", "0"]);
        let b = key(&["event", "rule", "1"]);
        assert_ne!(a, b);
        assert_eq!(a.len(), 45);
        // Parts are separated: moving text from one to the next is another key.
        assert_ne!(key(&["ab", "c"]), key(&["a", "bc"]));
    }

    #[test]
    fn fills_placeholders() {
        let facts = Facts {
            contact: Some(Contact {
                name: "Zoe".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            fill("Hi {{contact.name}}, ticket {{ticket.number}}", &facts),
            "Hi Zoe, ticket "
        );
    }
}
