//! Passkeys (WebAuthn, with webauthn-rs): registration, management,
//! passwordless sign-in, and use as a second factor.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Duration;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use url::Url;
use uuid::Uuid;
use webauthn_rs::prelude::{
    Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, RequestChallengeResponse,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};

use super::audit::{Audit, AuditAction};
use super::sessions::LoginOutcome;
use super::{ClientInfo, Tessera};
use crate::config::Config;
use crate::crypto::token::{self, hash_secret};
use crate::domain::{self, Email};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::store::{StoredPasskey, UnlinkOutcome, User};

/// How long a browser may take between the start and the finish.
const CEREMONY_TTL: Duration = Duration::minutes(5);
const NAME_MAX: usize = 100;

/// Options to hand to `navigator.credentials.create/get`, and the id to
/// send back with the result.
pub struct PasskeyCeremony {
    pub ceremony_id: String,
    pub options: Value,
}

/// A passkey assertion as a client sends it.
#[derive(Debug, Clone, Copy)]
pub struct PasskeyAssertion<'a> {
    pub ceremony_id: &'a str,
    pub credential: &'a Value,
}

/// `webauthn.rp_id`, else the public URL's host.
fn rp_id(config: &Config) -> Option<String> {
    config
        .webauthn
        .rp_id
        .clone()
        .or_else(|| config.public_url.host_str().map(str::to_owned))
}

pub fn build_webauthn(config: &Config) -> anyhow::Result<Webauthn> {
    let public = &config.public_url;
    let rp_id = rp_id(config).ok_or_else(|| anyhow::anyhow!("public_url has no host"))?;
    let origins: Vec<Url> = if config.webauthn.origins.is_empty() {
        vec![public.clone()]
    } else {
        config
            .webauthn
            .origins
            .iter()
            .map(|o| Url::parse(o).map_err(|e| anyhow::anyhow!("webauthn.origins: {o:?}: {e}")))
            .collect::<anyhow::Result<_>>()?
    };
    let mut builder = WebauthnBuilder::new(&rp_id, &origins[0])
        .map_err(|e| anyhow::anyhow!("webauthn configuration: {e}"))?
        .rp_name(&config.mfa.issuer);
    for origin in &origins[1..] {
        builder = builder.append_allowed_origin(origin);
    }
    builder
        .build()
        .map_err(|e| anyhow::anyhow!("webauthn configuration: {e}"))
}

fn bad_credential() -> AppError {
    AppError::field("credential", "is not a valid WebAuthn credential")
}

fn passkey_refused() -> AppError {
    AppError::new(
        ErrorCode::Unauthorized,
        "The passkey was not accepted; try again.",
    )
}

fn state_json<T: serde::Serialize>(state: &T) -> AppResult<String> {
    serde_json::to_string(state).map_err(AppError::internal)
}

/// Bytes for the decoys of one email: SHA-256 of the decoy key, the email
/// and a block counter, block after block.
struct DecoyStream<'a> {
    key: &'a [u8],
    email: &'a str,
    block: u32,
    buffer: Vec<u8>,
}

impl DecoyStream<'_> {
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        while self.buffer.len() < n {
            let mut h = Sha256::new();
            h.update(self.key);
            h.update(self.email.as_bytes());
            h.update(self.block.to_be_bytes());
            self.block += 1;
            self.buffer.extend_from_slice(&h.finalize());
        }
        self.buffer.drain(..n).collect()
    }

    fn u32(&mut self) -> u32 {
        let b = self.bytes(4);
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }
}

/// Credential ids for an email without passkeys, stable for the email, and
/// in number and length drawn as webauthn-rs's fake-credential generator
/// draws them from observed accounts (one synced passkey for most, two or
/// three of assorted devices for some), except that there is always at
/// least one: an account with passkeys always lists one.
fn decoy_credential_ids(key: &[u8], email: &str) -> Vec<Vec<u8>> {
    use webauthn_rs::fake::{
        APPLE_CRED_LEN, BITWARDEN_CRED_LEN, G_PIXEL_CRED_LEN, TPM_CRED_LEN, YUBIKEY_CRED_LEN,
    };
    let mut stream = DecoyStream {
        key,
        email,
        block: 0,
        buffer: Vec::new(),
    };
    // Fractions of u32::MAX: 84.1 % and 97.8 % (one and two standard
    // deviations), as webauthn-rs uses them.
    let count = match stream.u32() {
        x if x < 3_612_067_496 => 1,
        x if x < 4_200_478_015 => 2,
        _ => 3,
    };
    (0..count)
        .map(|_| {
            let draw = stream.u32();
            let len = if count == 1 {
                match draw {
                    x if x < 2_946_347_564 => G_PIXEL_CRED_LEN,
                    x if x < 4_200_478_014 => APPLE_CRED_LEN,
                    _ => BITWARDEN_CRED_LEN,
                }
            } else {
                match draw {
                    x if x < 2_173_682_947 => G_PIXEL_CRED_LEN,
                    x if x < 2_546_486_108 => TPM_CRED_LEN,
                    x if x < 3_974_562_733 => APPLE_CRED_LEN,
                    x if x < 4_134_765_013 => YUBIKEY_CRED_LEN,
                    _ => BITWARDEN_CRED_LEN,
                }
            };
            stream.bytes(len)
        })
        .collect()
}

impl Tessera {
    fn webauthn(&self) -> AppResult<&Webauthn> {
        self.webauthn.as_ref().ok_or_else(|| {
            AppError::unavailable("Passkeys are not available: set webauthn.rp_id to a domain.")
        })
    }

    async fn new_ceremony(
        &self,
        user_id: Option<Uuid>,
        kind: &str,
        state: String,
        options: Value,
    ) -> AppResult<PasskeyCeremony> {
        let ceremony_id = token::random_secret();
        self.store
            .save_ceremony(
                &hash_secret(&ceremony_id),
                user_id,
                kind,
                &state,
                self.clock.now() + CEREMONY_TTL,
            )
            .await?;
        Ok(PasskeyCeremony {
            ceremony_id,
            options,
        })
    }

    async fn take_ceremony(
        &self,
        ceremony_id: &str,
        kind: &str,
    ) -> AppResult<(Option<Uuid>, String)> {
        let invalid = || AppError::field("ceremony_id", "is invalid or expired; start again");
        if !crate::crypto::token::plausible_secret(ceremony_id) {
            return Err(invalid());
        }
        self.store
            .take_ceremony(&hash_secret(ceremony_id), kind, self.clock.now())
            .await?
            .ok_or_else(invalid)
    }

    fn user_passkeys(stored: &[StoredPasskey]) -> Vec<(Uuid, Passkey)> {
        stored
            .iter()
            .filter_map(|p| {
                serde_json::from_str::<Passkey>(&p.passkey)
                    .ok()
                    .map(|k| (p.id, k))
            })
            .collect()
    }

    /// Starts registering a passkey for a signed-in user.
    /// With two-factor on, a second factor is checked first (the password
    /// alone, or a stolen session, must not add a way in).
    pub async fn passkey_register_start(
        &self,
        user: &User,
        factor: super::SecondFactor<'_>,
        client: &ClientInfo,
    ) -> AppResult<PasskeyCeremony> {
        Self::require_verified(user)?;
        if user.two_factor_enabled {
            self.recheck_second_factor(user, factor, client).await?;
        }
        let existing = self.store.passkeys(user.id).await?;
        let exclude = Self::user_passkeys(&existing)
            .into_iter()
            .map(|(_, k)| k.cred_id().clone())
            .collect::<Vec<_>>();
        let display = user.name.as_deref().unwrap_or(&user.email);
        let (options, state) = self
            .webauthn()?
            .start_passkey_registration(user.id, &user.email, display, Some(exclude))
            .map_err(AppError::internal)?;
        let options = serde_json::to_value(options).map_err(AppError::internal)?;
        self.new_ceremony(Some(user.id), "register", state_json(&state)?, options)
            .await
    }

    /// Finishes a registration with the authenticator's answer.
    pub async fn passkey_register_finish(
        &self,
        user: &User,
        ceremony_id: &str,
        credential: &Value,
        name: Option<&str>,
        client: &ClientInfo,
    ) -> AppResult<StoredPasskey> {
        Self::require_verified(user)?;
        let name = domain::clean_text(name, NAME_MAX)
            .map_err(|reason| AppError::field("name", reason))?
            .unwrap_or_else(|| "Passkey".to_owned());
        let credential: RegisterPublicKeyCredential =
            serde_json::from_value(credential.clone()).map_err(|_| bad_credential())?;
        let (owner, state) = self.take_ceremony(ceremony_id, "register").await?;
        if owner != Some(user.id) {
            return Err(AppError::field(
                "ceremony_id",
                "is invalid or expired; start again",
            ));
        }
        let state: PasskeyRegistration =
            serde_json::from_str(&state).map_err(AppError::internal)?;
        let passkey = self
            .webauthn()?
            .finish_passkey_registration(&credential, &state)
            .map_err(|err| {
                tracing::info!(error = %err, "passkey registration refused");
                bad_credential()
            })?;
        let stored = StoredPasskey {
            id: Uuid::new_v4(),
            user_id: user.id,
            name,
            credential_id: passkey.cred_id().to_vec(),
            passkey: state_json(&passkey)?,
            created_at: self.clock.now(),
            last_used_at: None,
        };
        let max = self.config.security.max_passkeys_per_user;
        self.store
            .add_passkey(&stored, max)
            .await
            .map_err(|e| match e {
                crate::store::StoreError::Conflict("limit") => {
                    super::over_budget("passkeys", max, false)
                }
                crate::store::StoreError::Conflict(_) => {
                    AppError::conflict("This passkey is registered already.")
                }
                other => other.into(),
            })?;
        self.record(
            Audit::new(AuditAction::PasskeyAdd)
                .actor(user.id)
                .target(user.id)
                .client(client),
        )
        .await;
        Ok(stored)
    }

    pub async fn list_passkeys(&self, user: &User) -> AppResult<Vec<StoredPasskey>> {
        Ok(self.store.passkeys(user.id).await?)
    }

    pub async fn rename_passkey(&self, user: &User, id: Uuid, name: &str) -> AppResult<()> {
        let name = domain::clean_text(Some(name), NAME_MAX)
            .map_err(|reason| AppError::field("name", reason))?
            .ok_or_else(|| AppError::field("name", "is required"))?;
        if !self.store.rename_passkey(user.id, id, &name).await? {
            return Err(AppError::not_found("No such passkey."));
        }
        Ok(())
    }

    /// Deletes a passkey, unless it is the only way left to sign in.
    pub async fn delete_passkey(
        &self,
        user: &User,
        id: Uuid,
        client: &ClientInfo,
    ) -> AppResult<()> {
        match self.store.delete_passkey(user.id, id).await? {
            UnlinkOutcome::Done => {}
            UnlinkOutcome::NotLinked => return Err(AppError::not_found("No such passkey.")),
            UnlinkOutcome::LastMethod => {
                return Err(AppError::conflict(
                    "This passkey is the only way to sign in to this account.",
                ))
            }
        }
        self.record(
            Audit::new(AuditAction::PasskeyDelete)
                .actor(user.id)
                .target(user.id)
                .client(client),
        )
        .await;
        Ok(())
    }

    /// Options for asserting one of `user`'s passkeys, or `None` when the
    /// user has none.
    async fn assertion_options(
        &self,
        user: &User,
    ) -> AppResult<Option<(Value, PasskeyAuthentication)>> {
        let passkeys: Vec<Passkey> = Self::user_passkeys(&self.store.passkeys(user.id).await?)
            .into_iter()
            .map(|(_, k)| k)
            .collect();
        if passkeys.is_empty() {
            return Ok(None);
        }
        let (mut options, state) = self
            .webauthn()?
            .start_passkey_authentication(&passkeys)
            .map_err(AppError::internal)?;
        // Transports are hints a decoy cannot fake well (they name the kind
        // of device); without them the browser offers every way to reach
        // the passkey.
        for credential in &mut options.public_key.allow_credentials {
            credential.transports = None;
        }
        Ok(Some((
            serde_json::to_value(options).map_err(AppError::internal)?,
            state,
        )))
    }

    /// Options that look like a real request for an email without passkeys
    /// (or without an account): a random challenge and credential ids that
    /// are stable for the email, so the answer reveals nothing. Built as
    /// webauthn-rs's own type, so that it serialises with exactly the
    /// fields and types a real request has.
    fn decoy_options(&self, email: &str) -> AppResult<Value> {
        let ids: Vec<Value> = decoy_credential_ids(&self.passkey_decoy_key, email)
            .into_iter()
            .map(|id| json!({"type": "public-key", "id": URL_SAFE_NO_PAD.encode(id)}))
            .collect();
        let options: RequestChallengeResponse = serde_json::from_value(json!({
            "publicKey": {
                "challenge": token::random_secret(),
                "timeout": u64::try_from(webauthn_rs::DEFAULT_AUTHENTICATOR_TIMEOUT.as_millis())
                    .unwrap_or(300_000),
                // What the relying party was built with (`build_webauthn`).
                "rpId": rp_id(&self.config).unwrap_or_default(),
                "allowCredentials": ids,
                "userVerification": "required"
            }
        }))
        .map_err(AppError::internal)?;
        serde_json::to_value(options).map_err(AppError::internal)
    }

    /// Starts a passwordless sign-in for `email`.
    pub async fn passkey_login_start(&self, email: &str) -> AppResult<PasskeyCeremony> {
        let email = Email::parse(email).map_err(|reason| AppError::field("email", reason))?;
        // With passkeys off, every email gets the same refusal (not decoys
        // for some and a 503 for accounts that have passkeys).
        self.webauthn()?;
        let user = self
            .store
            .find_user_by_email(email.as_str())
            .await?
            .filter(|u| u.disabled_at.is_none());
        let real = match &user {
            Some(user) => self.assertion_options(user).await?,
            None => None,
        };
        match (user, real) {
            (Some(user), Some((options, state))) => {
                self.new_ceremony(Some(user.id), "login", state_json(&state)?, options)
                    .await
            }
            _ => {
                let options = self.decoy_options(email.as_str())?;
                self.new_ceremony(None, "login", "null".into(), options)
                    .await
            }
        }
    }

    /// Checks an assertion against a ceremony's state and the user's
    /// passkeys; records the use. `false` when it does not verify.
    async fn check_assertion(
        &self,
        user_id: Uuid,
        state: &str,
        credential: &Value,
    ) -> AppResult<bool> {
        let Ok(state) = serde_json::from_str::<PasskeyAuthentication>(state) else {
            return Ok(false);
        };
        let credential: PublicKeyCredential =
            serde_json::from_value(credential.clone()).map_err(|_| bad_credential())?;
        let Ok(result) = self
            .webauthn()?
            .finish_passkey_authentication(&credential, &state)
        else {
            return Ok(false);
        };
        let stored = self.store.passkeys(user_id).await?;
        for (id, mut passkey) in Self::user_passkeys(&stored) {
            if passkey.cred_id() == result.cred_id() {
                passkey.update_credential(&result);
                self.store
                    .passkey_used(id, &state_json(&passkey)?, self.clock.now())
                    .await?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Finishes a passwordless sign-in. A passkey with user verification is
    /// two factors in one, so no second step follows.
    pub async fn passkey_login_finish(
        &self,
        ceremony_id: &str,
        credential: &Value,
        client: &ClientInfo,
    ) -> AppResult<LoginOutcome> {
        let (user_id, state) = self.take_ceremony(ceremony_id, "login").await?;
        let Some(user_id) = user_id else {
            return Err(passkey_refused());
        };
        if !self.check_assertion(user_id, &state, credential).await? {
            return Err(passkey_refused());
        }
        let user = self
            .active_user(user_id)
            .await?
            .ok_or_else(passkey_refused)?;
        Self::may_sign_in(&user, &self.config)?;
        self.start_login_session(user, "passkey", client).await
    }

    /// Options for using a passkey as the second step of a login.
    pub async fn passkey_second_factor_start(&self, challenge: &str) -> AppResult<PasskeyCeremony> {
        let user = self.challenge_user(challenge).await?;
        let (options, state) = self
            .assertion_options(&user)
            .await?
            .ok_or_else(|| AppError::conflict("This account has no passkey."))?;
        self.new_ceremony(Some(user.id), "second_factor", state_json(&state)?, options)
            .await
    }

    /// Whether an assertion answers a second-factor ceremony of `user`.
    pub(super) async fn spend_passkey_factor(
        &self,
        user: &User,
        assertion: PasskeyAssertion<'_>,
    ) -> AppResult<bool> {
        let (owner, state) = self
            .take_ceremony(assertion.ceremony_id, "second_factor")
            .await?;
        if owner != Some(user.id) {
            return Ok(false);
        }
        self.check_assertion(user.id, &state, assertion.credential)
            .await
    }
}
