// The body of `impl Store` shared by both backends, compiled once in
// `sqlite.rs` and once in `postgres.rs` (each defines `Backend` with a
// `writer` and a `reader` pool and a `MIGRATOR`). Only portable SQL lives
// here: `$n` placeholders, `RETURNING`, `ON CONFLICT`; every time comes in as
// a bound parameter from the injected clock.

#[async_trait]
impl Store for Backend {
    async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR
            .run(&self.writer)
            .await
            .map_err(|e| StoreError::Other(e.into()))
    }

    async fn ready(&self) -> StoreResult<()> {
        let applied: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.reader)
                .await
                .map_err(map_err)?;
        let known = MIGRATOR.iter().count() as i64;
        if applied < known {
            return Err(StoreError::Other(anyhow::anyhow!(
                "{applied} of {known} migrations applied"
            )));
        }
        Ok(())
    }

    async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }

    async fn create_user_with_tenant(
        &self,
        user: NewUser,
        tenant: NewTenant,
        verification: Option<TokenMail>,
    ) -> StoreResult<User> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        let verified_at = user.email_verified.then_some(user.now);
        let created: User = sqlx::query_as(
            "INSERT INTO users (id, email, password_hash, name, first_name, last_name, \
             email_verified_at, is_admin, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING *",
        )
        .bind(user.id)
        .bind(&user.email)
        .bind(&user.password_hash)
        .bind(&user.name)
        .bind(&user.first_name)
        .bind(&user.last_name)
        .bind(verified_at)
        .bind(user.is_admin)
        .bind(user.now)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        sqlx::query("INSERT INTO tenants (id, name, slug, created_at) VALUES ($1, $2, $3, $4)")
            .bind(tenant.id)
            .bind(&tenant.name)
            .bind(&tenant.slug)
            .bind(user.now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query(
            "INSERT INTO memberships (tenant_id, user_id, role, created_at) VALUES ($1, $2, 'owner', $3)",
        )
        .bind(tenant.id)
        .bind(user.id)
        .bind(user.now)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if let Some(token_mail) = verification {
            insert_token_mail(&mut tx, &token_mail).await?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(created)
    }

    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        sqlx::query_as("SELECT * FROM users WHERE email = $1")
            .bind(email)
            .fetch_optional(&self.reader)
            .await
            .map_err(map_err)
    }

    async fn find_user(&self, id: Uuid) -> StoreResult<Option<User>> {
        sqlx::query_as("SELECT * FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.reader)
            .await
            .map_err(map_err)
    }

    async fn set_password_hash(&self, user_id: Uuid, hash: &str, now: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
            .bind(user_id)
            .bind(hash)
            .bind(now)
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn change_password(
        &self,
        user_id: Uuid,
        hash: &str,
        keep: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
            .bind(user_id)
            .bind(hash)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        revoke_sessions_except(&mut tx, user_id, keep, now).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn memberships(&self, user_id: Uuid) -> StoreResult<Vec<Membership>> {
        sqlx::query_as(
            "SELECT t.id, t.name, t.slug, t.plan, m.role, t.created_at \
             FROM memberships m JOIN tenants t ON t.id = m.tenant_id \
             WHERE m.user_id = $1 ORDER BY m.created_at, t.name",
        )
        .bind(user_id)
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)
    }

    async fn create_session(&self, session: NewSession) -> StoreResult<Session> {
        insert_session(&self.writer, &session).await
    }

    async fn find_session_by_hash(&self, hash: &[u8], now: DateTime<Utc>) -> StoreResult<Option<Session>> {
        sqlx::query_as(
            "SELECT id, user_id, tenant_id, ip, user_agent, created_at, last_seen_at, expires_at, revoked_at \
             FROM sessions WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2",
        )
        .bind(hash)
        .bind(now)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)
    }

    async fn find_session(&self, id: Uuid, now: DateTime<Utc>) -> StoreResult<Option<Session>> {
        sqlx::query_as(
            "SELECT id, user_id, tenant_id, ip, user_agent, created_at, last_seen_at, expires_at, revoked_at \
             FROM sessions WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2",
        )
        .bind(id)
        .bind(now)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)
    }

    async fn touch_session(&self, id: Uuid, now: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id = $1 AND last_seen_at < $2")
            .bind(id)
            .bind(now)
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn rotate_session(&self, old: Uuid, new: NewSession) -> StoreResult<Option<Session>> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        let revoked = sqlx::query(
            "UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2",
        )
        .bind(old)
        .bind(new.now)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?
        .rows_affected();
        if revoked != 1 {
            return Ok(None);
        }
        let session = insert_session(&mut *tx, &new).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(Some(session))
    }

    async fn revoke_session(&self, user_id: Uuid, id: Uuid, now: DateTime<Utc>) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = $3 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(user_id)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn issue_token(&self, token_mail: TokenMail) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        insert_token_mail(&mut tx, &token_mail).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn peek_token(&self, purpose: TokenPurpose, hash: &[u8], now: DateTime<Utc>) -> StoreResult<Option<Uuid>> {
        sqlx::query_scalar(
            "SELECT user_id FROM one_time_tokens \
             WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3",
        )
        .bind(hash)
        .bind(purpose.as_str())
        .bind(now)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)
    }

    async fn redeem_reset_token(&self, hash: &[u8], password_hash: &str, now: DateTime<Utc>) -> StoreResult<Option<Uuid>> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        let Some(user_id) = use_token(&mut tx, TokenPurpose::PasswordReset, hash, now).await? else {
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
            .await
            .map_err(map_err)?;
        revoke_sessions_except(&mut tx, user_id, None, now).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(Some(user_id))
    }

    async fn redeem_verification_token(&self, hash: &[u8], now: DateTime<Utc>) -> StoreResult<Option<User>> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        let Some(user_id) = use_token(&mut tx, TokenPurpose::EmailVerification, hash, now).await? else {
            return Ok(None);
        };
        let user: User = sqlx::query_as(
            "UPDATE users SET email_verified_at = COALESCE(email_verified_at, $2), updated_at = $2 \
             WHERE id = $1 RETURNING *",
        )
        .bind(user_id)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(Some(user))
    }

    async fn create_pat(&self, pat: NewPat) -> StoreResult<Pat> {
        sqlx::query_as(
            "INSERT INTO personal_access_tokens \
             (id, user_id, tenant_id, name, scopes, token_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             RETURNING id, user_id, tenant_id, name, scopes, created_at, expires_at, last_used_at, revoked_at",
        )
        .bind(pat.id)
        .bind(pat.user_id)
        .bind(pat.tenant_id)
        .bind(&pat.name)
        .bind(&pat.scopes)
        .bind(&pat.token_hash)
        .bind(pat.now)
        .bind(pat.expires_at)
        .fetch_one(&self.writer)
        .await
        .map_err(map_err)
    }

    async fn list_pats(&self, user_id: Uuid) -> StoreResult<Vec<Pat>> {
        sqlx::query_as(
            "SELECT id, user_id, tenant_id, name, scopes, created_at, expires_at, last_used_at, revoked_at \
             FROM personal_access_tokens WHERE user_id = $1 AND revoked_at IS NULL \
             ORDER BY created_at DESC",
        )
        .bind(user_id)
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)
    }

    async fn revoke_pat(&self, user_id: Uuid, id: Uuid, now: DateTime<Utc>) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE personal_access_tokens SET revoked_at = $3 \
             WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(user_id)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn find_pat_by_hash(&self, hash: &[u8], now: DateTime<Utc>) -> StoreResult<Option<Pat>> {
        sqlx::query_as(
            "SELECT id, user_id, tenant_id, name, scopes, created_at, expires_at, last_used_at, revoked_at \
             FROM personal_access_tokens \
             WHERE token_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)",
        )
        .bind(hash)
        .bind(now)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)
    }

    async fn touch_pat(&self, id: Uuid, now: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query(
            "UPDATE personal_access_tokens SET last_used_at = $2 \
             WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)",
        )
        .bind(id)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn enqueue_mail(&self, mail: NewMail) -> StoreResult<()> {
        insert_mail(&self.writer, &mail).await
    }

    async fn due_mail(&self, now: DateTime<Utc>, max_attempts: i32, limit: i64) -> StoreResult<Vec<OutboxMail>> {
        sqlx::query_as(
            "SELECT id, recipient, subject, body_text, attempts FROM mail_outbox \
             WHERE next_attempt_at <= $1 AND attempts < $2 ORDER BY next_attempt_at LIMIT $3",
        )
        .bind(now)
        .bind(max_attempts)
        .bind(limit)
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)
    }

    async fn mail_sent(&self, id: Uuid) -> StoreResult<()> {
        sqlx::query("DELETE FROM mail_outbox WHERE id = $1")
            .bind(id)
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn mail_failed(&self, id: Uuid, retry_at: DateTime<Utc>, error: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE mail_outbox SET attempts = attempts + 1, next_attempt_at = $2, last_error = $3 \
             WHERE id = $1",
        )
        .bind(id)
        .bind(retry_at)
        .bind(error)
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>> {
        let rows: Vec<(String, String, Vec<u8>, Vec<u8>, DateTime<Utc>)> = sqlx::query_as(
            "SELECT kid, algorithm, private_key, public_key, created_at FROM signing_keys",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?;
        Ok(rows
            .into_iter()
            .map(|(kid, algorithm, private_key, public_key, created_at)| StoredKey {
                kid,
                algorithm,
                private_key,
                public_key,
                created_at,
            })
            .collect())
    }

    async fn add_signing_key(&self, key: &StoredKey) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, algorithm, private_key, public_key, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (kid) DO NOTHING",
        )
        .bind(&key.kid)
        .bind(&key.algorithm)
        .bind(&key.private_key)
        .bind(&key.public_key)
        .bind(key.created_at)
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(())
    }
}

type Tx = sqlx::Transaction<'static, Db>;

async fn insert_session<'e, E>(executor: E, session: &NewSession) -> StoreResult<Session>
where
    E: sqlx::Executor<'e, Database = Db>,
{
    sqlx::query_as(
        "INSERT INTO sessions (id, user_id, token_hash, tenant_id, ip, user_agent, created_at, last_seen_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8) \
         RETURNING id, user_id, tenant_id, ip, user_agent, created_at, last_seen_at, expires_at, revoked_at",
    )
    .bind(session.id)
    .bind(session.user_id)
    .bind(&session.token_hash)
    .bind(session.tenant_id)
    .bind(&session.ip)
    .bind(&session.user_agent)
    .bind(session.now)
    .bind(session.expires_at)
    .fetch_one(executor)
    .await
    .map_err(map_err)
}

async fn insert_mail<'e, E>(executor: E, mail: &NewMail) -> StoreResult<()>
where
    E: sqlx::Executor<'e, Database = Db>,
{
    sqlx::query(
        "INSERT INTO mail_outbox (id, recipient, subject, body_text, created_at, next_attempt_at) \
         VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(mail.id)
    .bind(&mail.recipient)
    .bind(&mail.subject)
    .bind(&mail.body_text)
    .bind(mail.now)
    .execute(executor)
    .await
    .map_err(map_err)?;
    Ok(())
}

/// Retires the user's older tokens of the same purpose, then stores the new
/// token and its mail.
async fn insert_token_mail(tx: &mut Tx, token_mail: &TokenMail) -> StoreResult<()> {
    let token = &token_mail.token;
    sqlx::query(
        "UPDATE one_time_tokens SET used_at = $3 WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL",
    )
    .bind(token.user_id)
    .bind(token.purpose.as_str())
    .bind(token.now)
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    sqlx::query(
        "INSERT INTO one_time_tokens (id, user_id, purpose, token_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(token.id)
    .bind(token.user_id)
    .bind(token.purpose.as_str())
    .bind(&token.token_hash)
    .bind(token.now)
    .bind(token.expires_at)
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    insert_mail(&mut **tx, &token_mail.mail).await
}

/// Marks a usable token used, atomically: of concurrent redemptions exactly
/// one gets the user id.
async fn use_token(tx: &mut Tx, purpose: TokenPurpose, hash: &[u8], now: DateTime<Utc>) -> StoreResult<Option<Uuid>> {
    sqlx::query_scalar(
        "UPDATE one_time_tokens SET used_at = $3 \
         WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3 \
         RETURNING user_id",
    )
    .bind(hash)
    .bind(purpose.as_str())
    .bind(now)
    .fetch_optional(&mut **tx)
    .await
    .map_err(map_err)
}

async fn revoke_sessions_except(tx: &mut Tx, user_id: Uuid, keep: Option<Uuid>, now: DateTime<Utc>) -> StoreResult<()> {
    // A nil id never matches a real session, so `keep: None` revokes all.
    sqlx::query(
        "UPDATE sessions SET revoked_at = $3 WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL",
    )
    .bind(user_id)
    .bind(keep.unwrap_or(Uuid::nil()))
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    Ok(())
}
