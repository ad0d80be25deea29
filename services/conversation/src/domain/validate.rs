//! Input limits and field validators. Every violation names its field.

use std::collections::HashMap;

use helpdesk_kit::grpc::Violations;
use helpdesk_proto::conversation::v1::{Attachment, DeviceInfo};

/// Longest message text, in characters.
pub const MAX_CONTENT_CHARS: usize = 10_000;
/// Longest satisfaction-rating comment, in characters.
pub const MAX_CSAT_COMMENT_CHARS: usize = 2_000;
/// Most attachments on one message.
pub const MAX_ATTACHMENTS: usize = 10;
/// Largest attachment size accepted as metadata (bytes).
pub const MAX_ATTACHMENT_BYTES: i64 = 100 * 1024 * 1024;
/// Most labels on a conversation.
pub const MAX_LABELS: usize = 20;
/// Most custom attributes on a conversation or contact.
pub const MAX_ATTRIBUTES: usize = 50;
/// Largest total size of a conversation's or contact's custom attributes (keys and
/// values, bytes), also once a contact's stored attributes are merged with new ones.
pub const MAX_ATTRIBUTE_BYTES: usize = 32 * 1024;
pub use helpdesk_kit::page::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, page_size};
pub use helpdesk_kit::validate::{email, opt_uuid, text, uuid};

/// Checks a map of custom attributes.
pub fn attributes(v: &mut Violations, field: &str, attrs: &HashMap<String, String>) {
    attributes_total(v, field, attrs, "");
    for (k, val) in attrs {
        if !attribute_key_ok(k) {
            v.add(
                format!("{field}.{k}"),
                "keys are 1-64 characters of [A-Za-z0-9_-]",
            );
        } else if val.chars().count() > 1024 {
            v.add(format!("{field}.{k}"), "values are at most 1024 characters");
        }
    }
}

/// A custom attribute key: 1-64 characters of `[A-Za-z0-9_-]`.
pub fn attribute_key_ok(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 64
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Checks the number and total size of custom attributes; `context` says which map
/// (e.g. " together with the contact's stored attributes").
pub fn attributes_total(
    v: &mut Violations,
    field: &str,
    attrs: &HashMap<String, String>,
    context: &str,
) {
    if attrs.len() > MAX_ATTRIBUTES {
        v.add(
            field,
            format!("at most {MAX_ATTRIBUTES} attributes{context}"),
        );
    }
    let bytes: usize = attrs.iter().map(|(k, val)| k.len() + val.len()).sum();
    if bytes > MAX_ATTRIBUTE_BYTES {
        v.add(
            field,
            format!("at most {MAX_ATTRIBUTE_BYTES} bytes of keys and values{context}"),
        );
    }
}

/// Normalises labels (trimmed, lowercase, unique, sorted) and checks them.
pub fn labels(v: &mut Violations, field: &str, labels: &[String]) -> Vec<String> {
    let mut out: Vec<String> = labels.iter().map(|l| l.trim().to_lowercase()).collect();
    out.sort();
    out.dedup();
    if out.len() > MAX_LABELS {
        v.add(field, format!("at most {MAX_LABELS} labels"));
    }
    for l in &out {
        if l.is_empty()
            || l.len() > 64
            || !l
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            v.add(
                field,
                format!("label {l:?} must be 1-64 characters of [a-z0-9_-]"),
            );
        }
    }
    out
}

/// Checks device info fields.
pub fn device(v: &mut Violations, field: &str, d: &DeviceInfo) {
    for (name, value) in [
        ("app_version", &d.app_version),
        ("os", &d.os),
        ("network_type", &d.network_type),
        ("current_page", &d.current_page),
        ("user_agent", &d.user_agent),
        ("locale", &d.locale),
    ] {
        text(v, &format!("{field}.{name}"), value, false, 1000);
    }
}

/// Checks message content and attachments.
pub fn message_body(v: &mut Violations, content: &str, attachments: &[Attachment]) {
    if content.trim().is_empty() && attachments.is_empty() {
        v.add("content", "required (or at least one attachment)");
    }
    text(v, "content", content, false, MAX_CONTENT_CHARS);
    if attachments.len() > MAX_ATTACHMENTS {
        v.add(
            "attachments",
            format!("at most {MAX_ATTACHMENTS} attachments"),
        );
    }
    for (i, a) in attachments.iter().enumerate() {
        text(v, &format!("attachments[{i}].name"), &a.name, true, 255);
        text(v, &format!("attachments[{i}].url"), &a.url, true, 2048);
        text(
            v,
            &format!("attachments[{i}].content_type"),
            &a.content_type,
            false,
            255,
        );
        if a.size_bytes < 0 || a.size_bytes > MAX_ATTACHMENT_BYTES {
            v.add(
                format!("attachments[{i}].size_bytes"),
                format!("must be 0..={MAX_ATTACHMENT_BYTES}"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversize_and_empty_content_name_the_field() {
        let mut v = Violations::new();
        message_body(&mut v, "", &[]);
        let status = v.into_result().expect_err("empty content");
        assert_eq!(
            helpdesk_kit::grpc::violated_fields(&status),
            vec!["content"]
        );

        let mut v = Violations::new();
        message_body(&mut v, &"x".repeat(MAX_CONTENT_CHARS + 1), &[]);
        assert!(v.into_result().is_err());
    }

    #[test]
    fn labels_are_normalised() {
        let mut v = Violations::new();
        let out = labels(
            &mut v,
            "labels",
            &[" VIP ".into(), "vip".into(), "billing".into()],
        );
        assert_eq!(out, vec!["billing", "vip"]);
        assert!(v.into_result().is_ok());
    }

    #[test]
    fn page_size_is_coerced() {
        let mut v = Violations::new();
        assert_eq!(page_size(&mut v, 0), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(&mut v, 1000), MAX_PAGE_SIZE);
        assert!(v.into_result().is_ok());
        let mut v = Violations::new();
        page_size(&mut v, -1);
        assert!(v.into_result().is_err());
    }
}
