//! Tenants, members and invitations.

use std::sync::Arc;

use chrono::Duration;
use serde_json::json;
use uuid::Uuid;

use super::audit::{Audit, AuditAction};
use super::{ClientInfo, Principal, Tessera};
use crate::crypto::token::{self, hash_secret};
use crate::domain::{Email, Role, TenantName};
use crate::error::{AppError, AppResult};
use crate::store::{
    AuditEvent, AuditFilter, Invite, Member, MemberChange, Membership, NewInvite, NewMail,
    NewTenant,
};

pub const INVITE_TTL: Duration = Duration::days(7);

fn require(m: &Membership, at_least: Role) -> AppResult<Role> {
    let role = m.role;
    if role.at_least(at_least) {
        Ok(role)
    } else {
        Err(AppError::forbidden(format!(
            "This needs the {} role or higher in the tenant.",
            at_least.as_str()
        )))
    }
}

fn parse_role(raw: &str) -> AppResult<Role> {
    Role::parse(raw).ok_or_else(|| AppError::field("role", "must be one of owner, admin, member"))
}

fn tenant_name(raw: &str) -> AppResult<String> {
    TenantName::parse(raw)
        .map(TenantName::into_inner)
        .map_err(|reason| AppError::field("name", reason))
}

impl Tessera {
    /// Which tenant budget a refused creation met: the cap on tenants owned
    /// or the hourly one (the store says only that one was met).
    fn tenant_budget_error(&self) -> AppError {
        let security = &self.config.security;
        AppError::new(
            crate::error::ErrorCode::RateLimited,
            format!(
                "You may own at most {} tenants and create at most {} per hour; \
                 try again later or delete one first.",
                security.max_tenants_per_user, security.tenants_per_hour
            ),
        )
        .with_retry_after(3600)
    }

    fn no_such_tenant() -> AppError {
        AppError::not_found("No such tenant.")
    }

    /// The caller's membership of a tenant; 404 for anyone else, whatever
    /// they guess. A token bound to one tenant sees no other.
    pub async fn member_of(&self, principal: &Principal, tenant_id: Uuid) -> AppResult<Membership> {
        if principal
            .bound_tenant
            .is_some_and(|bound| bound != tenant_id)
        {
            return Err(Self::no_such_tenant());
        }
        self.store
            .membership(principal.user.id, tenant_id)
            .await?
            .ok_or_else(Self::no_such_tenant)
    }

    pub async fn list_tenants(&self, principal: &Principal) -> AppResult<Vec<Membership>> {
        let mut tenants = self.store.memberships(principal.user.id).await?;
        if let Some(bound) = principal.bound_tenant {
            tenants.retain(|t| t.id == bound);
        }
        Ok(tenants)
    }

    pub async fn create_tenant(
        &self,
        principal: &Principal,
        name: &str,
        client: &ClientInfo,
    ) -> AppResult<Membership> {
        principal.require_unbound()?;
        let name = tenant_name(name)?;
        let tenant = NewTenant {
            id: Uuid::new_v4(),
            slug: super::accounts::slugify(&name),
            name,
        };
        let created = self
            .store
            .create_tenant(
                tenant,
                principal.user.id,
                self.clock.now(),
                self.config.security.max_tenants_per_user,
                self.config.security.tenants_per_hour,
            )
            .await
            .map_err(|e| match e {
                crate::store::StoreError::Conflict("limit") => self.tenant_budget_error(),
                other => other.into(),
            })?;
        self.record(
            Audit::new(AuditAction::TenantCreate)
                .actor(principal.user.id)
                .tenant(created.id)
                .client(client),
        )
        .await;
        Ok(created)
    }

    pub async fn rename_tenant(
        &self,
        principal: &Principal,
        tenant_id: Uuid,
        name: &str,
    ) -> AppResult<Membership> {
        let membership = self.member_of(principal, tenant_id).await?;
        let name = tenant_name(name)?;
        require(&membership, Role::Admin)?;
        self.store.rename_tenant(tenant_id, &name).await?;
        Ok(Membership { name, ..membership })
    }

    pub async fn delete_tenant(
        &self,
        principal: &Principal,
        tenant_id: Uuid,
        client: &ClientInfo,
    ) -> AppResult<()> {
        let membership = self.member_of(principal, tenant_id).await?;
        require(&membership, Role::Owner)?;
        self.store.delete_tenant(tenant_id).await?;
        self.record(
            Audit::new(AuditAction::TenantDelete)
                .actor(principal.user.id)
                .tenant(tenant_id)
                .client(client)
                .detail(json!({"name": membership.name})),
        )
        .await;
        Ok(())
    }

    pub async fn list_members(
        &self,
        principal: &Principal,
        tenant_id: Uuid,
    ) -> AppResult<Vec<Member>> {
        self.member_of(principal, tenant_id).await?;
        Ok(self.store.members(tenant_id).await?)
    }

    /// Checks that the caller may act on `target`'s membership at all.
    async fn may_manage(
        &self,
        principal: &Principal,
        tenant_id: Uuid,
        target: Uuid,
    ) -> AppResult<(Role, Role)> {
        let mine = self.member_of(principal, tenant_id).await?;
        let theirs = self
            .store
            .membership(target, tenant_id)
            .await?
            .ok_or_else(|| AppError::not_found("No such member."))?;
        let (my_role, their_role) = (mine.role, theirs.role);
        if target != principal.user.id {
            require(&mine, Role::Admin)?;
            if their_role == Role::Owner && my_role != Role::Owner {
                return Err(AppError::forbidden(
                    "Only an owner can change or remove an owner.",
                ));
            }
        }
        Ok((my_role, their_role))
    }

    fn member_change_result(change: MemberChange) -> AppResult<()> {
        match change {
            MemberChange::Done => Ok(()),
            MemberChange::NotAMember => Err(AppError::not_found("No such member.")),
            MemberChange::LastOwner => Err(AppError::conflict(
                "A tenant must keep at least one owner: make someone else owner first.",
            )),
        }
    }

    pub async fn change_role(
        &self,
        principal: &Principal,
        tenant_id: Uuid,
        target: Uuid,
        role: &str,
        client: &ClientInfo,
    ) -> AppResult<()> {
        let role = parse_role(role)?;
        let (my_role, their_role) = self.may_manage(principal, tenant_id, target).await?;
        if !my_role.at_least(role) {
            return Err(AppError::forbidden(
                "You cannot grant a role higher than your own.",
            ));
        }
        if role == their_role {
            return Ok(());
        }
        let change = self
            .store
            .change_member(tenant_id, target, Some(role), self.clock.now())
            .await?;
        Self::member_change_result(change)?;
        self.record(
            Audit::new(AuditAction::MemberRoleChange)
                .actor(principal.user.id)
                .target(target)
                .tenant(tenant_id)
                .client(client)
                .detail(json!({"from": their_role.as_str(), "to": role.as_str()})),
        )
        .await;
        Ok(())
    }

    pub async fn remove_member(
        &self,
        principal: &Principal,
        tenant_id: Uuid,
        target: Uuid,
        client: &ClientInfo,
    ) -> AppResult<()> {
        self.may_manage(principal, tenant_id, target).await?;
        let change = self
            .store
            .change_member(tenant_id, target, None, self.clock.now())
            .await?;
        Self::member_change_result(change)?;
        self.record(
            Audit::new(AuditAction::MemberRemove)
                .actor(principal.user.id)
                .target(target)
                .tenant(tenant_id)
                .client(client),
        )
        .await;
        Ok(())
    }

    /// Invites an address with a role no higher than the caller's and mails
    /// the link. A pending invite of the same address is replaced.
    pub async fn invite(
        &self,
        principal: &Principal,
        tenant_id: Uuid,
        email: &str,
        role: &str,
        client: &ClientInfo,
    ) -> AppResult<Invite> {
        let membership = self.member_of(principal, tenant_id).await?;
        let email = Email::parse(email).map_err(|reason| AppError::field("email", reason))?;
        let role = parse_role(role)?;
        let my_role = require(&membership, Role::Admin)?;
        if !my_role.at_least(role) {
            return Err(AppError::forbidden(
                "You cannot invite with a role higher than your own.",
            ));
        }
        let already = self.store.members(tenant_id).await?;
        if already.iter().any(|m| m.email == email.as_str()) {
            return Err(AppError::conflict(
                "This address already belongs to a member.",
            ));
        }
        let now = self.clock.now();
        let secret = token::random_secret();
        let link = self.mail_link(super::MailLink::AcceptInvite, &secret);
        let inviter = principal
            .user
            .name
            .clone()
            .unwrap_or_else(|| principal.user.email.clone());
        let message = crate::mail::templates::invite(
            &inviter,
            &membership.name,
            role.as_str(),
            &link,
            INVITE_TTL,
        );
        let invite = self
            .store
            .create_invite(
                NewInvite {
                    id: Uuid::new_v4(),
                    tenant_id,
                    email: email.as_str().to_owned(),
                    role,
                    token_hash: hash_secret(&secret),
                    invited_by: principal.user.id,
                    now,
                    expires_at: now + INVITE_TTL,
                },
                NewMail {
                    id: Uuid::new_v4(),
                    recipient: email.as_str().to_owned(),
                    subject: message.subject,
                    body_text: message.body,
                    now,
                },
                self.config.security.invites_per_hour,
            )
            .await
            .map_err(|e| match e {
                crate::store::StoreError::Conflict("limit") => {
                    super::over_budget("invitations", self.config.security.invites_per_hour, true)
                }
                other => other.into(),
            })?;
        self.mail_wake.notify_one();
        self.record(
            Audit::new(AuditAction::InviteSend)
                .actor(principal.user.id)
                .tenant(tenant_id)
                .client(client)
                .detail(json!({"email": invite.email, "role": invite.role})),
        )
        .await;
        Ok(invite)
    }

    pub async fn tenant_invites(
        &self,
        principal: &Principal,
        tenant_id: Uuid,
    ) -> AppResult<Vec<Invite>> {
        let membership = self.member_of(principal, tenant_id).await?;
        require(&membership, Role::Admin)?;
        Ok(self.store.tenant_invites(tenant_id).await?)
    }

    pub async fn revoke_invite(
        &self,
        principal: &Principal,
        tenant_id: Uuid,
        invite_id: Uuid,
        client: &ClientInfo,
    ) -> AppResult<()> {
        let membership = self.member_of(principal, tenant_id).await?;
        require(&membership, Role::Admin)?;
        if !self
            .store
            .revoke_invite(tenant_id, invite_id, self.clock.now())
            .await?
        {
            return Err(AppError::not_found("No such pending invite."));
        }
        self.record(
            Audit::new(AuditAction::InviteRevoke)
                .actor(principal.user.id)
                .tenant(tenant_id)
                .client(client)
                .detail(json!({"invite_id": invite_id})),
        )
        .await;
        Ok(())
    }

    /// A tenant's audit events, for its admins and owners.
    pub async fn tenant_audit_events(
        &self,
        principal: &Principal,
        tenant_id: Uuid,
        mut filter: AuditFilter,
    ) -> AppResult<Vec<AuditEvent>> {
        let membership = self.member_of(principal, tenant_id).await?;
        require(&membership, Role::Admin)?;
        filter.tenant_id = Some(tenant_id);
        self.audit_events(filter).await
    }

    /// The user's tenants (from the cache when just read).
    pub async fn memberships(&self, user_id: Uuid) -> AppResult<Arc<Vec<Membership>>> {
        if let Some(cached) = self.cache.memberships(user_id) {
            return Ok(cached);
        }
        let ticket = self.cache.ticket();
        let tenants = Arc::new(self.store.memberships(user_id).await?);
        self.cache.put_memberships(ticket, user_id, tenants.clone());
        Ok(tenants)
    }

    /// Pending invites addressed to `email` (from the cache when just read).
    pub async fn my_invites(&self, email: &str) -> AppResult<Vec<Invite>> {
        let now = self.clock.now();
        let invites = match self.cache.invites(email) {
            Some(cached) => cached,
            None => {
                let ticket = self.cache.ticket();
                let invites = Arc::new(self.store.pending_invites(email, now).await?);
                self.cache.put_invites(ticket, email, invites.clone());
                invites
            }
        };
        // One may have expired since it was read.
        Ok(invites
            .iter()
            .filter(|i| i.expires_at > now)
            .cloned()
            .collect())
    }

    /// The pending invitation a token stands for, without using it (a page
    /// shows it before it is accepted).
    pub async fn invite_preview(&self, token: &str) -> AppResult<Invite> {
        Ok(self.pending_invite(token).await?.0)
    }

    /// The pending invitation a token stands for, and the token's hash.
    async fn pending_invite(&self, token: &str) -> AppResult<(Invite, Vec<u8>)> {
        let token = token.trim();
        if token.is_empty() {
            return Err(AppError::field("invite_token", "is required"));
        }
        if !token::plausible_secret(token) {
            return Err(Self::invalid_invite());
        }
        let hash = hash_secret(token);
        let invite = self
            .store
            .find_invite(&hash, self.clock.now())
            .await?
            .ok_or_else(Self::invalid_invite)?;
        Ok((invite, hash))
    }

    fn invalid_invite() -> AppError {
        AppError::field("invite_token", "is invalid, expired or already used")
    }

    /// Joins the inviting tenant; only the invited address may accept.
    pub async fn accept_invite(
        &self,
        principal: &Principal,
        token: &str,
        client: &ClientInfo,
    ) -> AppResult<Membership> {
        principal.require_unbound()?;
        let (invite, hash) = self.pending_invite(token).await?;
        if invite.email != principal.user.email {
            return Err(AppError::forbidden(
                "This invitation was sent to another address.",
            ));
        }
        let accepted = self
            .store
            .accept_invite(
                &hash,
                principal.user.id,
                &principal.user.email,
                self.clock.now(),
            )
            .await?
            .ok_or_else(Self::invalid_invite)?;
        self.record(
            Audit::new(AuditAction::InviteAccept)
                .actor(principal.user.id)
                .tenant(accepted.tenant_id)
                .client(client)
                .detail(json!({"role": accepted.role})),
        )
        .await;
        self.store
            .membership(principal.user.id, accepted.tenant_id)
            .await?
            .ok_or_else(Self::no_such_tenant)
    }

    /// Makes `tenant_id` the session's current tenant.
    pub async fn switch_tenant(
        &self,
        principal: &Principal,
        tenant_id: Uuid,
    ) -> AppResult<Principal> {
        let Some(session) = principal
            .session
            .as_ref()
            .filter(|_| principal.session_secret().is_some())
        else {
            return Err(AppError::forbidden(
                "Switching tenant needs a session; a token's tenant is fixed.",
            ));
        };
        self.member_of(principal, tenant_id).await?;
        self.store.set_session_tenant(session.id, tenant_id).await?;
        Ok(Principal {
            tenant_id: Some(tenant_id),
            ..principal.clone()
        })
    }
}
