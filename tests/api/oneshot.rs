//! The fast tier: the router built in process and called with
//! `tower::ServiceExt::oneshot`, with no listener, no socket, no mail
//! catcher. It covers what the extractors and the error model answer before
//! any handler does real work: bodies that cannot be read, fields that are
//! missing, routes and methods that do not exist, credentials that are
//! missing or ambiguous.
//!
//! No `ConnectInfo` reaches the handlers here (no socket): `ClientInfo`
//! then has no address, which only the per-IP budgets and the bot check
//! look at, and none of the requests below gets that far.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use tempfile::TempDir;
use tower::ServiceExt;

use tessera::clock::OffsetClock;
use tessera::Config;

use crate::helpers::{fresh_database, PASSWORD};

/// Tessera's router on a fresh database, called in process.
struct OneShot {
    router: Router,
    _dir: TempDir,
}

/// One answer: status, headers and the body read as JSON (`Null` when it
/// is empty or not JSON; `text` keeps it as sent).
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
    body: Value,
}

impl OneShot {
    async fn new() -> OneShot {
        let (dir, database_url) = fresh_database().await;
        let config = Config {
            database_url,
            database_max_connections: 2,
            ..Config::default()
        };
        let core = tessera::open(config, Arc::new(OffsetClock::default()))
            .await
            .expect("tessera opens");
        OneShot {
            router: tessera::http::router(core),
            _dir: dir,
        }
    }

    async fn call(&self, req: Request<Body>) -> Answer {
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            text,
            body,
        }
    }

    /// `POST path` with `body` as `content_type`.
    async fn post(&self, path: &str, content_type: &str, body: impl Into<Body>) -> Answer {
        self.call(
            Request::post(path)
                .header(header::CONTENT_TYPE, content_type)
                .body(body.into())
                .unwrap(),
        )
        .await
    }

    async fn post_json(&self, path: &str, body: Value) -> Answer {
        self.post(path, "application/json", body.to_string()).await
    }

    async fn request(&self, method: Method, path: &str) -> Answer {
        self.call(
            Request::builder()
                .method(method)
                .uri(path)
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }
}

impl Answer {
    /// Asserts the contract's error shape (`code`, a non-empty `message`)
    /// with `status` and `code`; returns the body.
    fn error(&self, status: StatusCode, code: &str) -> &Value {
        assert_eq!(self.status, status, "{}", self.text);
        assert!(
            self.headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{:?}",
            self.headers
        );
        assert_eq!(self.body["code"], code, "{}", self.text);
        assert!(
            self.body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{}",
            self.text
        );
        &self.body
    }

    /// Asserts `422 VALIDATION_FAILED` naming `field`.
    fn names_field(&self, field: &str) {
        let body = self.error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
        assert!(body["fields"][field].is_string(), "{field}: {body}");
    }
}

/// Anonymous JSON endpoints on each surface, each with a valid body.
fn json_endpoints() -> Vec<(&'static str, Value)> {
    vec![
        (
            "/api/v1/auth/login",
            json!({"email": "a@example.test", "password": PASSWORD}),
        ),
        (
            "/api/v1/auth/signup",
            json!({"email": "a@example.test", "password": PASSWORD}),
        ),
        (
            "/api/v1/auth/forgot-password",
            json!({"email": "a@example.test"}),
        ),
        (
            "/api/auth/login",
            json!({"email": "a@example.test", "password": PASSWORD}),
        ),
        ("/api/auth/refresh", json!({"refresh_token": "r"})),
    ]
}

#[tokio::test]
async fn unreadable_bodies_are_400_bad_request() {
    let app = OneShot::new().await;
    for (path, valid) in json_endpoints() {
        for raw in ["{", "{\"email\": ", "not json", "\u{0}", ""] {
            app.post(path, "application/json", raw)
                .await
                .error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
        }
        // A JSON body sent as something else is not read.
        for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
            app.post(path, content_type, valid.to_string())
                .await
                .error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
        }
        let res = app
            .call(
                Request::post(path)
                    .body(Body::from(valid.to_string()))
                    .unwrap(),
            )
            .await;
        res.error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    }
}

#[tokio::test]
async fn well_formed_bodies_with_bad_fields_are_422_naming_the_field() {
    let app = OneShot::new().await;
    for (path, valid) in json_endpoints() {
        // Not an object: the body itself is named.
        for raw in ["[]", "\"x\"", "42", "null"] {
            app.post(path, "application/json", raw)
                .await
                .names_field("body");
        }
        for field in valid.as_object().unwrap().keys() {
            let mut missing = valid.clone();
            missing.as_object_mut().unwrap().remove(field);
            let res = app.post_json(path, missing).await;
            res.names_field(field);
            assert!(
                res.body["fields"][field]
                    .as_str()
                    .unwrap()
                    .contains("required"),
                "{path} without {field}: {}",
                res.text
            );

            // Wrong-typed: named, and the value sent is not repeated.
            let mut wrong = valid.clone();
            wrong[field.as_str()] = json!(987654321);
            let res = app.post_json(path, wrong).await;
            res.names_field(field);
            assert!(!res.text.contains("987654321"), "{path}: {}", res.text);
        }
    }
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let app = OneShot::new().await;
    for (path, mut body) in json_endpoints() {
        body["padding"] = json!("p".repeat(80_000));
        app.post_json(path, body)
            .await
            .error(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
    }
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405() {
    let app = OneShot::new().await;
    for path in [
        "/",
        "/api/v1/nope",
        "/api/auth/nope",
        "/auth/nope",
        "/ui/nope",
    ] {
        app.request(Method::GET, path)
            .await
            .error(StatusCode::NOT_FOUND, "NOT_FOUND");
    }
    for (method, path) in [
        (Method::DELETE, "/api/v1/auth/login"),
        (Method::GET, "/api/v1/auth/login"),
        (Method::PUT, "/api/v1/auth/me"),
        (Method::GET, "/api/auth/login"),
        (Method::GET, "/auth/sign-in/email"),
    ] {
        app.request(method.clone(), path)
            .await
            .error(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
    }
}

#[tokio::test]
async fn missing_or_malformed_credentials_are_401() {
    let app = OneShot::new().await;
    let protected = [
        "/api/v1/auth/me",
        "/api/v1/sessions",
        "/api/v1/tokens",
        "/api/v1/tenants",
        "/api/auth/me",
        "/auth/me",
        "/auth/session",
    ];
    for path in protected {
        app.request(Method::GET, path)
            .await
            .error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
        for authorization in ["Bearer not-a-token", "Bearer ", "Basic dXNlcjpwYXNz"] {
            let res = app
                .call(
                    Request::get(path)
                        .header(header::AUTHORIZATION, authorization)
                        .body(Body::empty())
                        .unwrap(),
                )
                .await;
            res.error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
        }
    }
}

#[tokio::test]
async fn two_authorization_headers_are_400_on_any_path() {
    let app = OneShot::new().await;
    for path in [
        "/api/v1/auth/me",
        "/api/auth/me",
        "/auth/me",
        "/health",
        "/nope",
    ] {
        let res = app
            .call(
                Request::get(path)
                    .header(header::AUTHORIZATION, "Bearer one")
                    .header(header::AUTHORIZATION, "Bearer two")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        res.error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    }
}

#[tokio::test]
async fn every_error_is_no_store_nosniff_with_a_request_id() {
    let app = OneShot::new().await;
    for res in [
        app.request(Method::GET, "/nope").await,
        app.request(Method::GET, "/api/v1/auth/me").await,
        app.post("/api/v1/auth/login", "application/json", "{")
            .await,
    ] {
        assert!(res.status.is_client_error(), "{}", res.status);
        assert_eq!(res.headers["cache-control"], "no-store");
        assert_eq!(res.headers["x-content-type-options"], "nosniff");
        assert!(res.headers.get("x-request-id").is_some());
    }
}
