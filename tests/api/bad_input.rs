//! Every endpoint that takes a body, fed every kind of bad body: the answer
//! is always the contract's error shape with the right code, never a 500.

use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

/// (path, needs a signed-in session, a valid body)
fn endpoints() -> Vec<(&'static str, bool, Value)> {
    vec![
        (
            "/api/v1/auth/signup",
            false,
            json!({"email": "x@example.test", "password": PASSWORD}),
        ),
        (
            "/api/v1/auth/login",
            false,
            json!({"email": "x@example.test", "password": PASSWORD}),
        ),
        (
            "/api/v1/auth/forgot-password",
            false,
            json!({"email": "x@example.test"}),
        ),
        (
            "/api/v1/auth/reset-password",
            false,
            json!({"token": "t", "password": PASSWORD}),
        ),
        ("/api/v1/auth/verify-email", false, json!({"token": "t"})),
        (
            "/api/v1/auth/resend-verification",
            false,
            json!({"email": "x@example.test"}),
        ),
        (
            "/api/v1/auth/change-password",
            true,
            json!({"current_password": PASSWORD, "new_password": "another-long-one"}),
        ),
        (
            "/api/v1/auth/set-password",
            true,
            json!({"new_password": "another-long-one"}),
        ),
        (
            "/api/v1/tokens",
            true,
            json!({"name": "n", "scopes": ["read"]}),
        ),
        ("/api/v1/auth/2fa/verify", false, json!({"challenge": "c"})),
        ("/api/auth/refresh", false, json!({"refresh_token": "r"})),
        (
            "/api/v1/auth/2fa/totp/setup",
            true,
            json!({"password": PASSWORD}),
        ),
        (
            "/api/v1/auth/2fa/totp/enable",
            true,
            json!({"code": "123456"}),
        ),
    ]
}

async fn send(
    app: &TestApp,
    client: &Client,
    path: &str,
    content_type: &str,
    body: String,
) -> reqwest::Response {
    let csrf = app.csrf(client).await;
    client
        .request(Method::POST, app.url(path))
        .header("content-type", content_type)
        .header("x-csrf-token", csrf)
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn every_body_endpoint_refuses_bad_bodies_cleanly() {
    let app = TestApp::spawn().await;
    let client = app.user(&unique_email("bad")).await;
    for (path, _, valid) in endpoints() {
        let fields: Vec<String> = valid.as_object().unwrap().keys().cloned().collect();

        // Malformed JSON, truncated JSON, and a wrong content type: 400.
        for raw in ["{", "{\"email\": ", "not json", "\u{0}", ""] {
            let res = send(&app, &client, path, "application/json", raw.into()).await;
            expect_error(res, StatusCode::BAD_REQUEST, "BAD_REQUEST").await;
        }
        let res = send(&app, &client, path, "text/plain", valid.to_string()).await;
        expect_error(res, StatusCode::BAD_REQUEST, "BAD_REQUEST").await;
        let res = send(
            &app,
            &client,
            path,
            "application/x-www-form-urlencoded",
            "email=a".into(),
        )
        .await;
        expect_error(res, StatusCode::BAD_REQUEST, "BAD_REQUEST").await;

        // Not an object: 422.
        for raw in ["[]", "\"x\"", "42", "null"] {
            let res = send(&app, &client, path, "application/json", raw.into()).await;
            expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
        }

        // Each required field missing, then wrong-typed: 422 naming it.
        for field in &fields {
            let mut body = valid.clone();
            body.as_object_mut().unwrap().remove(field);
            let res = send(&app, &client, path, "application/json", body.to_string()).await;
            let err =
                expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
            assert!(
                err["fields"][field].is_string(),
                "{path} without {field}: {err}"
            );

            for wrong in [json!(12345), json!({"nested": true}), json!(true)] {
                let mut body = valid.clone();
                body[field.as_str()] = wrong.clone();
                let res = send(&app, &client, path, "application/json", body.to_string()).await;
                let err =
                    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
                assert!(
                    err["fields"][field].is_string(),
                    "{path} {field}={wrong}: {err}"
                );
            }

            // An oversized value (within the body limit) is a validation error.
            let mut body = valid.clone();
            body[field.as_str()] = match &valid[field.as_str()] {
                Value::Array(_) => json!(vec!["read"; 5000]),
                _ => json!("x".repeat(20_000)),
            };
            let res = send(&app, &client, path, "application/json", body.to_string()).await;
            let status = res.status();
            assert!(
                status == StatusCode::UNPROCESSABLE_ENTITY
                    || status == StatusCode::NO_CONTENT && field == "email",
                "{path} oversized {field}: {status}"
            );
        }

        // A body over the limit: 413.
        let mut body = valid.clone();
        body["padding"] = json!("p".repeat(80_000));
        let res = send(&app, &client, path, "application/json", body.to_string()).await;
        expect_error(res, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE").await;

        // Deeply nested JSON does not crash anything.
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let res = send(&app, &client, path, "application/json", deep).await;
        assert!(res.status().is_client_error(), "{path}: {}", res.status());
    }
    // The server is still healthy and the session still works.
    assert_eq!(app.me_status(&client).await, StatusCode::OK);
}

#[tokio::test]
async fn authenticated_body_endpoints_need_a_session_first() {
    let app = TestApp::spawn().await;
    for (path, needs_auth, valid) in endpoints() {
        if !needs_auth {
            continue;
        }
        let res = app.post(&new_client(), path, valid).await;
        expect_error(res, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    }
}
