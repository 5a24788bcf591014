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
