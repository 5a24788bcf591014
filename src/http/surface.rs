//! What the three API surfaces (`/api/v1`, `/api/auth`, `/auth`) share,
//! so each of them only maps its own request and response shapes:
//!
//! - [`Surface`]: which one a request is on (a router extension), with its
//!   session cookie, its casing and its rule for cookie-authenticated
//!   writes (`X-CSRF-Token` on `/api/v1`, `Origin` on the others);
//! - the caller, stated in the handler's signature: [`AnyPrincipal`] (any
//!   credential), [`SessionUser`] (a credential backed by a session),
//!   [`SignedInSession`] (the session itself, not a token minted from it);
//! - [`login_answer`] and [`sign_out`]: the cookies of signing in and out;
//! - [`origin_allowed`]: the one `Origin` rule, also used by the pages.

use std::future::Future;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::response::{AppendHeaders, IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::crypto::token::{constant_time_eq, csrf_token_for};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::http::cookies;
use crate::service::{ClientInfo, Credential, LoginOutcome, Principal, PrincipalKind, Tessera};
use crate::store::{Session, User};

/// The session cookie of `/api/v1`, `/auth` and the hosted pages.
pub const SESSION_COOKIE: &str = "ces_session";
/// The session cookie of `/api/auth`.
pub const LEGACY_SESSION_COOKIE: &str = "auth_token";

/// The surface a request came in on; set as an extension by each surface's
/// router. A route without one is treated as `/api/v1` (the strictest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// `/api/v1`: cookie writes need the session's `X-CSRF-Token`.
    V1,
    /// `/api/auth`: cookie writes are checked by `Origin`.
    Legacy,
    /// `/auth`: cookie writes are checked by `Origin`; camelCase bodies;
    /// only session-backed credentials.
    Dashboard,
}

impl Surface {
    /// The surface of a request (its router's extension).
    pub fn of(parts: &Parts) -> Surface {
        parts
            .extensions
            .get::<Surface>()
            .copied()
            .unwrap_or(Surface::V1)
    }

    /// The cookie this surface signs in with.
    pub fn session_cookie(self) -> &'static str {
        match self {
            Surface::Legacy => LEGACY_SESSION_COOKIE,
            Surface::V1 | Surface::Dashboard => SESSION_COOKIE,
        }
    }

    /// The session cookies read on this surface: its own first, then the
    /// other (a browser using two surfaces holds both, and the one its
    /// surface set is the one it means).
    fn session_cookies(self) -> [&'static str; 2] {
        match self {
            Surface::Legacy => [LEGACY_SESSION_COOKIE, SESSION_COOKIE],
            Surface::V1 | Surface::Dashboard => [SESSION_COOKIE, LEGACY_SESSION_COOKIE],
        }
    }

    /// The answer to a right password when a second factor is due: no
    /// cookie, the challenge in the surface's casing.
    pub fn two_factor_required(self, challenge: String) -> Response {
        match self {
            Surface::Dashboard => Json(json!({"twoFactorRequired": true, "challenge": challenge})),
            Surface::V1 | Surface::Legacy => {
                Json(json!({"two_factor_required": true, "challenge": challenge}))
            }
        }
        .into_response()
    }
}

/// Whether a request's `Origin` may write with a cookie: none sent (not a
/// browser's cross-site request), the public URL's origin, or (when
/// `cors_too`: the API surfaces, not the pages) an origin on `cors_origins`.
pub fn origin_allowed(core: &Tessera, headers: &HeaderMap, cors_too: bool) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let origin = origin.to_str().unwrap_or_default();
    origin == core.config.public_url.origin().ascii_serialization()
        || (cors_too
            && core
                .config
                .cors_origins
                .iter()
                .any(|o| o.trim_end_matches('/') == origin))
}

/// The session tokens in the request's cookies, the surface's own cookie
/// first, every distinct value of each (at most [`cookies::MAX_VALUES`]).
fn session_cookies(parts: &Parts) -> Vec<String> {
    Surface::of(parts)
        .session_cookies()
        .iter()
        .flat_map(|name| cookies::values(&parts.headers, name))
        .collect()
}

/// Any authenticated caller: a session (cookie or bearer), a PAT or a JWT.
/// Missing or bad credentials are `401`. Writes: a read-only token is
/// `403 FORBIDDEN`; with a cookie, on `/api/v1` a missing or wrong
/// `X-CSRF-Token` is `403 CSRF_FAILED`, on the other surfaces a foreign
/// `Origin` is `403 FORBIDDEN`.
pub struct AnyPrincipal(pub Principal);

impl FromRequestParts<Arc<Tessera>> for AnyPrincipal {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        core: &Arc<Tessera>,
    ) -> Result<Self, Self::Rejection> {
        // One header at most: the router answers two with 400
        // (`http::one_authorization`).
        let principal = match parts.headers.get(header::AUTHORIZATION) {
            Some(value) => {
                let token = value
                    .to_str()
                    .ok()
                    .and_then(|v| {
                        v.strip_prefix("Bearer ")
                            .or_else(|| v.strip_prefix("bearer "))
                    })
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(AppError::unauthorized)?;
                core.authenticate(Credential::Bearer(token)).await?
            }
            // Any valid session cookie authenticates: a stale or planted
            // copy sent first must not hide the one that works.
            None => {
                let mut found = None;
                for secret in session_cookies(parts) {
                    found = core.authenticate(Credential::Cookie(&secret)).await?;
                    if found.is_some() {
                        break;
                    }
                }
                found
            }
        }
        .ok_or_else(AppError::unauthorized)?;
        if !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
            check_write(parts, core, &principal)?;
        }
        Ok(AnyPrincipal(principal))
    }
}

/// The rules for a write, by credential and surface.
fn check_write(parts: &Parts, core: &Tessera, principal: &Principal) -> AppResult<()> {
    if !principal.may_write() {
        return Err(AppError::forbidden("This token has read-only scope."));
    }
    let PrincipalKind::Session {
        secret,
        from_cookie: true,
    } = &principal.kind
    else {
        return Ok(());
    };
    match Surface::of(parts) {
        Surface::Legacy | Surface::Dashboard => {
            if !origin_allowed(core, &parts.headers, true) {
                return Err(AppError::forbidden("Cross-origin request refused."));
            }
        }
        Surface::V1 => {
            let sent = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if !constant_time_eq(sent, &csrf_token_for(secret)) {
                return Err(AppError::new(
                    ErrorCode::CsrfFailed,
                    "Missing or invalid X-CSRF-Token; get one from GET /api/v1/auth/csrf.",
                ));
            }
        }
    }
    Ok(())
}

/// A caller whose credential is backed by a session: a session token
/// (cookie or bearer), or a JWT issued for one. A PAT, or a JWT exchanged
/// for one, is `401` (`/auth` is session-oriented: "use API keys for
/// workspace automation APIs, not account-auth lifecycle routes").
pub struct SessionUser(pub Principal);

impl FromRequestParts<Arc<Tessera>> for SessionUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        core: &Arc<Tessera>,
    ) -> Result<Self, Self::Rejection> {
        let AnyPrincipal(p) = AnyPrincipal::from_request_parts(parts, core).await?;
        if matches!(p.kind, PrincipalKind::Pat { .. }) || p.session.is_none() {
            return Err(AppError::new(
                ErrorCode::Unauthorized,
                "The /auth routes take a session, not a personal access token.",
            ));
        }
        Ok(SessionUser(p))
    }
}

/// The session itself (its token, from a cookie or as bearer), with its
/// id: what changing the password or the factors needs. Tokens (PATs, and
/// JWTs even when issued for a session) are `403`, so a leaked token cannot
/// take over the password or mint more credentials.
pub struct SignedInSession {
    pub principal: Principal,
    pub session_id: Uuid,
}

impl FromRequestParts<Arc<Tessera>> for SignedInSession {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        core: &Arc<Tessera>,
    ) -> Result<Self, Self::Rejection> {
        // On `/auth`, a token without a session is refused as there (401).
        let principal = match Surface::of(parts) {
            Surface::Dashboard => SessionUser::from_request_parts(parts, core).await?.0,
            Surface::V1 | Surface::Legacy => AnyPrincipal::from_request_parts(parts, core).await?.0,
        };
        match (&principal.kind, &principal.session) {
            (PrincipalKind::Session { .. }, Some(session)) => Ok(SignedInSession {
                session_id: session.id,
                principal,
            }),
            _ => Err(AppError::forbidden(
                "This needs a signed-in session, not a token.",
            )),
        }
    }
}

/// A sign-in that went through, as the surfaces' answers need it.
pub struct SignedIn {
    pub user: User,
    /// The session token (for a JWT issued for the new session).
    pub secret: String,
    pub session: Session,
}

impl SignedIn {
    /// The principal of the new session.
    pub fn principal(&self) -> Principal {
        Principal::for_new_session(self.user.clone(), self.secret.clone(), self.session.clone())
    }
}

/// A login's answer on `surface`: when signed in, the session cookie, the
/// device cookie and the body `body` makes; when a second factor is due,
/// the challenge and no cookie.
pub async fn login_answer<B, Fut>(
    core: &Tessera,
    surface: Surface,
    outcome: LoginOutcome,
    body: impl FnOnce(SignedIn) -> Fut,
) -> AppResult<Response>
where
    B: Serialize,
    Fut: Future<Output = AppResult<B>>,
{
    let (signed_in, device) = match outcome {
        LoginOutcome::LoggedIn {
            user,
            secret,
            session,
            device,
        } => (
            SignedIn {
                user,
                secret,
                session,
            },
            device,
        ),
        LoginOutcome::TwoFactorRequired { challenge } => {
            return Ok(surface.two_factor_required(challenge))
        }
    };
    let session = cookies::set_session(
        core,
        surface.session_cookie(),
        &signed_in.secret,
        signed_in.session.expires_at,
    );
    let device = cookies::set_device(core, &device);
    let body = body(signed_in).await?;
    // Two cookies: appended (an array of header pairs would keep only one).
    Ok((
        AppendHeaders([(header::SET_COOKIE, session), (header::SET_COOKIE, device)]),
        Json(body),
    )
        .into_response())
}

/// Ends the caller's session; answers the header that clears the surface's
/// cookie.
pub async fn sign_out(
    core: &Tessera,
    surface: Surface,
    principal: &Principal,
    client: &ClientInfo,
) -> AppResult<[(header::HeaderName, HeaderValue); 1]> {
    core.logout(principal, client).await?;
    Ok([(
        header::SET_COOKIE,
        cookies::clear_session(core, surface.session_cookie()),
    )])
}
