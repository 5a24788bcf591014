//! Two-step verification, with codes computed by an independent RFC 6238
//! implementation (HMAC-SHA1 from the `hmac` and `sha1` crates), never by
//! Tessera's own.

use hmac::{Hmac, Mac};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use sha1::Sha1;

use super::{body, set_cookie, TestApp, PASSWORD};

/// RFC 4648 base32 without padding, as authenticator apps read it.
pub fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut value, mut out) = (0u32, 0u32, Vec::new());
    for c in text.trim_end_matches('=').bytes() {
        let index = ALPHABET.iter().position(|&a| a == c).expect("base32") as u32;
        value = (value << 5) | index;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((value >> bits) as u8);
            value &= (1 << bits) - 1;
        }
    }
    out
}

/// The six-digit TOTP code of `secret` (base32) at unix time `at`.
pub fn totp_at(secret: &str, at: i64) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(&base32_decode(secret)).unwrap();
    mac.update(&((at / 30) as u64).to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = (digest[19] & 0x0f) as usize;
    let number = u32::from_be_bytes(digest[offset..offset + 4].try_into().unwrap()) & 0x7fff_ffff;
    format!("{:06}", number % 1_000_000)
}

/// TOTP turned on: the secret and the answer of the enabling call.
pub struct Totp {
    pub secret: String,
    /// The body of `POST /api/v1/auth/2fa/totp/enable`.
    pub enabled: Value,
}

impl Totp {
    /// The backup codes handed out when TOTP was turned on.
    pub fn backup_codes(&self) -> Vec<String> {
        self.enabled["backup_codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect()
    }
}

impl TestApp {
    /// The code of `secret` now, by the server's clock.
    pub fn totp_code(&self, secret: &str) -> String {
        totp_at(secret, self.core.clock.now().timestamp())
    }

    /// Moves to the next 30 s step, so a new code exists.
    pub fn next_totp_step(&self) {
        self.clock.advance(chrono::Duration::seconds(30));
    }

    /// Turns TOTP on for `client`'s account: setup with [`PASSWORD`], then
    /// enable with the current code (each asserted `200`).
    pub async fn enable_totp(&self, client: &Client) -> Totp {
        let res = self
            .write(
                client,
                Method::POST,
                "/api/v1/auth/2fa/totp/setup",
                Some(json!({"password": PASSWORD})),
            )
            .await;
        let secret = body(res, StatusCode::OK).await["secret"]
            .as_str()
            .unwrap()
            .to_owned();
        let code = self.totp_code(&secret);
        let res = self
            .write(
                client,
                Method::POST,
                "/api/v1/auth/2fa/totp/enable",
                Some(json!({"code": code})),
            )
            .await;
        let enabled = body(res, StatusCode::OK).await;
        Totp { secret, enabled }
    }

    /// Signs up `email` (verified) and turns TOTP on, then moves to the
    /// next step (the enabling code is spent); returns the signed-in
    /// client, the secret and the backup codes.
    pub async fn user_with_totp(&self, email: &str) -> (Client, String, Vec<String>) {
        let client = self.user(email).await;
        let totp = self.enable_totp(&client).await;
        let codes = totp.backup_codes();
        self.next_totp_step();
        (client, totp.secret, codes)
    }

    /// The password step of a sign-in with TOTP on: returns the challenge
    /// (and checks no session cookie came with it).
    pub async fn password_step(&self, client: &Client, email: &str) -> String {
        let res = self.login(client, email, PASSWORD).await;
        assert!(set_cookie(&res, "ces_session").is_none());
        let answer = body(res, StatusCode::OK).await;
        assert_eq!(answer["two_factor_required"], true, "{answer}");
        answer["challenge"].as_str().unwrap().to_owned()
    }
}
