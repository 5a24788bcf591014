//! Tenants, their members and invitations.

use super::*;

#[async_trait]
pub trait TenantStore: Send + Sync {
    async fn memberships(&self, user_id: Uuid) -> StoreResult<Vec<Membership>>;

    /// Creates a tenant with `owner` as its owner.
    /// Refuses with `Conflict("limit")` once the owner owns `max_owned`
    /// tenants, or made `max_per_hour` in the last hour.
    async fn create_tenant(
        &self,
        tenant: NewTenant,
        owner: Uuid,
        now: DateTime<Utc>,
        max_owned: u32,
        max_per_hour: u32,
    ) -> StoreResult<Membership>;

    async fn membership(&self, user_id: Uuid, tenant_id: Uuid) -> StoreResult<Option<Membership>>;

    async fn rename_tenant(&self, tenant_id: Uuid, name: &str) -> StoreResult<()>;

    async fn delete_tenant(&self, tenant_id: Uuid) -> StoreResult<bool>;

    async fn members(&self, tenant_id: Uuid) -> StoreResult<Vec<Member>>;

    /// Sets a member's role (`Some`) or removes the member (`None`), refusing
    /// to leave the tenant without an owner; serialised per tenant. Removed
    /// members' sessions leave the tenant and their PATs bound to it are
    /// revoked; members no longer owner or admin lose their pending
    /// invitations.
    async fn change_member(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
        role: Option<Role>,
        now: DateTime<Utc>,
    ) -> StoreResult<MemberChange>;

    /// Stores an invite and its mail; a pending invite of the same address
    /// to the same tenant is revoked. Refuses with `Conflict("limit")` once
    /// the inviter sent `max_per_hour` in the last hour (on any tenant).
    async fn create_invite(
        &self,
        invite: NewInvite,
        mail: NewMail,
        max_per_hour: u32,
    ) -> StoreResult<Invite>;

    /// A tenant's invites that were not revoked, newest first.
    async fn tenant_invites(&self, tenant_id: Uuid) -> StoreResult<Vec<Invite>>;

    async fn revoke_invite(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// Pending (unused, unrevoked, unexpired) invites addressed to `email`.
    async fn pending_invites(&self, email: &str, now: DateTime<Utc>) -> StoreResult<Vec<Invite>>;

    /// A pending invite by token hash.
    async fn find_invite(&self, hash: &[u8], now: DateTime<Utc>) -> StoreResult<Option<Invite>>;

    /// Uses a pending invite addressed to `email` and makes `user_id` a
    /// member, atomically; `None` when the invite is not usable.
    async fn accept_invite(
        &self,
        hash: &[u8],
        user_id: Uuid,
        email: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Invite>>;

    /// Creates a user who joins the inviting tenant, using the invite, in one
    /// transaction. `Ok(None)` when the invite is not usable for this email.
    async fn create_user_with_invite(
        &self,
        user: NewUser,
        hash: &[u8],
    ) -> StoreResult<Option<User>>;

    /// Accepts every pending invite addressed to `email` for `user_id`
    /// (after the address is verified); returns how many.
    async fn accept_invites_for_email(
        &self,
        user_id: Uuid,
        email: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<u64>;
}
