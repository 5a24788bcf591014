//! Extractors: JSON bodies and queries in the contract's error shape, and
//! what the network says about the client. The caller's credential is in
//! `surface.rs`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use crate::crypto::token::constant_time_eq;
use crate::error::{AppError, ErrorCode};
use crate::service::{ClientInfo, Tessera};

/// A JSON body. Malformed JSON and wrong content types are `400 BAD_REQUEST`,
/// oversized bodies `413 PAYLOAD_TOO_LARGE`, and well-formed bodies with
/// missing or wrong-typed fields `422 VALIDATION_FAILED` naming the field.
pub struct AppJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for AppJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json"
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            })
            .unwrap_or(false);
        if !is_json {
            return Err(AppError::bad_request(
                "Expected a JSON body with Content-Type: application/json.",
            ));
        }
        let bytes = read_body(req, state).await?;
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|_| AppError::bad_request("The request body is not valid JSON."))?;
        if !value.is_object() {
            return Err(AppError::field("body", "must be a JSON object"));
        }
        serde_path_to_error::deserialize(value)
            .map(AppJson)
            .map_err(|err| {
                let path = err.path().to_string();
                let inner = err.into_inner().to_string();
                let (field, reason) = match inner.strip_prefix("missing field `") {
                    Some(rest) => (
                        rest.split('`').next().unwrap_or("body").to_owned(),
                        "is required".to_owned(),
                    ),
                    None => {
                        let field = if path == "." { "body".to_owned() } else { path };
                        (field, type_reason(&inner))
                    }
                };
                AppError::field(&field, reason)
            })
    }
}

/// A JSON body that may be left out: no body at all is `T::default()`;
/// anything sent is read as [`AppJson`] reads it.
pub struct OptionalJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if req.headers().contains_key(header::CONTENT_TYPE) {
            return AppJson::from_request(req, state)
                .await
                .map(|AppJson(v)| OptionalJson(v));
        }
        let bytes = read_body(req, state).await?;
        if bytes.is_empty() {
            Ok(OptionalJson(T::default()))
        } else {
            Err(AppError::bad_request(
                "Expected a JSON body with Content-Type: application/json.",
            ))
        }
    }
}

/// The request body, within the body limit (`413` past it).
async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, AppError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::new(ErrorCode::PayloadTooLarge, "The request body is too large.")
        } else {
            AppError::bad_request("The request body could not be read.")
        }
    })
}

/// A reason for a wrong-typed field that names the expected type but never
/// repeats the value sent (it may be a password).
fn type_reason(serde_message: &str) -> String {
    let message = serde_message
        .split(" at line ")
        .next()
        .unwrap_or(serde_message);
    match message.rsplit_once(", expected ") {
        Some((_, expected)) => format!("has the wrong type: expected {expected}"),
        None => "is invalid".to_owned(),
    }
}

impl FromRequestParts<Arc<Tessera>> for ClientInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        core: &Arc<Tessera>,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let addr = peer.map(|peer| client_addr(peer, &parts.headers, &core.trusted_proxies));
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(512).collect());
        // A peer we do not trust relaying someone else (a proxy missing from
        // `trusted_proxies`) is not the client, so its address opens nothing.
        let relayed_by_stranger = peer.is_some_and(|p| {
            !core
                .trusted_proxies
                .iter()
                .any(|n| n.contains(&p.to_canonical()))
        }) && (parts.headers.contains_key("x-forwarded-for")
            || parts.headers.contains_key("forwarded"));
        Ok(ClientInfo {
            addr,
            ip: addr.map(|a| a.to_string()),
            user_agent,
            admin_allowed: !relayed_by_stranger
                && addr.is_some_and(|a| core.admin_allow_from.iter().any(|n| n.contains(&a))),
            device: crate::http::cookies::value(&parts.headers, crate::http::cookies::DEVICE),
        })
    }
}

/// The client's address: the socket peer, unless the peer is a trusted proxy;
/// then the right-most `X-Forwarded-For` entry that is not itself trusted.
/// Entries may carry a port (`203.0.113.7:4711`, `[2001:db8::1]:443`, as
/// some proxies and load balancers write them). An entry that is not an
/// address at all ends the walk at the peer: what lies left of it was
/// written by someone we cannot vouch for. Only `X-Forwarded-For` is read,
/// not `Forwarded` (RFC 7239): believing both would let a client supply
/// whichever one its proxy does not overwrite. IPv4-mapped IPv6 addresses
/// are read as IPv4 throughout.
pub(crate) fn client_addr(
    peer: IpAddr,
    headers: &axum::http::HeaderMap,
    trusted: &[ipnet::IpNet],
) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let mut last_trusted = None;
    for entry in entries.iter().rev() {
        match forwarded_addr(entry) {
            Some(ip) if is_trusted(&ip) => last_trusted = Some(ip),
            Some(ip) => return ip,
            None => return peer,
        }
    }
    // Every hop was a trusted proxy: the left-most is the nearest we know.
    last_trusted.unwrap_or(peer)
}

/// One `X-Forwarded-For` entry: an address, optionally with a port.
fn forwarded_addr(entry: &str) -> Option<IpAddr> {
    let ip = entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|a| a.ip()))
        .or_else(|_| {
            entry
                .strip_prefix('[')
                .and_then(|e| e.strip_suffix(']'))
                .unwrap_or_default()
                .parse::<IpAddr>()
        })
        .ok()?;
    Some(ip.to_canonical())
}

/// Whether a caller may use an operator endpoint (`GET /metrics`,
/// `GET /api/auth/validate`): it sends one of `secrets` as
/// `Authorization: Bearer`, or sends no credential and its address is in
/// `admin_allow_from`. A wrong bearer is refused even from an allowed
/// address (a bad credential never falls through). Loopback gets nothing
/// by itself: on a machine shared with a reverse proxy, other services or
/// other users, "from 127.0.0.1" says nothing about who is asking.
pub fn operator_access(
    headers: &axum::http::HeaderMap,
    client: &ClientInfo,
    secrets: &[Option<&secrecy::SecretString>],
) -> bool {
    use secrecy::ExposeSecret;
    match headers.get(header::AUTHORIZATION) {
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .is_some_and(|sent| {
                secrets
                    .iter()
                    .flatten()
                    .any(|secret| constant_time_eq(sent, secret.expose_secret()))
            }),
        None => client.admin_allowed,
    }
}

/// Query parameters; a malformed query is `422 VALIDATION_FAILED`.
pub struct AppQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for AppQuery<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(AppQuery)
            .map_err(|err| {
                let field = err.path().to_string();
                let field = if field == "." {
                    "query".to_owned()
                } else {
                    field
                };
                AppError::field(&field, type_reason(&err.into_inner().to_string()))
            })
    }
}

/// Spends one of the client IP's credential requests (login, sign-up,
/// recovery); `429 RATE_LIMITED` with `Retry-After` past the budget.
pub struct CredentialLimit;

impl FromRequestParts<Arc<Tessera>> for CredentialLimit {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        core: &Arc<Tessera>,
    ) -> Result<Self, Self::Rejection> {
        let Ok(client) = ClientInfo::from_request_parts(parts, core).await;
        core.limit_credentials(client.addr).await?;
        Ok(CredentialLimit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue};

    fn resolve(peer: &str, xff: &[&str], trusted: &[&str]) -> String {
        let mut headers = HeaderMap::new();
        for value in xff {
            headers.append("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        }
        let trusted: Vec<ipnet::IpNet> = trusted.iter().map(|n| n.parse().unwrap()).collect();
        client_addr(peer.parse().unwrap(), &headers, &trusted).to_string()
    }

    #[test]
    fn forwarded_entries_may_carry_ports() {
        let proxy = ["127.0.0.1/32"];
        assert_eq!(
            resolve("127.0.0.1", &["203.0.113.7:4711"], &proxy),
            "203.0.113.7"
        );
        assert_eq!(
            resolve("127.0.0.1", &["[2001:db8::1]:443"], &proxy),
            "2001:db8::1"
        );
        assert_eq!(
            resolve("127.0.0.1", &["[2001:db8::1]"], &proxy),
            "2001:db8::1"
        );
        assert_eq!(
            resolve("127.0.0.1", &["2001:db8::1"], &proxy),
            "2001:db8::1"
        );
        // The right-most entry is the proxy's, whatever the client prepended.
        assert_eq!(
            resolve("127.0.0.1", &["198.51.100.9", "203.0.113.7:80"], &proxy),
            "203.0.113.7"
        );
        assert_eq!(
            resolve("127.0.0.1", &["198.51.100.9, 203.0.113.7:80"], &proxy),
            "203.0.113.7"
        );
    }

    #[test]
    fn only_a_trusted_peer_is_believed_and_junk_stops_the_walk() {
        assert_eq!(resolve("192.0.2.8", &["203.0.113.7"], &[]), "192.0.2.8");
        let proxies = ["127.0.0.1/32", "10.0.0.0/8"];
        // Hops through trusted proxies are skipped.
        assert_eq!(
            resolve("127.0.0.1", &["203.0.113.7, 10.1.2.3"], &proxies),
            "203.0.113.7"
        );
        // An entry that is no address: nothing left of it is believed.
        assert_eq!(
            resolve("127.0.0.1", &["203.0.113.7, unknown"], &proxies),
            "127.0.0.1"
        );
        assert_eq!(resolve("127.0.0.1", &[], &proxies), "127.0.0.1");
    }

    #[test]
    fn mapped_ipv4_is_ipv4() {
        // A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d.
        assert_eq!(
            resolve("::ffff:127.0.0.1", &["::ffff:192.0.2.1"], &["127.0.0.1/32"]),
            "192.0.2.1"
        );
        assert_eq!(resolve("::ffff:192.0.2.1", &[], &[]), "192.0.2.1");
    }
}
