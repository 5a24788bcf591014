//! argon2id hashing on a bounded blocking pool.
//!
//! Hashes run on `spawn_blocking` behind a semaphore sized to the cores, so a
//! login flood queues here instead of starving every other request. Unknown
//! emails are verified against a fixed dummy hash so they cost the same time.

use std::sync::Arc;

use anyhow::Context;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::config::Argon2Config;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Wrong password, or no usable hash.
    Mismatch,
    /// Right password, and the stored hash is current.
    Match,
    /// Right password, but the hash is legacy or weaker than configured:
    /// store a fresh argon2id hash.
    MatchNeedsRehash,
}

impl Verdict {
    pub fn matched(self) -> bool {
        !matches!(self, Verdict::Mismatch)
    }
}

#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    pub fn new(config: &Argon2Config) -> anyhow::Result<PasswordHasher> {
        let params = Params::new(
            config.memory_kib.max(19_456),
            config.iterations.max(2),
            config.parallelism.max(1),
            None,
        )
        .map_err(|e| anyhow::anyhow!("invalid argon2 parameters: {e}"))?;
        let workers = config
            .max_concurrent
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let salt = SaltString::generate(&mut OsRng);
        let dummy_hash = argon
            .hash_password(b"tessera-dummy-password", &salt)
            .map_err(|e| anyhow::anyhow!("hashing the dummy password: {e}"))?
            .to_string();
        Ok(PasswordHasher {
            params,
            permits: Arc::new(Semaphore::new(workers.max(1))),
            dummy_hash: dummy_hash.into(),
        })
    }

    fn argon(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(Argon2<'static>) -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let _permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .context("hash pool closed")?;
        let argon = self.argon();
        tokio::task::spawn_blocking(move || job(argon))
            .await
            .context("hash task failed")
    }

    /// A new argon2id PHC string for an already-normalised password.
    pub async fn hash(&self, password: &str) -> anyhow::Result<String> {
        let password = password.to_owned();
        self.run(move |argon| {
            let salt = SaltString::generate(&mut OsRng);
            argon
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
        })
        .await?
    }

    /// Checks a password against a stored hash; `None` (unknown user, or an
    /// account without a password) costs the same as a real check.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> anyhow::Result<Verdict> {
        let password = password.to_owned();
        let real = stored.is_some();
        let stored = stored.unwrap_or(&self.dummy_hash).to_owned();
        let wanted = self.params.clone();
        let verdict = self
            .run(move |argon| verify_any(&argon, &wanted, &password, &stored))
            .await?;
        Ok(if real { verdict } else { Verdict::Mismatch })
    }
}

/// Verifies argon2 (any variant) and legacy unsalted SHA-256 hex hashes.
fn verify_any(argon: &Argon2<'_>, wanted: &Params, password: &str, stored: &str) -> Verdict {
    if stored.starts_with("$argon2") {
        let Ok(parsed) = PasswordHash::new(stored) else {
            return Verdict::Mismatch;
        };
        if argon.verify_password(password.as_bytes(), &parsed).is_err() {
            return Verdict::Mismatch;
        }
        let current = parsed.algorithm.as_str() == "argon2id"
            && Params::try_from(&parsed).is_ok_and(|p| {
                p.m_cost() >= wanted.m_cost()
                    && p.t_cost() >= wanted.t_cost()
                    && p.p_cost() >= wanted.p_cost()
            });
        return if current {
            Verdict::Match
        } else {
            Verdict::MatchNeedsRehash
        };
    }
    if stored.len() == 64 && stored.bytes().all(|b| b.is_ascii_hexdigit()) {
        let actual = hex::encode(Sha256::digest(password.as_bytes()));
        return if crate::crypto::token::constant_time_eq(&actual, &stored.to_ascii_lowercase()) {
            Verdict::MatchNeedsRehash
        } else {
            Verdict::Mismatch
        };
    }
    Verdict::Mismatch
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher() -> PasswordHasher {
        PasswordHasher::new(&Argon2Config::default()).unwrap()
    }

    #[tokio::test]
    async fn hashes_verify_and_use_argon2id_with_the_minimum_cost() {
        let h = hasher();
        let hash = h.hash("correct horse").await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert_eq!(
            h.verify("correct horse", Some(&hash)).await.unwrap(),
            Verdict::Match
        );
        assert_eq!(
            h.verify("wrong horse", Some(&hash)).await.unwrap(),
            Verdict::Mismatch
        );
    }

    #[tokio::test]
    async fn unknown_users_never_match() {
        let h = hasher();
        assert_eq!(
            h.verify("tessera-dummy-password", None).await.unwrap(),
            Verdict::Mismatch
        );
    }

    #[tokio::test]
    async fn legacy_sha256_matches_and_asks_for_a_rehash() {
        let h = hasher();
        let legacy = hex::encode(Sha256::digest(b"SecurePassword123!"));
        assert_eq!(
            h.verify("SecurePassword123!", Some(&legacy)).await.unwrap(),
            Verdict::MatchNeedsRehash
        );
        assert_eq!(
            h.verify("nope", Some(&legacy)).await.unwrap(),
            Verdict::Mismatch
        );
    }

    #[tokio::test]
    async fn weaker_argon2_asks_for_a_rehash() {
        let weak = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x13,
            Params::new(4096, 1, 1, None).unwrap(),
        )
        .hash_password(b"pw-123456", &SaltString::generate(&mut OsRng))
        .unwrap()
        .to_string();
        assert_eq!(
            hasher().verify("pw-123456", Some(&weak)).await.unwrap(),
            Verdict::MatchNeedsRehash
        );
    }
}
