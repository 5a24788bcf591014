//! Response bodies of the canonical surface (snake_case).

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::Role;
use crate::store::{Membership, Pat, Session, User};

#[derive(Serialize, ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub email: String,
    pub email_verified: bool,
    pub name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub has_password: bool,
    pub two_factor_enabled: bool,
    pub plan: String,
    pub plan_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            id: u.id,
            email: u.email.clone(),
            email_verified: u.email_verified_at.is_some(),
            name: u.name.clone(),
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            has_password: u.password_hash.is_some(),
            two_factor_enabled: u.two_factor_enabled,
            plan: u.plan.clone(),
            plan_expires_at: u.plan_expires_at,
            created_at: u.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TenantView {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    /// The viewer's role in this tenant.
    pub role: Role,
    pub plan: String,
    pub created_at: DateTime<Utc>,
}

impl From<&Membership> for TenantView {
    fn from(m: &Membership) -> Self {
        TenantView {
            id: m.id,
            name: m.name.clone(),
            slug: m.slug.clone(),
            role: m.role,
            plan: m.plan.clone(),
            created_at: m.created_at,
        }
    }
}

pub fn tenants(list: &[Membership]) -> Vec<TenantView> {
    list.iter().map(TenantView::from).collect()
}

#[derive(Serialize, ToSchema)]
pub struct InviteTenantView {
    pub id: Uuid,
    pub name: String,
}

/// A pending invitation addressed to the viewer.
#[derive(Serialize, ToSchema)]
pub struct InviteView {
    pub id: Uuid,
    pub tenant: InviteTenantView,
    pub email: String,
    pub role: Role,
    pub status: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct SessionView {
    pub id: Uuid,
    pub current: bool,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl SessionView {
    pub fn new(s: &Session, current: bool) -> Self {
        SessionView {
            id: s.id,
            current,
            ip: s.ip.clone(),
            user_agent: s.user_agent.clone(),
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            expires_at: s.expires_at,
        }
    }
}

/// A personal access token; the secret appears only in the creation answer.
#[derive(Serialize, ToSchema)]
pub struct TokenView {
    pub id: Uuid,
    pub name: String,
    #[schema(example = json!(["read", "write"]))]
    pub scopes: Vec<String>,
    pub tenant_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// `tsr_pat_…`, shown once, on creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl TokenView {
    pub fn new(p: &Pat, token: Option<String>) -> Self {
        TokenView {
            id: p.id,
            name: p.name.clone(),
            scopes: p.scopes.names().map(str::to_owned).collect(),
            tenant_id: p.tenant_id,
            created_at: p.created_at,
            expires_at: p.expires_at,
            last_used_at: p.last_used_at,
            token,
        }
    }
}

impl InviteView {
    pub fn new(i: &crate::store::Invite, now: DateTime<Utc>) -> Self {
        let status = if i.accepted_at.is_some() {
            "accepted"
        } else if i.revoked_at.is_some() {
            "revoked"
        } else if i.expires_at <= now {
            "expired"
        } else {
            "pending"
        };
        InviteView {
            id: i.id,
            tenant: InviteTenantView {
                id: i.tenant_id,
                name: i.tenant_name.clone(),
            },
            email: i.email.clone(),
            role: i.role,
            status: status.into(),
            expires_at: i.expires_at,
        }
    }
}

pub fn invites(list: &[crate::store::Invite], now: DateTime<Utc>) -> Vec<InviteView> {
    list.iter().map(|i| InviteView::new(i, now)).collect()
}

#[derive(Serialize, ToSchema)]
pub struct MemberView {
    pub user_id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
}

impl From<&crate::store::Member> for MemberView {
    fn from(m: &crate::store::Member) -> Self {
        MemberView {
            user_id: m.user_id,
            email: m.email.clone(),
            name: m.name.clone(),
            role: m.role,
            joined_at: m.joined_at,
        }
    }
}

/// A user as administrators see it.
#[derive(Serialize, ToSchema)]
pub struct AdminUserView {
    #[serde(flatten)]
    pub user: UserView,
    pub is_admin: bool,
    pub disabled: bool,
    pub disabled_at: Option<DateTime<Utc>>,
    /// Present on single-user answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenants: Option<Vec<TenantView>>,
}

impl AdminUserView {
    pub fn new(u: &User, tenants: Option<&[Membership]>) -> Self {
        AdminUserView {
            user: UserView::from(u),
            is_admin: u.is_admin,
            disabled: u.disabled_at.is_some(),
            disabled_at: u.disabled_at,
            tenants: tenants.map(self::tenants),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AuditEventView {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    #[schema(example = "login.failure")]
    pub action: String,
    pub actor_id: Option<Uuid>,
    pub target_id: Option<Uuid>,
    pub tenant_id: Option<Uuid>,
    pub ip: Option<String>,
    #[schema(value_type = Object)]
    pub detail: Option<serde_json::Value>,
}

impl From<&crate::store::AuditEvent> for AuditEventView {
    fn from(e: &crate::store::AuditEvent) -> Self {
        AuditEventView {
            id: e.id,
            at: e.at,
            action: e.action.clone(),
            actor_id: e.actor_id,
            target_id: e.target_id,
            tenant_id: e.tenant_id,
            ip: e.ip.clone(),
            detail: e
                .detail
                .as_deref()
                .and_then(|d| serde_json::from_str(d).ok()),
        }
    }
}
