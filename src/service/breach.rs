//! New passwords: the optional breached-password check (a HIBP-style range
//! API, k-anonymity: only the first five hex digits of the SHA-1 leave the
//! server), then hashing.

use std::time::Duration;

use sha1::{Digest, Sha1};

use super::Tessera;
use crate::domain::NewPassword;
use crate::error::{AppError, AppResult};

/// A range lookup slower than this is skipped (fail-open).
const RANGE_TIMEOUT: Duration = Duration::from_secs(2);

impl Tessera {
    /// Hashes a password that passed the policy, after refusing it (as a
    /// `VALIDATION_FAILED` on `field`) when the breach API lists it.
    pub(super) async fn hash_new_password(
        &self,
        password: &NewPassword,
        field: &str,
    ) -> AppResult<String> {
        if self.is_breached(password).await {
            return Err(AppError::field(
                field,
                "appears in a known data breach; choose another password",
            ));
        }
        self.hasher
            .hash(password.expose())
            .await
            .map_err(AppError::internal)
    }

    /// `false` when the check is off or the API cannot be reached: an outage
    /// of a third party must not stop sign-ups.
    async fn is_breached(&self, password: &NewPassword) -> bool {
        let Some(base) = &self.config.security.breached_password_url else {
            return false;
        };
        let digest = hex::encode_upper(Sha1::digest(password.expose().as_bytes()));
        let (prefix, suffix) = digest.split_at(5);
        let answer = async {
            self.http_client
                .get(format!("{base}{prefix}"))
                .header("Add-Padding", "true")
                .timeout(RANGE_TIMEOUT)
                .send()
                .await?
                .error_for_status()?
                .text()
                .await
        }
        .await;
        match answer {
            Ok(body) => range_lists(&body, suffix),
            Err(err) => {
                tracing::warn!(error = %err, "breached-password API unreachable; password accepted unchecked");
                false
            }
        }
    }
}

/// Whether a range answer (`SUFFIX:COUNT` lines; padding has count 0) lists
/// `suffix`.
fn range_lists(body: &str, suffix: &str) -> bool {
    body.lines().any(|line| {
        line.trim()
            .split_once(':')
            .is_some_and(|(candidate, count)| {
                candidate.eq_ignore_ascii_case(suffix)
                    && count.trim().parse::<u64>().is_ok_and(|n| n > 0)
            })
    })
}

#[cfg(test)]
mod tests {
    use super::range_lists;

    #[test]
    fn padding_and_other_suffixes_do_not_count() {
        let body = "0018A45C4D1DEF81644B54AB7F969B88D65:1\r\n\
                    00D4F6E8FA6EECAD2A3AA415EEC418D38EC:0\r\n";
        assert!(range_lists(body, "0018a45c4d1def81644b54ab7f969b88d65"));
        assert!(!range_lists(body, "00D4F6E8FA6EECAD2A3AA415EEC418D38EC"));
        assert!(!range_lists(body, "FFFFF6E8FA6EECAD2A3AA415EEC418D38EC"));
        assert!(!range_lists("", "00D4F6E8FA6EECAD2A3AA415EEC418D38EC"));
    }
}
