//! Session cookies: `HttpOnly; SameSite=Lax; Path=/`, `Secure` on https.

use axum::http::HeaderValue;
use chrono::{DateTime, Utc};
use cookie::time::{Duration, OffsetDateTime};
use cookie::{Cookie, SameSite};

use crate::service::Tessera;

pub fn set_session(
    core: &Tessera,
    name: &'static str,
    secret: &str,
    expires_at: DateTime<Utc>,
) -> HeaderValue {
    let max_age = (expires_at - core.clock.now()).num_seconds().max(0);
    let cookie = Cookie::build((name, secret))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .secure(core.config.cookie_secure())
        .max_age(Duration::seconds(max_age));
    header_value(cookie.build())
}

pub fn clear_session(core: &Tessera, name: &'static str) -> HeaderValue {
    let cookie = Cookie::build((name, ""))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .secure(core.config.cookie_secure())
        .max_age(Duration::ZERO)
        .expires(OffsetDateTime::UNIX_EPOCH);
    header_value(cookie.build())
}

fn header_value(cookie: Cookie<'_>) -> HeaderValue {
    // Cookie values are base64url and names are fixed: always a valid header.
    HeaderValue::from_str(&cookie.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
}
