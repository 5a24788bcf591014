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
//!
//! A failed check is then padded (an async sleep, no CPU) to the running
//! estimate of the slowest kind of stored hash seen, so that an account
//! imported with a bcrypt hash, or an argon2 hash stronger than ours, fails
//! in the same time as an unknown email. Successful checks are not padded:
//! only someone who knows the password sees them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

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
    /// How long checks take, for padding failed ones.
    timings: Arc<Timings>,
    /// Stored bcrypt hashes above this cost are never computed.
    max_bcrypt_cost: u32,
}

/// The most memory (KiB) a stored hash may make one check use: 256 MiB.
const MAX_FOREIGN_M_COST: u32 = 256 * 1024;
/// The most passes over that memory a stored argon2 hash may ask for.
const MAX_FOREIGN_T_COST: u32 = 16;
/// The most lanes a stored argon2 hash may ask for (this build computes
/// them one after the other).
const MAX_FOREIGN_P_COST: u32 = 16;
/// The most work (KiB of memory times passes) one check of a stored argon2
/// hash may take: 256 MiB-passes, about seven of our own checks. PHP's
/// default (64 MiB, t=4), Django's (100 MiB, t=2) and RFC 9106's second
/// recommendation (64 MiB, t=3) fit.
const MAX_FOREIGN_WORK: u64 = 256 * 1024;
/// The default highest bcrypt cost a stored hash may have
/// (`security.max_bcrypt_cost`).
pub const DEFAULT_MAX_BCRYPT_COST: u32 = 12;

/// Why argon2 `params` ask for more than a login may spend, if they do.
/// Parameters no higher than `own` (the configured ones) always pass.
fn argon2_refusal(params: &Params, own: &Params) -> Option<String> {
    if params.m_cost() <= own.m_cost()
        && params.t_cost() <= own.t_cost()
        && params.p_cost() <= own.p_cost()
    {
        return None;
    }
    let work = |p: &Params| u64::from(p.m_cost()) * u64::from(p.t_cost());
    if params.m_cost() > MAX_FOREIGN_M_COST.max(own.m_cost()) {
        Some(format!(
            "asks for {} KiB of memory (m), above the limit of {MAX_FOREIGN_M_COST}",
            params.m_cost()
        ))
    } else if params.t_cost() > MAX_FOREIGN_T_COST.max(own.t_cost()) {
        Some(format!(
            "asks for {} passes (t), above the limit of {MAX_FOREIGN_T_COST}",
            params.t_cost()
        ))
    } else if params.p_cost() > MAX_FOREIGN_P_COST.max(own.p_cost()) {
        Some(format!(
            "asks for {} lanes (p), above the limit of {MAX_FOREIGN_P_COST}",
            params.p_cost()
        ))
    } else if work(params) > MAX_FOREIGN_WORK.max(work(own)) {
        Some(format!(
            "asks for m x t = {} KiB-passes of work, above the limit of {MAX_FOREIGN_WORK}",
            work(params)
        ))
    } else {
        None
    }
}

/// The cost of a bcrypt hash (`$2b$10$…` is 10).
fn bcrypt_cost(hash: &str) -> Option<u32> {
    hash.get(4..6)?.parse().ok()
}

/// What decides how long checking `stored` takes: the algorithm and its
/// cost, without salt or output (`$2b$10$`, `argon2id$v=19$m=…,t=…,p=…`).
fn hash_kind(stored: &str) -> String {
    if stored.starts_with("$argon2") {
        match PasswordHash::new(stored) {
            Ok(parsed) => format!(
                "{}$v={}${}",
                parsed.algorithm,
                parsed.version.unwrap_or_default(),
                parsed.params
            ),
            Err(_) => "argon2?".into(),
        }
    } else if stored.starts_with("$2") {
        stored.chars().take(7).collect()
    } else if stored.len() == 64 {
        "sha256".into()
    } else {
        "other".into()
    }
}

/// Kinds of stored hash timed at most (a bound on memory, not a limit
/// anyone meets: kinds come from the operator's imports).
const MAX_KINDS: usize = 64;

/// How long checks take, so that a failed one can last as long as a failed
/// check of the slowest kind of stored hash.
///
/// The unit is a check of the dummy hash (what an unknown email costs),
/// whose running estimate ([`follow`]) is kept in absolute time; every other kind is kept
/// as a multiple of it, measured inside the same job where the job runs the
/// dummy check too (legacy hashes), so that the estimate follows the load
/// on the machine: under load both grow alike.
struct Timings {
    /// Running estimate of a check of the dummy hash, in nanoseconds.
    reference_ns: AtomicU64,
    /// Per kind of stored hash: running estimate of a check's time as a
    /// multiple of the reference.
    ratios: Mutex<HashMap<String, f64>>,
}

impl Timings {
    fn new(reference: Duration) -> Timings {
        Timings {
            reference_ns: AtomicU64::new(duration_ns(reference).max(1)),
            ratios: Mutex::new(HashMap::new()),
        }
    }

    fn reference(&self) -> Duration {
        Duration::from_nanos(self.reference_ns.load(Ordering::Relaxed))
    }

    /// One check of the dummy hash took `took`.
    fn record_reference(&self, took: Duration) {
        let old = self.reference_ns.load(Ordering::Relaxed) as f64;
        let new = follow(old, duration_ns(took) as f64);
        // A racing update is lost: it was one sample of many.
        self.reference_ns
            .store(new.max(1.0) as u64, Ordering::Relaxed);
    }

    /// One check of `kind` took `ratio` times a dummy check.
    fn record_ratio(&self, kind: String, ratio: f64) {
        if !ratio.is_finite() {
            return;
        }
        let mut ratios = self.ratios.lock().unwrap_or_else(PoisonError::into_inner);
        let len = ratios.len();
        match ratios.get_mut(&kind) {
            Some(old) => *old = follow(*old, ratio),
            None if len < MAX_KINDS => {
                ratios.insert(kind, ratio);
            }
            None => {}
        }
    }

    /// How long a failed check must last: the slowest kind's estimate, and
    /// a tenth more so that its own variation mostly stays under it.
    fn floor(&self) -> Duration {
        let slowest = self
            .ratios
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .fold(1.0_f64, |a, b| a.max(*b));
        self.reference().mul_f64(slowest * 1.1)
    }
}

/// The next value of a running estimate after `sample`: half way up to a
/// higher sample, a sixteenth of the way down to a lower one. It stays near
/// the top of recent samples, so that checks of the slowest kind mostly end
/// under the floor even while the machine's load changes (one that ends
/// above it is not padded, and would show).
fn follow(old: f64, sample: f64) -> f64 {
    let rate = if sample > old { 0.5 } else { 1.0 / 16.0 };
    old + (sample - old) * rate
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

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
        if argon2_refusal(params, &self.params).is_some() {
            // An imported hash asking for more memory or time than a login
            // may take.
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
        // Hashing the dummy takes as long as checking it: the first estimate
        // of a check (a little high, as this kernel's memory is new).
        let started = Instant::now();
        let dummy_hash = Kernel {
            params: params.clone(),
            blocks: Vec::new(),
        }
        .hash(b"tessera-dummy-password")
        .map_err(|e| anyhow::anyhow!("hashing the dummy password: {e}"))?;
        let timings = Arc::new(Timings::new(started.elapsed()));
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
            timings,
            max_bcrypt_cost: DEFAULT_MAX_BCRYPT_COST,
        })
    }

    /// Stored bcrypt hashes above `cost` are refused at import and never
    /// computed at login (`security.max_bcrypt_cost`).
    pub fn with_max_bcrypt_cost(mut self, cost: u32) -> PasswordHasher {
        self.max_bcrypt_cost = cost;
        self
    }

    /// Why a hash from another system may not be stored (it would cost a
    /// login more than we allow), or `None` when it may.
    pub fn refusal(&self, hash: &str) -> Option<String> {
        if hash.starts_with("$argon2") {
            let Ok(params) = PasswordHash::new(hash).map_err(drop).and_then(|parsed| {
                match (parsed.salt, parsed.hash) {
                    (Some(_), Some(_)) => Params::try_from(&parsed).map_err(drop),
                    _ => Err(()),
                }
            }) else {
                return Some("password_hash is not a valid argon2 PHC string".into());
            };
            argon2_refusal(&params, &self.params).map(|why| format!("password_hash {why}"))
        } else if hash.starts_with("$2") {
            match bcrypt_cost(hash) {
                Some(cost) if cost <= self.max_bcrypt_cost => None,
                Some(cost) => Some(format!(
                    "password_hash is bcrypt at cost {cost}, above the limit of {} \
                     (security.max_bcrypt_cost); ask the user to reset their password instead",
                    self.max_bcrypt_cost
                )),
                None => Some("password_hash is not a valid bcrypt hash".into()),
            }
        } else {
            None
        }
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
    /// cost at least one full argon2id verification, and a failed check
    /// lasts as long as a failed check of the slowest kind of hash seen, so
    /// timing tells nothing.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> anyhow::Result<Verdict> {
        let (verdict, took) = self.check(password, stored).await?;
        if !verdict.matched() {
            if let Some(rest) = self.timings.floor().checked_sub(took) {
                tokio::time::sleep(rest).await;
            }
        }
        Ok(verdict)
    }

    /// Times one failed check of `stored`, so that failures are padded to
    /// its kind from the first one on: for the hashes found in the store
    /// at start and after an import.
    pub async fn learn(&self, stored: &str) -> anyhow::Result<()> {
        let wrong = crate::crypto::token::random_secret();
        self.check(&wrong, Some(stored)).await.map(drop)
    }

    /// The verdict and how long computing it took (not counting the wait
    /// for a thread); records the time for the padding.
    async fn check(
        &self,
        password: &str,
        stored: Option<&str>,
    ) -> anyhow::Result<(Verdict, Duration)> {
        let password = password.to_owned();
        let stored = stored.map(str::to_owned);
        let dummy = self.dummy_hash.clone();
        let wanted = self.params.clone();
        let timings = self.timings.clone();
        let max_bcrypt_cost = self.max_bcrypt_cost;
        self.run(move |kernel| {
            let started = Instant::now();
            let (verdict, dummy_took) = match &stored {
                Some(stored) => {
                    verify_any(kernel, &wanted, &password, stored, &dummy, max_bcrypt_cost)
                }
                None => {
                    let _ = verify_any(kernel, &wanted, &password, &dummy, &dummy, 0);
                    (Verdict::Mismatch, None)
                }
            };
            let took = started.elapsed();
            match (&stored, dummy_took) {
                // Only the dummy check (or one as costly): the reference.
                (None, _) => timings.record_reference(took),
                (Some(stored), Some(dummy_took)) => {
                    timings.record_reference(dummy_took);
                    timings.record_ratio(
                        hash_kind(stored),
                        took.as_secs_f64() / dummy_took.as_secs_f64().max(1e-9),
                    );
                }
                (Some(stored), None) => timings.record_ratio(
                    hash_kind(stored),
                    took.as_secs_f64() / timings.reference().as_secs_f64().max(1e-9),
                ),
            }
            (verdict, took)
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
/// current argon2id check is padded with a check of the dummy hash, whose
/// time is returned. bcrypt above `max_bcrypt_cost` is not computed.
fn verify_any(
    kernel: &mut Kernel,
    wanted: &Params,
    password: &str,
    stored: &str,
    dummy: &str,
    max_bcrypt_cost: u32,
) -> (Verdict, Option<Duration>) {
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
        let affordable = bcrypt_cost(stored).is_some_and(|cost| cost <= max_bcrypt_cost);
        if !affordable {
            tracing::warn!(
                "a stored bcrypt hash is above security.max_bcrypt_cost and is not checked; \
                 its account must reset its password"
            );
        }
        let ok = affordable
            && candidates
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
    let mut dummy_took = None;
    if !current {
        if let Ok(parsed) = PasswordHash::new(dummy) {
            let started = Instant::now();
            let _ = kernel.verify(normalized.as_bytes(), &parsed);
            dummy_took = Some(started.elapsed());
        }
    }
    let verdict = match (matched, current) {
        (false, _) => Verdict::Mismatch,
        (true, true) => Verdict::Match,
        (true, false) => Verdict::MatchNeedsRehash,
    };
    (verdict, dummy_took)
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
    async fn failed_checks_last_as_long_as_the_slowest_kind_and_successes_do_not_wait() {
        let h = hasher();
        let bcrypted = bcrypt::hash("legacy-password", 10).unwrap();
        let ours = h.hash("current-password").await.unwrap();
        h.learn(&bcrypted).await.unwrap();
        let time = |password: &str, stored: Option<&str>| {
            let (h, password, stored) = (h.clone(), password.to_owned(), stored.map(str::to_owned));
            async move {
                let started = Instant::now();
                let _ = h.verify(&password, stored.as_deref()).await.unwrap();
                started.elapsed()
            }
        };
        // Interleaved, so that load from other tests falls on every kind.
        let mut samples: [Vec<Duration>; 4] = Default::default();
        for _ in 0..7 {
            samples[0].push(time("wrong", Some(&bcrypted)).await);
            samples[1].push(time("wrong", None).await);
            samples[2].push(time("wrong", Some(&ours)).await);
            samples[3].push(time("current-password", Some(&ours)).await);
        }
        let [legacy_failure, unknown_failure, ours_failure, ours_success] = samples.map(|mut s| {
            s.sort();
            s[s.len() / 2]
        });
        for failure in [unknown_failure, ours_failure] {
            assert!(
                failure >= legacy_failure.mul_f64(0.8),
                "failure {failure:?} vs bcrypt failure {legacy_failure:?}"
            );
        }
        assert!(
            ours_success < unknown_failure,
            "a success {ours_success:?} is not padded like a failure {unknown_failure:?}"
        );
    }

    #[test]
    fn costly_foreign_hashes_are_refused_with_a_reason() {
        let h = hasher();
        let bcrypt_at = |cost: u32| format!("$2b${cost:02}${}", "a".repeat(53));
        let argon = |params: &str| {
            format!("$argon2id$v=19${params}$c2FsdHNhbHRzYWx0c2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        };
        assert_eq!(h.refusal(&bcrypt_at(12)), None);
        assert!(h.refusal(&bcrypt_at(13)).unwrap().contains("cost 13"));
        assert_eq!(
            h.clone().with_max_bcrypt_cost(13).refusal(&bcrypt_at(13)),
            None
        );
        assert_eq!(h.refusal(&argon("m=19456,t=2,p=1")), None);
        assert_eq!(h.refusal(&argon("m=65536,t=4,p=1")), None, "PHP's default");
        assert_eq!(h.refusal(&argon("m=102400,t=2,p=8")), None, "Django's");
        assert!(h
            .refusal(&argon("m=19456,t=17,p=1"))
            .unwrap()
            .contains("(t)"));
        assert!(h
            .refusal(&argon("m=19456,t=2,p=17"))
            .unwrap()
            .contains("(p)"));
        assert!(h
            .refusal(&argon("m=65536,t=5,p=1"))
            .unwrap()
            .contains("work"));
        assert!(h
            .refusal(&argon("m=524288,t=1,p=1"))
            .unwrap()
            .contains("(m)"));
        assert!(h.refusal("$argon2id$garbage").is_some());
        assert_eq!(h.refusal(&"ab".repeat(32)), None, "SHA-256 costs nothing");
    }

    #[tokio::test]
    async fn bcrypt_above_the_cap_is_never_computed() {
        let h = hasher().with_max_bcrypt_cost(4);
        let costly = bcrypt::hash("SecurePassword123!", 5).unwrap();
        assert_eq!(
            h.verify("SecurePassword123!", Some(&costly)).await.unwrap(),
            Verdict::Mismatch
        );
    }

    #[tokio::test]
    async fn argon2_passes_beyond_the_bound_are_refused_not_computed() {
        let many_passes = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8, MAX_FOREIGN_T_COST + 1, 1, None).unwrap(),
        )
        .hash_password(b"pw-123456", &SaltString::generate(&mut OsRng))
        .unwrap()
        .to_string();
        assert_eq!(
            hasher()
                .verify("pw-123456", Some(&many_passes))
                .await
                .unwrap(),
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
