//! Personal access tokens and JWT access tokens.

use chrono::Duration;
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
        let mut errors = FieldErrors::new();
        let name = match domain::clean_text(Some(&input.name), 100) {
            Ok(Some(name)) => Some(name),
            Ok(None) => {
                errors.insert("name".into(), "is required".into());
                None
            }
            Err(reason) => {
                errors.insert("name".into(), reason);
                None
            }
        };
        let mut scopes: Vec<Scope> = Vec::new();
        if input.scopes.len() > 8 {
            errors.insert(
                "scopes".into(),
                "lists too many scopes; use read, write".into(),
            );
        }
        for raw in input.scopes.iter().take(8) {
            match Scope::parse(raw) {
                Some(scope) if !scopes.contains(&scope) => scopes.push(scope),
                Some(_) => {}
                None => {
                    errors.insert(
                        "scopes".into(),
                        format!("unknown scope {raw:?}; use read or write"),
                    );
                }
            }
        }
        if scopes.is_empty() && !errors.contains_key("scopes") {
            errors.insert(
                "scopes".into(),
                "must name at least one of read, write".into(),
            );
        }
        if let Some(days) = input.expires_in_days {
            if !(1..=MAX_PAT_DAYS).contains(&days) {
                errors.insert(
                    "expires_in_days".into(),
                    format!("must be between 1 and {MAX_PAT_DAYS}"),
                );
            }
        }
        if let Some(tenant_id) = input.tenant_id {
            let member = self
                .store
                .memberships(principal.user.id)
                .await?
                .iter()
                .any(|m| m.id == tenant_id);
            if !member {
                errors.insert("tenant_id".into(), "is not a tenant you belong to".into());
            }
        }
        let (Some(name), true) = (name, errors.is_empty()) else {
            return Err(AppError::fields(errors));
        };
        scopes.sort_by_key(|s| s.as_str());
        let now = self.clock.now();
        let secret = token::new_pat();
        let pat = self
            .store
            .create_pat(
                NewPat {
                    id: Uuid::new_v4(),
                    user_id: principal.user.id,
                    tenant_id: input.tenant_id,
                    name,
                    scopes: Scopes(scopes),
                    token_hash: hash_secret(&secret),
                    now,
                    expires_at: input.expires_in_days.map(|d| now + Duration::days(d)),
                },
                self.config.security.max_tokens_per_user,
            )
            .await
            .map_err(|e| match e {
                crate::store::StoreError::Conflict("limit") => super::over_budget(
                    "personal access tokens",
                    self.config.security.max_tokens_per_user,
                    false,
                ),
                other => other.into(),
            })?;
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
        Ok((secret, pat))
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
