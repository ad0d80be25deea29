//! Standard Webhooks signing: `whsec_` secrets, and `v1,<base64 HMAC-SHA256>` over
//! `<webhook-id>.<webhook-timestamp>.<body>`, one signature per valid secret.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What every secret starts with.
pub const SECRET_PREFIX: &str = "whsec_";
/// Bytes of a generated secret's key.
const KEY_BYTES: usize = 24;

/// A fresh random secret, `whsec_<base64 of 24 bytes>`.
pub fn new_secret() -> String {
    let key: [u8; KEY_BYTES] = rand::random();
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

/// The key of a `whsec_` secret: base64 of 24 to 64 bytes.
pub fn key(secret: &str) -> Option<Vec<u8>> {
    let key = STANDARD.decode(secret.strip_prefix(SECRET_PREFIX)?).ok()?;
    (KEY_BYTES..=64).contains(&key.len()).then_some(key)
}

/// One `v1,` signature of `body` sent as message `id` at `timestamp` (Unix seconds).
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        unreachable!("HMAC takes keys of any length")
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The `webhook-signature` header: a signature per secret, space-separated (the
/// current secret first, then one still in its grace period). Unusable secrets are
/// skipped.
pub fn header(secrets: &[&str], id: &str, timestamp: i64, body: &str) -> String {
    secrets
        .iter()
        .filter_map(|s| key(s))
        .map(|k| sign(&k, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_parse_and_sign() {
        let secret = new_secret();
        assert!(secret.starts_with(SECRET_PREFIX));
        let k = key(&secret).expect("a generated secret parses");
        assert_eq!(k.len(), KEY_BYTES);
        assert_ne!(sign(&k, "a", 1, "{}"), sign(&k, "a", 2, "{}"));
        assert_eq!(key("whsec_c2hvcnQ="), None, "too short");
        assert_eq!(key("nope"), None);
    }

    #[test]
    fn the_header_carries_one_signature_per_secret() {
        let (a, b) = (new_secret(), new_secret());
        let h = header(&[&a, &b], "msg_1", 1_700_000_000, "{}");
        assert_eq!(h.split(' ').count(), 2);
        assert!(h.split(' ').all(|s| s.starts_with("v1,")));
    }
}
