//! Second factors: TOTP, backup codes, sign-in challenges, passkeys and their ceremonies.

use super::*;

#[async_trait]
pub trait FactorStore: Send + Sync {
    async fn totp(&self, user_id: Uuid) -> StoreResult<Option<TotpFactor>>;

    /// Stores a new, not yet enabled secret; `false` when TOTP is enabled.
    async fn set_pending_totp(
        &self,
        user_id: Uuid,
        secret_enc: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// Enables the pending factor (the confirming code's step is spent),
    /// replaces the backup codes, and, so nothing made before skips the
    /// second factor, revokes every PAT and every session but `keep`.
    /// `false` when there was nothing pending.
    async fn enable_totp(
        &self,
        user_id: Uuid,
        step: i64,
        backup_hashes: &[Vec<u8>],
        keep: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// Spends a TOTP step: `false` when it (or a later one) was used before.
    async fn spend_totp_step(&self, user_id: Uuid, step: i64) -> StoreResult<bool>;

    /// Spends a backup code: `false` when unknown or used.
    async fn spend_backup_code(
        &self,
        user_id: Uuid,
        hash: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;

    async fn replace_backup_codes(
        &self,
        user_id: Uuid,
        hashes: &[Vec<u8>],
        now: DateTime<Utc>,
    ) -> StoreResult<()>;

    async fn backup_codes_remaining(&self, user_id: Uuid) -> StoreResult<i64>;

    /// Removes the factor and the backup codes.
    async fn disable_totp(&self, user_id: Uuid, now: DateTime<Utc>) -> StoreResult<()>;

    async fn create_mfa_challenge(
        &self,
        hash: &[u8],
        user_id: Uuid,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// The user of an unexpired challenge, without using it.
    async fn find_mfa_challenge(
        &self,
        hash: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Uuid>>;

    /// Uses a challenge up: `false` when another request did first.
    async fn take_mfa_challenge(&self, hash: &[u8]) -> StoreResult<bool>;

    /// Refuses with `Conflict("limit")` once the user has `max` passkeys.
    async fn add_passkey(&self, passkey: &StoredPasskey, max: u32) -> StoreResult<()>;

    async fn passkeys(&self, user_id: Uuid) -> StoreResult<Vec<StoredPasskey>>;

    /// `false` when the user has no such passkey.
    async fn rename_passkey(&self, user_id: Uuid, id: Uuid, name: &str) -> StoreResult<bool>;

    /// Deletes a passkey unless it is the last way to sign in (no password,
    /// no identity, no other passkey); serialised per user.
    async fn delete_passkey(&self, user_id: Uuid, id: Uuid) -> StoreResult<UnlinkOutcome>;

    /// Records a use (and the authenticator's new counter).
    async fn passkey_used(&self, id: Uuid, passkey: &str, now: DateTime<Utc>) -> StoreResult<()>;

    async fn save_ceremony(
        &self,
        id_hash: &[u8],
        user_id: Option<Uuid>,
        kind: &str,
        state: &str,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// Removes and returns an unexpired ceremony's (user, state), once.
    async fn take_ceremony(
        &self,
        id_hash: &[u8],
        kind: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<(Option<Uuid>, String)>>;
}
