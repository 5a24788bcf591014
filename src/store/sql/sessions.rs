//! The SQL of [`SessionStore`], compiled once per backend.

use super::common::*;
use super::*;

#[async_trait]
impl SessionStore for Backend {
    async fn create_session(&self, session: NewSession) -> StoreResult<Session> {
        insert_session(&self.writer, &session).await
    }

    async fn find_session_with_user(
        &self,
        hash: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<(Session, User)>> {
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
        .await?;
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
        sqlx::query_as(&format!(
            "SELECT {SESSION_COLUMNS} \
             FROM sessions WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2"
        ))
        .bind(id)
        .bind(now)
        .fetch_optional(&self.reader)
        .await
        .map_err(StoreError::from)
    }

    async fn touch_session(&self, id: Uuid, now: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id = $1 AND last_seen_at < $2")
            .bind(id)
            .bind(now)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn rotate_session(&self, old: Uuid, new: NewSession) -> StoreResult<Option<Session>> {
        let mut tx = self.writer.begin().await?;
        let revoked = sqlx::query(
            "UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2",
        )
        .bind(old)
        .bind(new.now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if revoked != 1 {
            return Ok(None);
        }
        let session = insert_session(&mut *tx, &new).await?;
        tx.commit().await?;
        self.changes.emit(Change::User(new.user_id));
        Ok(Some(session))
    }

    async fn add_refresh_token(
        &self,
        session_id: Uuid,
        hash: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, session_id, created_at) VALUES ($1, $2, $3)",
        )
        .bind(hash)
        .bind(session_id)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn use_refresh_token(&self, presented: RefreshPresented<'_>) -> StoreResult<RefreshUse> {
        let RefreshPresented {
            hash,
            successor_hash,
            now,
            idle_since,
            replay_since,
        } = presented;
        let mut tx = self.writer.begin().await?;
        // The spend comes first: of parallel uses, one wins the row (the
        // others wait for its lock, then find it spent).
        let spent = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL",
        )
        .bind(hash)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        let row: Option<(Uuid, Option<DateTime<Utc>>)> =
            sqlx::query_as("SELECT session_id, used_at FROM refresh_tokens WHERE token_hash = $1")
                .bind(hash)
                .fetch_optional(&mut *tx)
                .await?;
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
        .await?;
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
                .await?;
            sqlx::query(
                "UPDATE sessions SET last_seen_at = $2 WHERE id = $1 AND last_seen_at < $2",
            )
            .bind(session_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            session.last_seen_at = session.last_seen_at.max(now);
            return Ok(RefreshUse::Rotated(session));
        }
        match used_at {
            Some(used_at) if used_at > replay_since => {
                Ok(RefreshUse::Replayed { session, used_at })
            }
            _ => {
                sqlx::query(
                    "UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                )
                .bind(session_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                self.changes.emit(Change::User(session.user_id));
                Ok(RefreshUse::Reused {
                    user_id: session.user_id,
                })
            }
        }
    }

    async fn revoke_session(
        &self,
        user_id: Uuid,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = $3 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(user_id)
        .bind(now)
        .execute(&self.writer)
        .await?;
        self.changes.emit(Change::User(user_id));
        Ok(done.rows_affected() == 1)
    }

    async fn create_pat(&self, pat: NewPat, max_active: u32) -> StoreResult<Pat> {
        let mut tx = self.writer.begin().await?;
        within_budget(
            &mut tx,
            pat.user_id,
            "SELECT COUNT(*) FROM personal_access_tokens WHERE user_id = $1 \
             AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)",
            pat.now,
            max_active,
        )
        .await?;
        let created: Pat = sqlx::query_as(&format!(
            "INSERT INTO personal_access_tokens \
             (id, user_id, tenant_id, name, scopes, token_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             RETURNING {PAT_COLUMNS}"
        ))
        .bind(pat.id)
        .bind(pat.user_id)
        .bind(pat.tenant_id)
        .bind(&pat.name)
        .bind(&pat.scopes)
        .bind(&pat.token_hash)
        .bind(pat.now)
        .bind(pat.expires_at)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn list_pats(&self, user_id: Uuid) -> StoreResult<Vec<Pat>> {
        sqlx::query_as(&format!(
            "SELECT {PAT_COLUMNS} \
             FROM personal_access_tokens WHERE user_id = $1 AND revoked_at IS NULL \
             ORDER BY created_at DESC"
        ))
        .bind(user_id)
        .fetch_all(&self.reader)
        .await
        .map_err(StoreError::from)
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
        .await?;
        self.changes.emit(Change::User(user_id));
        Ok(done.rows_affected() == 1)
    }

    async fn find_pat_with_user(
        &self,
        hash: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<(Pat, User)>> {
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
        .await?;
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
        sqlx::query_as(&format!(
            "SELECT {PAT_COLUMNS} \
             FROM personal_access_tokens \
             WHERE id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)"
        ))
        .bind(id)
        .bind(now)
        .fetch_optional(&self.reader)
        .await
        .map_err(StoreError::from)
    }

    async fn touch_pat(&self, id: Uuid, now: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query(
            "UPDATE personal_access_tokens SET last_used_at = $2 \
             WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)",
        )
        .bind(id)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn list_sessions(&self, user_id: Uuid, now: DateTime<Utc>) -> StoreResult<Vec<Session>> {
        sqlx::query_as(&format!(
            "SELECT {SESSION_COLUMNS} \
             FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 \
             ORDER BY created_at DESC"
        ))
        .bind(user_id)
        .bind(now)
        .fetch_all(&self.reader)
        .await
        .map_err(StoreError::from)
    }

    async fn revoke_other_sessions(
        &self,
        user_id: Uuid,
        keep: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        revoke_sessions_except(&mut tx, user_id, keep, now).await?;
        tx.commit().await?;
        self.changes.emit(Change::User(user_id));
        Ok(())
    }

    async fn set_session_tenant(&self, session_id: Uuid, tenant_id: Uuid) -> StoreResult<()> {
        let user_id: Option<Uuid> = sqlx::query_scalar(
            "UPDATE sessions SET tenant_id = $2 WHERE id = $1 RETURNING user_id",
        )
        .bind(session_id)
        .bind(tenant_id)
        .fetch_optional(&self.writer)
        .await?;
        if let Some(user_id) = user_id {
            self.changes.emit(Change::User(user_id));
        }
        Ok(())
    }
}
