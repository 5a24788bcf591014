//! The SQL of [`IdentityStore`], compiled once per backend.

use super::common::*;
use super::*;

#[async_trait]
impl IdentityStore for Backend {
    async fn save_oauth_state(&self, new: &NewOAuthState) -> StoreResult<()> {
        let state = &new.state;
        let mut tx = self.writer.begin().await?;
        sqlx::query("DELETE FROM oauth_states WHERE expires_at <= $1")
            .bind(state.created_at)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO oauth_states (state_hash, provider, callback, pkce_verifier, nonce, \
             redirect_to, link_user_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&new.state_hash)
        .bind(&state.provider)
        .bind(&state.callback)
        .bind(&state.pkce_verifier)
        .bind(&state.nonce)
        .bind(&state.redirect_to)
        .bind(state.link_user_id)
        .bind(state.created_at)
        .bind(state.expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await.map_err(StoreError::from)
    }

    async fn take_oauth_state(
        &self,
        state_hash: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<OAuthState>> {
        let taken: Option<OAuthState> = sqlx::query_as(
            "DELETE FROM oauth_states WHERE state_hash = $1 \
             RETURNING provider, callback, pkce_verifier, nonce, redirect_to, link_user_id, created_at, expires_at",
        )
        .bind(state_hash)
        .fetch_optional(&self.writer)
        .await?;
        Ok(taken.filter(|s| s.expires_at > now))
    }

    async fn find_identity(&self, issuer: &str, subject: &str) -> StoreResult<Option<Identity>> {
        sqlx::query_as("SELECT * FROM user_identities WHERE issuer = $1 AND subject = $2")
            .bind(issuer)
            .bind(subject)
            .fetch_optional(&self.reader)
            .await
            .map_err(StoreError::from)
    }

    async fn identities(&self, user_id: Uuid) -> StoreResult<Vec<Identity>> {
        sqlx::query_as(
            "SELECT * FROM user_identities WHERE user_id = $1 ORDER BY created_at, provider",
        )
        .bind(user_id)
        .fetch_all(&self.reader)
        .await
        .map_err(StoreError::from)
    }

    async fn link_identity(&self, identity: &NewIdentity) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        insert_identity(&mut tx, identity).await?;
        tx.commit().await.map_err(StoreError::from)
    }

    async fn create_user_with_identity(
        &self,
        user: NewUser,
        tenant: NewTenant,
        identity: NewIdentity,
    ) -> StoreResult<User> {
        let mut tx = self.writer.begin().await?;
        let created = insert_user(&mut tx, &user).await?;
        insert_tenant_with_member(&mut tx, &tenant, created.id, Role::Owner, user.now).await?;
        insert_identity(&mut tx, &identity).await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn unlink_identity(&self, user_id: Uuid, provider: &str) -> StoreResult<UnlinkOutcome> {
        let mut tx = self.writer.begin().await?;
        lock_user(&mut tx, user_id).await?;
        let Some((has_password, methods)) = sign_in_methods(&mut tx, user_id).await? else {
            return Ok(UnlinkOutcome::NotLinked);
        };
        let linked: Option<Uuid> = sqlx::query_scalar(
            "SELECT id FROM user_identities WHERE user_id = $1 AND provider = $2",
        )
        .bind(user_id)
        .bind(provider)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = linked else {
            return Ok(UnlinkOutcome::NotLinked);
        };
        if !has_password && methods <= 1 {
            return Ok(UnlinkOutcome::LastMethod);
        }
        sqlx::query("DELETE FROM user_identities WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(UnlinkOutcome::Done)
    }
}
