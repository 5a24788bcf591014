use async_trait::async_trait;
use url::{Host, Url};

use super::Mailer;
use crate::store::OutboxMail;

/// Writes mail to the log instead of sending it, when no SMTP server is
/// configured. Bodies carry links with tokens (password resets,
/// verifications, invitations), and logs travel further than mail: to
/// collectors, tickets, screenshots. So a body is logged only in
/// development, when the public URL is a loopback address and its links
/// work on this machine alone; otherwise only the recipient and subject.
pub struct LogMailer {
    bodies: bool,
}

impl LogMailer {
    /// A mailer for a server at `public_url`.
    pub fn new(public_url: &Url) -> LogMailer {
        LogMailer {
            bodies: is_loopback(public_url),
        }
    }

    /// Whether bodies (and their links) are logged.
    pub fn logs_bodies(&self) -> bool {
        self.bodies
    }
}

/// `localhost`, `127.0.0.0/8` or `::1`.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[async_trait]
impl Mailer for LogMailer {
    async fn send(&self, mail: &OutboxMail) -> anyhow::Result<()> {
        if self.bodies {
            tracing::info!(
                target: "tessera::mail",
                to = %mail.recipient,
                subject = %mail.subject,
                body = %mail.body_text,
                "mail (no SMTP server configured)"
            );
        } else {
            // `from_config` warned once, at start, that nothing is delivered.
            tracing::info!(
                target: "tessera::mail",
                to = %mail.recipient,
                subject = %mail.subject,
                "mail not delivered: no SMTP server configured (set TESSERA_SMTP_URL)"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_public_urls_log_bodies() {
        for (url, bodies) in [
            ("http://localhost:8080", true),
            ("http://LOCALHOST", true),
            ("http://127.0.0.1:8080", true),
            ("http://127.8.9.10", true),
            ("http://[::1]:8080", true),
            ("https://auth.example.com", false),
            ("http://localhost.example.com", false),
            ("http://10.0.0.5:8080", false),
            ("http://[::ffff:127.0.0.1]", false),
            ("http://0.0.0.0:8080", false),
        ] {
            let mailer = LogMailer::new(&Url::parse(url).unwrap());
            assert_eq!(mailer.logs_bodies(), bodies, "{url}");
        }
    }
}
