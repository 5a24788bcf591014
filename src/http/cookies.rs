//! Tessera's cookies: all `HttpOnly; SameSite=Lax`, `Secure` on https.

use axum::http::{header, HeaderMap, HeaderValue};
use chrono::{DateTime, Utc};
use cookie::time::{Duration, OffsetDateTime};
use cookie::{Cookie, SameSite};

use crate::service::Tessera;

/// The device cookie (see `crypto::device`): set after every sign-in.
pub const DEVICE: &str = "tessera_device";

/// The device cookie for a new sign-in, lasting `security.device_cookie_days`.
pub fn set_device(core: &Tessera, value: &str) -> HeaderValue {
    let days = i64::from(core.config.security.device_cookie_days);
    set(core, DEVICE, value, "/", Some(Duration::days(days)))
}

pub fn set_session(
    core: &Tessera,
    name: &'static str,
    secret: &str,
    expires_at: DateTime<Utc>,
) -> HeaderValue {
    let max_age = (expires_at - core.clock.now()).num_seconds().max(0);
    set(core, name, secret, "/", Some(Duration::seconds(max_age)))
}

/// A cookie for `path`; without `max_age` it lasts as long as the browser.
pub fn set(
    core: &Tessera,
    name: &'static str,
    value: &str,
    path: &'static str,
    max_age: Option<Duration>,
) -> HeaderValue {
    let mut cookie = Cookie::build((name, value))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path(path)
        .secure(core.config.cookie_secure());
    if let Some(max_age) = max_age {
        cookie = cookie.max_age(max_age);
    }
    header_value(cookie.build())
}

/// Values of one cookie name tried as credentials, at most: enough for
/// the copies a browser may hold (one per path or domain), too few for a
/// request to make the server look up hundreds of secrets.
pub const MAX_VALUES: usize = 4;

/// Every distinct value the request carries for the cookie `name`, in the
/// order sent, at most [`MAX_VALUES`]. A browser sends one copy per path
/// and domain it has, and a sibling subdomain can plant one of its own
/// (cookie tossing), so the first copy is not necessarily the right one.
pub fn values(headers: &HeaderMap, name: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let all = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| Cookie::split_parse(v).flatten())
        .filter(|c| c.name() == name);
    for cookie in all {
        if found.len() == MAX_VALUES {
            break;
        }
        if !found.iter().any(|v| v == cookie.value()) {
            found.push(cookie.value().to_owned());
        }
    }
    found
}

/// The value of the cookie `name` the request carries, if any (the first
/// copy: for cookies that are not credentials, see [`values`]).
pub fn value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| Cookie::split_parse(v).flatten())
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// Carries the 2FA challenge from a social sign-in to its second step. A
/// redirect's URL would leave it in browser history, server logs and
/// `Referer` headers; this cookie is `HttpOnly` and lives as long as the
/// challenge.
pub const TWO_FACTOR: &str = "tessera_2fa";

pub fn set_two_factor(core: &Tessera, challenge: &str) -> HeaderValue {
    let ttl = crate::service::TWO_FACTOR_CHALLENGE_TTL.num_seconds();
    set(
        core,
        TWO_FACTOR,
        challenge,
        "/",
        Some(Duration::seconds(ttl)),
    )
}

/// The challenge of a second step: the one the client sent, else the one a
/// social sign-in left in [`TWO_FACTOR`].
pub fn two_factor_challenge(sent: Option<&str>, headers: &HeaderMap) -> String {
    sent.filter(|c| !c.is_empty())
        .map(str::to_owned)
        .or_else(|| value(headers, TWO_FACTOR))
        .unwrap_or_default()
}

/// After a second step that signed in: the [`TWO_FACTOR`] cookie, if the
/// request carried one, is cleared.
pub fn clear_two_factor_on_success(
    core: &Tessera,
    headers: &HeaderMap,
    mut response: axum::response::Response,
) -> axum::response::Response {
    if response.status().is_success() && value(headers, TWO_FACTOR).is_some() {
        response
            .headers_mut()
            .append(header::SET_COOKIE, clear_session(core, TWO_FACTOR));
    }
    response
}

/// An expired cookie named `name` (a session's, or [`TWO_FACTOR`]).
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
