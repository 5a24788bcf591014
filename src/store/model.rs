//! The rows the store reads and the values it writes.

use chrono::{DateTime, Utc};

use crate::domain::{Role, Scopes};
use uuid::Uuid;

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
    pub role: Role,
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
    pub scopes: Scopes,
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
    pub scopes: Scopes,
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
    pub role: Role,
    pub joined_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Invite {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub tenant_name: String,
    pub email: String,
    pub role: Role,
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
    pub role: Role,
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
