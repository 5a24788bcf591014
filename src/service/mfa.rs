//! Two-factor authentication: TOTP with backup codes, and the second step
//! of a login.

use anyhow::Context;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::Duration;
use secrecy::ExposeSecret;
use totp_rs::TOTP;
use uuid::Uuid;

use super::audit::{Audit, AuditAction};
use super::sessions::LoginOutcome;
use super::{ClientInfo, PasskeyAssertion, Tessera};
use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::token::{self, hash_secret};
use crate::crypto::totp::{self, SecretBox};
use crate::error::{AppError, AppResult};
use crate::store::{Store, TotpFactor, User};

/// How long the second step may take after the password.
pub const CHALLENGE_TTL: Duration = Duration::minutes(5);

pub struct TwoFactorStatus {
    pub enabled: bool,
    pub methods: Vec<&'static str>,
    pub backup_codes_remaining: i64,
}

pub struct TotpSetup {
    /// Base32, for typing into an app.
    pub secret: String,
    pub otpauth_uri: String,
}

/// A second factor as a client sends it.
#[derive(Debug, Default, Clone, Copy)]
pub struct SecondFactor<'a> {
    pub code: Option<&'a str>,
    pub backup_code: Option<&'a str>,
    /// An assertion of one of the user's passkeys (see
    /// `passkey_second_factor_start`).
    pub passkey: Option<PasskeyAssertion<'a>>,
}

impl<'a> SecondFactor<'a> {
    /// Whether anything was sent at all (nothing is not an attempt).
    fn is_present(&self) -> bool {
        self.passkey.is_some()
            || self.code.is_some_and(|c| !c.trim().is_empty())
            || self.backup_code.is_some_and(|c| !c.trim().is_empty())
    }

    /// A TOTP code or a backup code, as the request bodies carry them.
    pub fn codes(code: Option<&'a str>, backup_code: Option<&'a str>) -> Self {
        SecondFactor {
            code,
            backup_code,
            passkey: None,
        }
    }
}

fn invalid_challenge() -> AppError {
    AppError::field("challenge", "is invalid or expired; sign in again")
}

fn wrong_code() -> AppError {
    AppError::field("code", "is incorrect or was already used")
}

impl Tessera {
    /// The key TOTP secrets are sealed with: from configuration, else
    /// generated once and kept in the database for every node.
    pub(super) async fn totp_box(
        config: &Config,
        store: &dyn Store,
        clock: &dyn Clock,
    ) -> anyhow::Result<SecretBox> {
        let key = match &config.mfa.encryption_key {
            Some(key) => STANDARD
                .decode(key.expose_secret().trim())
                .context("mfa.encryption_key must be base64")?,
            None => {
                store
                    .app_secret("totp_key", &totp::new_secret_key(), clock.now())
                    .await?
            }
        };
        SecretBox::new(&key)
    }

    pub async fn two_factor_status(&self, user: &User) -> AppResult<TwoFactorStatus> {
        let remaining = if user.two_factor_enabled {
            self.store.backup_codes_remaining(user.id).await?
        } else {
            0
        };
        let mut methods = Vec::new();
        if user.two_factor_enabled {
            methods.push("totp");
            if !self.store.passkeys(user.id).await?.is_empty() {
                // Accepted at the second step too.
                methods.push("passkey");
            }
        }
        Ok(TwoFactorStatus {
            enabled: user.two_factor_enabled,
            methods,
            backup_codes_remaining: remaining,
        })
    }

    async fn check_password(
        &self,
        user: &User,
        password: &str,
        client: &ClientInfo,
    ) -> AppResult<()> {
        if user.password_hash.is_none() {
            return Err(AppError::field(
                "password",
                "this account has no password yet; set one first",
            ));
        }
        self.check_current_password(user, password, "password", client)
            .await
    }

    /// A signed-in re-check of the second factor (before turning 2FA off,
    /// new backup codes, a new passkey): counted on the lockout budget
    /// before it is checked, like the second step of a login.
    pub(super) async fn recheck_second_factor(
        &self,
        user: &User,
        factor: SecondFactor<'_>,
        client: &ClientInfo,
    ) -> AppResult<()> {
        if !factor.is_present() {
            return Err(AppError::field("code", "is required (or backup_code)"));
        }
        let budget = self.email_budget(&user.email);
        let attempt = self.spend_attempt(&budget).await?;
        if !self.spend_second_factor(user, factor, client).await? {
            self.second_factor_failed(user, &budget, attempt, client)
                .await;
            return Err(wrong_code());
        }
        self.refund_attempt(&budget).await
    }

    /// Starts TOTP setup: a new secret, not active until confirmed.
    pub async fn totp_setup(
        &self,
        user: &User,
        password: &str,
        client: &ClientInfo,
    ) -> AppResult<TotpSetup> {
        Self::require_verified(user)?;
        if user.two_factor_enabled {
            return Err(AppError::conflict(
                "Two-factor authentication is already on; disable it first.",
            ));
        }
        self.check_password(user, password, client).await?;
        let secret = totp::new_secret();
        let generator = totp::totp(secret.clone(), &self.config.mfa.issuer, &user.email)
            .map_err(AppError::internal)?;
        let sealed = self.totp_box.seal(&secret);
        if !self
            .store
            .set_pending_totp(user.id, &sealed, self.clock.now())
            .await?
        {
            return Err(AppError::conflict(
                "Two-factor authentication is already on; disable it first.",
            ));
        }
        Ok(TotpSetup {
            secret: generator.get_secret_base32(),
            otpauth_uri: generator.get_url(),
        })
    }

    /// The setup waiting for its first code, if any (a page shows the QR
    /// code again after a wrong code).
    pub async fn pending_totp(&self, user: &User) -> AppResult<Option<TotpSetup>> {
        let Some((factor, generator)) = self.stored_totp(user).await? else {
            return Ok(None);
        };
        if factor.enabled_at.is_some() {
            return Ok(None);
        }
        Ok(Some(TotpSetup {
            secret: generator.get_secret_base32(),
            otpauth_uri: generator.get_url(),
        }))
    }

    /// The user's stored TOTP factor (pending or enabled) and its generator.
    async fn stored_totp(&self, user: &User) -> AppResult<Option<(TotpFactor, TOTP)>> {
        let Some(factor) = self.store.totp(user.id).await? else {
            return Ok(None);
        };
        let secret = self
            .totp_box
            .open(&factor.secret_enc)
            .context("a TOTP secret does not open with the configured key")
            .map_err(AppError::internal)?;
        let generator =
            totp::totp(secret, &self.config.mfa.issuer, &user.email).map_err(AppError::internal)?;
        Ok(Some((factor, generator)))
    }

    /// The step a code matches for the user's (pending or enabled) secret.
    async fn totp_step(&self, user: &User, code: &str) -> AppResult<Option<i64>> {
        let Some((_, generator)) = self.stored_totp(user).await? else {
            return Ok(None);
        };
        Ok(totp::matching_step(
            &generator,
            code,
            self.clock.now().timestamp(),
        ))
    }

    /// Turns TOTP on with a code from the app; answers the ten backup codes
    /// (shown once). Every PAT and every other session is revoked, so
    /// nothing made before skips the second factor.
    pub async fn totp_enable(
        &self,
        user: &User,
        keep_session: Option<Uuid>,
        code: &str,
        client: &ClientInfo,
    ) -> AppResult<Vec<String>> {
        Self::require_verified(user)?;
        if user.two_factor_enabled {
            return Err(AppError::conflict(
                "Two-factor authentication is already on.",
            ));
        }
        let step = self.totp_step(user, code).await?.ok_or_else(wrong_code)?;
        let codes = totp::new_backup_codes();
        let hashes = Self::backup_hashes(&codes);
        let enabled = self
            .store
            .enable_totp(user.id, step, &hashes, keep_session, self.clock.now())
            .await?;
        if !enabled {
            return Err(AppError::conflict(
                "Start the setup again: no pending secret to confirm.",
            ));
        }
        self.record(
            Audit::new(AuditAction::TwoFactorEnable)
                .actor(user.id)
                .target(user.id)
                .client(client),
        )
        .await;
        Ok(codes)
    }

    fn backup_hashes(codes: &[String]) -> Vec<Vec<u8>> {
        codes
            .iter()
            .map(|c| hash_secret(&totp::normalize_backup_code(c)))
            .collect()
    }

    /// Checks and spends a second factor: a TOTP code (each step once) or a
    /// backup code (each once).
    async fn spend_second_factor(
        &self,
        user: &User,
        factor: SecondFactor<'_>,
        client: &ClientInfo,
    ) -> AppResult<bool> {
        if let Some(assertion) = factor.passkey {
            return self.spend_passkey_factor(user, assertion).await;
        }
        if let Some(code) = factor.code.filter(|c| !c.trim().is_empty()) {
            return Ok(match self.totp_step(user, code).await? {
                Some(step) => self.store.spend_totp_step(user.id, step).await?,
                None => false,
            });
        }
        if let Some(backup) = factor.backup_code.filter(|c| !c.trim().is_empty()) {
            if backup.len() > 64 {
                return Ok(false);
            }
            let hash = hash_secret(&totp::normalize_backup_code(backup));
            let spent = self
                .store
                .spend_backup_code(user.id, &hash, self.clock.now())
                .await?;
            if spent {
                self.record(
                    Audit::new(AuditAction::TwoFactorBackupCodeUsed)
                        .actor(user.id)
                        .target(user.id)
                        .client(client),
                )
                .await;
            }
            return Ok(spent);
        }
        Err(AppError::field("code", "is required (or backup_code)"))
    }

    /// Turns two-factor off: the password and a current code or a backup code.
    pub async fn two_factor_disable(
        &self,
        user: &User,
        password: &str,
        factor: SecondFactor<'_>,
        client: &ClientInfo,
    ) -> AppResult<()> {
        if !user.two_factor_enabled {
            return Err(AppError::conflict("Two-factor authentication is off."));
        }
        self.check_password(user, password, client).await?;
        self.recheck_second_factor(user, factor, client).await?;
        self.store.disable_totp(user.id, self.clock.now()).await?;
        self.record(
            Audit::new(AuditAction::TwoFactorDisable)
                .actor(user.id)
                .target(user.id)
                .client(client),
        )
        .await;
        Ok(())
    }

    /// A new set of backup codes (the password and a second factor); the
    /// old set stops working.
    pub async fn regenerate_backup_codes(
        &self,
        user: &User,
        password: &str,
        factor: SecondFactor<'_>,
        client: &ClientInfo,
    ) -> AppResult<Vec<String>> {
        if !user.two_factor_enabled {
            return Err(AppError::conflict("Two-factor authentication is off."));
        }
        self.check_password(user, password, client).await?;
        self.recheck_second_factor(user, factor, client).await?;
        let codes = totp::new_backup_codes();
        self.store
            .replace_backup_codes(user.id, &Self::backup_hashes(&codes), self.clock.now())
            .await?;
        self.record(
            Audit::new(AuditAction::TwoFactorBackupCodesRegenerated)
                .actor(user.id)
                .target(user.id)
                .client(client),
        )
        .await;
        Ok(codes)
    }

    /// After the first factor of a user with 2FA on: a short-lived,
    /// single-use challenge bound to the user, and no session.
    pub(super) async fn two_factor_challenge(&self, user: &User) -> AppResult<LoginOutcome> {
        let challenge = token::random_secret();
        let now = self.clock.now();
        self.store
            .create_mfa_challenge(&hash_secret(&challenge), user.id, now, now + CHALLENGE_TTL)
            .await?;
        Ok(LoginOutcome::TwoFactorRequired { challenge })
    }

    /// A wrong second factor (already counted on the lockout budget, as a
    /// wrong password is).
    async fn second_factor_failed(
        &self,
        user: &User,
        budget: &super::sessions::Budget,
        attempt: i32,
        client: &ClientInfo,
    ) {
        self.record(
            Audit::new(AuditAction::TwoFactorFailure)
                .target(user.id)
                .client(client),
        )
        .await;
        self.login_failed(&user.email, Some(user.id), budget, attempt, client)
            .await;
    }

    /// The user a live login challenge belongs to.
    pub(super) async fn challenge_user(&self, challenge: &str) -> AppResult<User> {
        if !crate::crypto::token::plausible_secret(challenge) {
            return Err(invalid_challenge());
        }
        let user_id = self
            .store
            .find_mfa_challenge(&hash_secret(challenge), self.clock.now())
            .await?
            .ok_or_else(invalid_challenge)?;
        self.active_user(user_id)
            .await?
            .filter(|u| u.two_factor_enabled)
            .ok_or_else(invalid_challenge)
    }

    /// The second step of a login: the challenge and a code or backup code.
    pub async fn verify_two_factor(
        &self,
        challenge: &str,
        factor: SecondFactor<'_>,
        client: &ClientInfo,
    ) -> AppResult<LoginOutcome> {
        let user = self.challenge_user(challenge).await?;
        let hash = hash_secret(challenge);
        if !factor.is_present() {
            return Err(AppError::field("code", "is required (or backup_code)"));
        }
        // Counted before it is checked, on the budget the password spent.
        let budget = self.budget_for(&user.email, Some(user.id), client);
        let attempt = self.spend_attempt(&budget).await?;
        if !self.spend_second_factor(&user, factor, client).await? {
            self.second_factor_failed(&user, &budget, attempt, client)
                .await;
            return Err(wrong_code());
        }
        // Single use, even when two right codes race.
        if !self.store.take_mfa_challenge(&hash).await? {
            return Err(invalid_challenge());
        }
        self.store.clear_login_failures(&budget.key).await?;
        self.start_login_session(user, "password+2fa", client).await
    }
}
