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
    if core.config.turnstile.secret.is_none() {
        return next.run(req).await;
    }
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
    // The resolved client (the contract's `remoteip`), not the proxy in
    // front of it.
    let remote_ip = parts
        .extensions
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|ConnectInfo(a)| {
            crate::http::extract::client_addr(a.ip(), &parts.headers, &core.trusted_proxies)
                .to_string()
        })
        .unwrap_or_default();
    if let Err(err) = verify(&core, token.as_deref(), &remote_ip).await {
        return err.into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Checks a bot-check token with the verifier (a pass when the check is
/// off). Missing or rejected: `403 CAPTCHA_FAILED`; a verifier that does not
/// answer in time: `503`, never a pass.
pub async fn verify(core: &Tessera, token: Option<&str>, remote_ip: &str) -> Result<(), AppError> {
    let Some(secret) = core.config.turnstile.secret.as_ref() else {
        return Ok(());
    };
    let Some(token) = token.filter(|t| !t.is_empty() && t.len() <= 4096) else {
        return Err(failed());
    };
    let verdict = core
        .http_client
        .post(&core.config.turnstile.verify_url)
        .timeout(TIMEOUT)
        .form(&[
            ("secret", secret.expose_secret()),
            ("response", token),
            ("remoteip", remote_ip),
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
