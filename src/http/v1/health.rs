//! Health probes.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{AppError, AppResult, RETRY_AFTER_DEPENDENCY};
use crate::http::error::ErrorBody;
use crate::service::Tessera;

#[derive(Serialize, ToSchema)]
pub struct HealthResponse {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Public health check: 200 while the process runs.
#[utoipa::path(get, path = "/health", tag = "health", responses((status = 200, body = HealthResponse)))]
pub async fn health() -> Json<HealthResponse> {
    Json(HealthResponse { status: "ok" })
}

/// Liveness probe: 200 while the process runs.
#[utoipa::path(get, path = "/api/v1/health/live", tag = "health", responses((status = 200, body = HealthResponse)))]
pub async fn live() -> Json<HealthResponse> {
    Json(HealthResponse { status: "ok" })
}

/// Readiness probe: 200 when the database answers and every migration is applied.
#[utoipa::path(get, path = "/api/v1/health/ready", tag = "health",
    responses(
        (status = 200, body = HealthResponse),
        (status = 503, description = "The database is unreachable or not migrated", body = ErrorBody),
    ))]
pub async fn ready(State(core): State<Arc<Tessera>>) -> AppResult<Json<HealthResponse>> {
    match core.store.ready().await {
        Ok(()) => Ok(Json(HealthResponse { status: "ready" })),
        // Logged (with the cause) as the error is answered.
        Err(err) => Err(AppError {
            source: Some(err.into()),
            ..AppError::unavailable("The database is not ready.")
                .with_retry_after(RETRY_AFTER_DEPENDENCY)
        }),
    }
}
