// The body of `impl Store` shared by both backends, compiled once in
// `sqlite.rs` and once in `postgres.rs` (each defines `Backend` with a
// `writer` and a `reader` pool and a `MIGRATOR`). Only portable SQL lives
// here: `$n` placeholders, `RETURNING`, `ON CONFLICT`; every time comes in as
// a bound parameter from the injected clock.

#[async_trait]
impl Store for Backend {
    async fn migrate(&self) -> StoreResult<()> {
        // A schema newer than this binary knows (a newer node migrated it):
        // refuse to start rather than run against tables we do not know.
        // (No table yet, on a fresh database, reads as no version.)
        let newest_known = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
        let applied: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
            .fetch_one(&self.writer)
            .await
            .ok()
            .flatten();
        if let Some(applied) = applied.filter(|v| *v > newest_known) {
            return Err(StoreError::Other(anyhow::anyhow!(
                "the database schema is at version {applied}, newer than this binary knows \
                 ({newest_known}): run a tessera at least as new as the one that migrated it"
            )));
        }
        // sqlx holds an advisory lock while it migrates (PostgreSQL), so
        // nodes starting together apply each migration once.
        MIGRATOR
            .run(&self.writer)
            .await
            .map_err(|e| StoreError::Other(e.into()))
    }

    fn changes(&self) -> &ChangeFeed {
        &self.changes
    }

    async fn follow_changes(&self, stop: tokio::sync::watch::Receiver<bool>) {
        self.follow_remote_changes(stop).await
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        self.pools()
            .into_iter()
            .map(|(pool, p)| PoolStats {
                pool,
                size: p.size(),
                idle: u32::try_from(p.num_idle()).unwrap_or(u32::MAX),
                max: p.options().get_max_connections(),
            })
            .collect()
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
        let created = insert_user(&mut tx, &user).await?;
        insert_tenant_with_member(&mut tx, &tenant, created.id, "owner", user.now).await?;
        if let Some(token_mail) = verification {
            insert_token_mail(&mut tx, &token_mail).await?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(created)
    }

    async fn import_user(&self, user: NewUser, tenants: Vec<(NewTenant, String)>) -> StoreResult<User> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
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
            .await
            .map_err(map_err)?;
            let tenant_id: Uuid = sqlx::query_scalar("SELECT id FROM tenants WHERE slug = $1")
                .bind(&tenant.slug)
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?;
            sqlx::query(
                "INSERT INTO memberships (tenant_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant_id, user_id) DO NOTHING",
            )
            .bind(tenant_id)
            .bind(created.id)
            .bind(role)
            .bind(user.now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
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
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
            .bind(user_id)
            .bind(hash)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        revoke_sessions_except(&mut tx, user_id, keep, now).await?;
        // A reset link mailed before the change must not undo it.
        sqlx::query(
            "UPDATE one_time_tokens SET used_at = $2 \
             WHERE user_id = $1 AND purpose = 'password_reset' AND used_at IS NULL",
        )
        .bind(user_id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        self.changes.emit(Change::User(user_id));
        Ok(())
    }

    async fn update_profile(&self, user_id: Uuid, profile: &Profile, now: DateTime<Utc>) -> StoreResult<Option<User>> {
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
        .await
        .map_err(map_err)?;
        self.changes.emit(Change::User(user_id));
        Ok(user)
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

    async fn find_session_with_user(&self, hash: &[u8], now: DateTime<Utc>) -> StoreResult<Option<(Session, User)>> {
        let row: Option<SessionUserRow> = sqlx::query_as(
            "SELECT u.*, s.id AS s_id, s.tenant_id AS s_tenant_id, s.ip AS s_ip, \
             s.user_agent AS s_user_agent, s.created_at AS s_created_at, \
             s.last_seen_at AS s_last_seen_at, s.expires_at AS s_expires_at \
             FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2",
        )
        .bind(hash)
        .bind(now)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)?;
        Ok(row.map(|r| {
            let session = Session {
                id: r.s_id,
                user_id: r.user.id,
                tenant_id: r.s_tenant_id,
                ip: r.s_ip,
                user_agent: r.s_user_agent,
                created_at: r.s_created_at,
                last_seen_at: r.s_last_seen_at,
                expires_at: r.s_expires_at,
                revoked_at: None,
            };
            (session, r.user)
        }))
    }

    async fn find_session(&self, id: Uuid, now: DateTime<Utc>) -> StoreResult<Option<Session>> {
        sqlx::query_as(
            &format!("SELECT {SESSION_COLUMNS} \
             FROM sessions WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2"),
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
        self.changes.emit(Change::User(new.user_id));
        Ok(Some(session))
    }

    async fn add_refresh_token(&self, session_id: Uuid, hash: &[u8], now: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query("INSERT INTO refresh_tokens (token_hash, session_id, created_at) VALUES ($1, $2, $3)")
            .bind(hash)
            .bind(session_id)
            .bind(now)
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn use_refresh_token(&self, presented: RefreshPresented<'_>) -> StoreResult<RefreshUse> {
        let RefreshPresented { hash, successor_hash, now, idle_since, replay_since } = presented;
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        // The spend comes first: of parallel uses, one wins the row (the
        // others wait for its lock, then find it spent).
        let spent = sqlx::query("UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL")
            .bind(hash)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected()
            == 1;
        let row: Option<(Uuid, Option<DateTime<Utc>>)> =
            sqlx::query_as("SELECT session_id, used_at FROM refresh_tokens WHERE token_hash = $1")
                .bind(hash)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
        let Some((session_id, used_at)) = row else {
            return Ok(RefreshUse::Unknown);
        };
        let session: Option<Session> = sqlx::query_as(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions \
             WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2 AND last_seen_at > $3"
        ))
        .bind(session_id)
        .bind(now)
        .bind(idle_since)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        // A dead session: the spend rolls back with the transaction.
        let Some(mut session) = session else {
            return Ok(RefreshUse::Unknown);
        };
        if spent {
            sqlx::query("INSERT INTO refresh_tokens (token_hash, session_id, created_at) VALUES ($1, $2, $3)")
                .bind(successor_hash)
                .bind(session_id)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id = $1 AND last_seen_at < $2")
                .bind(session_id)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            tx.commit().await.map_err(map_err)?;
            session.last_seen_at = session.last_seen_at.max(now);
            return Ok(RefreshUse::Rotated(session));
        }
        match used_at {
            Some(used_at) if used_at > replay_since => Ok(RefreshUse::Replayed { session, used_at }),
            _ => {
                sqlx::query("UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                    .bind(session_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                self.changes.emit(Change::User(session.user_id));
                Ok(RefreshUse::Reused { user_id: session.user_id })
            }
        }
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
        self.changes.emit(Change::User(user_id));
        Ok(done.rows_affected() == 1)
    }

    async fn issue_token(&self, token_mail: TokenMail, max_per_hour: u32) -> StoreResult<bool> {
        let token = &token_mail.token;
        let mut tx = self.writer.begin().await.map_err(map_err)?;
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
        .await
        .map_err(map_err)?;
        if recent >= i64::from(max_per_hour) {
            return Ok(false);
        }
        insert_token_mail(&mut tx, &token_mail).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
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
        // Recovery is total: whoever had the password may have made tokens.
        sqlx::query(
            "UPDATE personal_access_tokens SET revoked_at = $2 \
             WHERE user_id = $1 AND revoked_at IS NULL",
        )
        .bind(user_id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        self.changes.emit(Change::User(user_id));
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
        self.changes.emit(Change::User(user.id));
        Ok(Some(user))
    }

    async fn create_pat(&self, pat: NewPat, max_active: u32) -> StoreResult<Pat> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        within_budget(
            &mut tx,
            pat.user_id,
            "SELECT COUNT(*) FROM personal_access_tokens WHERE user_id = $1 \
             AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)",
            pat.now,
            max_active,
        )
        .await?;
        let created: Pat = sqlx::query_as(
            &format!("INSERT INTO personal_access_tokens \
             (id, user_id, tenant_id, name, scopes, token_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             RETURNING {PAT_COLUMNS}"),
        )
        .bind(pat.id)
        .bind(pat.user_id)
        .bind(pat.tenant_id)
        .bind(&pat.name)
        .bind(&pat.scopes)
        .bind(&pat.token_hash)
        .bind(pat.now)
        .bind(pat.expires_at)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(created)
    }

    async fn list_pats(&self, user_id: Uuid) -> StoreResult<Vec<Pat>> {
        sqlx::query_as(
            &format!("SELECT {PAT_COLUMNS} \
             FROM personal_access_tokens WHERE user_id = $1 AND revoked_at IS NULL \
             ORDER BY created_at DESC"),
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
        self.changes.emit(Change::User(user_id));
        Ok(done.rows_affected() == 1)
    }

    async fn find_pat_with_user(&self, hash: &[u8], now: DateTime<Utc>) -> StoreResult<Option<(Pat, User)>> {
        let row: Option<PatUserRow> = sqlx::query_as(
            "SELECT u.*, p.id AS p_id, p.tenant_id AS p_tenant_id, p.name AS p_name, \
             p.scopes AS p_scopes, p.created_at AS p_created_at, p.expires_at AS p_expires_at, \
             p.last_used_at AS p_last_used_at \
             FROM personal_access_tokens p JOIN users u ON u.id = p.user_id \
             WHERE p.token_hash = $1 AND p.revoked_at IS NULL \
             AND (p.expires_at IS NULL OR p.expires_at > $2)",
        )
        .bind(hash)
        .bind(now)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)?;
        Ok(row.map(|r| {
            let pat = Pat {
                id: r.p_id,
                user_id: r.user.id,
                tenant_id: r.p_tenant_id,
                name: r.p_name,
                scopes: r.p_scopes,
                created_at: r.p_created_at,
                expires_at: r.p_expires_at,
                last_used_at: r.p_last_used_at,
                revoked_at: None,
            };
            (pat, r.user)
        }))
    }

    async fn find_pat(&self, id: Uuid, now: DateTime<Utc>) -> StoreResult<Option<Pat>> {
        sqlx::query_as(
            &format!("SELECT {PAT_COLUMNS} \
             FROM personal_access_tokens \
             WHERE id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)"),
        )
        .bind(id)
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

    async fn claim_mail(
        &self,
        node: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        max_attempts: i32,
        limit: i64,
    ) -> StoreResult<Vec<OutboxMail>> {
        // One statement: of nodes claiming at once, each row goes to one
        // (PostgreSQL skips rows another claim has locked; SQLite has one
        // writer).
        sqlx::query_as(&format!(
            "UPDATE mail_outbox SET claimed_by = $1, claimed_until = $3 \
             WHERE id IN (SELECT id FROM mail_outbox \
               WHERE next_attempt_at <= $2 AND attempts < $4 \
               AND (claimed_until IS NULL OR claimed_until <= $2) \
               ORDER BY next_attempt_at LIMIT $5{SKIP_LOCKED}) \
             RETURNING id, recipient, subject, body_text, attempts"
        ))
        .bind(node)
        .bind(now)
        .bind(lease_until)
        .bind(max_attempts)
        .bind(limit)
        .fetch_all(&self.writer)
        .await
        .map_err(map_err)
    }

    async fn outbox_stats(&self) -> StoreResult<OutboxStats> {
        let (depth, oldest): (i64, Option<DateTime<Utc>>) =
            sqlx::query_as("SELECT COUNT(*), MIN(created_at) FROM mail_outbox")
                .fetch_one(&self.reader)
                .await
                .map_err(map_err)?;
        Ok(OutboxStats { depth, oldest })
    }

    async fn claim_job(&self, name: &str, node: &str, now: DateTime<Utc>, next_due: DateTime<Utc>) -> StoreResult<bool> {
        // Inserting the first turn or moving a due one forward, in one
        // statement: a node that loses the race updates no row.
        let taken: Option<String> = sqlx::query_scalar(
            "INSERT INTO jobs (name, due_at, last_run_at, last_node) VALUES ($1, $4, $3, $2) \
             ON CONFLICT (name) DO UPDATE SET due_at = $4, last_run_at = $3, last_node = $2 \
             WHERE jobs.due_at <= $3 \
             RETURNING name",
        )
        .bind(name)
        .bind(node)
        .bind(now)
        .bind(next_due)
        .fetch_optional(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(taken.is_some())
    }

    async fn count_hit(&self, bucket: &str, window: i64) -> StoreResult<i64> {
        // A node whose clock lags cannot move a window back.
        let hits: i32 = sqlx::query_scalar(
            "INSERT INTO rate_limits (bucket, window_start, hits) VALUES ($1, $2, 1) \
             ON CONFLICT (bucket) DO UPDATE SET \
               hits = CASE WHEN rate_limits.window_start < $2 THEN 1 ELSE rate_limits.hits + 1 END, \
               window_start = CASE WHEN rate_limits.window_start < $2 THEN $2 ELSE rate_limits.window_start END \
             RETURNING hits",
        )
        .bind(bucket)
        .bind(window)
        .fetch_one(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(i64::from(hits))
    }

    async fn sweep(&self, now: DateTime<Utc>, window_before: i64) -> StoreResult<u64> {
        let day_ago = now - chrono::Duration::days(1);
        let mut swept = 0;
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        for (sql, at) in [
            ("DELETE FROM sessions WHERE expires_at <= $1 OR revoked_at <= $1", day_ago),
            (
                "DELETE FROM personal_access_tokens WHERE expires_at <= $1 OR revoked_at <= $1",
                day_ago,
            ),
            ("DELETE FROM one_time_tokens WHERE expires_at <= $1 OR used_at <= $1", day_ago),
            ("DELETE FROM oauth_states WHERE expires_at <= $1", now),
            ("DELETE FROM mfa_challenges WHERE expires_at <= $1", now),
            ("DELETE FROM webauthn_ceremonies WHERE expires_at <= $1", now),
        ] {
            swept += sqlx::query(sql)
                .bind(at)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?
                .rows_affected();
        }
        swept += sqlx::query(
            "DELETE FROM login_failures WHERE window_start <= $1 \
             AND (locked_until IS NULL OR locked_until <= $2)",
        )
        .bind(day_ago)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?
        .rows_affected();
        swept += sqlx::query("DELETE FROM rate_limits WHERE window_start < $1")
            .bind(window_before)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected();
        tx.commit().await.map_err(map_err)?;
        Ok(swept)
    }

    async fn mail_sent(&self, id: Uuid) -> StoreResult<()> {
        sqlx::query("DELETE FROM mail_outbox WHERE id = $1")
            .bind(id)
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn purge_given_up_mail(&self, max_attempts: i32, before: DateTime<Utc>) -> StoreResult<u64> {
        // A given-up row's next_attempt_at is its last attempt plus the
        // backoff (at most an hour): close enough to when it was given up.
        let purged = sqlx::query("DELETE FROM mail_outbox WHERE attempts >= $1 AND next_attempt_at <= $2")
            .bind(max_attempts)
            .bind(before)
            .execute(&self.writer)
            .await
            .map_err(map_err)?
            .rows_affected();
        Ok(purged)
    }

    async fn mail_failed(&self, id: Uuid, retry_at: DateTime<Utc>, error: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE mail_outbox SET attempts = attempts + 1, next_attempt_at = $2, last_error = $3, \
             claimed_by = NULL, claimed_until = NULL \
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

    async fn insert_signing_key(&self, key: &StoredKey, first: bool) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, algorithm, private_key, public_key, created_at, generation) \
             VALUES ($1, $2, $3, $4, $5, CASE WHEN $6 THEN 1 ELSE \
               (SELECT COALESCE(MAX(generation), 0) + 1 FROM signing_keys) END) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&key.kid)
        .bind(&key.algorithm)
        .bind(&key.private_key)
        .bind(&key.public_key)
        .bind(key.created_at)
        .bind(first)
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        self.changes.emit(Change::SigningKeys);
        Ok(())
    }

    async fn retire_signing_keys(&self, successor_before: DateTime<Utc>) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM signing_keys WHERE generation < \
             (SELECT MAX(generation) FROM signing_keys WHERE created_at <= $1)",
        )
        .bind(successor_before)
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        if done.rows_affected() > 0 {
            self.changes.emit(Change::SigningKeys);
        }
        Ok(done.rows_affected())
    }
    async fn create_tenant(
        &self,
        tenant: NewTenant,
        owner: Uuid,
        now: DateTime<Utc>,
        max_owned: u32,
        max_per_hour: u32,
    ) -> StoreResult<Membership> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        const OWNED: &str = "SELECT COUNT(*) FROM memberships \
             WHERE user_id = $1 AND role = 'owner' AND created_at > $2";
        let ever = DateTime::<Utc>::UNIX_EPOCH;
        within_budget(&mut tx, owner, OWNED, ever, max_owned).await?;
        within_budget(&mut tx, owner, OWNED, now - chrono::Duration::hours(1), max_per_hour).await?;
        insert_tenant_with_member(&mut tx, &tenant, owner, "owner", now).await?;
        tx.commit().await.map_err(map_err)?;
        self.changes.emit(Change::User(owner));
        Ok(Membership {
            id: tenant.id,
            name: tenant.name,
            slug: tenant.slug,
            plan: "free".into(),
            role: "owner".into(),
            created_at: now,
        })
    }

    async fn membership(&self, user_id: Uuid, tenant_id: Uuid) -> StoreResult<Option<Membership>> {
        sqlx::query_as(
            "SELECT t.id, t.name, t.slug, t.plan, m.role, t.created_at \
             FROM memberships m JOIN tenants t ON t.id = m.tenant_id \
             WHERE m.user_id = $1 AND m.tenant_id = $2",
        )
        .bind(user_id)
        .bind(tenant_id)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)
    }

    async fn rename_tenant(&self, tenant_id: Uuid, name: &str) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        sqlx::query("UPDATE tenants SET name = $2 WHERE id = $1")
            .bind(tenant_id)
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let members = tenant_member_ids(&mut tx, tenant_id).await?;
        tx.commit().await.map_err(map_err)?;
        self.changes.users(members);
        Ok(())
    }

    async fn delete_tenant(&self, tenant_id: Uuid) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        let members = tenant_member_ids(&mut tx, tenant_id).await?;
        let done = sqlx::query("DELETE FROM tenants WHERE id = $1")
            .bind(tenant_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        self.changes.users(members);
        Ok(done.rows_affected() == 1)
    }

    async fn members(&self, tenant_id: Uuid) -> StoreResult<Vec<Member>> {
        sqlx::query_as(
            "SELECT u.id AS user_id, u.email, u.name, m.role, m.created_at AS joined_at \
             FROM memberships m JOIN users u ON u.id = m.user_id \
             WHERE m.tenant_id = $1 ORDER BY m.created_at, u.email",
        )
        .bind(tenant_id)
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)
    }

    async fn change_member(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
        role: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<MemberChange> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        sqlx::query(LOCK_TENANT)
            .bind(tenant_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let current: Option<String> =
            sqlx::query_scalar("SELECT role FROM memberships WHERE tenant_id = $1 AND user_id = $2")
                .bind(tenant_id)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
        let Some(current) = current else {
            return Ok(MemberChange::NotAMember);
        };
        if current == "owner" && role != Some("owner") {
            let owners: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM memberships WHERE tenant_id = $1 AND role = 'owner'",
            )
            .bind(tenant_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
            if owners <= 1 {
                return Ok(MemberChange::LastOwner);
            }
        }
        let statement = match role {
            Some(role) => sqlx::query("UPDATE memberships SET role = $3 WHERE tenant_id = $1 AND user_id = $2")
                .bind(tenant_id)
                .bind(user_id)
                .bind(role),
            None => sqlx::query("DELETE FROM memberships WHERE tenant_id = $1 AND user_id = $2")
                .bind(tenant_id)
                .bind(user_id),
        };
        statement.execute(&mut *tx).await.map_err(map_err)?;
        if role.is_none() {
            // Gone from the tenant: no session of theirs stays in it, and no
            // token bound to it works.
            for sql in [
                "UPDATE sessions SET tenant_id = NULL WHERE user_id = $2 AND tenant_id = $1",
                "UPDATE personal_access_tokens SET revoked_at = $3 \
                 WHERE user_id = $2 AND tenant_id = $1 AND revoked_at IS NULL",
            ] {
                sqlx::query(sql)
                    .bind(tenant_id)
                    .bind(user_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
            }
        }
        if !matches!(role, Some("owner" | "admin")) {
            // No longer allowed to invite: what they sent stops working.
            sqlx::query(
                "UPDATE invites SET revoked_at = $3 WHERE tenant_id = $1 AND invited_by = $2 \
                 AND accepted_at IS NULL AND revoked_at IS NULL",
            )
            .bind(tenant_id)
            .bind(user_id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        self.changes.emit(Change::User(user_id));
        Ok(MemberChange::Done)
    }

    async fn create_invite(&self, invite: NewInvite, mail: NewMail, max_per_hour: u32) -> StoreResult<Invite> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        within_budget(
            &mut tx,
            invite.invited_by,
            "SELECT COUNT(*) FROM invites WHERE invited_by = $1 AND created_at > $2",
            invite.now - chrono::Duration::hours(1),
            max_per_hour,
        )
        .await?;
        sqlx::query(
            "UPDATE invites SET revoked_at = $3 \
             WHERE tenant_id = $1 AND email = $2 AND accepted_at IS NULL AND revoked_at IS NULL",
        )
        .bind(invite.tenant_id)
        .bind(&invite.email)
        .bind(invite.now)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        sqlx::query(
            "INSERT INTO invites (id, tenant_id, email, role, token_hash, invited_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(invite.id)
        .bind(invite.tenant_id)
        .bind(&invite.email)
        .bind(&invite.role)
        .bind(&invite.token_hash)
        .bind(invite.invited_by)
        .bind(invite.now)
        .bind(invite.expires_at)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        insert_mail(&mut *tx, &mail).await?;
        let created: Invite = sqlx::query_as(&format!("{INVITE_SELECT} WHERE i.id = $1"))
            .bind(invite.id)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        self.changes.emit(Change::Email(invite.email));
        Ok(created)
    }

    async fn tenant_invites(&self, tenant_id: Uuid) -> StoreResult<Vec<Invite>> {
        sqlx::query_as(&format!(
            "{INVITE_SELECT} WHERE i.tenant_id = $1 AND i.revoked_at IS NULL ORDER BY i.created_at DESC"
        ))
        .bind(tenant_id)
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)
    }

    async fn revoke_invite(&self, tenant_id: Uuid, id: Uuid, now: DateTime<Utc>) -> StoreResult<bool> {
        let email: Option<String> = sqlx::query_scalar(
            "UPDATE invites SET revoked_at = $3 \
             WHERE id = $1 AND tenant_id = $2 AND accepted_at IS NULL AND revoked_at IS NULL \
             RETURNING email",
        )
        .bind(id)
        .bind(tenant_id)
        .bind(now)
        .fetch_optional(&self.writer)
        .await
        .map_err(map_err)?;
        let revoked = email.is_some();
        if let Some(email) = email {
            self.changes.emit(Change::Email(email));
        }
        Ok(revoked)
    }

    async fn pending_invites(&self, email: &str, now: DateTime<Utc>) -> StoreResult<Vec<Invite>> {
        sqlx::query_as(&format!(
            "{INVITE_SELECT} WHERE i.email = $1 AND i.accepted_at IS NULL AND i.revoked_at IS NULL \
             AND i.expires_at > $2 ORDER BY i.created_at DESC"
        ))
        .bind(email)
        .bind(now)
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)
    }

    async fn find_invite(&self, hash: &[u8], now: DateTime<Utc>) -> StoreResult<Option<Invite>> {
        sqlx::query_as(&format!(
            "{INVITE_SELECT} WHERE i.token_hash = $1 AND i.accepted_at IS NULL AND i.revoked_at IS NULL \
             AND i.expires_at > $2"
        ))
        .bind(hash)
        .bind(now)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)
    }

    async fn accept_invite(&self, hash: &[u8], user_id: Uuid, email: &str, now: DateTime<Utc>) -> StoreResult<Option<Invite>> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        let Some((id, tenant_id, role)) = use_invite(&mut tx, hash, email, now).await? else {
            return Ok(None);
        };
        sqlx::query(
            "INSERT INTO memberships (tenant_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, user_id) DO NOTHING",
        )
        .bind(tenant_id)
        .bind(user_id)
        .bind(&role)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        let invite: Invite = sqlx::query_as(&format!("{INVITE_SELECT} WHERE i.id = $1"))
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        self.changes.emit(Change::User(user_id));
        self.changes.emit(Change::Email(email.to_owned()));
        Ok(Some(invite))
    }

    async fn create_user_with_invite(&self, user: NewUser, hash: &[u8]) -> StoreResult<Option<User>> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        let Some((_, tenant_id, role)) = use_invite(&mut tx, hash, &user.email, user.now).await? else {
            return Ok(None);
        };
        let created = insert_user(&mut tx, &user).await?;
        sqlx::query("INSERT INTO memberships (tenant_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)")
            .bind(tenant_id)
            .bind(created.id)
            .bind(&role)
            .bind(user.now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        self.changes.emit(Change::Email(user.email));
        Ok(Some(created))
    }

    async fn accept_invites_for_email(&self, user_id: Uuid, email: &str, now: DateTime<Utc>) -> StoreResult<u64> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        let accepted: Vec<(Uuid, String)> = sqlx::query_as(
            "UPDATE invites SET accepted_at = $2 \
             WHERE email = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $2 \
             RETURNING tenant_id, role",
        )
        .bind(email)
        .bind(now)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        for (tenant_id, role) in &accepted {
            sqlx::query(
                "INSERT INTO memberships (tenant_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant_id, user_id) DO NOTHING",
            )
            .bind(tenant_id)
            .bind(user_id)
            .bind(role)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        self.changes.emit(Change::User(user_id));
        self.changes.emit(Change::Email(email.to_owned()));
        Ok(accepted.len() as u64)
    }

    async fn list_sessions(&self, user_id: Uuid, now: DateTime<Utc>) -> StoreResult<Vec<Session>> {
        sqlx::query_as(
            &format!("SELECT {SESSION_COLUMNS} \
             FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 \
             ORDER BY created_at DESC"),
        )
        .bind(user_id)
        .bind(now)
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)
    }

    async fn revoke_other_sessions(&self, user_id: Uuid, keep: Option<Uuid>, now: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        revoke_sessions_except(&mut tx, user_id, keep, now).await?;
        tx.commit().await.map_err(map_err)?;
        self.changes.emit(Change::User(user_id));
        Ok(())
    }

    async fn set_session_tenant(&self, session_id: Uuid, tenant_id: Uuid) -> StoreResult<()> {
        let user_id: Option<Uuid> =
            sqlx::query_scalar("UPDATE sessions SET tenant_id = $2 WHERE id = $1 RETURNING user_id")
                .bind(session_id)
                .bind(tenant_id)
                .fetch_optional(&self.writer)
                .await
                .map_err(map_err)?;
        if let Some(user_id) = user_id {
            self.changes.emit(Change::User(user_id));
        }
        Ok(())
    }

    async fn list_users(&self, query: Option<&str>, limit: i64, offset: i64) -> StoreResult<(Vec<User>, i64)> {
        let pattern = match query {
            Some(q) => format!(
                "%{}%",
                q.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
            ),
            None => "%".to_owned(),
        };
        let filter = "WHERE email LIKE $1 ESCAPE '\\' OR LOWER(COALESCE(name, '')) LIKE $1 ESCAPE '\\'";
        let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM users {filter}"))
            .bind(&pattern)
            .fetch_one(&self.reader)
            .await
            .map_err(map_err)?;
        let users = sqlx::query_as(&format!(
            "SELECT * FROM users {filter} ORDER BY created_at, email LIMIT $2 OFFSET $3"
        ))
        .bind(&pattern)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?;
        Ok((users, total))
    }

    async fn save_user_admin(&self, user: &User, revoke_sessions: bool, now: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
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
        .await
        .map_err(map_err)?;
        if revoke_sessions {
            revoke_sessions_except(&mut tx, user.id, None, now).await?;
        }
        tx.commit().await.map_err(map_err)?;
        self.changes.emit(Change::User(user.id));
        Ok(())
    }

    async fn delete_user(&self, user_id: Uuid) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        // Tenants where this user is the only owner.
        let sole: Vec<(Uuid, i64)> = sqlx::query_as(
            "SELECT m.tenant_id, (SELECT COUNT(*) FROM memberships o WHERE o.tenant_id = m.tenant_id) \
             FROM memberships m WHERE m.user_id = $1 AND m.role = 'owner' \
             AND (SELECT COUNT(*) FROM memberships o WHERE o.tenant_id = m.tenant_id AND o.role = 'owner') = 1",
        )
        .bind(user_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        if sole.iter().any(|(_, members)| *members > 1) {
            return Err(StoreError::Conflict("sole_owner"));
        }
        for (tenant_id, _) in &sole {
            sqlx::query("DELETE FROM tenants WHERE id = $1")
                .bind(tenant_id)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        let done = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        self.changes.emit(Change::User(user_id));
        Ok(done.rows_affected() == 1)
    }

    async fn discard_unverified_user(&self, user_id: Uuid, now: DateTime<Utc>) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        // Under the user's lock, so a verification racing this either
        // lands first (and nothing is discarded) or after (and finds no one).
        lock_user(&mut tx, user_id).await?;
        let unverified: Option<bool> =
            sqlx::query_scalar("SELECT email_verified_at IS NULL FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
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
        .await
        .map_err(map_err)?;
        // The others keep an owner: their longest-standing verified member.
        let orphaned: Vec<Uuid> = sqlx::query_scalar(
            "SELECT m.tenant_id FROM memberships m WHERE m.user_id = $1 AND m.role = 'owner' \
             AND NOT EXISTS (SELECT 1 FROM memberships o WHERE o.tenant_id = m.tenant_id \
                AND o.role = 'owner' AND o.user_id <> $1)",
        )
        .bind(user_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
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
            .await
            .map_err(map_err)?;
        }
        // Invitations it sent stop working.
        sqlx::query(
            "UPDATE invites SET revoked_at = $2 \
             WHERE invited_by = $1 AND accepted_at IS NULL AND revoked_at IS NULL",
        )
        .bind(user_id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        // Sessions, tokens, factors, links and mailed links go by cascade.
        sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        self.changes.emit(Change::User(user_id));
        Ok(true)
    }

    async fn expire_plans(&self, default_plan: &str, now: DateTime<Utc>) -> StoreResult<Vec<Uuid>> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "UPDATE users SET plan = $1, plan_expires_at = NULL, updated_at = $2 \
             WHERE plan_expires_at IS NOT NULL AND plan_expires_at <= $2 RETURNING id",
        )
        .bind(default_plan)
        .bind(now)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        for id in &ids {
            revoke_sessions_except(&mut tx, *id, None, now).await?;
        }
        tx.commit().await.map_err(map_err)?;
        self.changes.users(ids.iter().copied());
        Ok(ids)
    }

    async fn append_audit(&self, event: &AuditEvent) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO audit_events (id, at, action, actor_id, target_id, tenant_id, ip, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(event.id)
        .bind(event.at)
        .bind(&event.action)
        .bind(event.actor_id)
        .bind(event.target_id)
        .bind(event.tenant_id)
        .bind(&event.ip)
        .bind(&event.detail)
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn list_audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEvent>> {
        sqlx::query_as(
            "SELECT id, at, action, actor_id, target_id, tenant_id, ip, detail FROM audit_events \
             WHERE ($1 IS NULL OR action = $1) AND ($2 IS NULL OR actor_id = $2) \
             AND ($3 IS NULL OR target_id = $3) AND ($4 IS NULL OR tenant_id = $4) \
             AND ($5 IS NULL OR at >= $5) AND ($6 IS NULL OR at < $6) \
             ORDER BY at DESC, id LIMIT $7 OFFSET $8",
        )
        .bind(&filter.action)
        .bind(filter.actor_id)
        .bind(filter.target_id)
        .bind(filter.tenant_id)
        .bind(filter.since)
        .bind(filter.until)
        .bind(filter.limit)
        .bind(filter.offset)
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)
    }

    async fn spend_login_attempt(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window_start: DateTime<Utc>,
        max: i32,
        lock_until: DateTime<Utc>,
    ) -> StoreResult<LoginAttempt> {
        // One statement: the increment and the count it returns are one
        // step, so twenty parallel guesses get twenty different counts.
        // A run starts over when it is older than the window and not
        // locked, or when its lock has run out.
        const FRESH: &str = "((login_failures.locked_until IS NULL AND login_failures.window_start <= $3) \
             OR login_failures.locked_until <= $2)";
        let (count, locked_until): (i32, Option<DateTime<Utc>>) = sqlx::query_as(&format!(
            "INSERT INTO login_failures (email, failures, window_start, locked_until) \
             VALUES ($1, 1, $2, CASE WHEN $4 <= 1 THEN $5 END) \
             ON CONFLICT (email) DO UPDATE SET \
               failures = CASE WHEN {FRESH} THEN 1 ELSE login_failures.failures + 1 END, \
               window_start = CASE WHEN {FRESH} THEN $2 ELSE login_failures.window_start END, \
               locked_until = CASE \
                 WHEN {FRESH} THEN CASE WHEN $4 <= 1 THEN $5 END \
                 WHEN login_failures.locked_until IS NOT NULL THEN login_failures.locked_until \
                 WHEN login_failures.failures + 1 >= $4 THEN $5 \
                 ELSE NULL END \
             RETURNING failures, locked_until"
        ))
        .bind(key)
        .bind(now)
        .bind(window_start)
        .bind(max)
        .bind(lock_until)
        .fetch_one(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(LoginAttempt {
            count,
            locked_until: locked_until.filter(|t| *t > now),
        })
    }

    async fn refund_login_attempt(&self, key: &str, max: i32) -> StoreResult<()> {
        sqlx::query(
            "UPDATE login_failures SET failures = failures - 1, \
             locked_until = CASE WHEN failures - 1 >= $2 THEN locked_until END \
             WHERE email = $1 AND failures > 0",
        )
        .bind(key)
        .bind(max)
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn clear_login_failures(&self, email: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM login_failures WHERE email = $1")
            .bind(email)
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn totp(&self, user_id: Uuid) -> StoreResult<Option<TotpFactor>> {
        sqlx::query_as("SELECT secret_enc, enabled_at, last_step FROM user_totp WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&self.writer)
            .await
            .map_err(map_err)
    }

    async fn set_pending_totp(&self, user_id: Uuid, secret_enc: &[u8], now: DateTime<Utc>) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO user_totp (user_id, secret_enc, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id) DO UPDATE SET secret_enc = $2, created_at = $3, last_step = NULL \
             WHERE user_totp.enabled_at IS NULL",
        )
        .bind(user_id)
        .bind(secret_enc)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn enable_totp(&self, user_id: Uuid, step: i64, backup_hashes: &[Vec<u8>], keep: Option<Uuid>, now: DateTime<Utc>) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        lock_user(&mut tx, user_id).await?;
        let done = sqlx::query(
            "UPDATE user_totp SET enabled_at = $2, last_step = $3 WHERE user_id = $1 AND enabled_at IS NULL",
        )
        .bind(user_id)
        .bind(now)
        .bind(step)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query("UPDATE users SET two_factor_enabled = $2, updated_at = $3 WHERE id = $1")
            .bind(user_id)
            .bind(true)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        insert_backup_codes(&mut tx, user_id, backup_hashes, now).await?;
        sqlx::query("UPDATE personal_access_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL")
            .bind(user_id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        revoke_sessions_except(&mut tx, user_id, keep, now).await?;
        tx.commit().await.map_err(map_err)?;
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
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn spend_backup_code(&self, user_id: Uuid, hash: &[u8], now: DateTime<Utc>) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE backup_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
        )
        .bind(user_id)
        .bind(hash)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() >= 1)
    }

    async fn replace_backup_codes(&self, user_id: Uuid, hashes: &[Vec<u8>], now: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        insert_backup_codes(&mut tx, user_id, hashes, now).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn backup_codes_remaining(&self, user_id: Uuid) -> StoreResult<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM backup_codes WHERE user_id = $1 AND used_at IS NULL")
            .bind(user_id)
            .fetch_one(&self.reader)
            .await
            .map_err(map_err)
    }

    async fn disable_totp(&self, user_id: Uuid, now: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        for sql in [
            "DELETE FROM user_totp WHERE user_id = $1",
            "DELETE FROM backup_codes WHERE user_id = $1",
            "DELETE FROM mfa_challenges WHERE user_id = $1",
        ] {
            sqlx::query(sql).bind(user_id).execute(&mut *tx).await.map_err(map_err)?;
        }
        sqlx::query("UPDATE users SET two_factor_enabled = $2, updated_at = $3 WHERE id = $1")
            .bind(user_id)
            .bind(false)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        self.changes.emit(Change::User(user_id));
        Ok(())
    }

    async fn create_mfa_challenge(&self, hash: &[u8], user_id: Uuid, now: DateTime<Utc>, expires_at: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        sqlx::query("DELETE FROM mfa_challenges WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query("INSERT INTO mfa_challenges (challenge_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(hash)
            .bind(user_id)
            .bind(now)
            .bind(expires_at)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn find_mfa_challenge(&self, hash: &[u8], now: DateTime<Utc>) -> StoreResult<Option<Uuid>> {
        sqlx::query_scalar("SELECT user_id FROM mfa_challenges WHERE challenge_hash = $1 AND expires_at > $2")
            .bind(hash)
            .bind(now)
            .fetch_optional(&self.writer)
            .await
            .map_err(map_err)
    }

    async fn take_mfa_challenge(&self, hash: &[u8]) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM mfa_challenges WHERE challenge_hash = $1")
            .bind(hash)
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn app_secret(&self, name: &str, generated: &[u8], now: DateTime<Utc>) -> StoreResult<Vec<u8>> {
        sqlx::query("INSERT INTO app_secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(generated)
            .bind(now)
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        sqlx::query_scalar("SELECT value FROM app_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&self.writer)
            .await
            .map_err(map_err)
    }

    async fn add_passkey(&self, p: &StoredPasskey, max: u32) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
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
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(())
    }

    async fn passkeys(&self, user_id: Uuid) -> StoreResult<Vec<StoredPasskey>> {
        sqlx::query_as("SELECT * FROM passkeys WHERE user_id = $1 ORDER BY created_at, id")
            .bind(user_id)
            .fetch_all(&self.reader)
            .await
            .map_err(map_err)
    }

    async fn rename_passkey(&self, user_id: Uuid, id: Uuid, name: &str) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE passkeys SET name = $3 WHERE user_id = $1 AND id = $2")
            .bind(user_id)
            .bind(id)
            .bind(name)
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_passkey(&self, user_id: Uuid, id: Uuid) -> StoreResult<UnlinkOutcome> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        lock_user(&mut tx, user_id).await?;
        let Some((has_password, methods)) = sign_in_methods(&mut tx, user_id).await? else {
            return Ok(UnlinkOutcome::NotLinked);
        };
        let exists: Option<Uuid> = sqlx::query_scalar("SELECT id FROM passkeys WHERE user_id = $1 AND id = $2")
            .bind(user_id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        if exists.is_none() {
            return Ok(UnlinkOutcome::NotLinked);
        }
        if !has_password && methods <= 1 {
            return Ok(UnlinkOutcome::LastMethod);
        }
        sqlx::query("DELETE FROM passkeys WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(UnlinkOutcome::Done)
    }

    async fn passkey_used(&self, id: Uuid, passkey: &str, now: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query("UPDATE passkeys SET passkey = $2, last_used_at = $3 WHERE id = $1")
            .bind(id)
            .bind(passkey)
            .bind(now)
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn save_ceremony(&self, id_hash: &[u8], user_id: Option<Uuid>, kind: &str, state: &str, expires_at: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO webauthn_ceremonies (id_hash, user_id, kind, state, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id_hash)
        .bind(user_id)
        .bind(kind)
        .bind(state)
        .bind(expires_at)
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn take_ceremony(&self, id_hash: &[u8], kind: &str, now: DateTime<Utc>) -> StoreResult<Option<(Option<Uuid>, String)>> {
        sqlx::query("DELETE FROM webauthn_ceremonies WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        sqlx::query_as(
            "DELETE FROM webauthn_ceremonies WHERE id_hash = $1 AND kind = $2 AND expires_at > $3 \
             RETURNING user_id, state",
        )
        .bind(id_hash)
        .bind(kind)
        .bind(now)
        .fetch_optional(&self.writer)
        .await
        .map_err(map_err)
    }

    async fn save_oauth_state(&self, new: &NewOAuthState) -> StoreResult<()> {
        let state = &new.state;
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        sqlx::query("DELETE FROM oauth_states WHERE expires_at <= $1")
            .bind(state.created_at)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
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
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn take_oauth_state(&self, state_hash: &[u8], now: DateTime<Utc>) -> StoreResult<Option<OAuthState>> {
        let taken: Option<OAuthState> = sqlx::query_as(
            "DELETE FROM oauth_states WHERE state_hash = $1 \
             RETURNING provider, callback, pkce_verifier, nonce, redirect_to, link_user_id, created_at, expires_at",
        )
        .bind(state_hash)
        .fetch_optional(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(taken.filter(|s| s.expires_at > now))
    }

    async fn find_identity(&self, issuer: &str, subject: &str) -> StoreResult<Option<Identity>> {
        sqlx::query_as("SELECT * FROM user_identities WHERE issuer = $1 AND subject = $2")
            .bind(issuer)
            .bind(subject)
            .fetch_optional(&self.reader)
            .await
            .map_err(map_err)
    }

    async fn identities(&self, user_id: Uuid) -> StoreResult<Vec<Identity>> {
        sqlx::query_as("SELECT * FROM user_identities WHERE user_id = $1 ORDER BY created_at, provider")
            .bind(user_id)
            .fetch_all(&self.reader)
            .await
            .map_err(map_err)
    }

    async fn link_identity(&self, identity: &NewIdentity) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        insert_identity(&mut tx, identity).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn create_user_with_identity(&self, user: NewUser, tenant: NewTenant, identity: NewIdentity) -> StoreResult<User> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        let created = insert_user(&mut tx, &user).await?;
        insert_tenant_with_member(&mut tx, &tenant, created.id, "owner", user.now).await?;
        insert_identity(&mut tx, &identity).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(created)
    }

    async fn unlink_identity(&self, user_id: Uuid, provider: &str) -> StoreResult<UnlinkOutcome> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        lock_user(&mut tx, user_id).await?;
        let Some((has_password, methods)) = sign_in_methods(&mut tx, user_id).await? else {
            return Ok(UnlinkOutcome::NotLinked);
        };
        let linked: Option<Uuid> =
            sqlx::query_scalar("SELECT id FROM user_identities WHERE user_id = $1 AND provider = $2")
                .bind(user_id)
                .bind(provider)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
        let Some(id) = linked else {
            return Ok(UnlinkOutcome::NotLinked);
        };
        if !has_password && methods <= 1 {
            return Ok(UnlinkOutcome::LastMethod);
        }
        sqlx::query("DELETE FROM user_identities WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(UnlinkOutcome::Done)
    }

}

type Tx = sqlx::Transaction<'static, Db>;

/// A PAT joined with its user; the token's columns carry `p_`.
#[derive(sqlx::FromRow)]
struct PatUserRow {
    #[sqlx(flatten)]
    user: User,
    p_id: Uuid,
    p_tenant_id: Option<Uuid>,
    p_name: String,
    p_scopes: String,
    p_created_at: DateTime<Utc>,
    p_expires_at: Option<DateTime<Utc>>,
    p_last_used_at: Option<DateTime<Utc>>,
}

/// A session joined with its user; the session's columns carry `s_`.
#[derive(sqlx::FromRow)]
struct SessionUserRow {
    #[sqlx(flatten)]
    user: User,
    s_id: Uuid,
    s_tenant_id: Option<Uuid>,
    s_ip: Option<String>,
    s_user_agent: Option<String>,
    s_created_at: DateTime<Utc>,
    s_last_seen_at: DateTime<Utc>,
    s_expires_at: DateTime<Utc>,
}

const SESSION_COLUMNS: &str =
    "id, user_id, tenant_id, ip, user_agent, created_at, last_seen_at, expires_at, revoked_at";
const PAT_COLUMNS: &str = "id, user_id, tenant_id, name, scopes, created_at, expires_at, last_used_at, revoked_at";

const INVITE_SELECT: &str = "SELECT i.id, i.tenant_id, t.name AS tenant_name, i.email, i.role, i.invited_by, \
     i.created_at, i.expires_at, i.accepted_at, i.revoked_at FROM invites i JOIN tenants t ON t.id = i.tenant_id";

async fn insert_user(tx: &mut Tx, user: &NewUser) -> StoreResult<User> {
    sqlx::query_as(
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
    .bind(user.email_verified.then_some(user.now))
    .bind(user.is_admin)
    .bind(user.now)
    .fetch_one(&mut **tx)
    .await
    .map_err(map_err)
}

async fn insert_tenant_with_member(tx: &mut Tx, tenant: &NewTenant, user_id: Uuid, role: &str, now: DateTime<Utc>) -> StoreResult<()> {
    sqlx::query("INSERT INTO tenants (id, name, slug, created_at) VALUES ($1, $2, $3, $4)")
        .bind(tenant.id)
        .bind(&tenant.name)
        .bind(&tenant.slug)
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    sqlx::query("INSERT INTO memberships (tenant_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)")
        .bind(tenant.id)
        .bind(user_id)
        .bind(role)
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    Ok(())
}

/// Marks a pending invite for `email` accepted, atomically: of concurrent
/// redemptions exactly one gets `(id, tenant_id, role)`.
async fn use_invite(tx: &mut Tx, hash: &[u8], email: &str, now: DateTime<Utc>) -> StoreResult<Option<(Uuid, Uuid, String)>> {
    sqlx::query_as(
        "UPDATE invites SET accepted_at = $3 \
         WHERE token_hash = $1 AND email = $2 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $3 \
         RETURNING id, tenant_id, role",
    )
    .bind(hash)
    .bind(email)
    .bind(now)
    .fetch_optional(&mut **tx)
    .await
    .map_err(map_err)
}

async fn insert_session<'e, E>(executor: E, session: &NewSession) -> StoreResult<Session>
where
    E: sqlx::Executor<'e, Database = Db>,
{
    sqlx::query_as(
        &format!("INSERT INTO sessions (id, user_id, token_hash, tenant_id, ip, user_agent, created_at, last_seen_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8) \
         RETURNING {SESSION_COLUMNS}"),
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
/// Takes the user's row lock (PostgreSQL) for the rest of the transaction.
/// Under the user's lock, refuses with `Conflict("limit")` when what
/// `count_sql` counts (`$1` the user, `$2` a time it starts from) has
/// reached `max`: the count and the insert that follows are one step, so a
/// burst cannot slip past.
async fn within_budget(
    tx: &mut Tx,
    user_id: Uuid,
    count_sql: &str,
    since: DateTime<Utc>,
    max: u32,
) -> StoreResult<()> {
    lock_user(tx, user_id).await?;
    let count: i64 = sqlx::query_scalar(count_sql)
        .bind(user_id)
        .bind(since)
        .fetch_one(&mut **tx)
        .await
        .map_err(map_err)?;
    if count >= i64::from(max) {
        return Err(StoreError::Conflict("limit"));
    }
    Ok(())
}

async fn lock_user(tx: &mut Tx, user_id: Uuid) -> StoreResult<()> {
    sqlx::query(LOCK_USER)
        .bind(user_id)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    Ok(())
}

/// Whether the user has a password, and how many other ways in (identities
/// and passkeys); `None` when there is no such user.
async fn sign_in_methods(tx: &mut Tx, user_id: Uuid) -> StoreResult<Option<(bool, i64)>> {
    sqlx::query_as(
        "SELECT password_hash IS NOT NULL, \
         (SELECT COUNT(*) FROM user_identities WHERE user_id = $1) \
         + (SELECT COUNT(*) FROM passkeys WHERE user_id = $1) \
         FROM users WHERE id = $1",
    )
    .bind(user_id)
    .fetch_optional(&mut **tx)
    .await
    .map_err(map_err)
}

/// Replaces the user's backup codes with `hashes`.
async fn insert_backup_codes(tx: &mut Tx, user_id: Uuid, hashes: &[Vec<u8>], now: DateTime<Utc>) -> StoreResult<()> {
    sqlx::query("DELETE FROM backup_codes WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    for hash in hashes {
        sqlx::query("INSERT INTO backup_codes (id, user_id, code_hash, created_at) VALUES ($1, $2, $3, $4)")
            .bind(Uuid::new_v4())
            .bind(user_id)
            .bind(hash)
            .bind(now)
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
    }
    Ok(())
}

async fn insert_identity(tx: &mut Tx, identity: &NewIdentity) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO user_identities (id, user_id, provider, issuer, subject, email, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(identity.id)
    .bind(identity.user_id)
    .bind(&identity.provider)
    .bind(&identity.issuer)
    .bind(&identity.subject)
    .bind(&identity.email)
    .bind(identity.now)
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    Ok(())
}

async fn insert_token_mail(tx: &mut Tx, token_mail: &TokenMail) -> StoreResult<()> {
    let token = &token_mail.token;
    // Serialise token issues per user, so two at once cannot both stay live.
    lock_user(tx, token.user_id).await?;
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

/// The members of a tenant (whose `me` changes with it).
async fn tenant_member_ids(tx: &mut Tx, tenant_id: Uuid) -> StoreResult<Vec<Uuid>> {
    sqlx::query_scalar("SELECT user_id FROM memberships WHERE tenant_id = $1")
        .bind(tenant_id)
        .fetch_all(&mut **tx)
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
