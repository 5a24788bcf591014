use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn health_live_and_ready() {
    let app = TestApp::spawn().await;
    for path in ["/health", "/api/v1/health/live", "/api/v1/health/ready"] {
        let res = app.get(&app.client, path).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn ready_answers_503_when_the_database_does_not() {
    let app = TestApp::spawn().await;
    app.core.store.close().await;
    let res = app.get(&app.client, "/api/v1/health/ready").await;
    expect_error(res, StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE").await;
    // The process itself is alive.
    assert_eq!(
        app.get(&app.client, "/health").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get(&app.client, "/api/v1/health/live").await.status(),
        StatusCode::OK
    );
    // Other endpoints say so too (a closed pool is a node shutting down),
    // without internals.
    let res = app
        .login(&new_client(), &unique_email("down"), PASSWORD)
        .await;
    assert!(res.headers().contains_key("retry-after"));
    let body = expect_error(res, StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE").await;
    assert!(!body.to_string().to_lowercase().contains("pool"), "{body}");
}

#[tokio::test]
async fn the_openapi_document_covers_every_endpoint() {
    let app = TestApp::spawn().await;
    let res = app.get(&app.client, "/api/v1/openapi.json").await;
    assert_eq!(res.status(), StatusCode::OK);
    let doc: Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (method, path) in [
        ("get", "/health"),
        ("get", "/api/v1/health/live"),
        ("get", "/api/v1/health/ready"),
        ("post", "/api/v1/auth/signup"),
        ("post", "/api/v1/auth/login"),
        ("post", "/api/v1/auth/logout"),
        ("post", "/api/v1/auth/refresh"),
        ("get", "/api/v1/auth/csrf"),
        ("get", "/api/v1/auth/me"),
        ("post", "/api/v1/auth/forgot-password"),
        ("post", "/api/v1/auth/reset-password"),
        ("post", "/api/v1/auth/change-password"),
        ("post", "/api/v1/auth/set-password"),
        ("post", "/api/v1/auth/verify-email"),
        ("post", "/api/v1/auth/resend-verification"),
        ("post", "/api/v1/auth/token"),
        ("get", "/.well-known/jwks.json"),
        ("post", "/api/v1/tokens"),
        ("get", "/api/v1/tokens"),
        ("delete", "/api/v1/tokens/{id}"),
        ("post", "/api/v1/auth/switch-tenant"),
        ("get", "/api/v1/sessions"),
        ("delete", "/api/v1/sessions"),
        ("delete", "/api/v1/sessions/{id}"),
        ("get", "/api/v1/tenants"),
        ("post", "/api/v1/tenants"),
        ("get", "/api/v1/tenants/{id}"),
        ("patch", "/api/v1/tenants/{id}"),
        ("delete", "/api/v1/tenants/{id}"),
        ("get", "/api/v1/tenants/{id}/members"),
        ("patch", "/api/v1/tenants/{id}/members/{user_id}"),
        ("delete", "/api/v1/tenants/{id}/members/{user_id}"),
        ("get", "/api/v1/tenants/{id}/invites"),
        ("post", "/api/v1/tenants/{id}/invites"),
        ("delete", "/api/v1/tenants/{id}/invites/{invite_id}"),
        ("get", "/api/v1/tenants/{id}/audit"),
        ("get", "/api/v1/invites"),
        ("post", "/api/v1/invites/accept"),
        ("get", "/api/v1/admin/users"),
        ("get", "/api/v1/admin/users/{id}"),
        ("patch", "/api/v1/admin/users/{id}"),
        ("delete", "/api/v1/admin/users/{id}"),
        ("post", "/api/v1/admin/plans/validate"),
        ("get", "/api/v1/admin/audit"),
        ("get", "/api/auth/validate"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
}
