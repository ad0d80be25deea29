//! Visitor identity verification: the customer's own backend signs a signed-in
//! user's external id with the inbox's identity secret (HMAC-SHA256, lowercase hex),
//! and the widget passes the signature along. Only a verified external id may match,
//! claim or be merged into an existing contact.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Whether `hash` is the hex HMAC-SHA256 of `external_id` under `secret` (compared
/// in constant time). An empty secret verifies nothing.
pub fn verified(secret: &str, external_id: &str, hash: &str) -> bool {
    if secret.is_empty() || external_id.is_empty() {
        return false;
    }
    let Some(expected) = decode_hex(hash.trim()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(external_id.as_bytes());
    mac.verify_slice(&expected).is_ok()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a customer's backend computes.
    fn hash(secret: &str, external_id: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key");
        mac.update(external_id.as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn only_the_secrets_own_hash_of_that_id_verifies() {
        let h = hash("s3cret", "user-42");
        assert_eq!(h.len(), 64);
        assert!(verified("s3cret", "user-42", &h));
        assert!(verified("s3cret", "user-42", &h.to_uppercase()));
        assert!(!verified("s3cret", "user-43", &h));
        assert!(!verified("other", "user-42", &h));
        assert!(!verified("", "user-42", &hash("", "user-42")));
        assert!(!verified("s3cret", "user-42", "not hex"));
        assert!(!verified("s3cret", "user-42", ""));
    }
}
