//! The canonical surface, `/api/v1`.

use std::sync::Arc;

use axum::middleware::from_fn_with_state;
use axum::Extension;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

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

/// The routes of `/api/v1`, each declared once: its path and method come
/// from the handler's `#[utoipa::path]`, which also documents it.
pub fn router(core: &Arc<Tessera>) -> OpenApiRouter<Arc<Tessera>> {
    // Sign-up, login and recovery pass the bot check first.
    let bot = || from_fn_with_state(core.clone(), bot::check);
    OpenApiRouter::new()
        .routes(routes!(health::live))
        .routes(routes!(health::ready))
        .routes(routes!(auth::signup).map(|r| r.route_layer(bot())))
        .routes(routes!(auth::login).map(|r| r.route_layer(bot())))
        .routes(routes!(auth::forgot_password).map(|r| r.route_layer(bot())))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::csrf))
        .routes(routes!(auth::me, auth::update_me))
        .routes(routes!(auth::export))
        .routes(routes!(auth::reset_password))
        .routes(routes!(auth::change_password))
        .routes(routes!(auth::set_password))
        .routes(routes!(auth::verify_email))
        .routes(routes!(auth::resend_verification))
        .routes(routes!(auth::token))
        .routes(routes!(auth::switch_tenant))
        .routes(routes!(tokens::create, tokens::list))
        .routes(routes!(tokens::revoke))
        .routes(routes!(sessions::list, sessions::revoke_others))
        .routes(routes!(sessions::revoke))
        .routes(routes!(tenants::list, tenants::create))
        .routes(routes!(tenants::get, tenants::rename, tenants::delete))
        .routes(routes!(tenants::members))
        .routes(routes!(tenants::change_role, tenants::remove_member))
        .routes(routes!(tenants::invites, tenants::invite))
        .routes(routes!(tenants::revoke_invite))
        .routes(routes!(tenants::audit))
        .routes(routes!(tenants::my_invites))
        .routes(routes!(tenants::accept))
        .routes(routes!(admin::list_users))
        .routes(routes!(
            admin::get_user,
            admin::update_user,
            admin::delete_user
        ))
        .routes(routes!(admin::validate_plans))
        .routes(routes!(admin::audit))
        .routes(routes!(mfa::status))
        .routes(routes!(mfa::totp_setup))
        .routes(routes!(mfa::totp_enable))
        .routes(routes!(mfa::disable))
        .routes(routes!(mfa::backup_codes))
        .routes(routes!(mfa::verify))
        .routes(routes!(mfa::passkey_start))
        .routes(routes!(passkeys::list))
        .routes(routes!(passkeys::rename, passkeys::delete))
        .routes(routes!(passkeys::register_start))
        .routes(routes!(passkeys::register_finish))
        .routes(routes!(passkeys::login_start))
        .routes(routes!(passkeys::login_finish))
        .routes(routes!(oauth::start))
        .routes(routes!(oauth::callback))
        .routes(routes!(oauth::linked))
        .routes(routes!(oauth::link, oauth::unlink))
        .layer(Extension(Surface::V1))
}
