//! Pieces the SQL of several aggregates shares: column lists, joined rows,
//! inserts used inside other transactions, and per-user locks. Only
//! portable SQL lives under `sql/`: `$n` placeholders, `RETURNING`, `ON
//! CONFLICT`; every time comes in as a bound parameter from the injected
//! clock.

use super::*;

pub(super) type Tx = sqlx::Transaction<'static, Db>;

/// A PAT joined with its user; the token's columns carry `p_`.
#[derive(sqlx::FromRow)]
pub(super) struct PatUserRow {
    #[sqlx(flatten)]
    pub(super) user: User,
    pub(super) p_id: Uuid,
    pub(super) p_tenant_id: Option<Uuid>,
    pub(super) p_name: String,
    pub(super) p_scopes: Scopes,
    pub(super) p_created_at: DateTime<Utc>,
    pub(super) p_expires_at: Option<DateTime<Utc>>,
    pub(super) p_last_used_at: Option<DateTime<Utc>>,
}

/// A session joined with its user; the session's columns carry `s_`.
#[derive(sqlx::FromRow)]
pub(super) struct SessionUserRow {
    #[sqlx(flatten)]
    pub(super) user: User,
    pub(super) s_id: Uuid,
    pub(super) s_tenant_id: Option<Uuid>,
    pub(super) s_ip: Option<String>,
    pub(super) s_user_agent: Option<String>,
    pub(super) s_created_at: DateTime<Utc>,
    pub(super) s_last_seen_at: DateTime<Utc>,
    pub(super) s_expires_at: DateTime<Utc>,
}

pub(super) const SESSION_COLUMNS: &str =
    "id, user_id, tenant_id, ip, user_agent, created_at, last_seen_at, expires_at, revoked_at";
pub(super) const PAT_COLUMNS: &str =
    "id, user_id, tenant_id, name, scopes, created_at, expires_at, last_used_at, revoked_at";

pub(super) const INVITE_SELECT: &str = "SELECT i.id, i.tenant_id, t.name AS tenant_name, i.email, i.role, i.invited_by, \
     i.created_at, i.expires_at, i.accepted_at, i.revoked_at FROM invites i JOIN tenants t ON t.id = i.tenant_id";

pub(super) async fn insert_user(tx: &mut Tx, user: &NewUser) -> StoreResult<User> {
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
    .map_err(StoreError::from)
}

pub(super) async fn insert_tenant_with_member(
    tx: &mut Tx,
    tenant: &NewTenant,
    user_id: Uuid,
    role: Role,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO tenants (id, name, slug, created_at) VALUES ($1, $2, $3, $4)")
        .bind(tenant.id)
        .bind(&tenant.name)
        .bind(&tenant.slug)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "INSERT INTO memberships (tenant_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(tenant.id)
    .bind(user_id)
    .bind(role)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Marks a pending invite for `email` accepted, atomically: of concurrent
/// redemptions exactly one gets `(id, tenant_id, role)`.
pub(super) async fn use_invite(
    tx: &mut Tx,
    hash: &[u8],
    email: &str,
    now: DateTime<Utc>,
) -> StoreResult<Option<(Uuid, Uuid, Role)>> {
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
    .map_err(StoreError::from)
}

pub(super) async fn insert_session<'e, E>(executor: E, session: &NewSession) -> StoreResult<Session>
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
    .map_err(StoreError::from)
}

pub(super) async fn insert_mail<'e, E>(executor: E, mail: &NewMail) -> StoreResult<()>
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
    .await?;
    Ok(())
}

/// Under the user's lock, refuses with `Conflict("limit")` when what
/// `count_sql` counts (`$1` the user, `$2` a time it starts from) has
/// reached `max`: the count and the insert that follows are one step, so a
/// burst cannot slip past.
pub(super) async fn within_budget(
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
        .await?;
    if count >= i64::from(max) {
        return Err(StoreError::Conflict("limit"));
    }
    Ok(())
}

/// Takes the user's row lock (PostgreSQL) for the rest of the transaction.
pub(super) async fn lock_user(tx: &mut Tx, user_id: Uuid) -> StoreResult<()> {
    sqlx::query(LOCK_USER)
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Whether the user has a password, and how many other ways in (identities
/// and passkeys); `None` when there is no such user.
pub(super) async fn sign_in_methods(
    tx: &mut Tx,
    user_id: Uuid,
) -> StoreResult<Option<(bool, i64)>> {
    sqlx::query_as(
        "SELECT password_hash IS NOT NULL, \
         (SELECT COUNT(*) FROM user_identities WHERE user_id = $1) \
         + (SELECT COUNT(*) FROM passkeys WHERE user_id = $1) \
         FROM users WHERE id = $1",
    )
    .bind(user_id)
    .fetch_optional(&mut **tx)
    .await
    .map_err(StoreError::from)
}

/// Replaces the user's backup codes with `hashes`.
pub(super) async fn insert_backup_codes(
    tx: &mut Tx,
    user_id: Uuid,
    hashes: &[Vec<u8>],
    now: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query("DELETE FROM backup_codes WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    for hash in hashes {
        sqlx::query(
            "INSERT INTO backup_codes (id, user_id, code_hash, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(Uuid::new_v4())
        .bind(user_id)
        .bind(hash)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

pub(super) async fn insert_identity(tx: &mut Tx, identity: &NewIdentity) -> StoreResult<()> {
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
    .await?;
    Ok(())
}

/// Retires the user's older tokens of the same purpose, then stores the new
/// token and its mail.
pub(super) async fn insert_token_mail(tx: &mut Tx, token_mail: &TokenMail) -> StoreResult<()> {
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
    .await?;
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
    .await?;
    insert_mail(&mut **tx, &token_mail.mail).await
}

/// Marks a usable token used, atomically: of concurrent redemptions exactly
/// one gets the user id.
pub(super) async fn use_token(
    tx: &mut Tx,
    purpose: TokenPurpose,
    hash: &[u8],
    now: DateTime<Utc>,
) -> StoreResult<Option<Uuid>> {
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
    .map_err(StoreError::from)
}

/// The members of a tenant (whose `me` changes with it).
pub(super) async fn tenant_member_ids(tx: &mut Tx, tenant_id: Uuid) -> StoreResult<Vec<Uuid>> {
    sqlx::query_scalar("SELECT user_id FROM memberships WHERE tenant_id = $1")
        .bind(tenant_id)
        .fetch_all(&mut **tx)
        .await
        .map_err(StoreError::from)
}

pub(super) async fn revoke_sessions_except(
    tx: &mut Tx,
    user_id: Uuid,
    keep: Option<Uuid>,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    // A nil id never matches a real session, so `keep: None` revokes all.
    sqlx::query(
        "UPDATE sessions SET revoked_at = $3 WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL",
    )
    .bind(user_id)
    .bind(keep.unwrap_or(Uuid::nil()))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Roles are stored as their names (`owner`, `admin`, `member`) and read
/// back typed; a name the code does not know is a decode error, not a role.
impl sqlx::Type<Db> for Role {
    fn type_info() -> <Db as sqlx::Database>::TypeInfo {
        <str as sqlx::Type<Db>>::type_info()
    }

    fn compatible(ty: &<Db as sqlx::Database>::TypeInfo) -> bool {
        <str as sqlx::Type<Db>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, Db> for Role {
    fn decode(
        value: <Db as sqlx::Database>::ValueRef<'r>,
    ) -> Result<Role, sqlx::error::BoxDynError> {
        let name = <&str as sqlx::Decode<Db>>::decode(value)?;
        Role::parse(name).ok_or_else(|| format!("unknown role {name:?}").into())
    }
}

impl<'q> sqlx::Encode<'q, Db> for Role {
    fn encode_by_ref(
        &self,
        buf: &mut <Db as sqlx::Database>::ArgumentBuffer<'q>,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <&str as sqlx::Encode<'q, Db>>::encode_by_ref(&self.as_str(), buf)
    }
}

/// Scopes are stored as their names separated by spaces.
impl sqlx::Type<Db> for Scopes {
    fn type_info() -> <Db as sqlx::Database>::TypeInfo {
        <str as sqlx::Type<Db>>::type_info()
    }

    fn compatible(ty: &<Db as sqlx::Database>::TypeInfo) -> bool {
        <str as sqlx::Type<Db>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, Db> for Scopes {
    fn decode(
        value: <Db as sqlx::Database>::ValueRef<'r>,
    ) -> Result<Scopes, sqlx::error::BoxDynError> {
        Ok(Scopes::from_text(<&str as sqlx::Decode<Db>>::decode(
            value,
        )?))
    }
}

impl<'q> sqlx::Encode<'q, Db> for Scopes {
    fn encode_by_ref(
        &self,
        buf: &mut <Db as sqlx::Database>::ArgumentBuffer<'q>,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <String as sqlx::Encode<'q, Db>>::encode(self.to_string(), buf)
    }
}
