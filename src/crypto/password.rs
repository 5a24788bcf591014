//! argon2id hashing on a bounded blocking pool.
//!
//! Hashes run on `spawn_blocking` behind a semaphore sized to the cores, so a
//! login flood queues here instead of starving every other request. Unknown
//! emails are verified against a fixed dummy hash so they cost the same time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::Context;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::config::Argon2Config;
use crate::crypto::token::constant_time_eq;
use crate::domain::normalize_password as normalize;
use crate::error::Overloaded;

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
    /// Jobs waiting for a permit, bounded by `max_queue`.
    waiting: Arc<AtomicUsize>,
    max_queue: usize,
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
            waiting: Arc::new(AtomicUsize::new(0)),
            max_queue: config.max_queue,
            dummy_hash: dummy_hash.into(),
        })
    }

    fn argon(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// Runs a hashing job on the blocking pool. The permit moves into the
    /// job, so it is held until the hash finishes even if the request that
    /// asked for it is cancelled: the pool's bound holds against clients
    /// that hang up.
    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(Argon2<'static>) -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                // Counted while waiting; the guard uncounts even if the
                // request is cancelled mid-wait.
                let _waiting = QueueSlot::take(&self.waiting, self.max_queue)
                    .ok_or(Overloaded("password hashing queue is full"))?;
                self.permits
                    .clone()
                    .acquire_owned()
                    .await
                    .context("hash pool closed")?
            }
        };
        let argon = self.argon();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            job(argon)
        })
        .await
        .context("hash task failed")
    }

    /// A new argon2id PHC string for an NFKC-normalised password (a
    /// [`NewPassword`](crate::domain::NewPassword) or a login password being
    /// re-hashed).
    pub async fn hash(&self, normalized: &str) -> anyhow::Result<String> {
        let password = normalized.to_owned();
        self.run(move |argon| {
            let salt = SaltString::generate(&mut OsRng);
            argon
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
        })
        .await?
    }

    /// Checks a password as typed against a stored hash. `None` (unknown
    /// user, or an account without a password) and every kind of stored hash
    /// cost at least one full argon2id verification, so timing tells nothing.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> anyhow::Result<Verdict> {
        let password = password.to_owned();
        let stored = stored.map(str::to_owned);
        let dummy = self.dummy_hash.clone();
        let wanted = self.params.clone();
        self.run(move |argon| match stored {
            Some(stored) => verify_any(&argon, &wanted, &password, &stored, &dummy),
            None => {
                let _ = verify_any(&argon, &wanted, &password, &dummy, &dummy);
                Verdict::Mismatch
            }
        })
        .await
    }
}

/// One place in the wait queue, given back on drop.
struct QueueSlot<'a>(&'a AtomicUsize);

impl<'a> QueueSlot<'a> {
    fn take(counter: &'a AtomicUsize, max: usize) -> Option<QueueSlot<'a>> {
        let slot = QueueSlot(counter);
        (counter.fetch_add(1, Ordering::SeqCst) < max).then_some(slot)
    }
}

impl Drop for QueueSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn is_current(parsed: &PasswordHash<'_>, wanted: &Params) -> bool {
    parsed.algorithm.as_str() == "argon2id"
        && Params::try_from(parsed).is_ok_and(|p| {
            p.m_cost() >= wanted.m_cost()
                && p.t_cost() >= wanted.t_cost()
                && p.p_cost() >= wanted.p_cost()
        })
}

/// Verifies a password as typed against argon2 (any variant, the NFKC form),
/// bcrypt and unsalted SHA-256 hex (the typed form, then the NFKC form, as
/// legacy systems hashed what they were given). Anything cheaper than a
/// current argon2id check is padded with a check of the dummy hash.
fn verify_any(
    argon: &Argon2<'_>,
    wanted: &Params,
    password: &str,
    stored: &str,
    dummy: &str,
) -> Verdict {
    let normalized = normalize(password);
    let mut candidates = vec![password];
    if normalized != password {
        candidates.push(&normalized);
    }
    let (matched, current) = if stored.starts_with("$argon2") {
        match PasswordHash::new(stored) {
            Ok(parsed) => (
                argon
                    .verify_password(normalized.as_bytes(), &parsed)
                    .is_ok(),
                is_current(&parsed, wanted),
            ),
            Err(_) => (false, false),
        }
    } else if stored.starts_with("$2") {
        let ok = candidates
            .iter()
            .any(|p| bcrypt::verify(p, stored).unwrap_or(false));
        (ok, false)
    } else if stored.len() == 64 && stored.bytes().all(|b| b.is_ascii_hexdigit()) {
        let stored = stored.to_ascii_lowercase();
        let ok = candidates
            .iter()
            .any(|p| constant_time_eq(&hex::encode(Sha256::digest(p.as_bytes())), &stored));
        (ok, false)
    } else {
        (false, false)
    };
    if !current {
        if let Ok(parsed) = PasswordHash::new(dummy) {
            let _ = argon.verify_password(normalized.as_bytes(), &parsed);
        }
    }
    match (matched, current) {
        (false, _) => Verdict::Mismatch,
        (true, true) => Verdict::Match,
        (true, false) => Verdict::MatchNeedsRehash,
    }
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
        let email = crate::domain::Email::parse("a@example.test").unwrap();
        let password = crate::domain::NewPassword::parse("correct horse", &email).unwrap();
        let hash = h.hash(password.expose()).await.unwrap();
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
    async fn a_full_queue_is_refused_at_once() {
        let h = PasswordHasher::new(&Argon2Config {
            max_concurrent: Some(1),
            max_queue: 1,
            ..Argon2Config::default()
        })
        .unwrap();
        let slow = |h: PasswordHasher| async move {
            h.run(|_| std::thread::sleep(std::time::Duration::from_millis(300)))
                .await
        };
        let running = tokio::spawn(slow(h.clone()));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let queued = tokio::spawn(slow(h.clone()));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let refused = slow(h.clone()).await.unwrap_err();
        assert!(refused.downcast_ref::<Overloaded>().is_some());
        assert!(running.await.unwrap().is_ok());
        assert!(queued.await.unwrap().is_ok());
        // A waiter that gives up frees its place.
        let blocker = tokio::spawn(slow(h.clone()));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let _ = tokio::time::timeout(std::time::Duration::from_millis(20), slow(h.clone())).await;
        blocker.await.unwrap().unwrap();
        // Once drained, work is accepted again.
        assert_eq!(h.waiting.load(Ordering::SeqCst), 0);
        assert!(slow(h).await.is_ok());
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
    async fn bcrypt_and_raw_legacy_forms_verify() {
        let h = hasher();
        let bcrypted = bcrypt::hash("SecurePassword123!", 4).unwrap();
        assert_eq!(
            h.verify("SecurePassword123!", Some(&bcrypted))
                .await
                .unwrap(),
            Verdict::MatchNeedsRehash
        );
        assert_eq!(
            h.verify("nope", Some(&bcrypted)).await.unwrap(),
            Verdict::Mismatch
        );
        // A legacy system hashed the raw (non-NFKC) string.
        let raw = "\u{FB01}sh-and-chips";
        let legacy = hex::encode(Sha256::digest(raw.as_bytes()));
        assert_eq!(
            h.verify(raw, Some(&legacy)).await.unwrap(),
            Verdict::MatchNeedsRehash
        );
        assert_eq!(
            h.verify("x", Some("garbage")).await.unwrap(),
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
