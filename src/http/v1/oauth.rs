//! `/api/v1/auth/oauth/*` and `/api/v1/auth/linked-accounts`: social login
//! and the providers linked to an account.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::AppResult;
use crate::http::error::ErrorBody;
use crate::http::extract::{AppJson, AppQuery, CredentialLimit};
use crate::http::oauth;
use crate::http::surface::{AnyPrincipal, SignedInSession, Surface};
use crate::service::{CallbackParams, ClientInfo, OAuthCallback, Tessera};

#[derive(Deserialize, IntoParams)]
pub struct StartQuery {
    /// Where to go after signing in: the app's origin, the public origin or
    /// a `cors_origins` entry; anything else falls back to the app URL.
    pub redirect_to: Option<String>,
}

/// Sign in with a provider: redirects to it with state, nonce and PKCE.
#[utoipa::path(get, path = "/api/v1/auth/oauth/{provider}", tag = "oauth",
    params(("provider" = String, Path), StartQuery),
    responses(
        (status = 302, description = "To the provider; sets the `tessera_oauth` state cookie"),
        (status = 404, description = "No such provider configured", body = ErrorBody),
        (status = 503, description = "The provider cannot be reached", body = ErrorBody),
    ))]
pub async fn start(
    State(core): State<Arc<Tessera>>,
    _limit: CredentialLimit,
    Path(provider): Path<String>,
    AppQuery(q): AppQuery<StartQuery>,
) -> AppResult<Response> {
    let (to, cookie) = oauth::start(
        &core,
        &provider,
        OAuthCallback::Api,
        q.redirect_to.as_deref(),
        None,
    )
    .await?;
    Ok(oauth::redirect(&to, [cookie]))
}

#[derive(Deserialize, IntoParams)]
pub struct CallbackQuery {
    pub state: Option<String>,
    pub code: Option<String>,
    pub error: Option<String>,
}

impl From<CallbackQuery> for CallbackParams {
    fn from(q: CallbackQuery) -> Self {
        CallbackParams {
            state: q.state,
            code: q.code,
            error: q.error,
        }
    }
}

/// The provider's redirect back: signs in (sets `ces_session`) or finishes a
/// link, then redirects to `redirect_to` or the app URL.
#[utoipa::path(get, path = "/api/v1/auth/oauth/{provider}/callback", tag = "oauth",
    params(("provider" = String, Path), CallbackQuery),
    responses(
        (status = 302, description = "Signed in (sets `ces_session`) or linked; with 2FA on, `?two_factor_required=true` and the challenge in the `tessera_2fa` cookie (HttpOnly, 5 minutes) for `/api/v1/auth/2fa/verify`"),
        (status = 400, description = "Missing, mismatched, expired or reused state", body = ErrorBody),
        (status = 401, description = "The provider refused, or its answer failed verification", body = ErrorBody),
        (status = 403, description = "The provider has not verified the email, or the account is disabled", body = ErrorBody),
        (status = 409, description = "The email belongs to an account that must link explicitly", body = ErrorBody),
    ))]
pub async fn callback(
    State(core): State<Arc<Tessera>>,
    Path(provider): Path<String>,
    client: ClientInfo,
    headers: HeaderMap,
    AppQuery(q): AppQuery<CallbackQuery>,
) -> Response {
    oauth::callback_response(
        &core,
        &provider,
        q.into(),
        &headers,
        &client,
        Surface::V1.session_cookie(),
        oauth::CallbackErrors::Json,
    )
    .await
}

#[derive(Serialize, ToSchema)]
pub struct LinkedAccount {
    pub provider: String,
    pub email: Option<String>,
    pub linked_at: DateTime<Utc>,
}

/// The providers linked to my account.
#[utoipa::path(get, path = "/api/v1/auth/linked-accounts", tag = "oauth",
    responses((status = 200, body = [LinkedAccount]), (status = 401, body = ErrorBody)))]
pub async fn linked(
    State(core): State<Arc<Tessera>>,
    AnyPrincipal(p): AnyPrincipal,
) -> AppResult<Json<Vec<LinkedAccount>>> {
    let identities = core.linked_accounts(&p.user).await?;
    Ok(Json(
        identities
            .into_iter()
            .map(|i| LinkedAccount {
                provider: i.provider,
                email: i.email,
                linked_at: i.created_at,
            })
            .collect(),
    ))
}

#[derive(Deserialize, ToSchema)]
pub struct LinkBody {
    pub redirect_to: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct LinkStarted {
    /// Send the browser here; the provider comes back to the callback.
    pub url: String,
}

/// Link another provider to my account (needs a session): answers the
/// provider URL to send the browser to.
#[utoipa::path(post, path = "/api/v1/auth/linked-accounts/{provider}", tag = "oauth",
    params(("provider" = String, Path)), request_body = LinkBody,
    responses(
        (status = 200, description = "Sets the `tessera_oauth` state cookie", body = LinkStarted),
        (status = 401, body = ErrorBody),
        (status = 403, description = "EMAIL_NOT_VERIFIED: the address is not verified yet", body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
pub async fn link(
    State(core): State<Arc<Tessera>>,
    Path(provider): Path<String>,
    SignedInSession { principal: p, .. }: SignedInSession,
    AppJson(body): AppJson<LinkBody>,
) -> AppResult<Response> {
    let (to, cookie) = oauth::start(
        &core,
        &provider,
        OAuthCallback::Api,
        body.redirect_to.as_deref(),
        Some(&p.user),
    )
    .await?;
    Ok((
        [(axum::http::header::SET_COOKIE, cookie)],
        Json(LinkStarted { url: to.into() }),
    )
        .into_response())
}

/// Unlink a provider; refused with 409 when it is the last way to sign in.
#[utoipa::path(delete, path = "/api/v1/auth/linked-accounts/{provider}", tag = "oauth",
    params(("provider" = String, Path)),
    responses(
        (status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "It is the only way left to sign in", body = ErrorBody),
    ))]
pub async fn unlink(
    State(core): State<Arc<Tessera>>,
    Path(provider): Path<String>,
    client: ClientInfo,
    AnyPrincipal(p): AnyPrincipal,
) -> AppResult<StatusCode> {
    core.unlink_provider(&p.user, &provider, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}
