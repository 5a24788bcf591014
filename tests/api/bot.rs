//! The Turnstile bot check, against a verifier served on loopback.

use std::collections::HashMap;

use axum::routing::post;
use axum::{Form, Json, Router};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

/// A verifier that passes exactly `good-token` sent with secret `s3cret`.
async fn fake_verifier() -> String {
    let app = Router::new().route(
        "/siteverify",
        post(|Form(form): Form<HashMap<String, String>>| async move {
            let ok = form.get("secret").map(String::as_str) == Some("s3cret")
                && form.get("response").map(String::as_str) == Some("good-token")
                && form.get("remoteip").is_some_and(|ip| ip == "127.0.0.1");
            Json(json!({"success": ok}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/siteverify", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test]
async fn sign_up_login_and_forgot_password_need_a_passing_token() {
    let verify_url = fake_verifier().await;
    let app = TestApp::spawn_with(|c| {
        c.turnstile.secret = Some("s3cret".to_owned().into());
        c.turnstile.verify_url = verify_url;
    })
    .await;
    let email = unique_email("human");

    // Missing or rejected tokens, on every surface.
    for (path, body) in [
        (
            "/api/v1/auth/signup",
            json!({"email": email, "password": PASSWORD}),
        ),
        (
            "/api/v1/auth/login",
            json!({"email": email, "password": PASSWORD}),
        ),
        ("/api/v1/auth/forgot-password", json!({"email": email})),
        (
            "/api/auth/login",
            json!({"email": email, "password": PASSWORD}),
        ),
        (
            "/auth/sign-up/email",
            json!({"email": email, "password": PASSWORD}),
        ),
        ("/auth/forget-password", json!({"email": email})),
    ] {
        // Seed 002's words on `/auth`; CAPTCHA_FAILED elsewhere.
        let code = if path.starts_with("/auth/") {
            "FORBIDDEN"
        } else {
            "CAPTCHA_FAILED"
        };
        let res = app.post(&new_client(), path, body.clone()).await;
        expect_error(res, StatusCode::FORBIDDEN, code).await;
        let res = Client::new()
            .post(app.url(path))
            .header("x-captcha-response", "bad-token")
            .json(&body)
            .send()
            .await
            .unwrap();
        expect_error(res, StatusCode::FORBIDDEN, code).await;
    }

    // A passing token in the header, or in either body field.
    let c = new_client();
    let res = c
        .post(app.url("/api/v1/auth/signup"))
        .header("x-captcha-response", "good-token")
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = app
        .post(
            &new_client(),
            "/api/v1/auth/login",
            json!({"email": email, "password": PASSWORD, "turnstile_token": "good-token"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app
        .post(
            &new_client(),
            "/auth/sign-in/email",
            json!({"email": email, "password": PASSWORD, "turnstileToken": "good-token"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["email"], email);

    // Endpoints outside the check are untouched.
    assert_eq!(app.me_status(&c).await, StatusCode::OK);
    let res = app
        .post(
            &new_client(),
            "/api/v1/auth/reset-password",
            json!({"token": "x", "password": PASSWORD}),
        )
        .await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
}

#[tokio::test]
async fn a_verifier_that_is_down_fails_closed_with_503() {
    let probe = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed = format!("http://{}/siteverify", probe.local_addr().unwrap());
    drop(probe);
    let app = TestApp::spawn_with(|c| {
        c.turnstile.secret = Some("s3cret".to_owned().into());
        c.turnstile.verify_url = closed;
    })
    .await;
    let res = Client::new()
        .post(app.url("/api/v1/auth/login"))
        .header("x-captcha-response", "good-token")
        .json(&json!({"email": "a@example.test", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE").await;
}

#[tokio::test]
async fn the_hosted_pages_show_the_widget_and_check_its_token() {
    let verify_url = fake_verifier().await;
    let app = TestApp::spawn_with(|c| {
        c.turnstile.secret = Some("s3cret".to_owned().into());
        c.turnstile.verify_url = verify_url;
        c.turnstile.site_key = Some("0x4AAAA-site-key".into());
    })
    .await;
    let email = unique_email("page-human");
    let res = new_client()
        .post(app.url("/api/v1/auth/signup"))
        .header("x-captcha-response", "good-token")
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let client = new_client();
    let (_, page) = app.page(&client, "/ui/sign-in").await;
    assert!(page.contains("https://challenges.cloudflare.com/turnstile/v0/api.js"));
    assert!(page.contains("data-sitekey=\"0x4AAAA-site-key\""));
    let token = html::form_token(&page);
    for answer in ["", "bad-token"] {
        let res = client
            .post(app.url("/ui/sign-in"))
            .form(&[
                ("form_token", token.as_str()),
                ("email", &email),
                ("password", PASSWORD),
                ("cf-turnstile-response", answer),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert!(set_cookie(&res, "ces_session").is_none());
        assert!(res.text().await.unwrap().contains("The bot check failed"));
    }
    let res = client
        .post(app.url("/ui/sign-in"))
        .form(&[
            ("form_token", token.as_str()),
            ("email", &email),
            ("password", PASSWORD),
            ("cf-turnstile-response", "good-token"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(set_cookie(&res, "ces_session").is_some());
}
