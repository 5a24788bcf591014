//! Social login: sign-ins in progress and the identities linked at providers.

use super::*;

#[async_trait]
pub trait IdentityStore: Send + Sync {
    /// Stores a sign-in in progress (and sweeps expired ones).
    async fn save_oauth_state(&self, state: &NewOAuthState) -> StoreResult<()>;

    /// Removes and returns the unexpired sign-in with this state hash: a
    /// state is good for one callback only.
    async fn take_oauth_state(
        &self,
        state_hash: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<OAuthState>>;

    async fn find_identity(&self, issuer: &str, subject: &str) -> StoreResult<Option<Identity>>;

    async fn identities(&self, user_id: Uuid) -> StoreResult<Vec<Identity>>;

    /// `Conflict("identity")` when the identity belongs to someone already,
    /// `Conflict("provider")` when the user has one at that provider.
    async fn link_identity(&self, identity: &NewIdentity) -> StoreResult<()>;

    /// A new (password-less) user, their own tenant and their identity, in
    /// one transaction; `Conflict("email")` when the email is taken.
    async fn create_user_with_identity(
        &self,
        user: NewUser,
        tenant: NewTenant,
        identity: NewIdentity,
    ) -> StoreResult<User>;

    /// Unlinks the user's identity at `provider` unless it is the last way
    /// to sign in (no password, no other identity, no passkey); serialised
    /// per user.
    async fn unlink_identity(&self, user_id: Uuid, provider: &str) -> StoreResult<UnlinkOutcome>;
}
