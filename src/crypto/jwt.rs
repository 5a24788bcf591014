//! Ed25519 (EdDSA) JWTs and the JWKS that verifies them.
//!
//! The signing key is generated on first start and kept in the database, so
//! every node and every restart signs with the same key. All stored keys are
//! published and accepted; the newest one signs.

use std::collections::HashMap;

use anyhow::Context;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub const ALGORITHM: &str = "EdDSA";

/// A signing key as the store keeps it.
#[derive(Clone)]
pub struct StoredKey {
    pub kid: String,
    pub algorithm: String,
    /// PKCS#8 document of the private key.
    pub private_key: Vec<u8>,
    /// The raw 32-byte public key.
    pub public_key: Vec<u8>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

pub fn generate_key(now: chrono::DateTime<chrono::Utc>) -> anyhow::Result<StoredKey> {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map_err(|_| anyhow::anyhow!("generating an Ed25519 key failed"))?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .map_err(|_| anyhow::anyhow!("reading the generated Ed25519 key failed"))?;
    let public_key = pair.public_key().as_ref().to_vec();
    let kid = URL_SAFE_NO_PAD.encode(&Sha256::digest(&public_key)[..12]);
    Ok(StoredKey {
        kid,
        algorithm: ALGORITHM.into(),
        private_key: pkcs8.as_ref().to_vec(),
        public_key,
        created_at: now,
    })
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    pub iss: String,
    pub sub: Uuid,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<Uuid>,
    /// The personal access token the JWT was issued for, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pat: Option<Uuid>,
}

pub struct JwtKeys {
    signing_kid: String,
    signing: EncodingKey,
    verifying: HashMap<String, DecodingKey>,
    jwks: serde_json::Value,
    issuer: String,
    audience: String,
}

impl JwtKeys {
    /// Builds the key set from the stored keys; the newest one signs.
    pub fn new(keys: &[StoredKey], issuer: &str, audience: &str) -> anyhow::Result<JwtKeys> {
        let newest = keys
            .iter()
            .filter(|k| k.algorithm == ALGORITHM)
            .max_by_key(|k| k.created_at)
            .context("no Ed25519 signing key is stored")?;
        let mut verifying = HashMap::new();
        let mut jwks = Vec::new();
        for key in keys.iter().filter(|k| k.algorithm == ALGORITHM) {
            let x = URL_SAFE_NO_PAD.encode(&key.public_key);
            let decoding = DecodingKey::from_ed_components(&x)
                .with_context(|| format!("public key {} is unusable", key.kid))?;
            verifying.insert(key.kid.clone(), decoding);
            jwks.push(serde_json::json!({
                "kty": "OKP", "crv": "Ed25519", "x": x,
                "kid": key.kid, "use": "sig", "alg": ALGORITHM,
            }));
        }
        Ok(JwtKeys {
            signing_kid: newest.kid.clone(),
            signing: EncodingKey::from_ed_der(&newest.private_key),
            verifying,
            jwks: serde_json::json!({ "keys": jwks }),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        })
    }

    pub fn jwks(&self) -> &serde_json::Value {
        &self.jwks
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    pub fn sign(&self, claims: &Claims) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.signing_kid.clone());
        jsonwebtoken::encode(&header, claims, &self.signing).context("signing a JWT")
    }

    /// Verifies signature, algorithm, `kid`, issuer, audience and expiry (no
    /// leeway: an expired token is expired). `None` for anything invalid.
    pub fn verify(&self, token: &str, now: i64) -> Option<Claims> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        if header.alg != Algorithm::EdDSA {
            return None;
        }
        let key = self.verifying.get(header.kid.as_deref()?)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // Expiry is checked below against the injected clock.
        validation.validate_exp = false;
        validation.leeway = 0;
        let claims = jsonwebtoken::decode::<Claims>(token, key, &validation)
            .ok()?
            .claims;
        (claims.exp > now && claims.iat <= now + 60).then_some(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> (JwtKeys, StoredKey) {
        let key = generate_key(chrono::Utc::now()).unwrap();
        (
            JwtKeys::new(
                std::slice::from_ref(&key),
                "http://localhost:8080",
                "tessera",
            )
            .unwrap(),
            key,
        )
    }

    fn claims(now: i64) -> Claims {
        Claims {
            iss: "http://localhost:8080".into(),
            sub: Uuid::new_v4(),
            aud: "tessera".into(),
            iat: now,
            exp: now + 900,
            jti: Uuid::new_v4(),
            tid: None,
            sid: Some(Uuid::new_v4()),
            pat: None,
        }
    }

    #[test]
    fn round_trip_with_kid() {
        let (keys, key) = keys();
        let now = chrono::Utc::now().timestamp();
        let token = keys.sign(&claims(now)).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid.as_deref(), Some(key.kid.as_str()));
        assert!(keys.verify(&token, now).is_some());
        assert!(keys.verify(&token, now + 901).is_none(), "expired");
        assert_eq!(keys.jwks()["keys"][0]["kid"], key.kid);
    }

    #[test]
    fn rejects_alg_none_foreign_keys_and_tampering() {
        let (keys, _) = keys();
        let (other, _) = self::keys();
        let now = chrono::Utc::now().timestamp();
        let c = claims(now);
        let token = keys.sign(&c).unwrap();

        // alg: none
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap());
        assert!(keys.verify(&format!("{header}.{body}."), now).is_none());

        // HS256 signed with the public key as secret (algorithm confusion)
        let hs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &c,
            &EncodingKey::from_secret(b"anything"),
        )
        .unwrap();
        assert!(keys.verify(&hs, now).is_none());

        // a key we do not know
        assert!(keys.verify(&other.sign(&c).unwrap(), now).is_none());

        // a changed payload
        let parts: Vec<&str> = token.split('.').collect();
        let mut forged = c.clone();
        forged.sub = Uuid::new_v4();
        let forged_body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert!(keys
            .verify(&format!("{}.{}.{}", parts[0], forged_body, parts[2]), now)
            .is_none());

        // wrong audience
        let mut wrong = c.clone();
        wrong.aud = "someone-else".into();
        assert!(keys.verify(&keys.sign(&wrong).unwrap(), now).is_none());
    }
}
