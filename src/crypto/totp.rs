//! TOTP (RFC 6238: SHA-1, 6 digits, 30 s steps, one step of skew either
//! way) with totp-rs, secrets sealed at rest with AES-256-GCM (ring), and
//! backup codes.

use rand::rngs::OsRng;
use rand::RngCore;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use totp_rs::{Algorithm, TOTP};

use super::token::constant_time_eq;

pub const STEP_SECONDS: u64 = 30;
const DIGITS: usize = 6;
/// 160 bits, as RFC 4226 recommends.
const SECRET_BYTES: usize = 20;
pub const BACKUP_CODES: usize = 10;

/// Seals and opens TOTP secrets with the server's key.
pub struct SecretBox(LessSafeKey);

impl SecretBox {
    /// `key` must be 32 bytes.
    pub fn new(key: &[u8]) -> anyhow::Result<SecretBox> {
        let key = UnboundKey::new(&AES_256_GCM, key)
            .map_err(|_| anyhow::anyhow!("the TOTP encryption key must be 32 bytes"))?;
        Ok(SecretBox(LessSafeKey::new(key)))
    }

    /// nonce ‖ ciphertext ‖ tag
    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let mut sealed = plaintext.to_vec();
        // Sealing in place cannot fail for inputs this small.
        let _ = self.0.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::empty(),
            &mut sealed,
        );
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        out
    }

    pub fn open(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buffer = rest.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::empty(), &mut buffer)
            .ok()?;
        Some(plain.to_vec())
    }
}

pub fn new_secret() -> Vec<u8> {
    let mut secret = vec![0u8; SECRET_BYTES];
    OsRng.fill_bytes(&mut secret);
    secret
}

/// A 256-bit key for [`SecretBox`].
pub fn new_secret_key() -> Vec<u8> {
    let mut key = vec![0u8; 32];
    OsRng.fill_bytes(&mut key);
    key
}

/// The generator for `secret`, labelled `issuer:account` in apps.
pub fn totp(secret: Vec<u8>, issuer: &str, account: &str) -> anyhow::Result<TOTP> {
    TOTP::new(
        Algorithm::SHA1,
        DIGITS,
        1,
        STEP_SECONDS,
        secret,
        Some(issuer.replace(':', " ")),
        account.replace(':', " "),
    )
    .map_err(|e| anyhow::anyhow!("building the TOTP generator: {e}"))
}

/// The step (`unix time / 30`) within one step of `now` whose code is
/// `code`, compared in constant time.
pub fn matching_step(totp: &TOTP, code: &str, now_unix: i64) -> Option<i64> {
    let code = code.trim();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now_step = now_unix.div_euclid(STEP_SECONDS as i64);
    let mut found = None;
    for step in [now_step - 1, now_step, now_step + 1] {
        let Ok(at) = u64::try_from(step * STEP_SECONDS as i64) else {
            continue;
        };
        if constant_time_eq(&totp.generate(at), code) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// Ten backup codes of 64 random bits each, as `xxxx-xxxx-xxxx-xxxx` hex.
pub fn new_backup_codes() -> Vec<String> {
    (0..BACKUP_CODES)
        .map(|_| {
            let mut bytes = [0u8; 8];
            OsRng.fill_bytes(&mut bytes);
            let hex = hex::encode(bytes);
            format!(
                "{}-{}-{}-{}",
                &hex[0..4],
                &hex[4..8],
                &hex[8..12],
                &hex[12..16]
            )
        })
        .collect()
}

/// A backup code as typed, reduced to what is hashed: hex digits only,
/// lower-case (dashes, spaces and case do not matter).
pub fn normalize_backup_code(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_key() {
        let key = [7u8; 32];
        let sealed = SecretBox::new(&key).unwrap().seal(b"secret");
        assert_ne!(&sealed[NONCE_LEN..NONCE_LEN + 6], b"secret");
        assert_eq!(
            SecretBox::new(&key).unwrap().open(&sealed).unwrap(),
            b"secret"
        );
        assert!(SecretBox::new(&[8u8; 32]).unwrap().open(&sealed).is_none());
        assert!(SecretBox::new(&[1u8; 31]).is_err());
    }

    #[test]
    fn rfc_6238_vectors_and_one_step_of_skew() {
        // RFC 6238 appendix B, SHA-1, truncated to 6 digits.
        let totp = totp(b"12345678901234567890".to_vec(), "T", "a@b").unwrap();
        assert_eq!(matching_step(&totp, "287082", 59), Some(1));
        assert_eq!(matching_step(&totp, "081804", 1111111109), Some(37037036));
        assert_eq!(
            matching_step(&totp, "081804", 1111111109 + 30),
            Some(37037036)
        );
        assert_eq!(matching_step(&totp, "081804", 1111111109 + 60), None);
        assert_eq!(matching_step(&totp, "08180", 1111111109), None);
        assert_eq!(matching_step(&totp, "08180x", 1111111109), None);
    }

    #[test]
    fn backup_codes_have_64_bits_and_normalise() {
        let codes = new_backup_codes();
        assert_eq!(codes.len(), 10);
        let unique: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), 10);
        let code = &codes[0];
        assert_eq!(normalize_backup_code(code).len(), 16);
        assert_eq!(
            normalize_backup_code(&code.to_uppercase().replace('-', " ")),
            normalize_backup_code(code)
        );
    }
}
