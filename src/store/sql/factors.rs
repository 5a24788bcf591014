//! The SQL of [`FactorStore`], compiled once per backend.

use super::common::*;
use super::*;

#[async_trait]
impl FactorStore for Backend {
    async fn totp(&self, user_id: Uuid) -> StoreResult<Option<TotpFactor>> {
        sqlx::query_as("SELECT secret_enc, enabled_at, last_step FROM user_totp WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&self.writer)
            .await
            .map_err(StoreError::from)
    }

    async fn set_pending_totp(
        &self,
        user_id: Uuid,
        secret_enc: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO user_totp (user_id, secret_enc, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id) DO UPDATE SET secret_enc = $2, created_at = $3, last_step = NULL \
             WHERE user_totp.enabled_at IS NULL",
        )
        .bind(user_id)
        .bind(secret_enc)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn enable_totp(
        &self,
        user_id: Uuid,
        step: i64,
        backup_hashes: &[Vec<u8>],
        keep: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        lock_user(&mut tx, user_id).await?;
        let done = sqlx::query(
            "UPDATE user_totp SET enabled_at = $2, last_step = $3 WHERE user_id = $1 AND enabled_at IS NULL",
        )
        .bind(user_id)
        .bind(now)
        .bind(step)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query("UPDATE users SET two_factor_enabled = $2, updated_at = $3 WHERE id = $1")
            .bind(user_id)
            .bind(true)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        insert_backup_codes(&mut tx, user_id, backup_hashes, now).await?;
        sqlx::query("UPDATE personal_access_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL")
            .bind(user_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        revoke_sessions_except(&mut tx, user_id, keep, now).await?;
        tx.commit().await?;
        self.changes.emit(Change::User(user_id));
        Ok(true)
    }

    async fn spend_totp_step(&self, user_id: Uuid, step: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE user_totp SET last_step = $2 \
             WHERE user_id = $1 AND enabled_at IS NOT NULL AND (last_step IS NULL OR last_step < $2)",
        )
        .bind(user_id)
        .bind(step)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn spend_backup_code(
        &self,
        user_id: Uuid,
        hash: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE backup_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
        )
        .bind(user_id)
        .bind(hash)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() >= 1)
    }

    async fn replace_backup_codes(
        &self,
        user_id: Uuid,
        hashes: &[Vec<u8>],
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        insert_backup_codes(&mut tx, user_id, hashes, now).await?;
        tx.commit().await.map_err(StoreError::from)
    }

    async fn backup_codes_remaining(&self, user_id: Uuid) -> StoreResult<i64> {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM backup_codes WHERE user_id = $1 AND used_at IS NULL",
        )
        .bind(user_id)
        .fetch_one(&self.reader)
        .await
        .map_err(StoreError::from)
    }

    async fn disable_totp(&self, user_id: Uuid, now: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        for sql in [
            "DELETE FROM user_totp WHERE user_id = $1",
            "DELETE FROM backup_codes WHERE user_id = $1",
            "DELETE FROM mfa_challenges WHERE user_id = $1",
        ] {
            sqlx::query(sql).bind(user_id).execute(&mut *tx).await?;
        }
        sqlx::query("UPDATE users SET two_factor_enabled = $2, updated_at = $3 WHERE id = $1")
            .bind(user_id)
            .bind(false)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.changes.emit(Change::User(user_id));
        Ok(())
    }

    async fn create_mfa_challenge(
        &self,
        hash: &[u8],
        user_id: Uuid,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("DELETE FROM mfa_challenges WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO mfa_challenges (challenge_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(hash)
            .bind(user_id)
            .bind(now)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await.map_err(StoreError::from)
    }

    async fn find_mfa_challenge(
        &self,
        hash: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Uuid>> {
        sqlx::query_scalar(
            "SELECT user_id FROM mfa_challenges WHERE challenge_hash = $1 AND expires_at > $2",
        )
        .bind(hash)
        .bind(now)
        .fetch_optional(&self.writer)
        .await
        .map_err(StoreError::from)
    }

    async fn take_mfa_challenge(&self, hash: &[u8]) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM mfa_challenges WHERE challenge_hash = $1")
            .bind(hash)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn add_passkey(&self, p: &StoredPasskey, max: u32) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        within_budget(
            &mut tx,
            p.user_id,
            "SELECT COUNT(*) FROM passkeys WHERE user_id = $1 AND created_at > $2",
            DateTime::<Utc>::UNIX_EPOCH,
            max,
        )
        .await?;
        sqlx::query(
            "INSERT INTO passkeys (id, user_id, name, credential_id, passkey, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(p.id)
        .bind(p.user_id)
        .bind(&p.name)
        .bind(&p.credential_id)
        .bind(&p.passkey)
        .bind(p.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn passkeys(&self, user_id: Uuid) -> StoreResult<Vec<StoredPasskey>> {
        sqlx::query_as("SELECT * FROM passkeys WHERE user_id = $1 ORDER BY created_at, id")
            .bind(user_id)
            .fetch_all(&self.reader)
            .await
            .map_err(StoreError::from)
    }

    async fn rename_passkey(&self, user_id: Uuid, id: Uuid, name: &str) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE passkeys SET name = $3 WHERE user_id = $1 AND id = $2")
            .bind(user_id)
            .bind(id)
            .bind(name)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_passkey(&self, user_id: Uuid, id: Uuid) -> StoreResult<UnlinkOutcome> {
        let mut tx = self.writer.begin().await?;
        lock_user(&mut tx, user_id).await?;
        let Some((has_password, methods)) = sign_in_methods(&mut tx, user_id).await? else {
            return Ok(UnlinkOutcome::NotLinked);
        };
        let exists: Option<Uuid> =
            sqlx::query_scalar("SELECT id FROM passkeys WHERE user_id = $1 AND id = $2")
                .bind(user_id)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_none() {
            return Ok(UnlinkOutcome::NotLinked);
        }
        if !has_password && methods <= 1 {
            return Ok(UnlinkOutcome::LastMethod);
        }
        sqlx::query("DELETE FROM passkeys WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(UnlinkOutcome::Done)
    }

    async fn passkey_used(&self, id: Uuid, passkey: &str, now: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query("UPDATE passkeys SET passkey = $2, last_used_at = $3 WHERE id = $1")
            .bind(id)
            .bind(passkey)
            .bind(now)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn save_ceremony(
        &self,
        id_hash: &[u8],
        user_id: Option<Uuid>,
        kind: &str,
        state: &str,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO webauthn_ceremonies (id_hash, user_id, kind, state, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id_hash)
        .bind(user_id)
        .bind(kind)
        .bind(state)
        .bind(expires_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn take_ceremony(
        &self,
        id_hash: &[u8],
        kind: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<(Option<Uuid>, String)>> {
        sqlx::query("DELETE FROM webauthn_ceremonies WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.writer)
            .await?;
        sqlx::query_as(
            "DELETE FROM webauthn_ceremonies WHERE id_hash = $1 AND kind = $2 AND expires_at > $3 \
             RETURNING user_id, state",
        )
        .bind(id_hash)
        .bind(kind)
        .bind(now)
        .fetch_optional(&self.writer)
        .await
        .map_err(StoreError::from)
    }
}
