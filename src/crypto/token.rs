//! Random secrets. Each has 256 bits from the OS random source, travels as
//! URL-safe base64 and is stored only as its SHA-256 hash.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The prefix of personal access tokens, so they are recognisable in a leak
/// scanner and distinguishable from session tokens and JWTs.
pub const PAT_PREFIX: &str = "tsr_pat_";

/// The longest secret Tessera accepts back (its own are 43 to 87
/// characters): anything longer is not one of ours, and is refused before
/// it is hashed or looked up.
pub const MAX_SECRET_LEN: usize = 128;

/// Whether `value` could be one of Tessera's secrets: not empty, not longer
/// than [`MAX_SECRET_LEN`].
pub fn plausible_secret(value: &str) -> bool {
    !value.is_empty() && value.len() <= MAX_SECRET_LEN
}

/// A fresh 256-bit secret, URL-safe base64 without padding (43 characters).
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn new_pat() -> String {
    format!("{PAT_PREFIX}{}", random_secret())
}

/// The at-rest form of a secret.
pub fn hash_secret(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// The CSRF token of a session, derived from its secret so nothing extra is
/// stored: knowing it reveals nothing about the session token.
pub fn csrf_token_for(session_secret: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"tessera-csrf-v1\0");
    hasher.update(session_secret.as_bytes());
    URL_SAFE_NO_PAD.encode(hasher.finalize())
}

pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// A short random identifier (not a secret), e.g. for tenant slugs.
pub fn short_id() -> String {
    let mut bytes = [0u8; 4];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_unique_and_url_safe() {
        let a = random_secret();
        let b = random_secret();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert!(new_pat().starts_with(PAT_PREFIX));
    }

    #[test]
    fn csrf_depends_on_the_session() {
        assert_ne!(csrf_token_for("a"), csrf_token_for("b"));
        assert!(constant_time_eq(&csrf_token_for("a"), &csrf_token_for("a")));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
    }
}

/// Values only Tessera can make: a random nonce and its HMAC-SHA256 under a
/// key kept in the database, `base64url(nonce).base64url(tag)`. A cookie
/// holding one cannot be planted by someone who can set cookies but does
/// not have the key (a sibling subdomain, a man in the middle on http).
pub struct Signer {
    key: ring::hmac::Key,
}

impl Signer {
    pub fn new(secret: &[u8]) -> Signer {
        Signer {
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret),
        }
    }

    /// A new signed value for `purpose`.
    pub fn issue(&self, purpose: &str) -> String {
        let mut nonce = [0u8; 32];
        OsRng.fill_bytes(&mut nonce);
        let nonce = URL_SAFE_NO_PAD.encode(nonce);
        let tag = ring::hmac::sign(&self.key, format!("{purpose}\0{nonce}").as_bytes());
        format!("{nonce}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// A value that only the key holder can compute from `input`, the same
    /// every time (a secret's successor, say): `base64url(HMAC(purpose, input))`.
    pub fn derive(&self, purpose: &str, input: &str) -> String {
        let tag = ring::hmac::sign(&self.key, format!("{purpose}\0{input}").as_bytes());
        URL_SAFE_NO_PAD.encode(tag.as_ref())
    }

    /// Whether `value` was made by `issue(purpose)` with this key.
    pub fn verify(&self, value: &str, purpose: &str) -> bool {
        if !plausible_secret(value) {
            return false;
        }
        let Some((nonce, tag)) = value.split_once('.') else {
            return false;
        };
        let Ok(tag) = URL_SAFE_NO_PAD.decode(tag) else {
            return false;
        };
        ring::hmac::verify(&self.key, format!("{purpose}\0{nonce}").as_bytes(), &tag).is_ok()
    }
}

#[cfg(test)]
mod signer_tests {
    use super::Signer;

    #[test]
    fn signed_values_verify_only_for_their_key_and_purpose() {
        let signer = Signer::new(b"k1k1k1k1k1k1k1k1k1k1k1k1k1k1k1k1");
        let value = signer.issue("form");
        assert!(signer.verify(&value, "form"));
        assert!(!signer.verify(&value, "other"));
        assert!(!Signer::new(b"k2k2k2k2k2k2k2k2k2k2k2k2k2k2k2k2").verify(&value, "form"));
        let (nonce, _) = value.split_once('.').unwrap();
        assert!(!signer.verify(nonce, "form"));
        assert!(!signer.verify(&format!("{nonce}.AAAA"), "form"));
        assert!(!signer.verify(&crate::crypto::token::random_secret(), "form"));
    }

    #[test]
    fn derived_values_are_stable_and_keyed() {
        let signer = Signer::new(b"k1k1k1k1k1k1k1k1k1k1k1k1k1k1k1k1");
        let other = Signer::new(b"k2k2k2k2k2k2k2k2k2k2k2k2k2k2k2k2");
        assert_eq!(signer.derive("next", "a"), signer.derive("next", "a"));
        assert_ne!(signer.derive("next", "a"), signer.derive("next", "b"));
        assert_ne!(signer.derive("next", "a"), signer.derive("other", "a"));
        assert_ne!(signer.derive("next", "a"), other.derive("next", "a"));
        assert_eq!(signer.derive("next", "a").len(), 43);
    }
}
