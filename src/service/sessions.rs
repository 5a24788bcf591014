//! Login, sessions, and resolving a request's credential to a principal.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::cache::CachedCredential;

use super::audit::{Audit, AuditAction};
use super::tokens::JwtSubject;
use super::{ClientInfo, Tessera};
use crate::crypto::token::{self, hash_secret, PAT_PREFIX};
use crate::domain::{Email, Scope};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::metrics::LoginOutcome as LoginCount;
use crate::store::{Membership, NewSession, RefreshPresented, RefreshUse, Session, User};

/// Writes of "last seen" and "last used" happen at most this often.
const TOUCH_EVERY: Duration = Duration::seconds(60);

/// The credential a request carries.
pub enum Credential<'a> {
    /// A session token from a cookie.
    Cookie(&'a str),
    /// `Authorization: Bearer …`: a PAT, a JWT or a session token.
    Bearer(&'a str),
}

#[derive(Clone)]
pub enum PrincipalKind {
    Session {
        secret: String,
        from_cookie: bool,
    },
    Pat {
        id: Uuid,
        scopes: Vec<Scope>,
        expires_at: Option<DateTime<Utc>>,
    },
    Jwt,
}

impl std::fmt::Debug for PrincipalKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PrincipalKind::Session { from_cookie, .. } => f
                .debug_struct("Session")
                .field("from_cookie", from_cookie)
                .finish_non_exhaustive(),
            PrincipalKind::Pat { id, scopes, .. } => f
                .debug_struct("Pat")
                .field("id", id)
                .field("scopes", scopes)
                .finish_non_exhaustive(),
            PrincipalKind::Jwt => f.write_str("Jwt"),
        }
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: User,
    pub kind: PrincipalKind,
    /// The session the credential belongs to (also for a JWT issued for one).
    pub session: Option<Session>,
    /// The tenant the credential acts in, when it names one.
    pub tenant_id: Option<Uuid>,
    /// The one tenant a tenant-bound credential (a PAT made for a tenant,
    /// or a JWT exchanged for one) may see and touch; `None` for sessions
    /// and unbound tokens.
    pub bound_tenant: Option<Uuid>,
}

impl Principal {
    /// The principal of a session just started (to issue its first JWT).
    pub fn for_new_session(user: User, secret: String, session: Session) -> Principal {
        Principal {
            user,
            kind: PrincipalKind::Session {
                secret,
                from_cookie: false,
            },
            tenant_id: session.tenant_id,
            bound_tenant: None,
            session: Some(session),
        }
    }

    pub fn may_write(&self) -> bool {
        match &self.kind {
            PrincipalKind::Pat { scopes, .. } => scopes.contains(&Scope::Write),
            PrincipalKind::Session { .. } | PrincipalKind::Jwt => true,
        }
    }

    /// Refuses a tenant-bound credential: user-wide actions (signing out
    /// everywhere, the profile, the password, new tenants, invitations to
    /// other tenants, the admin API) need a session or an unbound token.
    pub fn require_unbound(&self) -> AppResult<()> {
        if self.bound_tenant.is_some() {
            return Err(AppError::forbidden(
                "This token is bound to one tenant; this needs a session or an unbound token.",
            ));
        }
        Ok(())
    }

    /// The session secret when the credential is a session token.
    pub fn session_secret(&self) -> Option<&str> {
        match &self.kind {
            PrincipalKind::Session { secret, .. } => Some(secret),
            _ => None,
        }
    }
}

/// What a refresh token buys: a new access token and the next refresh token.
pub struct RefreshedPair {
    pub access_token: String,
    pub expires_in: u32,
    pub refresh_token: String,
}

/// One answer for every refused refresh token (unknown, spent, or its
/// session over), so the answer tells nothing about which.
fn refresh_refused() -> AppError {
    AppError::new(
        ErrorCode::Unauthorized,
        "The refresh token is invalid or has been used; sign in again.",
    )
}

// The large variant is the usual one; boxing it would allocate on every login.
#[allow(clippy::large_enum_variant)]
pub enum LoginOutcome {
    LoggedIn {
        user: User,
        secret: String,
        session: Session,
        /// A new device cookie for the client (see `crypto::device`).
        device: String,
    },
    /// The password was right; the second factor is still to come, with
    /// this single-use challenge.
    TwoFactorRequired { challenge: String },
}

/// A lockout budget: the store key its attempts are counted under, and
/// how many a run may have.
#[derive(Debug, Clone)]
pub struct Budget {
    pub key: String,
    pub max: u32,
}

/// Longest session token or PAT looked up (they are 43 and 51 characters).
const MAX_SECRET_LEN: usize = 128;
/// Longest JWT looked at.
const MAX_JWT_LEN: usize = 4096;

impl Tessera {
    /// Resolves a credential; `None` when it is unknown, expired or revoked,
    /// or its user is disabled. A credential resolved a moment ago comes
    /// from the cache (see `cache`), which every revocation empties at once.
    pub async fn authenticate(&self, credential: Credential<'_>) -> AppResult<Option<Principal>> {
        let now = self.clock.now();
        let (token, from_cookie) = match credential {
            Credential::Cookie(secret) => (secret, true),
            Credential::Bearer(token) => (token, false),
        };
        let is_jwt =
            !from_cookie && !token.starts_with(PAT_PREFIX) && token.matches('.').count() == 2;
        if token.len() > if is_jwt { MAX_JWT_LEN } else { MAX_SECRET_LEN } {
            return Ok(None);
        }
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let entry = match self.cache.credential(&key) {
            Some(entry) if self.still_valid(&entry, now) => entry,
            _ => {
                let ticket = self.cache.ticket();
                let resolved = if from_cookie {
                    self.session_principal(&key, now).await?
                } else if token.starts_with(PAT_PREFIX) {
                    self.pat_principal(&key, now).await?
                } else if is_jwt {
                    self.jwt_principal(token, now).await?
                } else {
                    self.session_principal(&key, now).await?
                };
                let Some(entry) = resolved else {
                    return Ok(None);
                };
                let entry = Arc::new(entry);
                self.cache.put_credential(ticket, key, entry.clone());
                entry
            }
        };
        self.touch_if_due(&entry, now).await;
        let mut principal = entry.principal.clone();
        if let PrincipalKind::Session {
            secret,
            from_cookie: cookie,
        } = &mut principal.kind
        {
            *secret = token.to_owned();
            *cookie = from_cookie;
        }
        Ok(Some(principal))
    }

    /// Whether a cached credential still works now: not past its expiry,
    /// its session not idle too long. (Revocations and disabled users never
    /// reach here: they empty the cache.)
    fn still_valid(&self, entry: &CachedCredential, now: DateTime<Utc>) -> bool {
        if entry.valid_until.is_some_and(|until| until <= now) {
            return false;
        }
        match &entry.principal.session {
            Some(session) => {
                let touched = DateTime::from_timestamp(entry.touched.load(Ordering::Relaxed), 0)
                    .unwrap_or(session.last_seen_at);
                let idle = Duration::hours(i64::from(self.config.session.idle_hours));
                session.expires_at > now && session.last_seen_at.max(touched) + idle > now
            }
            None => true,
        }
    }

    /// Records "last seen" (sessions) or "last used" (PATs) at most once a
    /// minute per credential on this node.
    async fn touch_if_due(&self, entry: &CachedCredential, now: DateTime<Utc>) {
        let last = entry.touched.load(Ordering::Relaxed);
        if now.timestamp() - last < TOUCH_EVERY.num_seconds()
            || entry
                .touched
                .compare_exchange(last, now.timestamp(), Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let principal = &entry.principal;
        let written = match (&principal.kind, &principal.session) {
            (PrincipalKind::Session { .. }, Some(session)) => {
                self.store.touch_session(session.id, now).await
            }
            (PrincipalKind::Pat { id, .. }, _) => self.store.touch_pat(*id, now).await,
            _ => Ok(()),
        };
        if let Err(err) = written {
            tracing::warn!(error = %err, "recording credential use failed");
        }
    }

    fn session_is_live(&self, session: &Session, now: DateTime<Utc>) -> bool {
        let idle = Duration::hours(i64::from(self.config.session.idle_hours));
        session.revoked_at.is_none()
            && session.expires_at > now
            && session.last_seen_at + idle > now
    }

    pub async fn active_user(&self, user_id: Uuid) -> AppResult<Option<User>> {
        Ok(self
            .store
            .find_user(user_id)
            .await?
            .filter(|u| u.disabled_at.is_none()))
    }

    async fn session_principal(
        &self,
        hash: &[u8; 32],
        now: DateTime<Utc>,
    ) -> AppResult<Option<CachedCredential>> {
        let Some((session, user)) = self.store.find_session_with_user(hash, now).await? else {
            return Ok(None);
        };
        if !self.session_is_live(&session, now) || user.disabled_at.is_some() {
            return Ok(None);
        }
        Ok(Some(CachedCredential {
            valid_until: Some(session.expires_at),
            touched: AtomicI64::new(session.last_seen_at.timestamp()),
            principal: Principal {
                user,
                kind: PrincipalKind::Session {
                    secret: String::new(),
                    from_cookie: false,
                },
                tenant_id: session.tenant_id,
                bound_tenant: None,
                session: Some(session),
            },
        }))
    }

    async fn pat_principal(
        &self,
        hash: &[u8; 32],
        now: DateTime<Utc>,
    ) -> AppResult<Option<CachedCredential>> {
        let Some((pat, user)) = self.store.find_pat_with_user(hash, now).await? else {
            return Ok(None);
        };
        if user.disabled_at.is_some() {
            return Ok(None);
        }
        let scopes = pat.scopes.0.clone();
        Ok(Some(CachedCredential {
            valid_until: pat.expires_at,
            touched: AtomicI64::new(pat.last_used_at.map_or(i64::MIN / 2, |t| t.timestamp())),
            principal: Principal {
                user,
                kind: PrincipalKind::Pat {
                    id: pat.id,
                    scopes,
                    expires_at: pat.expires_at,
                },
                session: None,
                tenant_id: pat.tenant_id,
                bound_tenant: pat.tenant_id,
            },
        }))
    }

    async fn jwt_principal(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> AppResult<Option<CachedCredential>> {
        let Some(claims) = self.keys().verify(token, now.timestamp()) else {
            return Ok(None);
        };
        let mut valid_until = DateTime::from_timestamp(claims.exp, 0);
        let mut tenant_id = claims.tid;
        let mut bound_tenant = None;
        if let Some(pat_id) = claims.pat {
            match self.store.find_pat(pat_id, now).await? {
                Some(pat) if pat.user_id == claims.sub => {
                    valid_until = match (valid_until, pat.expires_at) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    // Exchanged for a tenant-bound PAT: bound the same way,
                    // whatever the claims say.
                    if pat.tenant_id.is_some() {
                        tenant_id = pat.tenant_id;
                        bound_tenant = pat.tenant_id;
                    }
                }
                _ => return Ok(None),
            }
        }
        let session = match claims.sid {
            Some(sid) => match self.store.find_session(sid, now).await? {
                Some(s) if s.user_id == claims.sub && self.session_is_live(&s, now) => Some(s),
                _ => return Ok(None),
            },
            None => None,
        };
        let Some(user) = self.active_user(claims.sub).await? else {
            return Ok(None);
        };
        Ok(Some(CachedCredential {
            valid_until,
            // A JWT's use is not recorded.
            touched: AtomicI64::new(i64::MAX / 2),
            principal: Principal {
                user,
                kind: PrincipalKind::Jwt,
                session,
                tenant_id,
                bound_tenant,
            },
        }))
    }

    /// Starts a session for a user in `tenant_id` (or the user's first tenant).
    pub async fn start_session(
        &self,
        user: &User,
        tenant_id: Option<Uuid>,
        client: &ClientInfo,
    ) -> AppResult<(String, Session)> {
        let tenant_id = match tenant_id {
            Some(id) => Some(id),
            None => self.memberships(user.id).await?.first().map(|m| m.id),
        };
        let (secret, new) = self.new_session(user.id, tenant_id, client);
        let session = self.store.create_session(new).await?;
        Ok((secret, session))
    }

    fn new_session(
        &self,
        user_id: Uuid,
        tenant_id: Option<Uuid>,
        client: &ClientInfo,
    ) -> (String, NewSession) {
        let now = self.clock.now();
        let secret = token::random_secret();
        let session = NewSession {
            id: Uuid::new_v4(),
            user_id,
            token_hash: hash_secret(&secret),
            tenant_id,
            ip: client.ip.clone(),
            user_agent: client.user_agent.clone(),
            now,
            expires_at: now + Duration::hours(i64::from(self.config.session.ttl_hours)),
        };
        (secret, session)
    }

    /// Email and password login. Unknown emails, accounts without a
    /// password and wrong passwords all cost one hash and answer alike, and
    /// all count towards the email's lockout.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        client: &ClientInfo,
    ) -> AppResult<LoginOutcome> {
        let email = Email::parse(email).map_err(|reason| AppError::field("email", reason))?;
        let chars = password.chars().count();
        if chars == 0 {
            return Err(AppError::field("password", "is required"));
        }
        if chars > crate::domain::PASSWORD_MAX_CHARS {
            return Err(AppError::field("password", "is too long"));
        }
        let user = self.store.find_user_by_email(email.as_str()).await?;
        // Counted before it is checked: parallel guesses cannot outrun the
        // budget.
        let budget = self.budget_for(email.as_str(), user.as_ref().map(|u| u.id), client);
        let attempt = self.spend_attempt(&budget).await?;
        let stored = user.as_ref().and_then(|u| u.password_hash.as_deref());
        let verdict = self
            .hasher
            .verify(password, stored)
            .await
            .map_err(AppError::internal)?;
        let user = match user {
            Some(user) if verdict.matched() => user,
            other => {
                self.login_failed(
                    email.as_str(),
                    other.map(|u| u.id),
                    &budget,
                    attempt,
                    client,
                )
                .await;
                return Err(AppError::invalid_credentials());
            }
        };
        if let Err(refused) = Self::may_sign_in(&user, &self.config) {
            self.metrics.login(LoginCount::Refused);
            return Err(refused);
        }
        // With 2FA on, the run ends only once the second step passes: a
        // right password must not wipe the count of wrong codes, but it
        // gives back its own attempt, so the second step has one.
        if user.two_factor_enabled {
            self.refund_attempt(&budget).await?;
        } else {
            self.store.clear_login_failures(&budget.key).await?;
        }
        if verdict == crate::crypto::password::Verdict::MatchNeedsRehash {
            let normalized = crate::domain::normalize_password(password);
            let hash = self
                .hasher
                .hash(&normalized)
                .await
                .map_err(AppError::internal)?;
            self.store
                .set_password_hash(user.id, &hash, self.clock.now())
                .await?;
        }
        self.finish_login(user, "password", client).await
    }

    pub(super) fn may_sign_in(user: &User, config: &crate::config::Config) -> AppResult<()> {
        if user.disabled_at.is_some() {
            return Err(AppError::forbidden("This account is disabled."));
        }
        if config.auth.require_verified_email && user.email_verified_at.is_none() {
            return Err(AppError::forbidden(
                "Verify your email address before signing in; check your inbox.",
            ));
        }
        Ok(())
    }

    /// The end of every sign-in, whatever proved the user (`method`).
    pub(super) async fn finish_login(
        &self,
        user: User,
        method: &'static str,
        client: &ClientInfo,
    ) -> AppResult<LoginOutcome> {
        Self::may_sign_in(&user, &self.config)?;
        if user.two_factor_enabled {
            self.metrics.login(LoginCount::SecondFactor);
            return self.two_factor_challenge(&user).await;
        }
        self.start_login_session(user, method, client).await
    }

    /// A session for a user who passed every factor.
    pub(super) async fn start_login_session(
        &self,
        user: User,
        method: &'static str,
        client: &ClientInfo,
    ) -> AppResult<LoginOutcome> {
        let (secret, session) = self.start_session(&user, None, client).await?;
        self.metrics.login(LoginCount::Success);
        self.record(
            Audit::new(AuditAction::LoginSuccess)
                .actor(user.id)
                .target(user.id)
                .client(client)
                .detail(json!({"method": method})),
        )
        .await;
        let device = self.device_key.issue(user.id, self.clock.now());
        Ok(LoginOutcome::LoggedIn {
            user,
            secret,
            session,
            device,
        })
    }

    pub(super) fn locked(until: DateTime<Utc>, now: DateTime<Utc>) -> AppError {
        let seconds = (until - now).num_seconds().max(1) as u64;
        AppError::new(
            ErrorCode::AccountLocked,
            "Too many failed sign-in attempts: this account is locked for now. \
             Try again later, or reset your password.",
        )
        .with_retry_after(seconds)
    }

    /// The budget an attempt on an account spends: its device cookie's own
    /// when the client carries a valid one for this account, else the
    /// email's (unknown emails included).
    pub(super) fn budget_for(
        &self,
        email: &str,
        user_id: Option<Uuid>,
        client: &ClientInfo,
    ) -> Budget {
        let security = &self.config.security;
        let device = match (user_id, client.device.as_deref()) {
            (Some(user_id), Some(value)) => self.device_key.verify(
                value,
                user_id,
                self.clock.now(),
                Duration::days(i64::from(security.device_cookie_days)),
            ),
            _ => None,
        };
        match device {
            Some(device) => Budget {
                key: format!("device:{device}"),
                max: security.device_lockout_max_attempts.max(1),
            },
            None => self.email_budget(email),
        }
    }

    /// The account's own budget (every client without a device cookie, and
    /// the signed-in re-checks: a stolen session is no way around it).
    pub(super) fn email_budget(&self, email: &str) -> Budget {
        Budget {
            key: email.to_owned(),
            max: self.config.security.lockout_max_attempts.max(1),
        }
    }

    /// Counts one attempt on `budget` before it is checked; past the budget
    /// the attempt is refused with `429 ACCOUNT_LOCKED` unchecked.
    pub(super) async fn spend_attempt(&self, budget: &Budget) -> AppResult<i32> {
        let now = self.clock.now();
        let window = Duration::minutes(i64::from(self.config.security.lockout_minutes.max(1)));
        let max = i32::try_from(budget.max).unwrap_or(i32::MAX);
        let attempt = self
            .store
            .spend_login_attempt(&budget.key, now, now - window, max, now + window)
            .await?;
        if attempt.count > max {
            self.metrics.login(LoginCount::Locked);
            return Err(Self::locked(
                attempt.locked_until.unwrap_or(now + window),
                now,
            ));
        }
        Ok(attempt.count)
    }

    /// Gives back an attempt that was right but does not end the run.
    pub(super) async fn refund_attempt(&self, budget: &Budget) -> AppResult<()> {
        let max = i32::try_from(budget.max).unwrap_or(i32::MAX);
        Ok(self.store.refund_login_attempt(&budget.key, max).await?)
    }

    /// Records a failed attempt (already counted by `spend_attempt`).
    pub(super) async fn login_failed(
        &self,
        email: &str,
        user_id: Option<Uuid>,
        budget: &Budget,
        attempt: i32,
        client: &ClientInfo,
    ) {
        let locked = i64::from(attempt) >= i64::from(budget.max);
        self.metrics.login(LoginCount::Failure);
        if locked {
            self.metrics.lockout();
        }
        let mut event = Audit::new(AuditAction::LoginFailure)
            .client(client)
            .detail(json!({
                "email": email,
                "locked": locked,
                "device": budget.key.starts_with("device:"),
            }));
        if let Some(id) = user_id {
            event = event.target(id);
        }
        self.record(event).await;
    }

    /// Clears failed logins and any lockout of an email.
    pub async fn unlock(&self, email: &str) -> AppResult<()> {
        Ok(self.store.clear_login_failures(email).await?)
    }

    /// Rotates the caller's session: a new secret, the old one dead at once.
    pub async fn refresh(
        &self,
        principal: &Principal,
        client: &ClientInfo,
    ) -> AppResult<(String, Session)> {
        let Some(old) = principal
            .session
            .as_ref()
            .filter(|_| principal.session_secret().is_some())
        else {
            return Err(AppError::forbidden(
                "Refreshing needs a session, not a token.",
            ));
        };
        let client = ClientInfo {
            addr: client.addr,
            ip: client.ip.clone().or_else(|| old.ip.clone()),
            user_agent: client.user_agent.clone().or_else(|| old.user_agent.clone()),
            admin_allowed: client.admin_allowed,
            device: client.device.clone(),
        };
        let (secret, mut new) = self.new_session(principal.user.id, old.tenant_id, &client);
        // The absolute expiry is fixed at sign-in: refreshing never extends it.
        new.expires_at = old.expires_at;
        match self.store.rotate_session(old.id, new).await? {
            Some(session) => Ok((secret, session)),
            None => Err(AppError::unauthorized()),
        }
    }

    /// Starts the refresh-token chain of a session just signed in (`/api/auth`'s
    /// JWT-only clients keep signing in with it). The token dies with the
    /// session.
    pub async fn first_refresh_token(&self, session: &Session) -> AppResult<String> {
        let secret = token::random_secret();
        self.store
            .add_refresh_token(session.id, &hash_secret(&secret), self.clock.now())
            .await?;
        Ok(secret)
    }

    /// Exchanges a refresh token for a new access token and the next refresh
    /// token. Each refresh token is good once. Its successor is derived from
    /// it under a server key, so parallel or retried uses within the grace
    /// window (`jwt.refresh_grace_seconds`) all get the very same pair; a
    /// use after that is taken for a stolen copy and ends the session.
    pub async fn refresh_pair(
        &self,
        presented: &str,
        client: &ClientInfo,
    ) -> AppResult<RefreshedPair> {
        let presented = presented.trim();
        if !token::plausible_secret(presented) {
            return Err(refresh_refused());
        }
        let now = self.clock.now();
        let successor = self.refresh_signer.derive("refresh-next", presented);
        let idle = Duration::hours(i64::from(self.config.session.idle_hours));
        let grace = Duration::seconds(i64::from(self.config.jwt.refresh_grace_seconds));
        let used = self
            .store
            .use_refresh_token(RefreshPresented {
                hash: &hash_secret(presented),
                successor_hash: &hash_secret(&successor),
                now,
                idle_since: now - idle,
                replay_since: now - grace,
            })
            .await?;
        let (session, issued_at) = match used {
            RefreshUse::Rotated(session) => (session, now),
            RefreshUse::Replayed { session, used_at } => (session, used_at),
            RefreshUse::Reused { user_id } => {
                self.record(
                    Audit::new(AuditAction::RefreshTokenReused)
                        .actor(user_id)
                        .client(client),
                )
                .await;
                return Err(refresh_refused());
            }
            RefreshUse::Unknown => return Err(refresh_refused()),
        };
        let Some(user) = self.active_user(session.user_id).await? else {
            return Err(refresh_refused());
        };
        let subject = JwtSubject {
            user_id: user.id,
            tenant_id: session.tenant_id,
            session_id: Some(session.id),
            pat: None,
        };
        // The same pair for every use of one token: the JWT's id comes from
        // the successor and its time from the first use.
        let digest = Sha256::digest(format!("tessera-jti\0{successor}").as_bytes());
        let mut jti = [0u8; 16];
        jti.copy_from_slice(&digest[..16]);
        let jti = uuid::Builder::from_random_bytes(jti).into_uuid();
        let issued = self.sign_jwt(&subject, issued_at.timestamp(), jti)?;
        let age = u32::try_from((now - issued_at).num_seconds()).unwrap_or(0);
        Ok(RefreshedPair {
            access_token: issued.access_token,
            expires_in: issued.expires_in.saturating_sub(age).max(1),
            refresh_token: successor,
        })
    }

    /// Ends the caller's session (for a JWT, the session it was issued for).
    pub async fn logout(&self, principal: &Principal, client: &ClientInfo) -> AppResult<()> {
        match &principal.session {
            Some(session) => {
                self.store
                    .revoke_session(principal.user.id, session.id, self.clock.now())
                    .await?;
                self.record(
                    Audit::new(AuditAction::Logout)
                        .actor(principal.user.id)
                        .client(client),
                )
                .await;
                Ok(())
            }
            None => Err(AppError::forbidden(
                "A token is not a session: revoke the token instead.",
            )),
        }
    }

    /// Refuses an account whose address is not verified yet: until then it
    /// may use its sessions but mint nothing durable (PATs, passkeys, TOTP,
    /// linked identities), so a squatter on someone else's address keeps no
    /// way in once the owner appears.
    pub fn require_verified(user: &User) -> AppResult<()> {
        if user.email_verified_at.is_none() {
            return Err(AppError::email_not_verified());
        }
        Ok(())
    }

    /// The caller's active sessions.
    pub async fn list_sessions(&self, principal: &Principal) -> AppResult<Vec<Session>> {
        principal.require_unbound()?;
        let now = self.clock.now();
        let mut sessions = self.store.list_sessions(principal.user.id, now).await?;
        sessions.retain(|s| self.session_is_live(s, now));
        Ok(sessions)
    }

    /// Revokes one of the caller's sessions.
    pub async fn revoke_own_session(
        &self,
        principal: &Principal,
        id: Uuid,
        client: &ClientInfo,
    ) -> AppResult<()> {
        principal.require_unbound()?;
        if !self
            .store
            .revoke_session(principal.user.id, id, self.clock.now())
            .await?
        {
            return Err(AppError::not_found("No such session."));
        }
        self.record(
            Audit::new(AuditAction::SessionRevoke)
                .actor(principal.user.id)
                .client(client)
                .detail(json!({"session_id": id})),
        )
        .await;
        Ok(())
    }

    /// Revokes every session of the caller but the current one.
    pub async fn revoke_other_sessions(
        &self,
        principal: &Principal,
        client: &ClientInfo,
    ) -> AppResult<()> {
        principal.require_unbound()?;
        let keep = principal.session.as_ref().map(|s| s.id);
        self.store
            .revoke_other_sessions(principal.user.id, keep, self.clock.now())
            .await?;
        self.record(
            Audit::new(AuditAction::SessionRevoke)
                .actor(principal.user.id)
                .client(client)
                .detail(json!({"all_but": keep})),
        )
        .await;
        Ok(())
    }

    /// The caller's tenants and the one its credential acts in.
    pub async fn tenant_context(
        &self,
        principal: &Principal,
    ) -> AppResult<(Option<Membership>, Vec<Membership>)> {
        let mut tenants = self.memberships(principal.user.id).await?.to_vec();
        // A tenant-bound credential sees its tenant and no other (none
        // once the user has left it).
        if let Some(bound) = principal.bound_tenant {
            tenants.retain(|m| m.id == bound);
        }
        let current = principal
            .tenant_id
            .and_then(|id| tenants.iter().find(|m| m.id == id))
            .or(tenants.first())
            .cloned();
        Ok((current, tenants))
    }
}
