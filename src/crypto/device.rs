//! Device cookies (OWASP, "Slow down online guessing attacks with device
//! cookies"): after a successful sign-in the client gets a value signed by
//! Tessera and bound to the account. A later attempt that carries one is
//! counted on the device's own budget, so failures from elsewhere cannot
//! lock the owner out of a device they have used before.
//!
//! The value is `base64url(user id ‖ device id ‖ issued at) . base64url(HMAC-SHA256)`;
//! the device id names the budget. Nothing is stored until it fails.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use rand::rngs::OsRng;
use rand::RngCore;
use ring::hmac;
use uuid::Uuid;

/// The longest value worth decoding (a real one is 98 characters).
const MAX_LEN: usize = 200;

pub struct DeviceKey {
    key: hmac::Key,
}

impl DeviceKey {
    pub fn new(secret: &[u8]) -> DeviceKey {
        DeviceKey {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    /// A new cookie value for `user_id`, naming a new device.
    pub fn issue(&self, user_id: Uuid, now: DateTime<Utc>) -> String {
        let mut device = [0u8; 16];
        OsRng.fill_bytes(&mut device);
        let mut payload = Vec::with_capacity(40);
        payload.extend_from_slice(user_id.as_bytes());
        payload.extend_from_slice(&device);
        payload.extend_from_slice(&now.timestamp().to_be_bytes());
        let tag = hmac::sign(&self.key, &payload);
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(tag.as_ref())
        )
    }

    /// The device id (hex) when `value` is a cookie Tessera signed for
    /// `user_id` no longer than `max_age` ago.
    pub fn verify(
        &self,
        value: &str,
        user_id: Uuid,
        now: DateTime<Utc>,
        max_age: Duration,
    ) -> Option<String> {
        if value.len() > MAX_LEN {
            return None;
        }
        let (payload, tag) = value.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        if payload.len() != 40 {
            return None;
        }
        // Constant time: the signature is what makes the value worth anything.
        hmac::verify(&self.key, &payload, &tag).ok()?;
        if payload[..16] != user_id.as_bytes()[..] {
            return None;
        }
        let issued = i64::from_be_bytes(payload[32..40].try_into().ok()?);
        let issued = DateTime::from_timestamp(issued, 0)?;
        if issued > now + Duration::minutes(5) || now - issued > max_age {
            return None;
        }
        Some(hex::encode(&payload[16..32]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_names_one_device_of_one_account() {
        let key = DeviceKey::new(b"0123456789abcdef0123456789abcdef");
        let user = Uuid::new_v4();
        let now = Utc::now();
        let year = Duration::days(365);
        let value = key.issue(user, now);
        let device = key.verify(&value, user, now, year).expect("valid");
        assert_eq!(device.len(), 32);
        assert_ne!(
            key.issue(user, now),
            value,
            "each sign-in names a new device"
        );
        // Bound to its account.
        assert_eq!(key.verify(&value, Uuid::new_v4(), now, year), None);
        // Expires.
        assert_eq!(
            key.verify(&value, user, now + year + Duration::days(1), year),
            None
        );
        // Signed with this key only.
        let other = DeviceKey::new(b"another key, another deployment.");
        assert_eq!(other.verify(&value, user, now, year), None);
        // Tampered or malformed values are nothing.
        let mut tampered = value.clone().into_bytes();
        tampered[3] ^= 1;
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(key.verify(&tampered, user, now, year), None);
        for junk in ["", ".", "abc", "a.b", &"x".repeat(300)] {
            assert_eq!(key.verify(junk, user, now, year), None);
        }
    }
}
