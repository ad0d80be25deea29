//! AIP-158 pagination: opaque page tokens and page sizes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::grpc::Violations;

/// Page size when the request gives none.
pub const DEFAULT_PAGE_SIZE: usize = 25;
/// Largest page size; larger requests are coerced down (AIP-158).
pub const MAX_PAGE_SIZE: usize = 100;

/// Encodes an opaque page token.
pub fn encode_token(raw: &str) -> String {
    URL_SAFE_NO_PAD.encode(raw)
}

/// Decodes a page token produced by [`encode_token`]; `None` when malformed.
pub fn decode_token(token: &str) -> Option<String> {
    String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()
}

/// The raw cursor of a row ordered by `(time, id)`, for [`paginate`].
pub fn time_cursor(at: chrono::DateTime<chrono::Utc>, id: uuid::Uuid) -> String {
    format!("{}|{id}", at.to_rfc3339())
}

/// The `(time, id)` cursor of a page token made from [`time_cursor`] (`None` for the
/// first page); a token this service did not issue is a violation of `page_token`.
pub fn decode_time_cursor(
    v: &mut Violations,
    token: &str,
) -> Option<(chrono::DateTime<chrono::Utc>, uuid::Uuid)> {
    if token.is_empty() {
        return None;
    }
    let parsed = decode_token(token).and_then(|raw| {
        let (at, id) = raw.split_once('|')?;
        Some((at.parse().ok()?, id.parse().ok()?))
    });
    if parsed.is_none() {
        v.add("page_token", "not a token this service issued");
    }
    parsed
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

/// Checks a page size and returns the effective one.
pub fn page_size(v: &mut Violations, value: i32) -> usize {
    if value < 0 {
        v.add("page_size", "must not be negative");
        DEFAULT_PAGE_SIZE
    } else if value == 0 {
        DEFAULT_PAGE_SIZE
    } else {
        (value as usize).min(MAX_PAGE_SIZE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_page_has_no_token_and_tokens_round_trip() {
        let mut rows = vec![1, 2, 3];
        assert_eq!(paginate(&mut rows, 3, |r| r.to_string()), "");
        let mut rows = vec![1, 2, 3, 4];
        let token = paginate(&mut rows, 3, |r| format!("n:{r}"));
        assert_eq!(rows, vec![1, 2, 3]);
        assert_eq!(decode_token(&token).as_deref(), Some("n:3"));
        assert_eq!(decode_token("!!"), None);
    }
}
