//! `/api/v1/admin`: global administration.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::tenants::{audit_response, path_id, AuditQuery, AuditResponse};
use super::views::AdminUserView;
use crate::error::AppResult;
use crate::http::error::ErrorBody;
use crate::http::extract::{AppJson, AppQuery};
use crate::http::surface::AnyPrincipal;
use crate::service::{ClientInfo, Tessera, UserPatch};

#[derive(Deserialize, IntoParams)]
pub struct UsersQuery {
    /// Part of an email or name.
    pub q: Option<String>,
    /// 1 to 100, default 50
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct UsersResponse {
    pub users: Vec<AdminUserView>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

/// Distinguishes an absent field from an explicit `null`.
fn nullable<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<DateTime<Utc>>>, D::Error> {
    Option::<DateTime<Utc>>::deserialize(d).map(Some)
}

#[derive(Deserialize, ToSchema)]
pub struct PatchUserBody {
    pub disabled: Option<bool>,
    /// Clear a lockout.
    #[serde(default)]
    pub unlock: bool,
    pub plan: Option<String>,
    /// RFC 3339, or null to clear.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub plan_expires_at: Option<Option<DateTime<Utc>>>,
    pub is_admin: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct PlanCheckResponse {
    pub count: usize,
    pub updated_ids: Vec<Uuid>,
}

/// List and search users.
#[utoipa::path(get, path = "/api/v1/admin/users", tag = "admin", params(UsersQuery),
    responses((status = 200, body = UsersResponse), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_users(
    State(core): State<Arc<Tessera>>,
    AnyPrincipal(p): AnyPrincipal,
    AppQuery(q): AppQuery<UsersQuery>,
) -> AppResult<Json<UsersResponse>> {
    let (limit, offset) = (q.limit.unwrap_or(50), q.offset.unwrap_or(0));
    let (users, total) = core
        .admin_list_users(&p, q.q.as_deref(), limit, offset)
        .await?;
    Ok(Json(UsersResponse {
        users: users.iter().map(|u| AdminUserView::new(u, None)).collect(),
        total,
        limit,
        offset,
    }))
}

/// One user, with their tenants.
#[utoipa::path(get, path = "/api/v1/admin/users/{id}", tag = "admin", params(("id" = Uuid, Path)),
    responses((status = 200, body = AdminUserView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_user(
    State(core): State<Arc<Tessera>>,
    AnyPrincipal(p): AnyPrincipal,
    Path(id): Path<String>,
) -> AppResult<Json<AdminUserView>> {
    let (user, tenants) = core.admin_get_user(&p, path_id(&id)?).await?;
    Ok(Json(AdminUserView::new(&user, Some(&tenants))))
}

/// Disable or enable, unlock, set the plan, grant or drop admin.
/// Disabling ends every session, token and JWT of the user at once.
#[utoipa::path(patch, path = "/api/v1/admin/users/{id}", tag = "admin", params(("id" = Uuid, Path)), request_body = PatchUserBody,
    responses((status = 200, body = AdminUserView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Would disable or demote yourself", body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_user(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    AnyPrincipal(p): AnyPrincipal,
    Path(id): Path<String>,
    AppJson(body): AppJson<PatchUserBody>,
) -> AppResult<Json<AdminUserView>> {
    let id = path_id(&id)?;
    let patch = UserPatch {
        disabled: body.disabled,
        plan: body.plan,
        plan_expires_at: body.plan_expires_at,
        is_admin: body.is_admin,
        unlock: body.unlock,
    };
    let (user, tenants) = core.admin_update_user(&p, id, patch, &client).await?;
    Ok(Json(AdminUserView::new(&user, Some(&tenants))))
}

/// Delete a user with their sessions, tokens and memberships; tenants they
/// alone belong to go too. Refused (409) while they are the only owner of a
/// tenant with other members.
#[utoipa::path(delete, path = "/api/v1/admin/users/{id}", tag = "admin", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_user(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    AnyPrincipal(p): AnyPrincipal,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    core.admin_delete_user(&p, path_id(&id)?, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Run the plan check now: expired plans go back to the default plan and lose every session.
#[utoipa::path(post, path = "/api/v1/admin/plans/validate", tag = "admin",
    responses((status = 200, body = PlanCheckResponse), (status = 403, body = ErrorBody)))]
pub async fn validate_plans(
    State(core): State<Arc<Tessera>>,
    AnyPrincipal(p): AnyPrincipal,
) -> AppResult<Json<PlanCheckResponse>> {
    core.require_admin(&p)?;
    let ids = core.run_plan_check(Some(p.user.id)).await?;
    Ok(Json(PlanCheckResponse {
        count: ids.len(),
        updated_ids: ids,
    }))
}

/// The audit log, newest first.
#[utoipa::path(get, path = "/api/v1/admin/audit", tag = "admin", params(AuditQuery),
    responses((status = 200, body = AuditResponse), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn audit(
    State(core): State<Arc<Tessera>>,
    AnyPrincipal(p): AnyPrincipal,
    AppQuery(q): AppQuery<AuditQuery>,
) -> AppResult<Json<AuditResponse>> {
    core.require_admin(&p)?;
    let filter = q.filter();
    let (limit, offset) = (filter.limit, filter.offset);
    let events = core.audit_events(filter).await?;
    Ok(Json(audit_response(&events, limit, offset)))
}
