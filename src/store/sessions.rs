//! Sessions and tokens: cookie sessions, their refresh tokens, and personal access tokens.

use super::*;

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn create_session(&self, session: NewSession) -> StoreResult<Session>;

    /// An active (not revoked, not past its absolute expiry) session by
    /// token hash, with its user, in one query: the check every
    /// cookie-authenticated request makes.
    async fn find_session_with_user(
        &self,
        hash: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<(Session, User)>>;

    /// An active session by id.
    async fn find_session(&self, id: Uuid, now: DateTime<Utc>) -> StoreResult<Option<Session>>;

    async fn touch_session(&self, id: Uuid, now: DateTime<Utc>) -> StoreResult<()>;

    /// Revokes `old` and creates `new` atomically; `None` when `old` was no
    /// longer active (a concurrent refresh or logout won).
    async fn rotate_session(&self, old: Uuid, new: NewSession) -> StoreResult<Option<Session>>;

    /// Adds a refresh token (by hash) to a session.
    async fn add_refresh_token(
        &self,
        session_id: Uuid,
        hash: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// Presents a refresh token, atomically (see [`RefreshUse`]). The
    /// session must be live at `now`: not revoked, before its absolute
    /// expiry, and seen after `idle_since`. A token spent after
    /// `replay_since` answers `Replayed`; one spent before it revokes the
    /// session.
    async fn use_refresh_token(&self, presented: RefreshPresented<'_>) -> StoreResult<RefreshUse>;

    /// True when the session was active and is now revoked.
    async fn revoke_session(
        &self,
        user_id: Uuid,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// Refuses with `Conflict("limit")` once the user has `max_active` live tokens.
    async fn create_pat(&self, pat: NewPat, max_active: u32) -> StoreResult<Pat>;

    async fn list_pats(&self, user_id: Uuid) -> StoreResult<Vec<Pat>>;

    async fn revoke_pat(&self, user_id: Uuid, id: Uuid, now: DateTime<Utc>) -> StoreResult<bool>;

    /// An active (not revoked, not expired) token by hash, with its user, in
    /// one query: the check every PAT-authenticated request makes.
    async fn find_pat_with_user(
        &self,
        hash: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<(Pat, User)>>;

    async fn touch_pat(&self, id: Uuid, now: DateTime<Utc>) -> StoreResult<()>;

    /// An active token by id.
    async fn find_pat(&self, id: Uuid, now: DateTime<Utc>) -> StoreResult<Option<Pat>>;

    /// The user's active sessions, newest first.
    async fn list_sessions(&self, user_id: Uuid, now: DateTime<Utc>) -> StoreResult<Vec<Session>>;

    /// Revokes every session of the user except `keep`.
    async fn revoke_other_sessions(
        &self,
        user_id: Uuid,
        keep: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;

    async fn set_session_tenant(&self, session_id: Uuid, tenant_id: Uuid) -> StoreResult<()>;
}
