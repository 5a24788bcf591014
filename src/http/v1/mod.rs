//! The canonical surface, `/api/v1`.

use std::sync::Arc;

use axum::middleware::from_fn_with_state;
use axum::routing::{delete, get, patch, post};
use axum::{Extension, Router};

use crate::http::bot;
use crate::http::surface::Surface;
use crate::service::Tessera;

pub mod admin;
pub mod auth;
pub mod health;
pub mod mfa;
pub mod oauth;
pub mod passkeys;
pub mod sessions;
pub mod tenants;
pub mod tokens;
pub mod views;

/// Routes under `/api/v1` (paths here are relative to it).
pub fn router(core: &Arc<Tessera>) -> Router<Arc<Tessera>> {
    Router::new()
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .route(
            "/auth/signup",
            post(auth::signup).route_layer(from_fn_with_state(core.clone(), bot::check)),
        )
        .route(
            "/auth/login",
            post(auth::login).route_layer(from_fn_with_state(core.clone(), bot::check)),
        )
        .route("/auth/logout", post(auth::logout))
        .route("/auth/refresh", post(auth::refresh))
        .route("/auth/csrf", get(auth::csrf))
        .route("/auth/me", get(auth::me).patch(auth::update_me))
        .route(
            "/auth/forgot-password",
            post(auth::forgot_password).route_layer(from_fn_with_state(core.clone(), bot::check)),
        )
        .route("/auth/reset-password", post(auth::reset_password))
        .route("/auth/change-password", post(auth::change_password))
        .route("/auth/set-password", post(auth::set_password))
        .route("/auth/verify-email", post(auth::verify_email))
        .route("/auth/resend-verification", post(auth::resend_verification))
        .route("/auth/token", post(auth::token))
        .route("/tokens", post(tokens::create).get(tokens::list))
        .route("/tokens/{id}", delete(tokens::revoke))
        .route("/auth/switch-tenant", post(auth::switch_tenant))
        .route(
            "/sessions",
            get(sessions::list).delete(sessions::revoke_others),
        )
        .route("/sessions/{id}", delete(sessions::revoke))
        .route("/tenants", get(tenants::list).post(tenants::create))
        .route(
            "/tenants/{id}",
            get(tenants::get)
                .patch(tenants::rename)
                .delete(tenants::delete),
        )
        .route("/tenants/{id}/members", get(tenants::members))
        .route(
            "/tenants/{id}/members/{user_id}",
            patch(tenants::change_role).delete(tenants::remove_member),
        )
        .route(
            "/tenants/{id}/invites",
            get(tenants::invites).post(tenants::invite),
        )
        .route(
            "/tenants/{id}/invites/{invite_id}",
            delete(tenants::revoke_invite),
        )
        .route("/tenants/{id}/audit", get(tenants::audit))
        .route("/invites", get(tenants::my_invites))
        .route("/invites/accept", post(tenants::accept))
        .route("/admin/users", get(admin::list_users))
        .route(
            "/admin/users/{id}",
            get(admin::get_user)
                .patch(admin::update_user)
                .delete(admin::delete_user),
        )
        .route("/admin/plans/validate", post(admin::validate_plans))
        .route("/admin/audit", get(admin::audit))
        .route("/auth/2fa", get(mfa::status))
        .route("/auth/2fa/totp/setup", post(mfa::totp_setup))
        .route("/auth/2fa/totp/enable", post(mfa::totp_enable))
        .route("/auth/2fa/disable", post(mfa::disable))
        .route("/auth/2fa/backup-codes", post(mfa::backup_codes))
        .route("/auth/2fa/verify", post(mfa::verify))
        .route("/auth/2fa/passkey/start", post(mfa::passkey_start))
        .route("/auth/passkeys", get(passkeys::list))
        .route(
            "/auth/passkeys/{id}",
            patch(passkeys::rename).delete(passkeys::delete),
        )
        .route(
            "/auth/passkeys/register/start",
            post(passkeys::register_start),
        )
        .route(
            "/auth/passkeys/register/finish",
            post(passkeys::register_finish),
        )
        .route("/auth/passkeys/login/start", post(passkeys::login_start))
        .route("/auth/passkeys/login/finish", post(passkeys::login_finish))
        .route("/auth/oauth/{provider}", get(oauth::start))
        .route("/auth/oauth/{provider}/callback", get(oauth::callback))
        .route("/auth/linked-accounts", get(oauth::linked))
        .route(
            "/auth/linked-accounts/{provider}",
            post(oauth::link).delete(oauth::unlink),
        )
        .route("/openapi.json", get(crate::http::openapi::serve))
        .layer(Extension(Surface::V1))
}
