//! The SQL of [`UserStore`], compiled once per backend.

use super::common::*;
use super::*;

#[async_trait]
impl UserStore for Backend {
    async fn create_user_with_tenant(
        &self,
        user: NewUser,
        tenant: NewTenant,
        verification: Option<TokenMail>,
    ) -> StoreResult<User> {
        let mut tx = self.writer.begin().await?;
        let created = insert_user(&mut tx, &user).await?;
        insert_tenant_with_member(&mut tx, &tenant, created.id, Role::Owner, user.now).await?;
        if let Some(token_mail) = verification {
            insert_token_mail(&mut tx, &token_mail).await?;
        }
        tx.commit().await?;
        Ok(created)
    }

    async fn import_user(
        &self,
        user: NewUser,
        tenants: Vec<(NewTenant, Role)>,
    ) -> StoreResult<User> {
        let mut tx = self.writer.begin().await?;
        let created = insert_user(&mut tx, &user).await?;
        for (tenant, role) in &tenants {
            sqlx::query(
                "INSERT INTO tenants (id, name, slug, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (slug) DO NOTHING",
            )
            .bind(tenant.id)
            .bind(&tenant.name)
            .bind(&tenant.slug)
            .bind(user.now)
            .execute(&mut *tx)
            .await?;
            let tenant_id: Uuid = sqlx::query_scalar("SELECT id FROM tenants WHERE slug = $1")
                .bind(&tenant.slug)
                .fetch_one(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO memberships (tenant_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant_id, user_id) DO NOTHING",
            )
            .bind(tenant_id)
            .bind(created.id)
            .bind(role)
            .bind(user.now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(created)
    }

    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        sqlx::query_as("SELECT * FROM users WHERE email = $1")
            .bind(email)
            .fetch_optional(&self.reader)
            .await
            .map_err(StoreError::from)
    }

    async fn password_hash_samples(&self) -> StoreResult<Vec<String>> {
        // The argon2 kind is the PHC string with its output and salt (both
        // base64, each after a `$`) trimmed off the end: portable SQL, one
        // row per kind however many users share it.
        const B64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        sqlx::query_scalar(
            "SELECT MIN(password_hash) FROM users \
             WHERE password_hash LIKE '$argon2%' OR password_hash LIKE '$2%' \
             GROUP BY CASE WHEN password_hash LIKE '$2%' THEN substr(password_hash, 1, 7) \
               ELSE rtrim(rtrim(rtrim(password_hash, $1), '$'), $1) END",
        )
        .bind(B64)
        .fetch_all(&self.reader)
        .await
        .map_err(StoreError::from)
    }

    async fn find_user(&self, id: Uuid) -> StoreResult<Option<User>> {
        sqlx::query_as("SELECT * FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.reader)
            .await
            .map_err(StoreError::from)
    }

    async fn set_password_hash(
        &self,
        user_id: Uuid,
        hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
            .bind(user_id)
            .bind(hash)
            .bind(now)
            .execute(&self.writer)
            .await?;
        self.changes.emit(Change::User(user_id));
        Ok(())
    }

    async fn change_password(
        &self,
        user_id: Uuid,
        hash: &str,
        keep: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
            .bind(user_id)
            .bind(hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        revoke_sessions_except(&mut tx, user_id, keep, now).await?;
        // A reset link mailed before the change must not undo it.
        sqlx::query(
            "UPDATE one_time_tokens SET used_at = $2 \
             WHERE user_id = $1 AND purpose = 'password_reset' AND used_at IS NULL",
        )
        .bind(user_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.changes.emit(Change::User(user_id));
        Ok(())
    }

    async fn update_profile(
        &self,
        user_id: Uuid,
        profile: &Profile,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<User>> {
        let user: Option<User> = sqlx::query_as(
            "UPDATE users SET name = $2, first_name = $3, last_name = $4, updated_at = $5 \
             WHERE id = $1 RETURNING *",
        )
        .bind(user_id)
        .bind(&profile.name)
        .bind(&profile.first_name)
        .bind(&profile.last_name)
        .bind(now)
        .fetch_optional(&self.writer)
        .await?;
        self.changes.emit(Change::User(user_id));
        Ok(user)
    }

    async fn issue_token(&self, token_mail: TokenMail, max_per_hour: u32) -> StoreResult<bool> {
        let token = &token_mail.token;
        let mut tx = self.writer.begin().await?;
        // The count and the insert happen under the user's lock, so a burst
        // cannot slip past the cap.
        lock_user(&mut tx, token.user_id).await?;
        let recent: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM one_time_tokens \
             WHERE user_id = $1 AND purpose = $2 AND created_at > $3",
        )
        .bind(token.user_id)
        .bind(token.purpose.as_str())
        .bind(token.now - chrono::Duration::hours(1))
        .fetch_one(&mut *tx)
        .await?;
        if recent >= i64::from(max_per_hour) {
            return Ok(false);
        }
        insert_token_mail(&mut tx, &token_mail).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn peek_token(
        &self,
        purpose: TokenPurpose,
        hash: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Uuid>> {
        sqlx::query_scalar(
            "SELECT user_id FROM one_time_tokens \
             WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3",
        )
        .bind(hash)
        .bind(purpose.as_str())
        .bind(now)
        .fetch_optional(&self.reader)
        .await
        .map_err(StoreError::from)
    }

    async fn redeem_reset_token(
        &self,
        hash: &[u8],
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Uuid>> {
        let mut tx = self.writer.begin().await?;
        let Some(user_id) = use_token(&mut tx, TokenPurpose::PasswordReset, hash, now).await?
        else {
            return Ok(None);
        };
        // Redeeming a mailed link also proves the address.
        sqlx::query(
            "UPDATE users SET password_hash = $2, updated_at = $3, \
             email_verified_at = COALESCE(email_verified_at, $3) WHERE id = $1",
        )
        .bind(user_id)
        .bind(password_hash)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        revoke_sessions_except(&mut tx, user_id, None, now).await?;
        // Recovery is total: whoever had the password may have made tokens.
        sqlx::query(
            "UPDATE personal_access_tokens SET revoked_at = $2 \
             WHERE user_id = $1 AND revoked_at IS NULL",
        )
        .bind(user_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.changes.emit(Change::User(user_id));
        Ok(Some(user_id))
    }

    async fn redeem_verification_token(
        &self,
        hash: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<User>> {
        let mut tx = self.writer.begin().await?;
        let Some(user_id) = use_token(&mut tx, TokenPurpose::EmailVerification, hash, now).await?
        else {
            return Ok(None);
        };
        let user: User = sqlx::query_as(
            "UPDATE users SET email_verified_at = COALESCE(email_verified_at, $2), updated_at = $2 \
             WHERE id = $1 RETURNING *",
        )
        .bind(user_id)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        self.changes.emit(Change::User(user.id));
        Ok(Some(user))
    }

    async fn list_users(
        &self,
        query: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<User>, i64)> {
        let pattern = match query {
            Some(q) => format!(
                "%{}%",
                q.to_lowercase()
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            ),
            None => "%".to_owned(),
        };
        let filter =
            "WHERE email LIKE $1 ESCAPE '\\' OR LOWER(COALESCE(name, '')) LIKE $1 ESCAPE '\\'";
        let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM users {filter}"))
            .bind(&pattern)
            .fetch_one(&self.reader)
            .await?;
        let users = sqlx::query_as(&format!(
            "SELECT * FROM users {filter} ORDER BY created_at, email LIMIT $2 OFFSET $3"
        ))
        .bind(&pattern)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.reader)
        .await?;
        Ok((users, total))
    }

    async fn save_user_admin(
        &self,
        user: &User,
        revoke_sessions: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "UPDATE users SET disabled_at = $2, plan = $3, plan_expires_at = $4, is_admin = $5, updated_at = $6 \
             WHERE id = $1",
        )
        .bind(user.id)
        .bind(user.disabled_at)
        .bind(&user.plan)
        .bind(user.plan_expires_at)
        .bind(user.is_admin)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if revoke_sessions {
            revoke_sessions_except(&mut tx, user.id, None, now).await?;
        }
        tx.commit().await?;
        self.changes.emit(Change::User(user.id));
        Ok(())
    }

    async fn delete_user(&self, user_id: Uuid) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        // Tenants where this user is the only owner.
        let sole: Vec<(Uuid, i64)> = sqlx::query_as(
            "SELECT m.tenant_id, (SELECT COUNT(*) FROM memberships o WHERE o.tenant_id = m.tenant_id) \
             FROM memberships m WHERE m.user_id = $1 AND m.role = 'owner' \
             AND (SELECT COUNT(*) FROM memberships o WHERE o.tenant_id = m.tenant_id AND o.role = 'owner') = 1",
        )
        .bind(user_id)
        .fetch_all(&mut *tx)
        .await?;
        if sole.iter().any(|(_, members)| *members > 1) {
            return Err(StoreError::Conflict("sole_owner"));
        }
        for (tenant_id, _) in &sole {
            sqlx::query("DELETE FROM tenants WHERE id = $1")
                .bind(tenant_id)
                .execute(&mut *tx)
                .await?;
        }
        let done = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.changes.emit(Change::User(user_id));
        Ok(done.rows_affected() == 1)
    }

    async fn discard_unverified_user(
        &self,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        // Under the user's lock, so a verification racing this either
        // lands first (and nothing is discarded) or after (and finds no one).
        lock_user(&mut tx, user_id).await?;
        let unverified: Option<bool> =
            sqlx::query_scalar("SELECT email_verified_at IS NULL FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
        if unverified != Some(true) {
            return Ok(false);
        }
        // Its tenants where no verified member would remain go with it.
        sqlx::query(
            "DELETE FROM tenants WHERE id IN (SELECT tenant_id FROM memberships WHERE user_id = $1) \
             AND NOT EXISTS (SELECT 1 FROM memberships o JOIN users u ON u.id = o.user_id \
                WHERE o.tenant_id = tenants.id AND o.user_id <> $1 AND u.email_verified_at IS NOT NULL)",
        )
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        // The others keep an owner: their longest-standing verified member.
        let orphaned: Vec<Uuid> = sqlx::query_scalar(
            "SELECT m.tenant_id FROM memberships m WHERE m.user_id = $1 AND m.role = 'owner' \
             AND NOT EXISTS (SELECT 1 FROM memberships o WHERE o.tenant_id = m.tenant_id \
                AND o.role = 'owner' AND o.user_id <> $1)",
        )
        .bind(user_id)
        .fetch_all(&mut *tx)
        .await?;
        for tenant_id in orphaned {
            sqlx::query(
                "UPDATE memberships SET role = 'owner' WHERE tenant_id = $1 AND user_id = \
                 (SELECT o.user_id FROM memberships o JOIN users u ON u.id = o.user_id \
                  WHERE o.tenant_id = $1 AND o.user_id <> $2 AND u.email_verified_at IS NOT NULL \
                  ORDER BY o.created_at LIMIT 1)",
            )
            .bind(tenant_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        }
        // Invitations it sent stop working.
        sqlx::query(
            "UPDATE invites SET revoked_at = $2 \
             WHERE invited_by = $1 AND accepted_at IS NULL AND revoked_at IS NULL",
        )
        .bind(user_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        // Sessions, tokens, factors, links and mailed links go by cascade.
        sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.changes.emit(Change::User(user_id));
        Ok(true)
    }

    async fn expire_plans(&self, default_plan: &str, now: DateTime<Utc>) -> StoreResult<Vec<Uuid>> {
        let mut tx = self.writer.begin().await?;
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "UPDATE users SET plan = $1, plan_expires_at = NULL, updated_at = $2 \
             WHERE plan_expires_at IS NOT NULL AND plan_expires_at <= $2 RETURNING id",
        )
        .bind(default_plan)
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        for id in &ids {
            revoke_sessions_except(&mut tx, *id, None, now).await?;
        }
        tx.commit().await?;
        self.changes.users(ids.iter().copied());
        Ok(ids)
    }
}
