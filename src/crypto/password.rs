//! argon2id hashing on a bounded pool of its own threads.
//!
//! One thread per core (`argon2.max_concurrent`), each with its own argon2
//! memory, takes jobs from a queue; when `argon2.max_queue` requests already
//! wait, the next is refused at once (`Overloaded`, a quick `503`). A
//! request that is cancelled while it waits gives its place back at once,
//! and its job is dropped untouched when its turn comes. So a login flood
//! queues here instead of starving every other request, memory stays at one
//! buffer per thread, and a thread that finishes a hash starts the next one
//! straight from the queue, with no trip through the async runtime: the
//! cores never idle while logins wait. Unknown emails are verified against a
//! fixed dummy hash so they cost the same time.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::Context;
use argon2::password_hash::{Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use crossbeam_channel::{Receiver, Sender};
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};

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

/// A hashing job, run on a pool thread with that thread's kernel.
type Job = Box<dyn FnOnce(&mut Kernel) + Send>;

/// What the pool threads and the hasher share.
#[derive(Default)]
struct Load {
    /// Requests waiting for or being given a hash (cancelled ones leave at
    /// once).
    in_flight: AtomicUsize,
    /// Jobs being computed.
    running: AtomicUsize,
    /// Jobs turned away because the queue was full.
    refused: AtomicU64,
}

/// A request's place in the pool, given back when the request ends,
/// answered or cancelled.
struct Place<'a>(&'a AtomicUsize);

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    /// The queue; the threads stop when the last hasher is dropped.
    jobs: Sender<Job>,
    load: Arc<Load>,
    /// Requests that may be in the pool at once: the threads' plus the
    /// queue's.
    capacity: usize,
    dummy_hash: Arc<str>,
}

/// The most memory (KiB) a stored hash may make one check use: 256 MiB.
const MAX_FOREIGN_M_COST: u32 = 256 * 1024;

/// What a hashing job works with: the configured parameters and a block
/// buffer of its own.
struct Kernel {
    params: Params,
    blocks: Vec<Block>,
}

impl Kernel {
    /// The argon2 output for `password` under the given algorithm, version,
    /// parameters and salt, computed in this kernel's memory. Parameters far
    /// above the configured ones (an imported hash) get a buffer of their own
    /// rather than growing the pooled one.
    fn output(
        &mut self,
        algorithm: Algorithm,
        version: Version,
        params: &Params,
        password: &[u8],
        salt: Salt<'_>,
    ) -> argon2::password_hash::Result<Output> {
        let mut salt_buf = [0u8; 64];
        let salt = salt.decode_b64(&mut salt_buf)?;
        let needed = params.block_count();
        if params.m_cost() > MAX_FOREIGN_M_COST {
            // An imported hash asking for more memory than a login may take.
            return Err(argon2::password_hash::Error::ParamValueInvalid(
                argon2::password_hash::errors::InvalidValue::TooLong,
            ));
        }
        let mut own;
        let blocks = if needed <= self.params.block_count() * 4 {
            if self.blocks.len() < needed {
                self.blocks.resize(needed, Block::default());
            }
            &mut self.blocks[..needed]
        } else {
            own = vec![Block::default(); needed];
            &mut own[..]
        };
        let argon = Argon2::new(algorithm, version, params.clone());
        let len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
        Output::init_with(len, |out| {
            Ok(argon.hash_password_into_with_memory(password, salt, out, &mut *blocks)?)
        })
    }

    /// A new argon2id PHC string with the configured parameters.
    fn hash(&mut self, password: &[u8]) -> argon2::password_hash::Result<String> {
        let salt = SaltString::generate(&mut OsRng);
        let params = self.params.clone();
        let output = self.output(
            Algorithm::Argon2id,
            Version::V0x13,
            &params,
            password,
            salt.as_salt(),
        )?;
        Ok(PasswordHash {
            algorithm: argon2::ARGON2ID_IDENT,
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params)?,
            salt: Some(salt.as_salt()),
            hash: Some(output),
        }
        .to_string())
    }

    /// Whether `password` matches a parsed argon2 PHC hash (any variant);
    /// the outputs are compared in constant time.
    fn verify(&mut self, password: &[u8], parsed: &PasswordHash<'_>) -> bool {
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return false;
        };
        let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
            return false;
        };
        let version = parsed
            .version
            .map_or(Ok(Version::default()), Version::try_from);
        let (Ok(version), Ok(mut params)) = (version, Params::try_from(parsed)) else {
            return false;
        };
        // The stored output length decides the computed one.
        if let Ok(p) = Params::new(
            params.m_cost(),
            params.t_cost(),
            params.p_cost(),
            Some(expected.len()),
        ) {
            params = p;
        }
        self.output(algorithm, version, &params, password, salt)
            .is_ok_and(|computed| computed == expected)
    }
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
        let dummy_hash = Kernel {
            params: params.clone(),
            blocks: Vec::new(),
        }
        .hash(b"tessera-dummy-password")
        .map_err(|e| anyhow::anyhow!("hashing the dummy password: {e}"))?;
        let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
        let load = Arc::new(Load::default());
        for n in 0..workers.max(1) {
            let (queue, load, params) = (queue.clone(), load.clone(), params.clone());
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || work(&queue, &load, params))
                .context("starting a hashing thread")?;
        }
        Ok(PasswordHasher {
            params,
            jobs,
            load,
            capacity: workers.max(1) + config.max_queue,
            dummy_hash: dummy_hash.into(),
        })
    }

    /// Queues a hashing job and waits for its result; refused at once
    /// (`Overloaded`) when `max_queue` jobs are already waiting. A job whose
    /// request was cancelled while it waited is dropped untouched when its
    /// turn comes.
    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Kernel) -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let place = Place(&self.load.in_flight);
        if self.load.in_flight.fetch_add(1, Ordering::SeqCst) >= self.capacity {
            self.load.refused.fetch_add(1, Ordering::Relaxed);
            return Err(Overloaded("password hashing queue is full").into());
        }
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |kernel| {
            // Cancelled while it waited: nobody wants the answer.
            if !done.is_closed() {
                let _ = done.send(job(kernel));
            }
        });
        self.jobs
            .send(job)
            .map_err(|_| anyhow::anyhow!("the hashing threads stopped"))?;
        let answer = result.await.context("a hashing thread stopped");
        drop(place);
        answer
    }

    /// `(running, waiting, refused so far)`, for the metrics.
    pub fn load(&self) -> (usize, usize, u64) {
        let running = self.load.running.load(Ordering::Relaxed);
        let in_flight = self.load.in_flight.load(Ordering::Relaxed);
        (
            running,
            in_flight.saturating_sub(running),
            self.load.refused.load(Ordering::Relaxed),
        )
    }

    /// A new argon2id PHC string for an NFKC-normalised password (a
    /// [`NewPassword`](crate::domain::NewPassword) or a login password being
    /// re-hashed).
    pub async fn hash(&self, normalized: &str) -> anyhow::Result<String> {
        let password = normalized.to_owned();
        self.run(move |kernel| {
            kernel
                .hash(password.as_bytes())
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
        self.run(move |kernel| match stored {
            Some(stored) => verify_any(kernel, &wanted, &password, &stored, &dummy),
            None => {
                let _ = verify_any(kernel, &wanted, &password, &dummy, &dummy);
                Verdict::Mismatch
            }
        })
        .await
    }
}

/// A hashing thread: takes the next job as soon as it is free, and keeps
/// one argon2 memory buffer for its whole life (no 19 MiB allocation and
/// page faults per login). Ends when the hasher is dropped.
fn work(queue: &Receiver<Job>, load: &Load, params: Params) {
    let mut kernel = Kernel {
        params,
        blocks: Vec::new(),
    };
    while let Ok(job) = queue.recv() {
        load.running.fetch_add(1, Ordering::SeqCst);
        // A panicking job must not take the thread (and its queue) with it.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut kernel)));
        load.running.fetch_sub(1, Ordering::SeqCst);
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
    kernel: &mut Kernel,
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
                kernel.verify(normalized.as_bytes(), &parsed),
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
            let _ = kernel.verify(normalized.as_bytes(), &parsed);
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
    use argon2::password_hash::PasswordHasher as _;

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
        assert_eq!(h.load().0, 1, "one running");
        assert_eq!(h.load().1, 1, "one waiting");
        let refused = slow(h.clone()).await.unwrap_err();
        assert!(refused.downcast_ref::<Overloaded>().is_some());
        assert_eq!(h.load().2, 1, "one refused");
        assert!(running.await.unwrap().is_ok());
        assert!(queued.await.unwrap().is_ok());
        // A waiter that gives up is dropped untouched when its turn comes:
        // it costs no hashing time.
        let ran = Arc::new(AtomicUsize::new(0));
        let blocker = tokio::spawn(slow(h.clone()));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let counted = ran.clone();
        let _ = tokio::time::timeout(
            std::time::Duration::from_millis(20),
            h.run(move |_| counted.fetch_add(1, Ordering::SeqCst)),
        )
        .await;
        blocker.await.unwrap().unwrap();
        // Once drained, work is accepted again.
        assert!(slow(h.clone()).await.is_ok());
        assert_eq!(ran.load(Ordering::SeqCst), 0, "the abandoned job never ran");
        assert_eq!(h.load().1, 0);
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

    #[tokio::test]
    async fn pooled_hashing_interoperates_with_the_argon2_crate() {
        use argon2::password_hash::PasswordVerifier as _;
        let h = hasher();
        // Ours, checked by the crate's own verifier.
        let ours = h.hash("interop-password").await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default()
            .verify_password(b"interop-password", &parsed)
            .is_ok());
        assert!(Argon2::default()
            .verify_password(b"interop-passworD", &parsed)
            .is_err());
        // The crate's, with a longer output, checked by ours.
        let theirs = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(19_456, 2, 1, Some(48)).unwrap(),
        )
        .hash_password(b"interop-password", &SaltString::generate(&mut OsRng))
        .unwrap()
        .to_string();
        assert_eq!(
            h.verify("interop-password", Some(&theirs)).await.unwrap(),
            Verdict::Match
        );
        assert_eq!(
            h.verify("interop-passworD", Some(&theirs)).await.unwrap(),
            Verdict::Mismatch
        );
    }

    #[tokio::test]
    async fn a_stored_hash_asking_for_gigabytes_is_refused_not_computed() {
        let huge = "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$\
                    AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let started = std::time::Instant::now();
        assert_eq!(
            hasher().verify("anything", Some(huge)).await.unwrap(),
            Verdict::Mismatch
        );
        // Only the dummy check ran, not a 4 GiB one.
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
