//! Personal access tokens and JWT access tokens.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use serde_json::json;

use super::audit::{Audit, AuditAction};
use super::{ClientInfo, Principal, PrincipalKind, Tessera};
use crate::crypto::jwt::Claims;
use crate::crypto::token::{self, hash_secret};
use crate::domain::{self, Scope, Scopes};
use crate::error::{AppError, AppResult, FieldErrors};
use crate::store::{NewPat, Pat};

pub struct NewPatInput {
    pub name: String,
    pub scopes: Vec<String>,
    pub expires_in_days: Option<i64>,
    pub tenant_id: Option<Uuid>,
}

pub struct IssuedJwt {
    pub access_token: String,
    pub expires_in: u32,
}

/// Whom a JWT speaks for.
pub(super) struct JwtSubject {
    pub user_id: Uuid,
    pub tenant_id: Option<Uuid>,
    pub session_id: Option<Uuid>,
    /// The PAT it was exchanged for, with that token's expiry.
    pub pat: Option<(Uuid, Option<i64>)>,
}

const MAX_PAT_DAYS: i64 = 3650;
/// The longest token name, in characters.
const PAT_NAME_MAX: usize = 100;
/// How many listed scopes are looked at; a longer list is refused.
const MAX_LISTED_SCOPES: usize = 8;

/// A token's name as its owner sees it listed: trimmed, not empty, at most
/// [`PAT_NAME_MAX`] characters, no control characters.
#[derive(Debug)]
struct TokenName(String);

impl TokenName {
    /// The name, or the reason to give on the `name` field.
    fn parse(raw: &str) -> Result<TokenName, String> {
        match domain::clean_text(Some(raw), PAT_NAME_MAX)? {
            Some(name) => Ok(TokenName(name)),
            None => Err("is required".into()),
        }
    }
}

/// The scopes a new token carries: at least one, each known, no repeats,
/// in the order they are stored and shown (sorted by name).
#[derive(Debug)]
struct PatScopes(Vec<Scope>);

impl PatScopes {
    /// The scopes, or the reason to give on the `scopes` field. Of several
    /// problems the last one found is named: too long a list first, then
    /// each unknown scope among the first [`MAX_LISTED_SCOPES`] in turn;
    /// an empty list only when nothing else is wrong.
    fn parse(raw: &[String]) -> Result<PatScopes, String> {
        let mut reason = None;
        if raw.len() > MAX_LISTED_SCOPES {
            reason = Some("lists too many scopes; use read, write".to_owned());
        }
        let mut scopes: Vec<Scope> = Vec::new();
        for raw in raw.iter().take(MAX_LISTED_SCOPES) {
            match Scope::parse(raw) {
                Some(scope) if !scopes.contains(&scope) => scopes.push(scope),
                Some(_) => {}
                None => reason = Some(format!("unknown scope {raw:?}; use read or write")),
            }
        }
        if let Some(reason) = reason {
            return Err(reason);
        }
        if scopes.is_empty() {
            return Err("must name at least one of read, write".into());
        }
        scopes.sort_by_key(|s| s.as_str());
        Ok(PatScopes(scopes))
    }
}

/// How long a new token lives: 1 to [`MAX_PAT_DAYS`] days, or with no
/// expiry when none is asked for.
#[derive(Debug, Clone, Copy)]
struct PatLifetime(Option<i64>);

impl PatLifetime {
    /// The lifetime, or the reason to give on the `expires_in_days` field.
    fn parse(days: Option<i64>) -> Result<PatLifetime, String> {
        match days {
            Some(days) if !(1..=MAX_PAT_DAYS).contains(&days) => {
                Err(format!("must be between 1 and {MAX_PAT_DAYS}"))
            }
            days => Ok(PatLifetime(days)),
        }
    }

    /// When a token created at `now` stops working.
    fn expires_at(self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.0.map(|days| now + Duration::days(days))
    }
}

/// A [`NewPatInput`] whose every field checked out.
struct PatRequest {
    name: TokenName,
    scopes: PatScopes,
    lifetime: PatLifetime,
    tenant_id: Option<Uuid>,
}

impl Tessera {
    /// Creates a PAT; the secret is returned once and stored only as a hash.
    /// Only a session may create tokens, so a leaked token cannot mint more.
    pub async fn create_pat(
        &self,
        principal: &Principal,
        input: NewPatInput,
        client: &ClientInfo,
    ) -> AppResult<(String, Pat)> {
        if principal.session_secret().is_none() {
            return Err(AppError::forbidden(
                "Creating a token needs a signed-in session.",
            ));
        }
        Self::require_verified(&principal.user)?;
        let request = self.pat_request(principal, input).await?;
        let (secret, pat) = self.store_pat(principal, request).await?;
        self.record_pat_created(principal, &pat, client).await;
        Ok((secret, pat))
    }

    /// Checks every field of a token request and answers `422` naming each
    /// wrong one (all of them at once, so a form can show them together).
    /// The tenant, when one is named, must be one the user belongs to.
    async fn pat_request(
        &self,
        principal: &Principal,
        input: NewPatInput,
    ) -> AppResult<PatRequest> {
        let mut errors = FieldErrors::new();
        let name = TokenName::parse(&input.name)
            .map_err(|reason| errors.insert("name".into(), reason))
            .ok();
        let scopes = PatScopes::parse(&input.scopes)
            .map_err(|reason| errors.insert("scopes".into(), reason))
            .ok();
        let lifetime = PatLifetime::parse(input.expires_in_days)
            .map_err(|reason| errors.insert("expires_in_days".into(), reason))
            .ok();
        if let Some(tenant_id) = input.tenant_id {
            if !self.is_member_of(principal.user.id, tenant_id).await? {
                errors.insert("tenant_id".into(), "is not a tenant you belong to".into());
            }
        }
        let (Some(name), Some(scopes), Some(lifetime), true) =
            (name, scopes, lifetime, errors.is_empty())
        else {
            return Err(AppError::fields(errors));
        };
        Ok(PatRequest {
            name,
            scopes,
            lifetime,
            tenant_id: input.tenant_id,
        })
    }

    /// Whether `user_id` is a member of `tenant_id`, as stored (not cached).
    async fn is_member_of(&self, user_id: Uuid, tenant_id: Uuid) -> AppResult<bool> {
        Ok(self
            .store
            .memberships(user_id)
            .await?
            .iter()
            .any(|m| m.id == tenant_id))
    }

    /// Stores the token under a fresh secret's hash and returns the secret
    /// with the stored record. A user at `max_tokens_per_user` live tokens
    /// gets `429 RATE_LIMITED` (the store counts in the same transaction).
    async fn store_pat(
        &self,
        principal: &Principal,
        request: PatRequest,
    ) -> AppResult<(String, Pat)> {
        let now = self.clock.now();
        let secret = token::new_pat();
        let limit = self.config.security.max_tokens_per_user;
        let new_pat = NewPat {
            id: Uuid::new_v4(),
            user_id: principal.user.id,
            tenant_id: request.tenant_id,
            name: request.name.0,
            scopes: Scopes(request.scopes.0),
            token_hash: hash_secret(&secret),
            now,
            expires_at: request.lifetime.expires_at(now),
        };
        let pat = self
            .store
            .create_pat(new_pat, limit)
            .await
            .map_err(|e| match e {
                crate::store::StoreError::Conflict("limit") => {
                    super::over_budget("personal access tokens", limit, false)
                }
                other => other.into(),
            })?;
        Ok((secret, pat))
    }

    /// Audits a token's creation: its id, name and scopes, never the secret.
    async fn record_pat_created(&self, principal: &Principal, pat: &Pat, client: &ClientInfo) {
        self.record(
            Audit::new(AuditAction::TokenCreate)
                .actor(principal.user.id)
                .tenant_opt(pat.tenant_id)
                .client(client)
                .detail(
                    json!({"token_id": pat.id, "name": pat.name, "scopes": pat.scopes.to_string()}),
                ),
        )
        .await;
    }

    pub async fn list_pats(&self, principal: &Principal) -> AppResult<Vec<Pat>> {
        let now = self.clock.now();
        let mut pats = self.store.list_pats(principal.user.id).await?;
        pats.retain(|p| p.expires_at.is_none_or(|t| t > now));
        // A tenant-bound credential sees the tokens of its tenant only.
        if let Some(bound) = principal.bound_tenant {
            pats.retain(|p| p.tenant_id == Some(bound));
        }
        Ok(pats)
    }

    pub async fn revoke_pat(
        &self,
        principal: &Principal,
        id: Uuid,
        client: &ClientInfo,
    ) -> AppResult<()> {
        if let Some(bound) = principal.bound_tenant {
            let own = self.store.find_pat(id, self.clock.now()).await?;
            if !own.is_some_and(|p| p.user_id == principal.user.id && p.tenant_id == Some(bound)) {
                return Err(AppError::not_found("No such token."));
            }
        }
        if self
            .store
            .revoke_pat(principal.user.id, id, self.clock.now())
            .await?
        {
            self.record(
                Audit::new(AuditAction::TokenRevoke)
                    .actor(principal.user.id)
                    .client(client)
                    .detail(json!({"token_id": id})),
            )
            .await;
            Ok(())
        } else {
            Err(AppError::not_found("No such token."))
        }
    }

    /// A JWT for the caller, naming a tenant only while the user is still a
    /// member of it: a credential bound to a tenant the user has left gets
    /// none, and a session's stale current tenant is left out. A JWT
    /// exchanged for a tenant-bound PAT is bound the same way (it carries
    /// the PAT's id, checked on every use).
    pub async fn access_token(&self, principal: &Principal) -> AppResult<IssuedJwt> {
        let Some(tenant_id) = principal.tenant_id else {
            return self.issue_jwt(principal);
        };
        let member = self
            .memberships(principal.user.id)
            .await?
            .iter()
            .any(|m| m.id == tenant_id);
        match (member, principal.bound_tenant) {
            (true, _) => self.issue_jwt(principal),
            (false, Some(_)) => Err(AppError::forbidden(
                "This token's tenant is no longer one of yours.",
            )),
            (false, None) => self.issue_jwt(&Principal {
                tenant_id: None,
                ..principal.clone()
            }),
        }
    }

    /// A short-lived JWT for the caller, tied to its session when it has one.
    /// A JWT cannot be exchanged for a fresh one.
    pub fn issue_jwt(&self, principal: &Principal) -> AppResult<IssuedJwt> {
        if matches!(principal.kind, PrincipalKind::Jwt) {
            return Err(AppError::forbidden(
                "A JWT cannot be exchanged for another; use a session or a personal access token.",
            ));
        }
        let pat = match &principal.kind {
            PrincipalKind::Pat { id, expires_at, .. } => {
                Some((*id, expires_at.map(|t| t.timestamp())))
            }
            _ => None,
        };
        let subject = JwtSubject {
            user_id: principal.user.id,
            tenant_id: principal.tenant_id,
            session_id: principal.session.as_ref().map(|s| s.id),
            pat,
        };
        self.sign_jwt(&subject, self.clock.now().timestamp(), Uuid::new_v4())
    }

    /// Signs a JWT issued at `iat`. The same inputs give the same token
    /// (Ed25519 signatures are deterministic).
    pub(super) fn sign_jwt(
        &self,
        subject: &JwtSubject,
        iat: i64,
        jti: Uuid,
    ) -> AppResult<IssuedJwt> {
        let mut ttl = self.config.jwt.ttl_seconds.max(1);
        // Never outlive the token it was issued for.
        if let Some((_, Some(limit))) = subject.pat {
            ttl = ttl.min(u32::try_from((limit - iat).max(1)).unwrap_or(u32::MAX));
        }
        let keys = self.keys();
        let claims = Claims {
            iss: keys.issuer().to_owned(),
            sub: subject.user_id,
            aud: keys.audience().to_owned(),
            iat,
            exp: iat + i64::from(ttl),
            jti,
            tid: subject.tenant_id,
            sid: subject.session_id,
            pat: subject.pat.map(|(id, _)| id),
        };
        let access_token = keys.sign(&claims).map_err(AppError::internal)?;
        Ok(IssuedJwt {
            access_token,
            expires_in: ttl,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn token_names_are_trimmed_required_and_bounded() {
        assert_eq!(TokenName::parse("  ci  ").unwrap().0, "ci");
        assert_eq!(TokenName::parse("   ").unwrap_err(), "is required");
        assert!(TokenName::parse(&"x".repeat(PAT_NAME_MAX)).is_ok());
        assert_eq!(
            TokenName::parse(&"x".repeat(PAT_NAME_MAX + 1)).unwrap_err(),
            "must be at most 100 characters"
        );
        assert!(TokenName::parse("a\u{7}b").is_err());
    }

    #[test]
    fn scopes_are_deduplicated_and_sorted() {
        let scopes = PatScopes::parse(&strings(&["write", "read", "write"])).unwrap();
        assert_eq!(scopes.0, vec![Scope::Read, Scope::Write]);
    }

    #[test]
    fn of_several_scope_problems_the_last_found_is_named() {
        assert_eq!(
            PatScopes::parse(&[]).unwrap_err(),
            "must name at least one of read, write"
        );
        assert_eq!(
            PatScopes::parse(&strings(&["read", "admin", "root"])).unwrap_err(),
            "unknown scope \"root\"; use read or write"
        );
        // Only the first eight are looked at; an unknown one among them
        // wins over the list being too long.
        let mut long = strings(&["read"; 9]);
        assert_eq!(
            PatScopes::parse(&long).unwrap_err(),
            "lists too many scopes; use read, write"
        );
        long[2] = "admin".into();
        assert_eq!(
            PatScopes::parse(&long).unwrap_err(),
            "unknown scope \"admin\"; use read or write"
        );
        long[2] = "read".into();
        long[8] = "admin".into();
        assert_eq!(
            PatScopes::parse(&long).unwrap_err(),
            "lists too many scopes; use read, write"
        );
    }

    #[test]
    fn lifetimes_are_one_day_to_ten_years_or_none() {
        let now = chrono::Utc::now();
        assert_eq!(PatLifetime::parse(None).unwrap().expires_at(now), None);
        assert_eq!(
            PatLifetime::parse(Some(1)).unwrap().expires_at(now),
            Some(now + Duration::days(1))
        );
        assert!(PatLifetime::parse(Some(MAX_PAT_DAYS)).is_ok());
        for days in [0, -1, MAX_PAT_DAYS + 1] {
            assert_eq!(
                PatLifetime::parse(Some(days)).unwrap_err(),
                "must be between 1 and 3650"
            );
        }
    }
}
