//! `/api/v1/tenants` and `/api/v1/invites`: tenants, members, invitations.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::views::{self, AuditEventView, InviteView, MemberView, TenantView};
use crate::error::{AppError, AppResult};
use crate::http::error::ErrorBody;
use crate::http::extract::AppJson;
use crate::http::surface::AnyPrincipal;
use crate::service::{ClientInfo, Tessera};
use crate::store::AuditFilter;

/// Path ids that are not UUIDs name nothing: 404, like any unknown id.
pub fn path_id(raw: &str) -> AppResult<Uuid> {
    Uuid::parse_str(raw).map_err(|_| AppError::not_found("Not found."))
}

#[derive(Deserialize, ToSchema)]
pub struct NameBody {
    #[schema(example = "Acme")]
    pub name: String,
}

#[derive(Deserialize, ToSchema)]
pub struct RoleBody {
    /// owner, admin or member
    pub role: String,
}

#[derive(Deserialize, ToSchema)]
pub struct InviteBody {
    pub email: String,
    /// owner, admin or member; no higher than the inviter's own role
    pub role: String,
}

#[derive(Deserialize, ToSchema)]
pub struct AcceptBody {
    pub invite_token: String,
}

#[derive(Serialize, ToSchema)]
pub struct TenantResponse {
    pub tenant: TenantView,
}

/// The tenants I belong to.
#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenants",
    responses((status = 200, body = Vec<TenantView>), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(core): State<Arc<Tessera>>,
    AnyPrincipal(p): AnyPrincipal,
) -> AppResult<Json<Vec<TenantView>>> {
    Ok(Json(views::tenants(&core.list_tenants(&p).await?)))
}

/// Create a tenant; the caller becomes its owner.
#[utoipa::path(post, path = "/api/v1/tenants", tag = "tenants", request_body = NameBody,
    responses((status = 201, body = TenantView), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    AnyPrincipal(p): AnyPrincipal,
    AppJson(body): AppJson<NameBody>,
) -> AppResult<(StatusCode, Json<TenantView>)> {
    let created = core.create_tenant(&p, &body.name, &client).await?;
    Ok((StatusCode::CREATED, Json(TenantView::from(&created))))
}

/// One of my tenants (404 for anyone who is not a member).
#[utoipa::path(get, path = "/api/v1/tenants/{id}", tag = "tenants", params(("id" = Uuid, Path)),
    responses((status = 200, body = TenantView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(core): State<Arc<Tessera>>,
    AnyPrincipal(p): AnyPrincipal,
    Path(id): Path<String>,
) -> AppResult<Json<TenantView>> {
    Ok(Json(TenantView::from(
        &core.member_of(&p, path_id(&id)?).await?,
    )))
}

/// Rename a tenant (admin or owner).
#[utoipa::path(patch, path = "/api/v1/tenants/{id}", tag = "tenants", params(("id" = Uuid, Path)), request_body = NameBody,
    responses((status = 200, body = TenantView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn rename(
    State(core): State<Arc<Tessera>>,
    AnyPrincipal(p): AnyPrincipal,
    Path(id): Path<String>,
    AppJson(body): AppJson<NameBody>,
) -> AppResult<Json<TenantView>> {
    Ok(Json(TenantView::from(
        &core.rename_tenant(&p, path_id(&id)?, &body.name).await?,
    )))
}

/// Delete a tenant (owner); its members lose access at once.
#[utoipa::path(delete, path = "/api/v1/tenants/{id}", tag = "tenants", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    AnyPrincipal(p): AnyPrincipal,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    core.delete_tenant(&p, path_id(&id)?, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A tenant's members.
#[utoipa::path(get, path = "/api/v1/tenants/{id}/members", tag = "tenants", params(("id" = Uuid, Path)),
    responses((status = 200, body = Vec<MemberView>), (status = 404, body = ErrorBody)))]
pub async fn members(
    State(core): State<Arc<Tessera>>,
    AnyPrincipal(p): AnyPrincipal,
    Path(id): Path<String>,
) -> AppResult<Json<Vec<MemberView>>> {
    let members = core.list_members(&p, path_id(&id)?).await?;
    Ok(Json(members.iter().map(MemberView::from).collect()))
}

/// Change a member's role. Admins cannot grant or change owner; the last owner cannot be demoted (409).
#[utoipa::path(patch, path = "/api/v1/tenants/{id}/members/{user_id}", tag = "tenants",
    params(("id" = Uuid, Path), ("user_id" = Uuid, Path)), request_body = RoleBody,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Would leave no owner", body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn change_role(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    AnyPrincipal(p): AnyPrincipal,
    Path((id, user_id)): Path<(String, String)>,
    AppJson(body): AppJson<RoleBody>,
) -> AppResult<StatusCode> {
    core.change_role(&p, path_id(&id)?, path_id(&user_id)?, &body.role, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a member (or leave, with your own id). The last owner cannot be removed (409).
#[utoipa::path(delete, path = "/api/v1/tenants/{id}/members/{user_id}", tag = "tenants",
    params(("id" = Uuid, Path), ("user_id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn remove_member(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    AnyPrincipal(p): AnyPrincipal,
    Path((id, user_id)): Path<(String, String)>,
) -> AppResult<StatusCode> {
    core.remove_member(&p, path_id(&id)?, path_id(&user_id)?, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Invite an address (admin or owner); mails a link valid 7 days. Replaces a pending invite of the same address.
#[utoipa::path(post, path = "/api/v1/tenants/{id}/invites", tag = "tenants", params(("id" = Uuid, Path)), request_body = InviteBody,
    responses((status = 201, body = InviteView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Already a member", body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn invite(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    AnyPrincipal(p): AnyPrincipal,
    Path(id): Path<String>,
    AppJson(body): AppJson<InviteBody>,
) -> AppResult<(StatusCode, Json<InviteView>)> {
    let invite = core
        .invite(&p, path_id(&id)?, &body.email, &body.role, &client)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(InviteView::new(&invite, core.clock.now())),
    ))
}

/// A tenant's invitations (admin or owner).
#[utoipa::path(get, path = "/api/v1/tenants/{id}/invites", tag = "tenants", params(("id" = Uuid, Path)),
    responses((status = 200, body = Vec<InviteView>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn invites(
    State(core): State<Arc<Tessera>>,
    AnyPrincipal(p): AnyPrincipal,
    Path(id): Path<String>,
) -> AppResult<Json<Vec<InviteView>>> {
    let list = core.tenant_invites(&p, path_id(&id)?).await?;
    Ok(Json(views::invites(&list, core.clock.now())))
}

/// Revoke a pending invitation.
#[utoipa::path(delete, path = "/api/v1/tenants/{id}/invites/{invite_id}", tag = "tenants",
    params(("id" = Uuid, Path), ("invite_id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_invite(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    AnyPrincipal(p): AnyPrincipal,
    Path((id, invite_id)): Path<(String, String)>,
) -> AppResult<StatusCode> {
    core.revoke_invite(&p, path_id(&id)?, path_id(&invite_id)?, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Pending invitations addressed to my email (to other tenants: refused to
/// a tenant-bound token).
#[utoipa::path(get, path = "/api/v1/invites", tag = "tenants",
    responses((status = 200, body = Vec<InviteView>), (status = 401, body = ErrorBody),
        (status = 403, description = "A tenant-bound token", body = ErrorBody)))]
pub async fn my_invites(
    State(core): State<Arc<Tessera>>,
    AnyPrincipal(p): AnyPrincipal,
) -> AppResult<Json<Vec<InviteView>>> {
    p.require_unbound()?;
    let list = core.my_invites(&p.user.email).await?;
    Ok(Json(views::invites(&list, core.clock.now())))
}

/// Accept an invitation sent to my address.
#[utoipa::path(post, path = "/api/v1/invites/accept", tag = "tenants", request_body = AcceptBody,
    responses((status = 200, body = TenantResponse), (status = 403, description = "Sent to another address, or a tenant-bound token", body = ErrorBody),
        (status = 422, description = "Invalid, used or expired token", body = ErrorBody)))]
pub async fn accept(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    AnyPrincipal(p): AnyPrincipal,
    AppJson(body): AppJson<AcceptBody>,
) -> AppResult<Json<TenantResponse>> {
    let membership = core.accept_invite(&p, &body.invite_token, &client).await?;
    Ok(Json(TenantResponse {
        tenant: TenantView::from(&membership),
    }))
}

#[derive(Deserialize, IntoParams)]
pub struct AuditQuery {
    pub action: Option<String>,
    pub actor_id: Option<Uuid>,
    pub target_id: Option<Uuid>,
    pub tenant_id: Option<Uuid>,
    /// RFC 3339
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// RFC 3339
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    /// 1 to 200, default 50
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

impl AuditQuery {
    pub fn filter(self) -> AuditFilter {
        AuditFilter {
            action: self.action,
            actor_id: self.actor_id,
            target_id: self.target_id,
            tenant_id: self.tenant_id,
            since: self.since,
            until: self.until,
            limit: self.limit.unwrap_or(50),
            offset: self.offset.unwrap_or(0),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AuditResponse {
    pub events: Vec<AuditEventView>,
    pub limit: i64,
    pub offset: i64,
}

pub fn audit_response(
    events: &[crate::store::AuditEvent],
    limit: i64,
    offset: i64,
) -> AuditResponse {
    AuditResponse {
        events: events.iter().map(AuditEventView::from).collect(),
        limit,
        offset,
    }
}

/// A tenant's audit events (admin or owner).
#[utoipa::path(get, path = "/api/v1/tenants/{id}/audit", tag = "tenants", params(("id" = Uuid, Path), AuditQuery),
    responses((status = 200, body = AuditResponse), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn audit(
    State(core): State<Arc<Tessera>>,
    AnyPrincipal(p): AnyPrincipal,
    Path(id): Path<String>,
    query: crate::http::extract::AppQuery<AuditQuery>,
) -> AppResult<Json<AuditResponse>> {
    let filter = query.0.filter();
    let (limit, offset) = (filter.limit, filter.offset);
    let events = core.tenant_audit_events(&p, path_id(&id)?, filter).await?;
    Ok(Json(audit_response(&events, limit, offset)))
}
