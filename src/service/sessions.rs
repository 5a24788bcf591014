//! Login, sessions, and resolving a request's credential to a principal.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::{ClientInfo, Tessera};
use crate::crypto::token::{self, hash_secret, PAT_PREFIX};
use crate::domain::{Email, Scope};
use crate::error::{AppError, AppResult};
use crate::store::{Membership, NewSession, Session, User};

/// Writes of "last seen" and "last used" happen at most this often.
const TOUCH_EVERY: Duration = Duration::seconds(60);

/// The credential a request carries.
pub enum Credential<'a> {
    /// A session token from a cookie.
    Cookie(&'a str),
    /// `Authorization: Bearer …`: a PAT, a JWT or a session token.
    Bearer(&'a str),
}

#[derive(Debug, Clone)]
pub enum PrincipalKind {
    Session { secret: String, from_cookie: bool },
    Pat { id: Uuid, scopes: Vec<Scope> },
    Jwt,
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
}

impl Principal {
    pub fn may_write(&self) -> bool {
        match &self.kind {
            PrincipalKind::Pat { scopes, .. } => scopes.contains(&Scope::Write),
            PrincipalKind::Session { .. } | PrincipalKind::Jwt => true,
        }
    }

    /// The session secret when the credential is a session token.
    pub fn session_secret(&self) -> Option<&str> {
        match &self.kind {
            PrincipalKind::Session { secret, .. } => Some(secret),
            _ => None,
        }
    }
}

pub enum LoginOutcome {
    LoggedIn {
        user: User,
        secret: String,
        session: Session,
    },
}

impl Tessera {
    /// Resolves a credential; `None` when it is unknown, expired or revoked,
    /// or its user is disabled.
    pub async fn authenticate(&self, credential: Credential<'_>) -> AppResult<Option<Principal>> {
        let now = self.clock.now();
        match credential {
            Credential::Cookie(secret) => self.session_principal(secret, true, now).await,
            Credential::Bearer(token) if token.starts_with(PAT_PREFIX) => {
                self.pat_principal(token, now).await
            }
            Credential::Bearer(token) if token.matches('.').count() == 2 => {
                self.jwt_principal(token, now).await
            }
            Credential::Bearer(secret) => self.session_principal(secret, false, now).await,
        }
    }

    fn session_is_live(&self, session: &Session, now: DateTime<Utc>) -> bool {
        let idle = Duration::hours(i64::from(self.config.session.idle_hours));
        session.revoked_at.is_none()
            && session.expires_at > now
            && session.last_seen_at + idle > now
    }

    async fn active_user(&self, user_id: Uuid) -> AppResult<Option<User>> {
        Ok(self
            .store
            .find_user(user_id)
            .await?
            .filter(|u| u.disabled_at.is_none()))
    }

    async fn session_principal(
        &self,
        secret: &str,
        from_cookie: bool,
        now: DateTime<Utc>,
    ) -> AppResult<Option<Principal>> {
        if secret.len() > 128 {
            return Ok(None);
        }
        let Some(session) = self
            .store
            .find_session_by_hash(&hash_secret(secret), now)
            .await?
        else {
            return Ok(None);
        };
        if !self.session_is_live(&session, now) {
            return Ok(None);
        }
        let Some(user) = self.active_user(session.user_id).await? else {
            return Ok(None);
        };
        if now - session.last_seen_at >= TOUCH_EVERY {
            self.store.touch_session(session.id, now).await?;
        }
        Ok(Some(Principal {
            user,
            kind: PrincipalKind::Session {
                secret: secret.to_owned(),
                from_cookie,
            },
            tenant_id: session.tenant_id,
            session: Some(session),
        }))
    }

    async fn pat_principal(&self, token: &str, now: DateTime<Utc>) -> AppResult<Option<Principal>> {
        if token.len() > 128 {
            return Ok(None);
        }
        let Some(pat) = self
            .store
            .find_pat_by_hash(&hash_secret(token), now)
            .await?
        else {
            return Ok(None);
        };
        let Some(user) = self.active_user(pat.user_id).await? else {
            return Ok(None);
        };
        if pat.last_used_at.is_none_or(|t| now - t >= TOUCH_EVERY) {
            self.store.touch_pat(pat.id, now).await?;
        }
        let scopes = pat
            .scopes
            .split_whitespace()
            .filter_map(Scope::parse)
            .collect();
        Ok(Some(Principal {
            user,
            kind: PrincipalKind::Pat { id: pat.id, scopes },
            session: None,
            tenant_id: pat.tenant_id,
        }))
    }

    async fn jwt_principal(&self, token: &str, now: DateTime<Utc>) -> AppResult<Option<Principal>> {
        let Some(claims) = self.keys.verify(token, now.timestamp()) else {
            return Ok(None);
        };
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
        Ok(Some(Principal {
            user,
            kind: PrincipalKind::Jwt,
            session,
            tenant_id: claims.tid,
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
            None => self.store.memberships(user.id).await?.first().map(|m| m.id),
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
    /// password and wrong passwords all cost one hash and answer alike.
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
        let password = crate::domain::normalize_password(password);
        let user = self.store.find_user_by_email(email.as_str()).await?;
        let stored = user.as_ref().and_then(|u| u.password_hash.as_deref());
        let verdict = self
            .hasher
            .verify(&password, stored)
            .await
            .map_err(AppError::internal)?;
        let Some(user) = user.filter(|_| verdict.matched()) else {
            return Err(AppError::invalid_credentials());
        };
        if user.disabled_at.is_some() {
            return Err(AppError::forbidden("This account is disabled."));
        }
        if self.config.auth.require_verified_email && user.email_verified_at.is_none() {
            return Err(AppError::forbidden(
                "Verify your email address before signing in; check your inbox.",
            ));
        }
        if verdict == crate::crypto::password::Verdict::MatchNeedsRehash {
            let hash = self
                .hasher
                .hash(&password)
                .await
                .map_err(AppError::internal)?;
            self.store
                .set_password_hash(user.id, &hash, self.clock.now())
                .await?;
        }
        let (secret, session) = self.start_session(&user, None, client).await?;
        Ok(LoginOutcome::LoggedIn {
            user,
            secret,
            session,
        })
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
            ip: client.ip.clone().or_else(|| old.ip.clone()),
            user_agent: client.user_agent.clone().or_else(|| old.user_agent.clone()),
        };
        let (secret, new) = self.new_session(principal.user.id, old.tenant_id, &client);
        match self.store.rotate_session(old.id, new).await? {
            Some(session) => Ok((secret, session)),
            None => Err(AppError::unauthorized()),
        }
    }

    /// Ends the caller's session (for a JWT, the session it was issued for).
    pub async fn logout(&self, principal: &Principal) -> AppResult<()> {
        match &principal.session {
            Some(session) => {
                self.store
                    .revoke_session(principal.user.id, session.id, self.clock.now())
                    .await?;
                Ok(())
            }
            None => Err(AppError::forbidden(
                "A token is not a session: revoke the token instead.",
            )),
        }
    }

    /// The caller's tenants and the one its credential acts in.
    pub async fn tenant_context(
        &self,
        principal: &Principal,
    ) -> AppResult<(Option<Membership>, Vec<Membership>)> {
        let tenants = self.store.memberships(principal.user.id).await?;
        let current = principal
            .tenant_id
            .and_then(|id| tenants.iter().find(|m| m.id == id))
            .or(tenants.first())
            .cloned();
        Ok((current, tenants))
    }
}
