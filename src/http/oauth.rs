//! The browser side of social login, shared by the three surfaces: the state
//! cookie that binds a sign-in to the browser that started it, and the
//! redirects.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cookie::time::Duration;
use url::Url;

use crate::error::{AppError, AppResult, ErrorCode};
use crate::http::cookies;
use crate::service::{
    CallbackParams, ClientInfo, LoginOutcome, OAuthCallback, OAuthResult, StartedOAuth, Tessera,
};
use crate::store::User;

/// Holds the state of the sign-in in progress; `SameSite=Lax` so the
/// provider's top-level redirect back carries it.
const STATE_COOKIE: &str = "tessera_oauth";

fn state_cookie(core: &Tessera, value: &str, max_age: Duration) -> HeaderValue {
    cookies::set(core, STATE_COOKIE, value, "/", Some(max_age))
}

/// Starts a sign-in: the provider's URL and the cookie to set.
pub async fn start(
    core: &Tessera,
    provider: &str,
    callback: OAuthCallback,
    redirect_to: Option<&str>,
    link_user: Option<&User>,
) -> AppResult<(Url, HeaderValue)> {
    let StartedOAuth {
        authorize_url,
        state,
    } = core
        .oauth_start(provider, callback, redirect_to, link_user)
        .await?;
    let ttl = crate::service::OAUTH_STATE_TTL.num_seconds();
    Ok((
        authorize_url,
        state_cookie(core, &state, Duration::seconds(ttl)),
    ))
}

/// Finishes a sign-in; the state cookie is cleared whatever happens next.
async fn finish(
    core: &Tessera,
    provider: &str,
    params: CallbackParams,
    headers: &HeaderMap,
    client: &ClientInfo,
) -> (AppResult<OAuthResult>, HeaderValue) {
    let cookie = cookies::value(headers, STATE_COOKIE);
    let result = core
        .oauth_callback(provider, params, cookie.as_deref(), client)
        .await;
    (result, state_cookie(core, "", Duration::ZERO))
}

/// `302 Found` to `to`, setting `cookies`.
pub fn redirect(to: &Url, cookies: impl IntoIterator<Item = HeaderValue>) -> Response {
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(to.as_str()) {
        headers.insert(header::LOCATION, location);
    }
    for cookie in cookies {
        headers.append(header::SET_COOKIE, cookie);
    }
    response
}

/// Where a failed callback ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackErrors {
    /// The error as a JSON body (the canonical API).
    Json,
    /// Back in the browser: a redirect to the application URL with
    /// `?error=<code>` (`/api/auth` and `/auth`: the callback ends on the app).
    ToApp,
}

/// The `error` code a failed callback hands the application: the
/// provider's own (`access_denied` when the user pressed cancel), else what
/// went wrong here.
fn callback_error_code(provider_error: Option<&str>, err: &AppError) -> String {
    if let Some(code) = provider_error {
        let code: String = code
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        if !code.is_empty() {
            return code;
        }
    }
    match err.code {
        ErrorCode::BadRequest => "invalid_state".into(),
        ErrorCode::Unauthorized => "sign_in_failed".into(),
        ErrorCode::Conflict | ErrorCode::UserExists => "account_conflict".into(),
        ErrorCode::Forbidden | ErrorCode::EmailNotVerified => "access_denied".into(),
        ErrorCode::Unavailable => "temporarily_unavailable".into(),
        _ => "server_error".into(),
    }
}

/// The answer to a provider's redirect back, on any surface: the session
/// in `session_cookie` and a redirect, or the error (`errors` says how);
/// the state cookie is cleared either way.
pub async fn callback_response(
    core: &Tessera,
    provider: &str,
    params: CallbackParams,
    headers: &HeaderMap,
    client: &ClientInfo,
    session_cookie: &'static str,
    errors: CallbackErrors,
) -> Response {
    let provider_error = params.error.clone();
    let (result, clear) = finish(core, provider, params, headers, client).await;
    match result {
        Ok(OAuthResult::SignedIn {
            outcome,
            redirect_to,
        }) => {
            match *outcome {
                LoginOutcome::LoggedIn {
                    secret, session, ..
                } => redirect(
                    &redirect_to,
                    [
                        clear,
                        cookies::set_session(core, session_cookie, &secret, session.expires_at),
                    ],
                ),
                // 2FA on: no session yet; the app finishes the second step,
                // with the challenge in a short-lived cookie (never in the
                // URL, which browsers, proxies and `Referer` pass on).
                LoginOutcome::TwoFactorRequired { challenge } => {
                    let mut to = redirect_to;
                    to.query_pairs_mut()
                        .append_pair("two_factor_required", "true");
                    redirect(&to, [clear, cookies::set_two_factor(core, &challenge)])
                }
            }
        }
        Ok(OAuthResult::Linked { redirect_to }) => redirect(&redirect_to, [clear]),
        Err(err) if errors == CallbackErrors::ToApp => {
            let mut to = core.config.app_url().clone();
            to.query_pairs_mut().append_pair(
                "error",
                &callback_error_code(provider_error.as_deref(), &err),
            );
            tracing::info!(code = ?err.code, message = %err.message, "social sign-in ended without signing in");
            redirect(&to, [clear])
        }
        Err(err) => {
            let mut response = err.into_response();
            response.headers_mut().append(header::SET_COOKIE, clear);
            response
        }
    }
}
