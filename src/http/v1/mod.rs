//! The canonical surface, `/api/v1`.

use std::sync::Arc;

use axum::routing::{delete, get, post};
use axum::{Extension, Router};

use crate::http::extract::Surface;
use crate::service::Tessera;

pub mod auth;
pub mod health;
pub mod tokens;
pub mod views;

/// Routes under `/api/v1` (paths here are relative to it).
pub fn router() -> Router<Arc<Tessera>> {
    Router::new()
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/auth/signup", post(auth::signup))
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/refresh", post(auth::refresh))
        .route("/auth/csrf", get(auth::csrf))
        .route("/auth/me", get(auth::me))
        .route("/auth/forgot-password", post(auth::forgot_password))
        .route("/auth/reset-password", post(auth::reset_password))
        .route("/auth/change-password", post(auth::change_password))
        .route("/auth/set-password", post(auth::set_password))
        .route("/auth/verify-email", post(auth::verify_email))
        .route("/auth/resend-verification", post(auth::resend_verification))
        .route("/auth/token", post(auth::token))
        .route("/tokens", post(tokens::create).get(tokens::list))
        .route("/tokens/{id}", delete(tokens::revoke))
        .route("/openapi.json", get(crate::http::openapi::serve))
        .layer(Extension(Surface::V1))
}
