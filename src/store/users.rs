//! Users and their credentials: accounts, passwords, profiles, the single-use emailed tokens (reset, verification), and the administration of accounts.

use super::*;

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates a user, the user's own tenant (role owner) and, when given,
    /// the verification token and its mail, in one transaction.
    /// `Conflict("email")` when the email is taken.
    async fn create_user_with_tenant(
        &self,
        user: NewUser,
        tenant: NewTenant,
        verification: Option<TokenMail>,
    ) -> StoreResult<User>;

    /// Creates an imported user and their memberships in one transaction.
    /// Each tenant is found by slug or created; `Conflict("email")` when the
    /// user exists already.
    async fn import_user(
        &self,
        user: NewUser,
        tenants: Vec<(NewTenant, Role)>,
    ) -> StoreResult<User>;

    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>>;

    /// One stored password hash of each kind that decides what checking it
    /// costs: per bcrypt cost and per set of argon2 parameters (salt and
    /// output aside), so a node can time a failed login against each.
    async fn password_hash_samples(&self) -> StoreResult<Vec<String>>;

    async fn find_user(&self, id: Uuid) -> StoreResult<Option<User>>;

    /// Replaces the password hash without touching sessions (re-hash on login).
    async fn set_password_hash(
        &self,
        user_id: Uuid,
        hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// Sets a new password and revokes every session of the user except `keep`.
    async fn change_password(
        &self,
        user_id: Uuid,
        hash: &str,
        keep: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// Sets the names a user gives themselves; `None` when there is no such user.
    async fn update_profile(
        &self,
        user_id: Uuid,
        profile: &Profile,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<User>>;

    /// Stores a token and its mail; older unused tokens of the same purpose
    /// for the user stop working. Issues nothing and answers `false` when
    /// `max_per_hour` tokens of that purpose were already issued to the user
    /// in the hour before `token_mail.token.now` (mail flooding of one
    /// address).
    async fn issue_token(&self, token_mail: TokenMail, max_per_hour: u32) -> StoreResult<bool>;

    /// The user id of a usable token (unused, unexpired), without using it.
    async fn peek_token(
        &self,
        purpose: TokenPurpose,
        hash: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Uuid>>;

    /// Uses a reset token: sets the password and revokes every session, in
    /// one transaction. `None` when the token is unknown, used or expired.
    async fn redeem_reset_token(
        &self,
        hash: &[u8],
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Uuid>>;

    /// Uses a verification token and marks the email verified.
    async fn redeem_verification_token(
        &self,
        hash: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<User>>;

    /// Users whose email or name contains `query`, by creation, with the total.
    async fn list_users(
        &self,
        query: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<User>, i64)>;

    /// Writes the administrable fields of `user` (disabled, plan, expiry,
    /// admin); revokes every session when `revoke_sessions`.
    async fn save_user_admin(
        &self,
        user: &User,
        revoke_sessions: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// Deletes a user with its sessions, tokens and memberships. Tenants the
    /// user alone belongs to go too; `Conflict("sole_owner")` when the user is
    /// the only owner of a tenant that has other members.
    async fn delete_user(&self, user_id: Uuid) -> StoreResult<bool>;

    /// Removes an account whose address was never verified, with what it
    /// made while it held the address: every session, token and factor,
    /// tenants where no other verified member would remain, and its pending
    /// invitations; tenants that stay get an owner among their verified
    /// members. `false` (nothing changed) when the account is verified by
    /// now or gone.
    async fn discard_unverified_user(&self, user_id: Uuid, now: DateTime<Utc>)
        -> StoreResult<bool>;
    /// Puts every user whose plan has expired back on `default_plan` and
    /// revokes their sessions; returns their ids.
    async fn expire_plans(&self, default_plan: &str, now: DateTime<Utc>) -> StoreResult<Vec<Uuid>>;
}
