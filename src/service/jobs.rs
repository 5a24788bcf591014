//! Periodic work shared by every node: the sweep of expired rows, the plan
//! check and signing-key rotation. Each node asks for a job's turn; the
//! store hands each turn to one node (`Store::claim_job`), so a job runs
//! once per period however many nodes there are, and keeps running when
//! one of them dies.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::Tessera;
use crate::crypto::jwt;

/// How often a node looks for a due job.
const LOOK_EVERY: Duration = Duration::from_secs(15);
/// How often a node re-reads the signing keys, when nothing told it to.
const KEYS_EVERY: Duration = Duration::from_secs(60);
/// How often the key-rotation job looks at the keys.
const ROTATION_CHECK_SECONDS: u64 = 3600;
/// Old keys stay published this long past the tokens' lifetime: time for
/// every node to have stopped signing with them.
const RETIRE_MARGIN_SECONDS: i64 = 300;
/// How often a node times the kinds of password hash in the store again
/// (users imported by another process: `tessera users import`).
const RELEARN_HASHES_EVERY: Duration = Duration::from_secs(3600);

impl Tessera {
    /// Runs the periodic jobs whose turn this node gets, until `stop`.
    pub async fn run_jobs(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut ticks = tokio::time::interval(LOOK_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // `serve` timed them at start.
        let mut relearn = tokio::time::interval_at(
            tokio::time::Instant::now() + RELEARN_HASHES_EVERY,
            RELEARN_HASHES_EVERY,
        );
        relearn.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => self.run_due_jobs().await,
                _ = relearn.tick() => self.learn_password_hash_costs().await,
                _ = stop.changed() => return,
            }
        }
    }

    /// Times a failed check of each kind of password hash in the store
    /// (each bcrypt cost, each set of argon2 parameters), so that every
    /// failed login is padded to the slowest of them from the first probe
    /// on: an account imported with a costly hash must not fail slower than
    /// an unknown email. A node's own, not a shared job: each node pads with
    /// its own timings.
    pub async fn learn_password_hash_costs(&self) {
        let samples = match self.store.password_hash_samples().await {
            Ok(samples) => samples,
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the kinds of stored password hash");
                return;
            }
        };
        for sample in samples {
            if let Err(err) = self.hasher.learn(&sample).await {
                tracing::warn!(error = %format!("{err:#}"), "cannot time a stored password hash");
            }
        }
    }

    /// One look at every job: runs those whose turn this node takes.
    pub async fn run_due_jobs(&self) {
        let jobs: [(&str, u64); 3] = [
            ("sweep", self.config.jobs.sweep_interval_seconds),
            ("plan_check", self.config.plans.check_interval_seconds),
            // Also with rotation off: keys replaced by `tessera keys
            // rotate` must still be retired.
            ("key_rotation", ROTATION_CHECK_SECONDS),
        ];
        for (name, every) in jobs {
            if every == 0 {
                continue;
            }
            let now = self.clock.now();
            let next =
                now + chrono::Duration::seconds(i64::try_from(every).unwrap_or(i64::MAX / 2));
            match self.store.claim_job(name, &self.node, now, next).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(err) => {
                    tracing::warn!(job = name, error = %err, "cannot claim a job's turn");
                    continue;
                }
            }
            let outcome = match name {
                "sweep" => self.sweep().await,
                "plan_check" => self
                    .run_plan_check(None)
                    .await
                    .map(drop)
                    .map_err(|e| anyhow::anyhow!(e.message)),
                _ => self.rotate_keys_if_due().await,
            };
            if let Err(err) = outcome {
                tracing::warn!(job = name, error = %format!("{err:#}"), "job failed");
            }
        }
    }

    async fn sweep(&self) -> anyhow::Result<()> {
        let now = self.clock.now();
        // Rate-limit windows are minutes since the epoch; older ones are over.
        let swept = self
            .store
            .sweep(now, now.timestamp().div_euclid(60) - 1)
            .await?;
        if swept > 0 {
            tracing::info!(rows = swept, "swept expired sessions, tokens and counters");
        }
        // Mail given up on still holds its link; delivered mail is deleted
        // at once (`mail_sent`).
        let retention = chrono::Duration::days(i64::from(self.config.mail.retention_days));
        let max_attempts = i32::try_from(self.config.mail.max_attempts).unwrap_or(i32::MAX);
        let purged = self
            .store
            .purge_given_up_mail(max_attempts, now - retention)
            .await?;
        if purged > 0 {
            tracing::info!(
                mails = purged,
                "purged undeliverable mail past its retention"
            );
        }
        Ok(())
    }

    /// Adds a signing key when the newest is `jwt.rotation_days` old, and
    /// drops keys whose successors have been signing for longer than a
    /// token lives (so no token they signed is still valid).
    pub async fn rotate_keys_if_due(&self) -> anyhow::Result<()> {
        let now = self.clock.now();
        let keys = self.store.signing_keys().await?;
        let newest = keys.iter().map(|k| k.created_at).max();
        let days = self.config.jwt.rotation_days;
        let age = chrono::Duration::days(i64::from(days));
        if days > 0 && newest.is_none_or(|t| now - t >= age) {
            self.rotate_keys().await?;
        }
        let lifetime = i64::from(self.config.jwt.ttl_seconds) + RETIRE_MARGIN_SECONDS;
        let retired = self
            .store
            .retire_signing_keys(now - chrono::Duration::seconds(lifetime))
            .await?;
        if retired > 0 {
            tracing::info!(keys = retired, "retired old JWT signing keys");
        }
        Ok(())
    }

    /// A new signing key, at once: every node signs with it as soon as it
    /// hears of it; the old keys keep verifying until retired.
    pub async fn rotate_keys(&self) -> anyhow::Result<String> {
        let key = jwt::generate_key(self.clock.now())?;
        self.store.add_signing_key(&key).await?;
        self.reload_keys().await?;
        tracing::info!(kid = %key.kid, "new JWT signing key");
        Ok(key.kid)
    }

    /// Re-reads the signing keys whenever the store reports a change, and
    /// every minute besides, until `stop`.
    pub async fn follow_keys(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = self.keys_changed.notified() => {}
                _ = tokio::time::sleep(KEYS_EVERY) => {}
                _ = stop.changed() => return,
            }
            if let Err(err) = self.reload_keys().await {
                tracing::warn!(error = %format!("{err:#}"), "reloading JWT keys failed");
            }
        }
    }
}
