//! The SQL of [`TenantStore`], compiled once per backend.

use super::common::*;
use super::*;

#[async_trait]
impl TenantStore for Backend {
    async fn memberships(&self, user_id: Uuid) -> StoreResult<Vec<Membership>> {
        sqlx::query_as(
            "SELECT t.id, t.name, t.slug, t.plan, m.role, t.created_at \
             FROM memberships m JOIN tenants t ON t.id = m.tenant_id \
             WHERE m.user_id = $1 ORDER BY m.created_at, t.name",
        )
        .bind(user_id)
        .fetch_all(&self.reader)
        .await
        .map_err(StoreError::from)
    }

    async fn create_tenant(
        &self,
        tenant: NewTenant,
        owner: Uuid,
        now: DateTime<Utc>,
        max_owned: u32,
        max_per_hour: u32,
    ) -> StoreResult<Membership> {
        let mut tx = self.writer.begin().await?;
        const OWNED: &str = "SELECT COUNT(*) FROM memberships \
             WHERE user_id = $1 AND role = 'owner' AND created_at > $2";
        let ever = DateTime::<Utc>::UNIX_EPOCH;
        within_budget(&mut tx, owner, OWNED, ever, max_owned).await?;
        within_budget(
            &mut tx,
            owner,
            OWNED,
            now - chrono::Duration::hours(1),
            max_per_hour,
        )
        .await?;
        insert_tenant_with_member(&mut tx, &tenant, owner, Role::Owner, now).await?;
        tx.commit().await?;
        self.changes.emit(Change::User(owner));
        Ok(Membership {
            id: tenant.id,
            name: tenant.name,
            slug: tenant.slug,
            plan: "free".into(),
            role: Role::Owner,
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
        .map_err(StoreError::from)
    }

    async fn rename_tenant(&self, tenant_id: Uuid, name: &str) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("UPDATE tenants SET name = $2 WHERE id = $1")
            .bind(tenant_id)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let members = tenant_member_ids(&mut tx, tenant_id).await?;
        tx.commit().await?;
        self.changes.users(members);
        Ok(())
    }

    async fn delete_tenant(&self, tenant_id: Uuid) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let members = tenant_member_ids(&mut tx, tenant_id).await?;
        let done = sqlx::query("DELETE FROM tenants WHERE id = $1")
            .bind(tenant_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
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
        .map_err(StoreError::from)
    }

    async fn change_member(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
        role: Option<Role>,
        now: DateTime<Utc>,
    ) -> StoreResult<MemberChange> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(LOCK_TENANT)
            .bind(tenant_id)
            .execute(&mut *tx)
            .await?;
        let current: Option<Role> = sqlx::query_scalar(
            "SELECT role FROM memberships WHERE tenant_id = $1 AND user_id = $2",
        )
        .bind(tenant_id)
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(current) = current else {
            return Ok(MemberChange::NotAMember);
        };
        if current == Role::Owner && role != Some(Role::Owner) {
            let owners: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM memberships WHERE tenant_id = $1 AND role = 'owner'",
            )
            .bind(tenant_id)
            .fetch_one(&mut *tx)
            .await?;
            if owners <= 1 {
                return Ok(MemberChange::LastOwner);
            }
        }
        let statement = match role {
            Some(role) => sqlx::query(
                "UPDATE memberships SET role = $3 WHERE tenant_id = $1 AND user_id = $2",
            )
            .bind(tenant_id)
            .bind(user_id)
            .bind(role),
            None => sqlx::query("DELETE FROM memberships WHERE tenant_id = $1 AND user_id = $2")
                .bind(tenant_id)
                .bind(user_id),
        };
        statement.execute(&mut *tx).await?;
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
                    .await?;
            }
        }
        if !matches!(role, Some(Role::Owner | Role::Admin)) {
            // No longer allowed to invite: what they sent stops working.
            sqlx::query(
                "UPDATE invites SET revoked_at = $3 WHERE tenant_id = $1 AND invited_by = $2 \
                 AND accepted_at IS NULL AND revoked_at IS NULL",
            )
            .bind(tenant_id)
            .bind(user_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.changes.emit(Change::User(user_id));
        Ok(MemberChange::Done)
    }

    async fn create_invite(
        &self,
        invite: NewInvite,
        mail: NewMail,
        max_per_hour: u32,
    ) -> StoreResult<Invite> {
        let mut tx = self.writer.begin().await?;
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
        .await?;
        sqlx::query(
            "INSERT INTO invites (id, tenant_id, email, role, token_hash, invited_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(invite.id)
        .bind(invite.tenant_id)
        .bind(&invite.email)
        .bind(invite.role)
        .bind(&invite.token_hash)
        .bind(invite.invited_by)
        .bind(invite.now)
        .bind(invite.expires_at)
        .execute(&mut *tx)
        .await?;
        insert_mail(&mut *tx, &mail).await?;
        let created: Invite = sqlx::query_as(&format!("{INVITE_SELECT} WHERE i.id = $1"))
            .bind(invite.id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
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
        .map_err(StoreError::from)
    }

    async fn revoke_invite(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let email: Option<String> = sqlx::query_scalar(
            "UPDATE invites SET revoked_at = $3 \
             WHERE id = $1 AND tenant_id = $2 AND accepted_at IS NULL AND revoked_at IS NULL \
             RETURNING email",
        )
        .bind(id)
        .bind(tenant_id)
        .bind(now)
        .fetch_optional(&self.writer)
        .await?;
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
        .map_err(StoreError::from)
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
        .map_err(StoreError::from)
    }

    async fn accept_invite(
        &self,
        hash: &[u8],
        user_id: Uuid,
        email: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Invite>> {
        let mut tx = self.writer.begin().await?;
        let Some((id, tenant_id, role)) = use_invite(&mut tx, hash, email, now).await? else {
            return Ok(None);
        };
        sqlx::query(
            "INSERT INTO memberships (tenant_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, user_id) DO NOTHING",
        )
        .bind(tenant_id)
        .bind(user_id)
        .bind(role)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let invite: Invite = sqlx::query_as(&format!("{INVITE_SELECT} WHERE i.id = $1"))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        self.changes.emit(Change::User(user_id));
        self.changes.emit(Change::Email(email.to_owned()));
        Ok(Some(invite))
    }

    async fn create_user_with_invite(
        &self,
        user: NewUser,
        hash: &[u8],
    ) -> StoreResult<Option<User>> {
        let mut tx = self.writer.begin().await?;
        let Some((_, tenant_id, role)) = use_invite(&mut tx, hash, &user.email, user.now).await?
        else {
            return Ok(None);
        };
        let created = insert_user(&mut tx, &user).await?;
        sqlx::query("INSERT INTO memberships (tenant_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)")
            .bind(tenant_id)
            .bind(created.id)
            .bind(role)
            .bind(user.now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.changes.emit(Change::Email(user.email));
        Ok(Some(created))
    }

    async fn accept_invites_for_email(
        &self,
        user_id: Uuid,
        email: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let mut tx = self.writer.begin().await?;
        let accepted: Vec<(Uuid, String)> = sqlx::query_as(
            "UPDATE invites SET accepted_at = $2 \
             WHERE email = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $2 \
             RETURNING tenant_id, role",
        )
        .bind(email)
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
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
            .await?;
        }
        tx.commit().await?;
        self.changes.emit(Change::User(user_id));
        self.changes.emit(Change::Email(email.to_owned()));
        Ok(accepted.len() as u64)
    }
}
