//! The legacy surface, `/api/auth` (seeds 001 and 003). So far: the plan
//! check (`validate`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::routing::get;
use axum::{Extension, Json, Router};
use secrecy::ExposeSecret;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::crypto::token::constant_time_eq;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::extract::Surface;
use crate::service::{ClientInfo, Tessera};

pub fn router() -> Router<Arc<Tessera>> {
    Router::new()
        .route("/validate", get(validate))
        .layer(Extension(Surface::OriginChecked))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValidateResponse {
    pub success: bool,
    #[schema(example = "2 users corrected and sessions reset.")]
    pub message: String,
    pub updated_ids: Vec<Uuid>,
}

/// Seed 001's plan check. Answered without credentials only to a direct
/// loopback peer; otherwise it needs `Authorization: Bearer <cron_secret>`.
#[utoipa::path(get, path = "/api/auth/validate", tag = "legacy",
    responses((status = 200, body = ValidateResponse), (status = 401, body = ErrorBody)))]
pub async fn validate(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    headers: HeaderMap,
) -> AppResult<Json<ValidateResponse>> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let allowed = match (bearer, &core.config.cron_secret) {
        (Some(sent), Some(secret)) => constant_time_eq(sent, secret.expose_secret()),
        (Some(_), None) => false,
        (None, _) => client.direct_loopback,
    };
    if !allowed {
        return Err(AppError::unauthorized());
    }
    let ids = core.run_plan_check(None).await?;
    Ok(Json(ValidateResponse {
        success: true,
        message: format!("{} users corrected and sessions reset.", ids.len()),
        updated_ids: ids,
    }))
}
