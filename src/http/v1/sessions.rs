//! `/api/v1/sessions`: my sessions.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use super::tenants::path_id;
use super::views::SessionView;
use crate::error::AppResult;
use crate::http::error::ErrorBody;
use crate::http::surface::AnyPrincipal;
use crate::service::{ClientInfo, Tessera};

/// My active sessions; the one making the request has `current: true`.
#[utoipa::path(get, path = "/api/v1/sessions", tag = "sessions",
    responses((status = 200, body = Vec<SessionView>), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(core): State<Arc<Tessera>>,
    AnyPrincipal(p): AnyPrincipal,
) -> AppResult<Json<Vec<SessionView>>> {
    let current = p.session.as_ref().map(|s| s.id);
    let sessions = core.list_sessions(&p).await?;
    Ok(Json(
        sessions
            .iter()
            .map(|s| SessionView::new(s, Some(s.id) == current))
            .collect(),
    ))
}

/// Revoke one of my sessions.
#[utoipa::path(delete, path = "/api/v1/sessions/{id}", tag = "sessions", params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    AnyPrincipal(p): AnyPrincipal,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    core.revoke_own_session(&p, path_id(&id)?, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revoke all my sessions but the current one.
#[utoipa::path(delete, path = "/api/v1/sessions", tag = "sessions",
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn revoke_others(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    AnyPrincipal(p): AnyPrincipal,
) -> AppResult<StatusCode> {
    core.revoke_other_sessions(&p, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}
