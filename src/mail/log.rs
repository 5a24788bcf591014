use async_trait::async_trait;

use super::Mailer;
use crate::store::OutboxMail;

/// Writes mail to the log instead of sending it: for development, when no
/// SMTP server is configured. The body (and any link in it) is logged.
pub struct LogMailer;

#[async_trait]
impl Mailer for LogMailer {
    async fn send(&self, mail: &OutboxMail) -> anyhow::Result<()> {
        tracing::info!(
            target: "tessera::mail",
            to = %mail.recipient,
            subject = %mail.subject,
            body = %mail.body_text,
            "mail (no SMTP server configured)"
        );
        Ok(())
    }
}
