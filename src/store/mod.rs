//! Persistence behind one trait, with a SQLite and a PostgreSQL
//! implementation. Methods are use cases; each one that must be atomic opens
//! its own transaction. Both implementations share one body of portable SQL
//! (`sql.rs`), compiled once per backend.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::crypto::jwt::StoredKey;

mod postgres;
mod sqlite;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was hit; names what (e.g. `email`).
    #[error("conflict on {0}")]
    Conflict(&'static str),
    /// The database is out of reach or not taking work right now (down,
    /// restarting, out of connections, locked by another process): the
    /// same request may well succeed in a moment, so it is a `503`, not a
    /// `500` (see [`is_unavailable`]).
    #[error("database unavailable: {0}")]
    Unavailable(anyhow::Error),
    #[error(transparent)]
    Other(anyhow::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A committed write that changes what a credential resolves to, what a
/// user's `me` shows, or which keys sign JWTs. Caches drop what it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The user's row, sessions, tokens or tenants.
    User(Uuid),
    /// Invitations addressed to this (lower-cased) email.
    Email(String),
    /// The JWT signing keys.
    SigningKeys,
    /// Whether other nodes' changes are being followed. `false`: the feed
    /// broke and changes may be missed, so caches empty and stand aside;
    /// `true`: it is back (caches empty once more and resume).
    Following(bool),
}

impl Change {
    /// The form carried by a PostgreSQL notification (see the `0006`
    /// migration's trigger): `u:<uuid>`, `e:<email>`, `k`, anything else
    /// meaning "all".
    pub fn from_payload(payload: &str) -> Change {
        match payload.split_once(':') {
            Some(("u", id)) => id
                .parse()
                .map(Change::User)
                .unwrap_or(Change::Following(true)),
            Some(("e", email)) => Change::Email(email.to_owned()),
            _ if payload == "k" => Change::SigningKeys,
            // Unknown: drop everything, as after a gap in the feed.
            _ => Change::Following(true),
        }
    }
}

type ChangeHook = Arc<dyn Fn(&Change) + Send + Sync>;

/// Where a store reports changes: its own writes right after they commit
/// (so this node's next request sees them), and on PostgreSQL the other
/// nodes' writes as their notifications arrive.
#[derive(Default)]
pub struct ChangeFeed {
    hooks: RwLock<Vec<ChangeHook>>,
}

impl ChangeFeed {
    pub fn subscribe(&self, hook: impl Fn(&Change) + Send + Sync + 'static) {
        self.hooks
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(hook));
    }

    pub fn emit(&self, change: Change) {
        let hooks = self.hooks.read().unwrap_or_else(|e| e.into_inner());
        for hook in hooks.iter() {
            hook(&change);
        }
    }

    fn users(&self, ids: impl IntoIterator<Item = Uuid>) {
        for id in ids {
            self.emit(Change::User(id));
        }
    }
}

#[derive(Clone, sqlx::FromRow)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub password_hash: Option<String>,
    pub name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email_verified_at: Option<DateTime<Utc>>,
    pub is_admin: bool,
    pub disabled_at: Option<DateTime<Utc>>,
    pub plan: String,
    pub plan_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub two_factor_enabled: bool,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("is_admin", &self.is_admin)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
pub struct NewUser {
    pub id: Uuid,
    pub email: String,
    pub password_hash: Option<String>,
    pub name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email_verified: bool,
    pub is_admin: bool,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewTenant {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
}

/// A tenant as seen by one member.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Membership {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub plan: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Session {
    pub id: Uuid,
    pub user_id: Uuid,
    pub tenant_id: Option<Uuid>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A refresh token as presented, with what its use needs.
#[derive(Debug, Clone, Copy)]
pub struct RefreshPresented<'a> {
    pub hash: &'a [u8],
    /// The hash of the token that replaces it when it is current.
    pub successor_hash: &'a [u8],
    pub now: DateTime<Utc>,
    /// Sessions not seen since then are idle, hence dead.
    pub idle_since: DateTime<Utc>,
    /// Tokens spent since then are inside the grace window.
    pub replay_since: DateTime<Utc>,
}

/// What presenting a refresh token did.
#[derive(Debug, Clone)]
pub enum RefreshUse {
    /// It was current: it is now spent, its successor is current and the
    /// session was seen (for the idle timeout).
    Rotated(Session),
    /// Spent at `used_at`, within the grace window (a parallel or retried
    /// refresh): nothing changed.
    Replayed {
        session: Session,
        used_at: DateTime<Utc>,
    },
    /// Spent before the grace window: a stolen copy, or a client that lost
    /// track. The session (and so every token of it) is revoked.
    Reused { user_id: Uuid },
    /// Unknown, or its session is no longer live.
    Unknown,
}

#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: Uuid,
    pub user_id: Uuid,
    pub token_hash: Vec<u8>,
    pub tenant_id: Option<Uuid>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub now: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Pat {
    pub id: Uuid,
    pub user_id: Uuid,
    pub tenant_id: Option<Uuid>,
    pub name: String,
    /// Space-separated scope names.
    pub scopes: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct NewPat {
    pub id: Uuid,
    pub user_id: Uuid,
    pub tenant_id: Option<Uuid>,
    pub name: String,
    pub scopes: String,
    pub token_hash: Vec<u8>,
    pub now: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// What a single-use emailed token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    PasswordReset,
    EmailVerification,
}

impl TokenPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::PasswordReset => "password_reset",
            TokenPurpose::EmailVerification => "email_verification",
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewOneTimeToken {
    pub id: Uuid,
    pub user_id: Uuid,
    pub purpose: TokenPurpose,
    pub token_hash: Vec<u8>,
    pub now: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewMail {
    pub id: Uuid,
    pub recipient: String,
    pub subject: String,
    pub body_text: String,
    pub now: DateTime<Utc>,
}

/// A token to store together with the mail that carries it, atomically.
#[derive(Debug, Clone)]
pub struct TokenMail {
    pub token: NewOneTimeToken,
    pub mail: NewMail,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxMail {
    pub id: Uuid,
    pub recipient: String,
    pub subject: String,
    pub body_text: String,
    pub attempts: i32,
}

/// A member of a tenant, as listed to the other members.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Member {
    pub user_id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub role: String,
    pub joined_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Invite {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub tenant_name: String,
    pub email: String,
    pub role: String,
    pub invited_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct NewInvite {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub email: String,
    pub role: String,
    pub token_hash: Vec<u8>,
    pub invited_by: Uuid,
    pub now: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditEvent {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    pub action: String,
    pub actor_id: Option<Uuid>,
    pub target_id: Option<Uuid>,
    pub tenant_id: Option<Uuid>,
    pub ip: Option<String>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub action: Option<String>,
    pub actor_id: Option<Uuid>,
    pub target_id: Option<Uuid>,
    pub tenant_id: Option<Uuid>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub limit: i64,
    pub offset: i64,
}

/// What happened to a membership change request.
/// A user's TOTP factor (the secret encrypted).
#[derive(Clone, sqlx::FromRow)]
pub struct TotpFactor {
    pub secret_enc: Vec<u8>,
    pub enabled_at: Option<DateTime<Utc>>,
    pub last_step: Option<i64>,
}

/// A registered passkey; `passkey` is webauthn-rs's JSON of the credential.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredPasskey {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub credential_id: Vec<u8>,
    pub passkey: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A user's identity at an OAuth/OIDC provider, keyed by (issuer, subject).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Identity {
    pub id: Uuid,
    pub user_id: Uuid,
    pub provider: String,
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewIdentity {
    pub id: Uuid,
    pub user_id: Uuid,
    pub provider: String,
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    pub now: DateTime<Utc>,
}

/// A redirect to a provider, waiting for its callback.
#[derive(Clone, sqlx::FromRow)]
pub struct OAuthState {
    pub provider: String,
    pub callback: String,
    pub pkce_verifier: String,
    pub nonce: String,
    pub redirect_to: String,
    pub link_user_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

pub struct NewOAuthState {
    pub state_hash: Vec<u8>,
    pub state: OAuthState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnlinkOutcome {
    Done,
    NotLinked,
    /// Refused: the account would be left without a way to sign in.
    LastMethod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberChange {
    Done,
    NotAMember,
    /// Refused: it would leave the tenant without an owner.
    LastOwner,
}

/// The names a user gives themselves.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    pub name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

/// One attempt counted against a lockout budget (see
/// [`Store::spend_login_attempt`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginAttempt {
    /// Attempts in the current run, this one included.
    pub count: i32,
    /// The lock in force or about to be (set once the run reaches the limit).
    pub locked_until: Option<DateTime<Utc>>,
}

/// Mail in the outbox, for the metrics.
#[derive(Debug, Clone, Default)]
pub struct OutboxStats {
    /// Messages not yet delivered (given-up ones included).
    pub depth: i64,
    /// When the oldest of them was queued.
    pub oldest: Option<DateTime<Utc>>,
}

/// Connections of one pool, for the metrics.
#[derive(Debug, Clone)]
pub struct PoolStats {
    pub pool: &'static str,
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies pending migrations, one node at a time (an advisory lock on
    /// PostgreSQL); refuses a database whose schema is newer than this
    /// binary knows.
    async fn migrate(&self) -> StoreResult<()>;
    /// Where committed changes are reported.
    fn changes(&self) -> &ChangeFeed;
    /// Follows the other nodes' changes until `stop` turns true. On
    /// PostgreSQL: `LISTEN`s for what the triggers send, reporting
    /// `Following(false)` when the connection drops and `Following(true)`
    /// once it is back. SQLite has no other nodes: `Following(true)` at once.
    async fn follow_changes(&self, stop: tokio::sync::watch::Receiver<bool>);
    fn pool_stats(&self) -> Vec<PoolStats>;
    /// Succeeds when the database answers and every migration is applied.
    async fn ready(&self) -> StoreResult<()>;
    /// Closes the connections (used by shutdown and by tests).
    async fn close(&self);

    // Users and tenants.
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
        tenants: Vec<(NewTenant, String)>,
    ) -> StoreResult<User>;
    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>>;
    /// What a password login needs to know about an email, in one read:
    /// the user, the lock in force, and whether failures are on record.
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
    async fn memberships(&self, user_id: Uuid) -> StoreResult<Vec<Membership>>;
    /// Sets the names a user gives themselves; `None` when there is no such user.
    async fn update_profile(
        &self,
        user_id: Uuid,
        profile: &Profile,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<User>>;

    // Sessions.
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

    // Single-use emailed tokens.
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

    // Personal access tokens.
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

    // Mail outbox.
    async fn enqueue_mail(&self, mail: NewMail) -> StoreResult<()>;
    /// Claims up to `limit` due messages for `node` until `lease_until`.
    /// A message another node holds is skipped (`FOR UPDATE SKIP LOCKED`,
    /// then the lease) until its lease runs out, which is how the mail of a
    /// node that died mid-send gets delivered by another.
    async fn claim_mail(
        &self,
        node: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        max_attempts: i32,
        limit: i64,
    ) -> StoreResult<Vec<OutboxMail>>;
    /// Delivered: the message (and the link it carried) is deleted.
    async fn mail_sent(&self, id: Uuid) -> StoreResult<()>;
    /// Not delivered: released, to be tried again at `retry_at`.
    async fn mail_failed(&self, id: Uuid, retry_at: DateTime<Utc>, error: &str) -> StoreResult<()>;
    /// Deletes the messages given up on (`max_attempts` failed attempts)
    /// whose last attempt was before `before`, and the links in them.
    /// Returns how many went.
    async fn purge_given_up_mail(
        &self,
        max_attempts: i32,
        before: DateTime<Utc>,
    ) -> StoreResult<u64>;
    async fn outbox_stats(&self) -> StoreResult<OutboxStats>;

    // Work shared by the nodes.
    /// Takes the turn of the periodic job `name` when it is due: of all
    /// nodes asking, one gets `true`, and the next turn is due at
    /// `next_due`.
    async fn claim_job(
        &self,
        name: &str,
        node: &str,
        now: DateTime<Utc>,
        next_due: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Counts one hit of `bucket` in the fixed window that starts at
    /// `window` (a number the caller derives from the time); returns the
    /// hits in that window so far, this one included.
    async fn count_hit(&self, bucket: &str, window: i64) -> StoreResult<i64>;
    /// Deletes what can no longer be used: sessions and tokens a day after
    /// they expired or were revoked or used, finished sign-in states,
    /// challenges and ceremonies, lockout runs and rate-limit windows that
    /// are over. Returns how many rows went.
    async fn sweep(&self, now: DateTime<Utc>, window_before: i64) -> StoreResult<u64>;

    // Tenants and members.
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
    /// to leave the tenant without an owner. Serialised per tenant.
    /// A new role for a member, or (`None`) their removal: removed members'
    /// sessions leave the tenant and their PATs bound to it are revoked;
    /// members no longer owner or admin lose their pending invitations.
    async fn change_member(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
        role: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<MemberChange>;

    // Invitations.
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

    // Session management.
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

    // Administration.
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

    // Lockout.
    /// Counts one attempt against the budget `key` (an email, or a device
    /// cookie's id) before the attempt is checked, in one atomic statement,
    /// so parallel attempts each see their own count. A run older than
    /// `window_start` (and not locked), or whose lock has run out, starts
    /// over; reaching `max` sets the lock until `lock_until`. The caller
    /// refuses the attempt when the returned count is above `max`.
    async fn spend_login_attempt(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window_start: DateTime<Utc>,
        max: i32,
        lock_until: DateTime<Utc>,
    ) -> StoreResult<LoginAttempt>;
    /// Gives back one attempt that turned out right but does not end the
    /// run (a right password before the second factor, a re-check).
    async fn refund_login_attempt(&self, key: &str, max: i32) -> StoreResult<()>;
    /// Forgets failures and any lock (successful login, reset, admin unlock).
    async fn clear_login_failures(&self, email: &str) -> StoreResult<()>;

    // Audit log.
    async fn append_audit(&self, event: &AuditEvent) -> StoreResult<()>;
    async fn list_audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEvent>>;

    // Social login.
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

    // Two-factor authentication.
    async fn totp(&self, user_id: Uuid) -> StoreResult<Option<TotpFactor>>;
    /// Stores a new, not yet enabled secret; `false` when TOTP is enabled.
    async fn set_pending_totp(
        &self,
        user_id: Uuid,
        secret_enc: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Enables the pending factor (the confirming code's step is spent),
    /// replaces the backup codes, and, so nothing made before skips the
    /// second factor, revokes every PAT and every session but `keep`.
    /// `false` when there was nothing pending.
    async fn enable_totp(
        &self,
        user_id: Uuid,
        step: i64,
        backup_hashes: &[Vec<u8>],
        keep: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Spends a TOTP step: `false` when it (or a later one) was used before.
    async fn spend_totp_step(&self, user_id: Uuid, step: i64) -> StoreResult<bool>;
    /// Spends a backup code: `false` when unknown or used.
    async fn spend_backup_code(
        &self,
        user_id: Uuid,
        hash: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    async fn replace_backup_codes(
        &self,
        user_id: Uuid,
        hashes: &[Vec<u8>],
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    async fn backup_codes_remaining(&self, user_id: Uuid) -> StoreResult<i64>;
    /// Removes the factor and the backup codes.
    async fn disable_totp(&self, user_id: Uuid, now: DateTime<Utc>) -> StoreResult<()>;
    async fn create_mfa_challenge(
        &self,
        hash: &[u8],
        user_id: Uuid,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// The user of an unexpired challenge, without using it.
    async fn find_mfa_challenge(
        &self,
        hash: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Uuid>>;
    /// Uses a challenge up: `false` when another request did first.
    async fn take_mfa_challenge(&self, hash: &[u8]) -> StoreResult<bool>;
    /// The named server secret, stored as `generated` on first use (every
    /// node then reads the same value).
    async fn app_secret(
        &self,
        name: &str,
        generated: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<u8>>;

    // Passkeys.
    /// Refuses with `Conflict("limit")` once the user has `max` passkeys.
    async fn add_passkey(&self, passkey: &StoredPasskey, max: u32) -> StoreResult<()>;
    async fn passkeys(&self, user_id: Uuid) -> StoreResult<Vec<StoredPasskey>>;
    /// `false` when the user has no such passkey.
    async fn rename_passkey(&self, user_id: Uuid, id: Uuid, name: &str) -> StoreResult<bool>;
    /// Deletes a passkey unless it is the last way to sign in (no password,
    /// no identity, no other passkey); serialised per user.
    async fn delete_passkey(&self, user_id: Uuid, id: Uuid) -> StoreResult<UnlinkOutcome>;
    /// Records a use (and the authenticator's new counter).
    async fn passkey_used(&self, id: Uuid, passkey: &str, now: DateTime<Utc>) -> StoreResult<()>;
    async fn save_ceremony(
        &self,
        id_hash: &[u8],
        user_id: Option<Uuid>,
        kind: &str,
        state: &str,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Removes and returns an unexpired ceremony's (user, state), once.
    async fn take_ceremony(
        &self,
        id_hash: &[u8],
        kind: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<(Option<Uuid>, String)>>;

    // JWT signing keys.
    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>>;
    /// Stores a key as the newest (a rotation).
    async fn add_signing_key(&self, key: &StoredKey) -> StoreResult<()> {
        self.insert_signing_key(key, false).await
    }
    /// Stores the installation's first key, unless another node starting
    /// at the same time stored one first (then everyone uses that one).
    async fn add_first_signing_key(&self, key: &StoredKey) -> StoreResult<()> {
        self.insert_signing_key(key, true).await
    }
    /// `first`: as generation 1, so of nodes racing on an empty table one
    /// wins; otherwise as the generation after the newest.
    async fn insert_signing_key(&self, key: &StoredKey, first: bool) -> StoreResult<()>;
    /// Deletes the keys older than the newest key created at or before
    /// `successor_before` (tokens they signed have expired by then).
    async fn retire_signing_keys(&self, successor_before: DateTime<Utc>) -> StoreResult<u64>;
}

/// How long a query waits for the database unless configured otherwise
/// (`database_timeout_ms`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens the store a database URL names; refuses schemes it does not know.
pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Arc<dyn Store>> {
    connect_with(url, max_connections, DEFAULT_TIMEOUT).await
}

/// [`connect`], waiting at most `timeout` for the database: for a pooled
/// connection on PostgreSQL (also while the server is unreachable), for
/// another process's write lock on SQLite.
pub async fn connect_with(
    url: &str,
    max_connections: u32,
    timeout: Duration,
) -> anyhow::Result<Arc<dyn Store>> {
    let scheme = url.split(':').next().unwrap_or_default();
    match scheme {
        "sqlite" => Ok(Arc::new(
            SqliteStore::connect(url, max_connections, timeout).await?,
        )),
        "postgres" | "postgresql" => Ok(Arc::new(
            PostgresStore::connect(url, max_connections, timeout).await?,
        )),
        other => anyhow::bail!(
            "unsupported database URL scheme {other:?}: use sqlite://… or postgres://…"
        ),
    }
}

/// Turns a sqlx error into the store's own small error.
fn map_err(err: sqlx::Error) -> StoreError {
    if is_unavailable(&err) {
        // A connection that failed (not a wait that ran out, which under
        // load would make every idle connection ping).
        if !matches!(err, sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed) {
            broken::seen();
        }
        return StoreError::Unavailable(err.into());
    }
    match &err {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Database(db) => match db.kind() {
            sqlx::error::ErrorKind::UniqueViolation => {
                let what = db
                    .constraint()
                    .or_else(|| Some(db.message()))
                    .unwrap_or_default();
                StoreError::Conflict(if what.contains("email") {
                    "email"
                } else if what.contains("subject") {
                    "identity"
                } else if what.contains("provider") {
                    "provider"
                } else if what.contains("slug") {
                    "slug"
                } else {
                    "unique"
                })
            }
            sqlx::error::ErrorKind::ForeignKeyViolation => StoreError::NotFound,
            _ => StoreError::Other(err.into()),
        },
        _ => StoreError::Other(err.into()),
    }
}

/// Whether an error says the database cannot be reached or is not taking
/// work for now (worth retrying), as opposed to saying that a query or the
/// data is wrong (a bug: `500`).
pub fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        // No connection within the timeout (server down, or every
        // connection busy), the pool shutting down, a socket or TLS
        // failure (the server restarted or the network dropped), the
        // SQLite worker thread gone.
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                postgres_unavailable(pg.code())
            } else if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                db.code()
                    .and_then(|code| code.parse::<i32>().ok())
                    .is_some_and(sqlite_unavailable)
            } else {
                false
            }
        }
        // `Protocol` means bytes that make no sense (a driver bug or not a
        // PostgreSQL server), not a lost connection (that is `Io`); the
        // rest are about queries and values.
        _ => false,
    }
}

/// PostgreSQL SQLSTATEs that mean the server is going away, not accepting
/// connections or out of resources, not that the statement is wrong.
fn postgres_unavailable(sqlstate: &str) -> bool {
    // 08: connection exception.
    sqlstate.starts_with("08")
        // 53: insufficient resources (disk full, out of memory, too many
        // connections).
        || sqlstate.starts_with("53")
        // 58: system error (an I/O error on the server).
        || sqlstate.starts_with("58")
        // admin_shutdown, crash_shutdown, cannot_connect_now (starting up
        // or shutting down), database_dropped.
        || matches!(sqlstate, "57P01" | "57P02" | "57P03" | "57P04")
        // read_only_sql_transaction: connected to a standby, as during a
        // failover before the connection string points at the new primary.
        || sqlstate == "25006"
}

/// SQLite result codes (the primary code, the low byte of an extended one)
/// that mean the file cannot be used now, not that the statement is wrong.
fn sqlite_unavailable(code: i32) -> bool {
    const BUSY: i32 = 5; // another process holds the lock past busy_timeout
    const LOCKED: i32 = 6;
    const READONLY: i32 = 8; // the file or its file system became read-only
    const IOERR: i32 = 10;
    const FULL: i32 = 13;
    const CANTOPEN: i32 = 14;
    const PROTOCOL: i32 = 15; // a WAL lock race that outlasted its retries
    matches!(
        code & 0xff,
        BUSY | LOCKED | READONLY | IOERR | FULL | CANTOPEN | PROTOCOL
    )
}

/// When this process last saw a database connection fail. After a server
/// restart every pooled connection is dead, but a connection in steady use
/// is handed out without a ping (see `postgres.rs`): the first query to
/// fail marks the moment, and from then on connections that sat idle since
/// before it are pinged before use, so one failed request does not become
/// one per pooled connection. (Process-wide because the error is classified
/// here, away from any pool; another store's pool pinging once more costs
/// one round trip.)
pub(crate) mod broken {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    static EPOCH: OnceLock<Instant> = OnceLock::new();
    /// Milliseconds after `EPOCH`, plus one (0: never).
    static LAST: AtomicU64 = AtomicU64::new(0);

    fn now_ms() -> u64 {
        let epoch = EPOCH.get_or_init(Instant::now);
        u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub fn seen() {
        LAST.store(now_ms().saturating_add(1), Ordering::Relaxed);
    }

    /// Whether a connection idle for `idle_for` was put back before the
    /// last failure seen.
    pub fn since_idle(idle_for: Duration) -> bool {
        let last = LAST.load(Ordering::Relaxed);
        if last == 0 {
            return false;
        }
        let idle_ms = u64::try_from(idle_for.as_millis()).unwrap_or(u64::MAX);
        // The failure (`last - 1`) came at or after the moment the
        // connection went idle.
        now_ms().saturating_sub(idle_ms) < last
    }
}

#[cfg(test)]
mod contract;

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
    use sqlx::{ConnectOptions, Connection};

    use super::*;

    fn unavailable(err: sqlx::Error) -> bool {
        matches!(map_err(err), StoreError::Unavailable(_))
    }

    #[test]
    fn connection_failures_are_unavailable_and_the_rest_are_not() {
        for err in [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::WorkerCrashed,
            sqlx::Error::Io(std::io::ErrorKind::ConnectionRefused.into()),
            sqlx::Error::Io(std::io::ErrorKind::UnexpectedEof.into()),
            sqlx::Error::Tls("handshake".into()),
        ] {
            let shown = err.to_string();
            assert!(unavailable(err), "{shown}");
        }
        assert!(matches!(
            map_err(sqlx::Error::RowNotFound),
            StoreError::NotFound
        ));
        for err in [
            sqlx::Error::Protocol("unknown message type".into()),
            sqlx::Error::ColumnNotFound("id".into()),
            sqlx::Error::Decode("bad uuid".into()),
        ] {
            let shown = err.to_string();
            assert!(matches!(map_err(err), StoreError::Other(_)), "{shown}");
        }
    }

    #[test]
    fn server_going_away_is_unavailable_a_bad_statement_is_not() {
        for code in [
            "08000", "08003", "08006", "08001", "57P01", "57P02", "57P03", "53300", "53100",
            "58030", "25006",
        ] {
            assert!(postgres_unavailable(code), "{code}");
        }
        for code in [
            "23505", "23503", "42601", "42P01", "40001", "22001", "57014", "XX000",
        ] {
            assert!(!postgres_unavailable(code), "{code}");
        }
        // Primary and extended codes: BUSY, BUSY_SNAPSHOT, LOCKED,
        // READONLY, IOERR_WRITE, FULL, CANTOPEN.
        for code in [5, 517, 6, 8, 778, 13, 14] {
            assert!(sqlite_unavailable(code), "{code}");
        }
        // ERROR, CONSTRAINT_UNIQUE, CORRUPT, MISMATCH.
        for code in [1, 2067, 11, 20] {
            assert!(!sqlite_unavailable(code), "{code}");
        }
    }

    /// Real errors from SQLite: another connection's write lock outlasting
    /// the busy timeout is unavailable; a broken statement or a duplicate
    /// is not.
    #[tokio::test]
    async fn sqlite_lock_held_elsewhere_is_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteConnectOptions::from_str(&format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("lock.db").display()
        ))
        .unwrap()
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(std::time::Duration::from_millis(50));
        let mut holder = options.connect().await.unwrap();
        sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY)")
            .execute(&mut holder)
            .await
            .unwrap();
        sqlx::query("INSERT INTO t VALUES (1)")
            .execute(&mut holder)
            .await
            .unwrap();
        let mut other = options.connect().await.unwrap();
        let duplicate = sqlx::query("INSERT INTO t VALUES (1)")
            .execute(&mut other)
            .await
            .unwrap_err();
        assert!(matches!(map_err(duplicate), StoreError::Conflict(_)));
        let bad = sqlx::query("SELEC 1")
            .execute(&mut other)
            .await
            .unwrap_err();
        assert!(matches!(map_err(bad), StoreError::Other(_)));

        let mut tx = holder.begin().await.unwrap();
        sqlx::query("INSERT INTO t VALUES (2)")
            .execute(&mut *tx)
            .await
            .unwrap();
        let busy = sqlx::query("INSERT INTO t VALUES (3)")
            .execute(&mut other)
            .await
            .unwrap_err();
        let shown = busy.to_string();
        assert!(unavailable(busy), "{shown}");
        tx.rollback().await.unwrap();
        sqlx::query("INSERT INTO t VALUES (3)")
            .execute(&mut other)
            .await
            .unwrap();
    }

    /// Real errors from PostgreSQL (when `TESSERA_TEST_DATABASE_URL` names
    /// a server): a connection the server terminates, and SQLSTATEs raised
    /// on purpose.
    #[tokio::test]
    async fn postgres_errors_are_classified() {
        let Ok(url) = std::env::var("TESSERA_TEST_DATABASE_URL") else {
            eprintln!("skipped: set TESSERA_TEST_DATABASE_URL");
            return;
        };
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        for (sqlstate, expected) in [("08006", true), ("57P03", true), ("42601", false)] {
            let err = sqlx::query(&format!(
                "DO $$ BEGIN RAISE EXCEPTION 'raised' USING ERRCODE = '{sqlstate}'; END $$"
            ))
            .execute(&mut conn)
            .await
            .unwrap_err();
            assert_eq!(unavailable(err), expected, "{sqlstate}");
        }
        // The server ends this connection as it does on shutdown (57P01);
        // the next query finds it closed.
        let terminated = sqlx::query("SELECT pg_terminate_backend(pg_backend_pid())")
            .execute(&mut conn)
            .await
            .unwrap_err();
        let shown = terminated.to_string();
        assert!(unavailable(terminated), "{shown}");
        let closed = sqlx::query("SELECT 1")
            .execute(&mut conn)
            .await
            .unwrap_err();
        let shown = closed.to_string();
        assert!(unavailable(closed), "{shown}");
    }

    #[test]
    fn a_failure_marks_connections_idle_since_before_it() {
        broken::seen();
        std::thread::sleep(std::time::Duration::from_millis(5));
        // Idle for a minute: put back before the failure.
        assert!(broken::since_idle(std::time::Duration::from_secs(60)));
        // Put back just now, after it.
        assert!(!broken::since_idle(std::time::Duration::ZERO));
    }
}
