//! Mail: templates, transports, and the outbox worker.
//!
//! Mail is never sent from a request. The request writes it to the outbox in
//! the same transaction as the event that causes it; the worker delivers it
//! with retries and backoff, so a mail server that is down delays mail and
//! loses none. A delivered message is deleted from the outbox.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{watch, Notify};

use crate::clock::Clock;
use crate::config::Config;
use crate::store::{OutboxMail, Store};

mod log;
mod smtp;
pub mod templates;

pub use self::log::LogMailer;
pub use smtp::SmtpMailer;

#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    async fn send(&self, mail: &OutboxMail) -> anyhow::Result<()>;
}

/// The SMTP transport when `smtp_url` is set, else the log.
pub fn from_config(config: &Config) -> anyhow::Result<Arc<dyn Mailer>> {
    use secrecy::ExposeSecret;
    match &config.smtp_url {
        Some(url) => Ok(Arc::new(SmtpMailer::new(
            url.expose_secret(),
            &config.mail_from,
        )?)),
        None => {
            let mailer = LogMailer::new(&config.public_url);
            if mailer.logs_bodies() {
                tracing::warn!(
                    "TESSERA_SMTP_URL is unset: outgoing mail, links included, is written to the \
                     log (the public URL is a loopback address: development)"
                );
            } else {
                tracing::warn!(
                    "TESSERA_SMTP_URL is unset: no mail is delivered; the log shows only each \
                     message's recipient and subject, never its links"
                );
            }
            Ok(Arc::new(mailer))
        }
    }
}

/// Delay before the next attempt after `attempts` failures: 5 s doubling,
/// capped at one hour.
pub fn backoff(attempts: i32) -> chrono::Duration {
    let exp = attempts.clamp(0, 10) as u32;
    chrono::Duration::seconds((5i64 << exp).min(3600))
}

pub struct OutboxWorker {
    pub store: Arc<dyn Store>,
    pub mailer: Arc<dyn Mailer>,
    pub clock: Arc<dyn Clock>,
    pub wake: Arc<Notify>,
    pub poll: Duration,
    pub max_attempts: i32,
    /// This node's name on its claims.
    pub node: String,
    /// How long a claim holds (`mail.claim_seconds`).
    pub lease: chrono::Duration,
    pub metrics: crate::metrics::Metrics,
}

impl OutboxWorker {
    /// Delivers due mail until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if let Err(err) = self.deliver_due().await {
                tracing::warn!(error = %format!("{err:#}"), "mail outbox pass failed");
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.poll) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }

    /// One pass over the due mail; returns how many were delivered.
    ///
    /// Messages are claimed a few at a time, so that several nodes share a
    /// backlog and a node that dies holds little. Delivery is at least
    /// once: a node that dies after the SMTP server accepted a message but
    /// before recording it leaves it to be sent again when its claim runs
    /// out. Every attempt carries the same `Message-ID` (the outbox id), so
    /// mail systems can recognise the copy.
    pub async fn deliver_due(&self) -> anyhow::Result<usize> {
        let mut delivered = 0;
        loop {
            let now = self.clock.now();
            let due = self
                .store
                .claim_mail(&self.node, now, now + self.lease, self.max_attempts, 5)
                .await?;
            if due.is_empty() {
                return Ok(delivered);
            }
            let mut failed = 0;
            for mail in &due {
                let sent = tokio::time::timeout(Duration::from_secs(30), self.mailer.send(mail))
                    .await
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("timed out")));
                match sent {
                    Ok(()) => {
                        self.store.mail_sent(mail.id).await?;
                        self.metrics.mail(true);
                        delivered += 1;
                    }
                    Err(err) => {
                        failed += 1;
                        self.metrics.mail(false);
                        let retry_at = self.clock.now() + backoff(mail.attempts);
                        tracing::warn!(mail_id = %mail.id, attempts = mail.attempts + 1,
                            error = %format!("{err:#}"), "mail delivery failed; will retry");
                        self.store
                            .mail_failed(mail.id, retry_at, &format!("{err:#}"))
                            .await?;
                    }
                }
            }
            if failed == due.len() {
                // The server is likely down; wait for the next pass.
                return Ok(delivered);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::backoff;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(0).num_seconds(), 5);
        assert_eq!(backoff(1).num_seconds(), 10);
        assert_eq!(backoff(3).num_seconds(), 40);
        assert_eq!(backoff(30).num_seconds(), 3600);
    }
}
