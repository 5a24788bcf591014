//! Global administration: users, plans, and the plan check.

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::audit::{Audit, AuditAction};
use super::{ClientInfo, Principal, Tessera};
use crate::error::{AppError, AppResult};
use crate::store::{Membership, StoreError, User};

/// Changes an administrator may make to a user; `None` leaves a field alone.
#[derive(Debug, Default)]
pub struct UserPatch {
    pub disabled: Option<bool>,
    pub plan: Option<String>,
    /// `Some(None)` clears the expiry.
    pub plan_expires_at: Option<Option<DateTime<Utc>>>,
    pub is_admin: Option<bool>,
    /// Clears a lockout.
    pub unlock: bool,
}

pub const MAX_USERS_PAGE: i64 = 100;

impl Tessera {
    /// A global administrator, with a credential not bound to one tenant
    /// (a tenant's token never reaches the whole instance).
    pub fn require_admin(&self, principal: &Principal) -> AppResult<()> {
        principal.require_unbound()?;
        if principal.user.is_admin {
            Ok(())
        } else {
            Err(AppError::forbidden("This needs a global administrator."))
        }
    }

    pub async fn admin_list_users(
        &self,
        principal: &Principal,
        query: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> AppResult<(Vec<User>, i64)> {
        self.require_admin(principal)?;
        if !(1..=MAX_USERS_PAGE).contains(&limit) {
            return Err(AppError::field(
                "limit",
                format!("must be between 1 and {MAX_USERS_PAGE}"),
            ));
        }
        if offset < 0 {
            return Err(AppError::field("offset", "must not be negative"));
        }
        let query = query.map(str::trim).filter(|q| !q.is_empty());
        if query.is_some_and(|q| q.chars().count() > 254) {
            return Err(AppError::field("q", "is too long"));
        }
        Ok(self.store.list_users(query, limit, offset).await?)
    }

    pub async fn admin_get_user(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> AppResult<(User, Vec<Membership>)> {
        self.require_admin(principal)?;
        let user = self
            .store
            .find_user(id)
            .await?
            .ok_or_else(|| AppError::not_found("No such user."))?;
        let tenants = self.store.memberships(id).await?;
        Ok((user, tenants))
    }

    pub async fn admin_update_user(
        &self,
        principal: &Principal,
        id: Uuid,
        patch: UserPatch,
        client: &ClientInfo,
    ) -> AppResult<(User, Vec<Membership>)> {
        self.require_admin(principal)?;
        if let Some(plan) = &patch.plan {
            if plan.trim().is_empty() || plan.chars().count() > 64 {
                return Err(AppError::field("plan", "must be 1 to 64 characters"));
            }
        }
        let mut user = self
            .store
            .find_user(id)
            .await?
            .ok_or_else(|| AppError::not_found("No such user."))?;
        if id == principal.user.id
            && (patch.disabled == Some(true) || patch.is_admin == Some(false))
        {
            return Err(AppError::conflict(
                "You cannot disable yourself or drop your own admin role.",
            ));
        }
        let now = self.clock.now();
        let mut events = Vec::new();
        let mut revoke = false;
        if let Some(disabled) = patch.disabled {
            if disabled && user.disabled_at.is_none() {
                user.disabled_at = Some(now);
                revoke = true;
                events.push(Audit::new(AuditAction::UserDisable));
            } else if !disabled && user.disabled_at.is_some() {
                user.disabled_at = None;
                events.push(Audit::new(AuditAction::UserEnable));
            }
        }
        if let Some(plan) = patch.plan {
            user.plan = plan.trim().to_owned();
        }
        if let Some(expires) = patch.plan_expires_at {
            user.plan_expires_at = expires;
        }
        if let Some(admin) = patch.is_admin {
            if admin != user.is_admin {
                user.is_admin = admin;
                events.push(Audit::new(if admin {
                    AuditAction::AdminGrant
                } else {
                    AuditAction::AdminRevoke
                }));
            }
        }
        user.updated_at = now;
        self.store.save_user_admin(&user, revoke, now).await?;
        if patch.unlock {
            self.unlock(&user.email).await?;
            events.push(Audit::new(AuditAction::UserUnlock));
        }
        events.push(Audit::new(AuditAction::UserUpdate).detail(json!({
            "plan": user.plan, "plan_expires_at": user.plan_expires_at,
        })));
        for event in events {
            self.record(event.actor(principal.user.id).target(id).client(client))
                .await;
        }
        let tenants = self.store.memberships(id).await?;
        Ok((user, tenants))
    }

    pub async fn admin_delete_user(
        &self,
        principal: &Principal,
        id: Uuid,
        client: &ClientInfo,
    ) -> AppResult<()> {
        self.require_admin(principal)?;
        if id == principal.user.id {
            return Err(AppError::conflict("You cannot delete yourself."));
        }
        match self.store.delete_user(id).await {
            Ok(true) => {}
            Ok(false) => return Err(AppError::not_found("No such user.")),
            Err(StoreError::Conflict("sole_owner")) => {
                return Err(AppError::conflict(
                    "This user is the only owner of a tenant that has other members: \
                     make someone else owner first.",
                ))
            }
            Err(other) => return Err(other.into()),
        }
        self.record(
            Audit::new(AuditAction::UserDelete)
                .actor(principal.user.id)
                .target(id)
                .client(client),
        )
        .await;
        Ok(())
    }

    /// The plan check: users whose plan expired go back to the default plan
    /// and lose every session. Returns their ids.
    pub async fn run_plan_check(&self, actor: Option<Uuid>) -> AppResult<Vec<Uuid>> {
        let ids = self
            .store
            .expire_plans(&self.config.plans.default_plan, self.clock.now())
            .await?;
        for id in &ids {
            let mut event = Audit::new(AuditAction::PlanReset).target(*id);
            if let Some(actor) = actor {
                event = event.actor(actor);
            }
            self.record(event).await;
        }
        if !ids.is_empty() {
            tracing::info!(count = ids.len(), "plan check reset expired plans");
        }
        Ok(ids)
    }
}
