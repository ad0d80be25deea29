//! Field validators shared by every service's gRPC layer. Every violation names its
//! field; nothing here touches storage.

use uuid::Uuid;

use crate::grpc::Violations;

/// A machine name (skill, template, field, menu option): 1 to 64 of `[a-z0-9_-]`.
pub fn is_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Parses a required UUID field.
pub fn uuid(v: &mut Violations, field: &str, value: &str) -> Option<Uuid> {
    if value.is_empty() {
        v.add(field, "required");
        return None;
    }
    match value.parse() {
        Ok(id) => Some(id),
        Err(_) => {
            v.add(field, "must be a UUID");
            None
        }
    }
}

/// Parses an optional UUID field (empty → `None`).
pub fn opt_uuid(v: &mut Violations, field: &str, value: &str) -> Option<Uuid> {
    if value.is_empty() {
        None
    } else {
        uuid(v, field, value)
    }
}

/// Checks a text field's length in characters.
pub fn text(v: &mut Violations, field: &str, value: &str, required: bool, max_chars: usize) {
    if required && value.trim().is_empty() {
        v.add(field, "required");
    } else if value.chars().count() > max_chars {
        v.add(field, format!("at most {max_chars} characters"));
    }
    if value.contains('\0') {
        v.add(field, "must not contain NUL characters");
    }
}

/// Checks an email address loosely (one `@`, something on each side, no spaces).
pub fn email(v: &mut Violations, field: &str, value: &str) {
    if value.is_empty() {
        return;
    }
    let ok = value.len() <= 254
        && !value.contains(char::is_whitespace)
        && value
            .split_once('@')
            .is_some_and(|(a, b)| !a.is_empty() && b.contains('.') && !b.contains('@'));
    if !ok {
        v.add(field, "must be an email address");
    }
}

/// An enum field: a value the schema does not define is a violation naming the
/// field (never silently taken as the default); returns the value, or the default.
pub fn enumeration<E: TryFrom<i32> + Default>(v: &mut Violations, field: &str, raw: i32) -> E {
    match E::try_from(raw) {
        Ok(value) => value,
        Err(_) => {
            v.add(field, format!("unknown value {raw}"));
            E::default()
        }
    }
}
