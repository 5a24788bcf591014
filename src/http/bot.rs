//! The bot check (Cloudflare Turnstile) on sign-up, login and
//! forgot-password, when `turnstile.secret` is set. The token comes in the
//! `X-Captcha-Response` header or the body field `turnstile_token` /
//! `turnstileToken`. Missing or rejected: `403 CAPTCHA_FAILED`; a verifier
//! that cannot be reached in time: `503`, never a pass.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;

use crate::error::{AppError, ErrorCode};
use crate::service::Tessera;

const TIMEOUT: Duration = Duration::from_secs(5);

fn failed() -> AppError {
    AppError::new(ErrorCode::CaptchaFailed, "The bot check failed; try again.")
}

/// Middleware for the bot-checked routes; needs `Arc<Tessera>` in the
/// request extensions.
pub async fn check(req: Request, next: Next) -> Response {
    let Some(core) = req.extensions().get::<Arc<Tessera>>().cloned() else {
        return next.run(req).await;
    };
    let Some(secret) = core.config.turnstile.secret.clone() else {
        return next.run(req).await;
    };
    let (parts, body) = req.into_parts();
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
    let Some(token) = token.filter(|t| !t.is_empty() && t.len() <= 4096) else {
        return failed().into_response();
    };
    let remote_ip = parts
        .extensions
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip().to_string())
        .unwrap_or_default();
    let verdict = core
        .http_client
        .post(&core.config.turnstile.verify_url)
        .timeout(TIMEOUT)
        .form(&[
            ("secret", secret.expose_secret()),
            ("response", token.as_str()),
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
            Err(_) => {
                return AppError::unavailable("The bot check is unavailable.").into_response()
            }
        },
        Ok(_) | Err(_) => {
            tracing::warn!("the bot-check verifier did not answer");
            return AppError::unavailable("The bot check is unavailable; try again shortly.")
                .into_response();
        }
    };
    if !passed {
        return failed().into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}
