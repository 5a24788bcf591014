//! `/api/v1/tokens`: personal access tokens.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::views::TokenView;
use crate::error::{AppError, AppResult};
use crate::http::error::ErrorBody;
use crate::http::extract::AppJson;
use crate::http::surface::AnyPrincipal;
use crate::service::{ClientInfo, NewPatInput, Tessera};

#[derive(Deserialize, ToSchema)]
pub struct CreateTokenBody {
    #[schema(example = "ci deploy")]
    pub name: String,
    /// `read` allows GET; `write` allows everything (and implies read).
    #[schema(example = json!(["read"]))]
    pub scopes: Vec<String>,
    /// 1 to 3650; the token never expires when absent.
    pub expires_in_days: Option<i64>,
    /// The tenant the token acts in; must be one of the caller's.
    pub tenant_id: Option<Uuid>,
}

/// Create a personal access token. Needs a session (not a token). The secret is shown once.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = CreateTokenBody,
    responses(
        (status = 201, description = "Created; `token` holds the secret, shown only here", body = TokenView),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Called with a token rather than a session, or EMAIL_NOT_VERIFIED: the address is not verified yet", body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
pub async fn create(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    AnyPrincipal(principal): AnyPrincipal,
    AppJson(body): AppJson<CreateTokenBody>,
) -> AppResult<(StatusCode, Json<TokenView>)> {
    let input = NewPatInput {
        name: body.name,
        scopes: body.scopes,
        expires_in_days: body.expires_in_days,
        tenant_id: body.tenant_id,
    };
    let (secret, pat) = core.create_pat(&principal, input, &client).await?;
    Ok((
        StatusCode::CREATED,
        Json(TokenView::new(&pat, Some(secret))),
    ))
}

/// List my active personal access tokens (never the secrets).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = Vec<TokenView>), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(core): State<Arc<Tessera>>,
    AnyPrincipal(principal): AnyPrincipal,
) -> AppResult<Json<Vec<TokenView>>> {
    let pats = core.list_pats(&principal).await?;
    Ok(Json(pats.iter().map(|p| TokenView::new(p, None)).collect()))
}

/// Revoke a personal access token; it fails at once.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = Uuid, Path, description = "Token id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
pub async fn revoke(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    AnyPrincipal(principal): AnyPrincipal,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    let id = Uuid::parse_str(&id).map_err(|_| AppError::not_found("No such token."))?;
    core.revoke_pat(&principal, id, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}
