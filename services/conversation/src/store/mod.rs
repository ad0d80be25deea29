//! SQL for the conversation schema. Every function takes a connection so callers
//! compose them in one transaction with the outbox writes; every query is scoped by
//! account.

pub mod contacts;
pub mod conversations;
pub mod inboxes;
pub mod messages;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Encodes an opaque page token.
pub fn encode_token(raw: &str) -> String {
    URL_SAFE_NO_PAD.encode(raw)
}

/// Decodes a page token produced by [`encode_token`]; `None` when malformed.
pub fn decode_token(token: &str) -> Option<String> {
    String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()
}

/// Trims rows fetched with `limit = size + 1` down to `size` and returns the token of
/// the next page (empty when this is the last page).
pub fn paginate<T>(rows: &mut Vec<T>, size: usize, cursor: impl Fn(&T) -> String) -> String {
    if rows.len() <= size {
        return String::new();
    }
    rows.truncate(size);
    rows.last()
        .map(|r| encode_token(&cursor(r)))
        .unwrap_or_default()
}
