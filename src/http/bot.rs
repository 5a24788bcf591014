//! The bot check (Cloudflare Turnstile) on sign-up, login and
//! forgot-password, when `turnstile.secret` is set. The token comes in the
//! `X-Captcha-Response` header or the body field `turnstile_token` /
//! `turnstileToken`. Missing or rejected: `403 CAPTCHA_FAILED`; a verifier
//! that cannot be reached in time: `503`, never a pass.
//!
//! The verifier is told the client's address as the rate limiter sees it
//! (`trusted_proxies` applied), so Cloudflare checks the token against the
//! browser that solved it, not against our proxy. The check fails closed:
//! when it cannot tell who the client is, or cannot find its
//! configuration, it answers `503` rather than let the request through.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::{FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;

use crate::error::{AppError, ErrorCode};
use crate::http::surface::Surface;
use crate::service::{ClientInfo, Tessera};

const TIMEOUT: Duration = Duration::from_secs(5);

fn failed() -> AppError {
    AppError::new(ErrorCode::CaptchaFailed, "The bot check failed; try again.")
}

/// The wiring of the check is broken: nothing to judge the request by.
fn miswired(what: &str) -> AppError {
    tracing::error!("the bot check cannot run: {what}; refusing the request");
    AppError::unavailable("The bot check is unavailable.")
}

/// Middleware for the bot-checked routes, wired with the state
/// (`from_fn_with_state`), so it cannot be mounted without what it needs.
pub async fn check(State(core): State<Arc<Tessera>>, req: Request, next: Next) -> Response {
    if core.config.turnstile.secret.is_none() {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    // The same address the rate limiter and the sessions see.
    let Ok(client) = ClientInfo::from_request_parts(&mut parts, &core).await;
    let bytes = match to_bytes(body, core.config.http.body_limit_bytes).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return AppError::new(ErrorCode::PayloadTooLarge, "The request body is too large.")
                .into_response()
        }
    };
    let from_header = parts
        .headers
        .get("x-captcha-response")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let token = from_header.or_else(|| {
        let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        ["turnstile_token", "turnstileToken"]
            .iter()
            .find_map(|k| value.get(*k).and_then(|v| v.as_str()).map(str::to_owned))
    });
    if let Err(mut err) = verify(&core, token.as_deref(), client.addr).await {
        // `/auth` clients expect a failed bot check as `403 FORBIDDEN`;
        // the other surfaces say `CAPTCHA_FAILED`.
        if err.code == ErrorCode::CaptchaFailed && Surface::of(&parts) == Surface::Dashboard {
            err.code = ErrorCode::Forbidden;
        }
        return err.into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Checks a bot-check token with the verifier (a pass when the check is
/// off), for the client at `client_ip` (resolved through
/// `trusted_proxies`). Missing or rejected: `403 CAPTCHA_FAILED`; a verifier
/// that does not answer in time, or no client address to send it: `503`,
/// never a pass.
pub async fn verify(
    core: &Tessera,
    token: Option<&str>,
    client_ip: Option<IpAddr>,
) -> Result<(), AppError> {
    let Some(secret) = core.config.turnstile.secret.as_ref() else {
        return Ok(());
    };
    let Some(token) = token.filter(|t| !t.is_empty() && t.len() <= 4096) else {
        return Err(failed());
    };
    let Some(client_ip) = client_ip else {
        return Err(miswired(
            "no client address (the server runs without connection info)",
        ));
    };
    let remote_ip = client_ip.to_string();
    let verdict = core
        .http_client
        .post(&core.config.turnstile.verify_url)
        .timeout(TIMEOUT)
        .form(&[
            ("secret", secret.expose_secret()),
            ("response", token),
            ("remoteip", remote_ip.as_str()),
        ])
        .send()
        .await;
    let passed = match verdict {
        Ok(res) if res.status().is_success() => match res.json::<serde_json::Value>().await {
            Ok(body) => body
                .get("success")
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
            Err(_) => return Err(AppError::unavailable("The bot check is unavailable.")),
        },
        Ok(_) | Err(_) => {
            tracing::warn!("the bot-check verifier did not answer");
            return Err(AppError::unavailable(
                "The bot check is unavailable; try again shortly.",
            ));
        }
    };
    if passed {
        Ok(())
    } else {
        Err(failed())
    }
}
