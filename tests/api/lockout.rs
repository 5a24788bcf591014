use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn five_failures_lock_the_email_even_for_the_right_password() {
    let app = TestApp::spawn().await;
    let email = unique_email("lock");
    app.user(&email).await;
    for _ in 0..5 {
        let res = app.login(&new_client(), &email, "wrong-password-1").await;
        expect_error(res, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    }
    let res = app.login(&new_client(), &email, PASSWORD).await;
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=15 * 60).contains(&retry), "{retry}");
    expect_error(res, StatusCode::TOO_MANY_REQUESTS, "ACCOUNT_LOCKED").await;

    // The lock expires with time.
    app.clock.advance(chrono::Duration::minutes(16));
    assert_eq!(
        app.login(&new_client(), &email, PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn unknown_emails_lock_alike_and_success_resets_the_count() {
    let app = TestApp::spawn().await;
    let nobody = unique_email("nobody");
    for _ in 0..5 {
        app.login(&new_client(), &nobody, "wrong-password-1").await;
    }
    let res = app.login(&new_client(), &nobody, "wrong-password-1").await;
    expect_error(res, StatusCode::TOO_MANY_REQUESTS, "ACCOUNT_LOCKED").await;

    let email = unique_email("reset-count");
    app.user(&email).await;
    for _ in 0..4 {
        app.login(&new_client(), &email, "wrong-password-1").await;
    }
    assert_eq!(
        app.login(&new_client(), &email, PASSWORD).await.status(),
        StatusCode::OK
    );
    for _ in 0..4 {
        app.login(&new_client(), &email, "wrong-password-1").await;
    }
    assert_eq!(
        app.login(&new_client(), &email, PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn parallel_failures_all_count_and_a_reset_clears_the_lock() {
    let app = TestApp::spawn().await;
    let email = unique_email("burst");
    app.user(&email).await;
    app.mail.wait_for(&email, 1).await;
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let url = app.url("/api/v1/auth/login");
        let email = email.clone();
        tasks.push(tokio::spawn(async move {
            new_client()
                .post(url)
                .json(&json!({"email": email, "password": "wrong-password-1"}))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for t in tasks {
        let status = t.await.unwrap();
        assert!(
            status == StatusCode::UNAUTHORIZED || status == StatusCode::TOO_MANY_REQUESTS,
            "{status}"
        );
    }
    let res = app.login(&new_client(), &email, PASSWORD).await;
    expect_error(res, StatusCode::TOO_MANY_REQUESTS, "ACCOUNT_LOCKED").await;

    // A locked account can still reset its password, which clears the lock.
    let res = app
        .post(
            &new_client(),
            "/api/v1/auth/forgot-password",
            json!({"email": email}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let token = app.mail.wait_for(&email, 2).await.token();
    let res = app
        .post(
            &new_client(),
            "/api/v1/auth/reset-password",
            json!({"token": token, "password": "fresh-start-2026"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.login(&new_client(), &email, "fresh-start-2026")
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn tokens_cannot_change_or_set_the_password() {
    let app = TestApp::spawn().await;
    let c = app.user(&unique_email("tokpw")).await;
    let token = app.pat(&c, "w", &["write"]).await;
    for (path, body) in [
        (
            "/api/v1/auth/change-password",
            json!({"current_password": PASSWORD, "new_password": "taken-over-123"}),
        ),
        (
            "/api/v1/auth/set-password",
            json!({"new_password": "taken-over-123"}),
        ),
    ] {
        let res = app.bearer(&token, Method::POST, path, Some(body)).await;
        expect_error(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    }
}

#[tokio::test]
async fn refresh_never_extends_the_absolute_expiry() {
    let app = TestApp::spawn_with(|c| c.session.ttl_hours = 2).await;
    let c = app.user(&unique_email("ttl")).await;
    for _ in 0..3 {
        app.clock.advance(chrono::Duration::minutes(35));
        let res = app
            .write(&c, Method::POST, "/api/v1/auth/refresh", None)
            .await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    app.clock.advance(chrono::Duration::minutes(20));
    assert_eq!(
        app.me_status(&c).await,
        StatusCode::UNAUTHORIZED,
        "2 h after sign-in"
    );
}

#[tokio::test]
async fn a_jwt_issued_for_a_pat_dies_with_the_pat() {
    let app = TestApp::spawn().await;
    let c = app.user(&unique_email("patjwt2")).await;
    let created = app
        .create_pat(&c, json!({"name": "w", "scopes": ["write"]}))
        .await;
    let pat = created["token"].as_str().unwrap();
    let jwt = app.exchange(pat).await;
    assert_eq!(
        app.bearer_get(&jwt, "/api/v1/auth/me").await.status(),
        StatusCode::OK
    );
    let id = created["id"].as_str().unwrap();
    let res = app
        .write(&c, Method::DELETE, &format!("/api/v1/tokens/{id}"), None)
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.bearer_get(&jwt, "/api/v1/auth/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn wrong_typed_fields_never_echo_the_value() {
    let app = TestApp::spawn().await;
    let res = app
        .post(
            &new_client(),
            "/api/v1/auth/login",
            json!({"email": "a@example.test", "password": 987654321}),
        )
        .await;
    let body = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert!(!body.to_string().contains("987654321"), "{body}");
    assert!(body["fields"]["password"]
        .as_str()
        .unwrap()
        .contains("string"));
}
