use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn every_answer_is_no_store_nosniff_with_a_request_id() {
    let app = TestApp::spawn().await;
    let responses = [
        app.get(&app.client, "/health").await,
        app.get(&app.client, "/api/v1/auth/me").await,
        app.get(&app.client, "/no/such/route").await,
        app.login(&new_client(), &unique_email("h"), PASSWORD).await,
    ];
    for res in responses {
        let h = res.headers();
        assert_eq!(h["cache-control"], "no-store", "{}", res.url());
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert!(h.get("x-request-id").is_some());
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_use_the_error_model() {
    let app = TestApp::spawn().await;
    expect_error(
        app.get(&app.client, "/api/v1/nope").await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    expect_error(
        app.get(&app.client, "/").await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    let res = app
        .client
        .delete(app.url("/api/v1/auth/login"))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED").await;
    let res = app
        .client
        .get(app.url("/api/v1/auth/login"))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED").await;
}

#[tokio::test]
async fn a_supplied_request_id_is_echoed() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "abc-123");
}

#[tokio::test]
async fn cors_answers_only_allowlisted_origins_on_every_surface() {
    let app =
        TestApp::spawn_with(|c| c.cors_origins = vec!["https://app.example.test".into()]).await;
    let client = new_client();
    for path in [
        "/api/v1/auth/login",
        "/api/auth/login",
        "/auth/sign-in/email",
    ] {
        // A preflight from the allowed origin: echoed exactly, credentials on.
        let res = client
            .request(reqwest::Method::OPTIONS, app.url(path))
            .header("origin", "https://app.example.test")
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,x-csrf-token",
            )
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{path}: {}", res.status());
        assert_eq!(
            res.headers()["access-control-allow-origin"],
            "https://app.example.test",
            "{path}"
        );
        assert_eq!(res.headers()["access-control-allow-credentials"], "true");
        let vary: Vec<_> = res
            .headers()
            .get_all("vary")
            .iter()
            .map(|v| v.to_str().unwrap().to_ascii_lowercase())
            .collect();
        assert!(
            vary.iter().any(|v| v.contains("origin")),
            "{path}: {vary:?}"
        );

        // Hostile, look-alike and null origins get nothing to read with.
        for origin in [
            "https://evil.example",
            "https://app.example.test.evil.example",
            "http://app.example.test",
            "null",
        ] {
            let res = client
                .post(app.url(path))
                .header("origin", origin)
                .json(&json!({"email": "x@example.test", "password": "whatever-it-is"}))
                .send()
                .await
                .unwrap();
            assert!(
                res.headers().get("access-control-allow-origin").is_none(),
                "{path} {origin}"
            );
        }
    }
}
