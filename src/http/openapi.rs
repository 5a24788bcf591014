//! The OpenAPI document, generated from the handlers' annotations.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::v1::views;
use crate::error::ErrorCode;
use crate::http::error::ErrorBody;

/// The document's frame: its description, shared schemas, security and
/// tags. The operations come from the routers (see `http::router`).
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
    components(schemas(ErrorBody, ErrorCode, views::UserView, views::TenantView, views::InviteView)),
    modifiers(&Security),
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

/// The finished document, serialised once: `GET /api/v1/openapi.json`.
#[derive(Clone)]
pub struct Document(axum::body::Bytes);

impl Document {
    /// Completes the routers' document (the answers every operation may
    /// give) and serialises it.
    pub fn new(mut openapi: utoipa::openapi::OpenApi) -> Document {
        CommonAnswers.modify(&mut openapi);
        Document(serde_json::to_vec(&openapi).unwrap_or_default().into())
    }
}

impl axum::response::IntoResponse for Document {
    fn into_response(self) -> axum::response::Response {
        (
            [(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/json"),
            )],
            self.0,
        )
            .into_response()
    }
}
