//! The OpenAPI document, generated from the handlers' annotations.

use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::v1::{admin, auth, health, mfa, oauth, passkeys, sessions, tenants, tokens, views};
use crate::error::{ErrorBody, ErrorCode};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tessera",
        description = "Self-hosted authentication: accounts, sessions, tenants and tokens.\n\n\
            Browser clients authenticate with the `ces_session` cookie and send `X-CSRF-Token` \
            (from `GET /api/v1/auth/csrf`) on POST, PUT, PATCH and DELETE. Servers and scripts \
            send `Authorization: Bearer` with a personal access token (`tsr_pat_…`), a JWT from \
            `POST /api/v1/auth/token`, or a session token. Every error body is \
            `{code, message, fields?}`: BAD_REQUEST 400 (malformed JSON, wrong content type), \
            VALIDATION_FAILED 422 (`fields` names each bad field), UNAUTHORIZED 401, FORBIDDEN 403, \
            CSRF_FAILED 403, NOT_FOUND 404, METHOD_NOT_ALLOWED 405, USER_EXISTS 409, CONFLICT 409, \
            PAYLOAD_TOO_LARGE 413, RATE_LIMITED and ACCOUNT_LOCKED 429, INTERNAL 500, UNAVAILABLE 503 \
            (with Retry-After: the database or another dependency is down, or the server is busy)."
    ),
    paths(
        health::health, health::live, health::ready,
        auth::signup, auth::login, auth::logout, auth::refresh, auth::csrf, auth::me, auth::update_me,
        auth::forgot_password, auth::reset_password, auth::change_password, auth::set_password,
        auth::verify_email, auth::resend_verification, auth::token, auth::jwks,
        tokens::create, tokens::list, tokens::revoke,
        auth::switch_tenant, sessions::list, sessions::revoke, sessions::revoke_others,
        tenants::list, tenants::create, tenants::get, tenants::rename, tenants::delete,
        tenants::members, tenants::change_role, tenants::remove_member,
        tenants::invite, tenants::invites, tenants::revoke_invite, tenants::audit,
        tenants::my_invites, tenants::accept,
        admin::list_users, admin::get_user, admin::update_user, admin::delete_user,
        admin::validate_plans, admin::audit,
        super::legacy::validate, super::legacy::login, super::legacy::logout, super::legacy::me,
        super::legacy::register, super::legacy::signup, super::legacy::signup_invite,
        super::legacy::password, super::legacy::forgot_password, super::legacy::reset_password,
        super::legacy::google, super::legacy::google_callback, super::legacy::verify_two_factor,
        super::legacy::refresh,
        mfa::status, mfa::totp_setup, mfa::totp_enable, mfa::disable, mfa::backup_codes, mfa::verify,
        mfa::passkey_start, passkeys::register_start, passkeys::register_finish, passkeys::list,
        passkeys::rename, passkeys::delete, passkeys::login_start, passkeys::login_finish,
        oauth::start, oauth::callback, oauth::linked, oauth::link, oauth::unlink,
    ),
    components(schemas(ErrorBody, ErrorCode, views::UserView, views::TenantView, views::InviteView)),
    modifiers(&Security, &CommonAnswers),
    security(("session_cookie" = []), ("bearer" = [])),
    tags(
        (name = "health", description = "Probes"),
        (name = "auth", description = "Accounts and sessions"),
        (name = "tokens", description = "Personal access tokens"),
        (name = "sessions", description = "My sessions"),
        (name = "tenants", description = "Tenants, members and invitations"),
        (name = "2fa", description = "Two-factor authentication"),
        (name = "passkeys", description = "Passkeys (WebAuthn)"),
        (name = "oauth", description = "Social login and linked accounts"),
        (name = "admin", description = "Global administration (admins only)"),
        (name = "legacy", description = "The /api/auth surface"),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                crate::http::surface::SESSION_COOKIE,
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A personal access token, a JWT, or a session token"))
                    .build(),
            ),
        );
    }
}

/// Answers any API operation may give whatever it does, from the layers
/// around every handler: malformed or oversized input, missing or bad
/// credentials, CSRF and Origin refusals, rate limits and lockout, and the
/// hash pool or a timeout refusing work. Added where a handler's own list
/// lacks them, so clients (and schemathesis) find every status documented.
struct CommonAnswers;

const COMMON_ANSWERS: [(&str, &str); 7] = [
    (
        "400",
        "BAD_REQUEST: malformed JSON, wrong Content-Type, or a bad parameter",
    ),
    (
        "401",
        "UNAUTHORIZED: missing, expired or revoked credentials",
    ),
    ("403", "FORBIDDEN, CSRF_FAILED, CAPTCHA_FAILED or EMAIL_NOT_VERIFIED"),
    ("413", "PAYLOAD_TOO_LARGE"),
    ("422", "VALIDATION_FAILED; `fields` names each bad field"),
    ("429", "RATE_LIMITED or ACCOUNT_LOCKED, with Retry-After"),
    (
        "503",
        "UNAVAILABLE, with Retry-After: overloaded, timed out, or a dependency (the database) is down; never a 500",
    ),
];

impl Modify for CommonAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        for (path, item) in openapi.paths.paths.iter_mut() {
            if path.contains("/health") || path.ends_with("/openapi.json") {
                continue;
            }
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                for (status, description) in COMMON_ANSWERS {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| {
                            ResponseBuilder::new()
                                .description(description)
                                .content(
                                    "application/json",
                                    ContentBuilder::new()
                                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                                        .build(),
                                )
                                .build()
                                .into()
                        });
                }
            }
        }
    }
}

/// `GET /api/v1/openapi.json`
pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
