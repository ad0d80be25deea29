//! Email templates: `{{name}}` placeholders filled from a map of values, escaped in
//! the HTML part; a built-in template per kind, which an account may override.

use std::collections::BTreeMap;

use helpdesk_proto::notification::v1::EmailKind;

/// A template's three parts.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Template {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// An email's filled-in parts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Longest template part.
pub const MAX_TEMPLATE_CHARS: usize = 20_000;

/// The built-in template of `kind`.
pub fn built_in(kind: EmailKind) -> Template {
    let (subject, text, html) = match kind {
        EmailKind::TicketCreated => (
            "[#{{ticket.number}}] {{ticket.subject}}",
            "Hello {{requester.name}},\n\nWe received your request #{{ticket.number}} \"{{ticket.subject}}\" and will get back to you soon. Reply to this email to add to it.\n\n{{sender.name}}",
            "<p>Hello {{requester.name}},</p><p>We received your request #{{ticket.number}} &ldquo;{{ticket.subject}}&rdquo; and will get back to you soon. Reply to this email to add to it.</p><p>{{sender.name}}</p>",
        ),
        EmailKind::TicketStatusChanged => (
            "[#{{ticket.number}}] {{ticket.subject}}: {{ticket.status}}",
            "Hello {{requester.name}},\n\nYour request #{{ticket.number}} \"{{ticket.subject}}\" is now: {{ticket.status}}.\n\n{{sender.name}}",
            "<p>Hello {{requester.name}},</p><p>Your request #{{ticket.number}} &ldquo;{{ticket.subject}}&rdquo; is now: <strong>{{ticket.status}}</strong>.</p><p>{{sender.name}}</p>",
        ),
        EmailKind::TicketReply => (
            "Re: [#{{ticket.number}}] {{ticket.subject}}",
            "{{comment.body}}\n\n--\n{{sender.name}}\nRequest #{{ticket.number}}: reply to this email to answer.",
            "<div style=\"white-space: pre-wrap\">{{comment.body}}</div><p>&mdash;<br>{{sender.name}}<br>Request #{{ticket.number}}: reply to this email to answer.</p>",
        ),
        EmailKind::ConversationTranscript => (
            "Your conversation with {{sender.name}}",
            "Hello {{requester.name}},\n\nHere is your conversation with us:\n\n{{transcript}}\n\n{{sender.name}}",
            "<p>Hello {{requester.name}},</p><p>Here is your conversation with us:</p><pre>{{transcript}}</pre><p>{{sender.name}}</p>",
        ),
        EmailKind::AutomaticReply => (
            "Re: {{subject}}",
            "{{body}}\n\n{{sender.name}}",
            "<div style=\"white-space: pre-wrap\">{{body}}</div><p>{{sender.name}}</p>",
        ),
        EmailKind::ConversationReply => (
            "Re: {{subject}}",
            "{{body}}\n\n--\n{{sender.name}}\nReply to this email to answer.",
            "<div style=\"white-space: pre-wrap\">{{body}}</div><p>&mdash;<br>{{sender.name}}<br>Reply to this email to answer.</p>",
        ),
        EmailKind::TeamAlert | EmailKind::Unspecified => (
            "{{subject}}",
            "{{body}}",
            "<div style=\"white-space: pre-wrap\">{{body}}</div>",
        ),
    };
    Template {
        subject: subject.into(),
        text: text.into(),
        html: html.into(),
    }
}

/// `template` with every field of `over` that is not empty put in its place.
pub fn overlay(template: Template, over: Option<&Template>) -> Template {
    let Some(over) = over else {
        return template;
    };
    let pick = |a: String, b: &str| if b.is_empty() { a } else { b.to_string() };
    Template {
        subject: pick(template.subject, &over.subject),
        text: pick(template.text, &over.text),
        html: pick(template.html, &over.html),
    }
}

/// Fills `template` in; unknown names become empty. Subjects lose line breaks (a
/// value cannot add a header).
pub fn render(template: &Template, values: &BTreeMap<String, String>) -> Rendered {
    let subject = fill(&template.subject, values, |v| v.to_string());
    Rendered {
        subject: subject
            .replace(['\r', '\n'], " ")
            .trim()
            .chars()
            .take(250)
            .collect(),
        text: fill(&template.text, values, |v| v.to_string()),
        html: fill(&template.html, values, escape),
    }
}

fn fill(
    template: &str,
    values: &BTreeMap<String, String>,
    encode: impl Fn(&str) -> String,
) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let name = after[..end].trim();
                if let Some(v) = values.get(name) {
                    out.push_str(&encode(v));
                }
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Text as HTML text.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn placeholders_are_filled_and_escaped_in_html_only() {
        let t = Template {
            subject: "#{{n}} {{ s }}".into(),
            text: "Hi {{name}}, {{missing}}!".into(),
            html: "<p>{{name}}</p>".into(),
        };
        let r = render(
            &t,
            &values(&[("n", "7"), ("s", "a\r\nBcc: x"), ("name", "<b>Jo</b>")]),
        );
        assert_eq!(r.subject, "#7 a  Bcc: x");
        assert_eq!(r.text, "Hi <b>Jo</b>, !");
        assert_eq!(r.html, "<p>&lt;b&gt;Jo&lt;/b&gt;</p>");
    }

    #[test]
    fn an_override_replaces_only_what_it_gives() {
        let base = built_in(EmailKind::TicketCreated);
        let over = Template {
            subject: "Got it: {{ticket.subject}}".into(),
            ..Default::default()
        };
        let t = overlay(base.clone(), Some(&over));
        assert_eq!(t.subject, "Got it: {{ticket.subject}}");
        assert_eq!(t.text, base.text);
        assert!(!render(&t, &values(&[])).text.contains("{{"));
        assert_eq!(
            fill("a {{ unclosed", &values(&[]), |v| v.into()),
            "a {{ unclosed"
        );
    }
}
