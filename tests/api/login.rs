use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn login_me_csrf_logout() {
    let app = TestApp::spawn().await;
    let email = unique_email("login");
    app.user(&email).await;

    let c = new_client();
    let res = app.login(&c, &email.to_uppercase(), PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(set_cookie(&res, "ces_session")
        .unwrap()
        .contains("HttpOnly"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["email"], email);
    assert_eq!(body["tenants"][0]["role"], "owner");
    assert_eq!(body["invites"], json!([]));

    let me: Value = app.get(&c, "/api/v1/auth/me").await.json().await.unwrap();
    assert_eq!(me["user"]["email"], email);
    assert_eq!(me["tenant"]["role"], "owner");
    assert_eq!(me["tenants"].as_array().unwrap().len(), 1);

    // A cookie write without the CSRF token, or with a wrong one, is refused
    // and changes nothing.
    let res = c.post(app.url("/api/v1/auth/logout")).send().await.unwrap();
    expect_error(res, StatusCode::FORBIDDEN, "CSRF_FAILED").await;
    let res = c
        .post(app.url("/api/v1/auth/logout"))
        .header("x-csrf-token", "forged")
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::FORBIDDEN, "CSRF_FAILED").await;
    assert_eq!(app.me_status(&c).await, StatusCode::OK);

    // Another session's CSRF token does not work either.
    let other = new_client();
    app.login(&other, &email, PASSWORD).await;
    let foreign = app.csrf(&other).await;
    let res = c
        .post(app.url("/api/v1/auth/logout"))
        .header("x-csrf-token", foreign)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::FORBIDDEN, "CSRF_FAILED").await;

    let res = app
        .write(&c, Method::POST, "/api/v1/auth/logout", None)
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let cleared = set_cookie(&res, "ces_session").unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(app.me_status(&c).await, StatusCode::UNAUTHORIZED);
    // The other session lives on.
    assert_eq!(app.me_status(&other).await, StatusCode::OK);
}

#[tokio::test]
async fn wrong_password_and_unknown_email_answer_alike() {
    let app = TestApp::spawn().await;
    let email = unique_email("known");
    app.user(&email).await;
    let c = new_client();
    let wrong = expect_error(
        app.login(&c, &email, "wrong-password-1").await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
    let unknown = expect_error(
        app.login(&c, &unique_email("unknown"), "wrong-password-1")
            .await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
    assert_eq!(wrong, unknown);
    let res = app.login(&c, &email, "wrong-password-1").await;
    assert!(set_cookie(&res, "ces_session").is_none());
    assert_eq!(app.me_status(&c).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn login_bad_input() {
    let app = TestApp::spawn().await;
    let c = new_client();
    let res = app
        .post(
            &c,
            "/api/v1/auth/login",
            json!({"email": unique_email("x")}),
        )
        .await;
    let body = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert_eq!(body["fields"]["password"], "is required");
    let res = app
        .post(
            &c,
            "/api/v1/auth/login",
            json!({"email": true, "password": "x"}),
        )
        .await;
    let body = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert!(body["fields"]["email"].is_string());
    let res = app
        .post(
            &c,
            "/api/v1/auth/login",
            json!({"email": unique_email("x"), "password": "p".repeat(129)}),
        )
        .await;
    let body = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert!(body["fields"]["password"].is_string());
    let res = app
        .post(
            &c,
            "/api/v1/auth/login",
            json!({"email": unique_email("x"), "password": "p".repeat(70_000)}),
        )
        .await;
    expect_error(res, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE").await;
    let res = c
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::BAD_REQUEST, "BAD_REQUEST").await;
    let res = c
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::BAD_REQUEST, "BAD_REQUEST").await;
    let res = c
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body("[1, 2]")
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
}

#[tokio::test]
async fn refresh_rotates_the_session_and_kills_the_old_token() {
    let app = TestApp::spawn().await;
    let email = unique_email("refresh");
    let c = new_client();
    let res = app.signup(&c, &email).await;
    let old = cookie_value(&res, "ces_session");

    let res = app
        .write(&c, Method::POST, "/api/v1/auth/refresh", None)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let new = cookie_value(&res, "ces_session");
    assert_ne!(old, new);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["email"], email);
    assert!(body["expires_at"].is_string());

    assert_eq!(app.me_status(&c).await, StatusCode::OK);
    let res = app.bearer_get(&old, "/api/v1/auth/me").await;
    expect_error(res, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    // An old cookie is refused too; it never falls through to anonymous.
    let res = reqwest::Client::new()
        .get(app.url("/api/v1/auth/me"))
        .header("cookie", format!("ces_session={old}"))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn session_tokens_work_as_bearer_without_csrf() {
    let app = TestApp::spawn().await;
    let res = app.signup(&new_client(), &unique_email("bearer")).await;
    let token = cookie_value(&res, "ces_session");
    let res = app.bearer_get(&token, "/api/v1/auth/me").await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = reqwest::Client::new()
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.bearer_get(&token, "/api/v1/auth/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn bad_credentials_are_401_never_anonymous() {
    let app = TestApp::spawn().await;
    for header in [
        "Bearer ",
        "Bearer nonsense",
        "Bearer tsr_pat_nonsense",
        "Bearer a.b.c",
        "Basic Zm9vOmJhcg==",
        "Bearer x.y",
    ] {
        let res = reqwest::Client::new()
            .get(app.url("/api/v1/auth/me"))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        expect_error(res, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    }
    let res = reqwest::Client::new()
        .get(app.url("/api/v1/auth/me"))
        .header("cookie", "ces_session=garbage")
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    let res = app.get(&new_client(), "/api/v1/auth/me").await;
    expect_error(res, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn sessions_expire_when_idle_and_at_their_absolute_limit() {
    let app = TestApp::spawn_with(|c| {
        c.session.idle_hours = 2;
        c.session.ttl_hours = 5;
    })
    .await;
    let idle = app.user(&unique_email("idle")).await;
    let active = app.user(&unique_email("active")).await;
    for _ in 0..3 {
        app.clock.advance(chrono::Duration::minutes(90));
        assert_eq!(
            app.me_status(&active).await,
            StatusCode::OK,
            "used within the idle window"
        );
    }
    assert_eq!(
        app.me_status(&idle).await,
        StatusCode::UNAUTHORIZED,
        "idle for 4.5 h"
    );
    app.clock.advance(chrono::Duration::minutes(31));
    assert_eq!(
        app.me_status(&active).await,
        StatusCode::UNAUTHORIZED,
        "past the 5 h absolute limit"
    );
}

#[tokio::test]
async fn change_password_needs_the_current_one_and_revokes_other_sessions() {
    let app = TestApp::spawn().await;
    let email = unique_email("change");
    let c = app.user(&email).await;
    let other = new_client();
    app.login(&other, &email, PASSWORD).await;

    let res = app
        .write(&c, Method::POST, "/api/v1/auth/change-password",
            Some(json!({"current_password": "not-my-password", "new_password": "a-brand-new-secret"})))
        .await;
    let body = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert!(body["fields"]["current_password"].is_string());

    let res = app
        .write(
            &c,
            Method::POST,
            "/api/v1/auth/change-password",
            Some(json!({"current_password": PASSWORD, "new_password": "short"})),
        )
        .await;
    let body = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert!(body["fields"]["new_password"].is_string());

    let res = app
        .write(
            &c,
            Method::POST,
            "/api/v1/auth/change-password",
            Some(json!({"current_password": PASSWORD, "new_password": "a-brand-new-secret"})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.me_status(&c).await,
        StatusCode::OK,
        "this session stays"
    );
    assert_eq!(
        app.me_status(&other).await,
        StatusCode::UNAUTHORIZED,
        "others are revoked"
    );
    assert_eq!(
        app.login(&new_client(), &email, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login(&new_client(), &email, "a-brand-new-secret")
            .await
            .status(),
        StatusCode::OK
    );

    let res = app
        .write(
            &c,
            Method::POST,
            "/api/v1/auth/set-password",
            Some(json!({"new_password": "another-new-secret"})),
        )
        .await;
    expect_error(res, StatusCode::CONFLICT, "CONFLICT").await;
}
