use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn forgot_and_reset_password_end_to_end() {
    let app = TestApp::spawn().await;
    let email = unique_email("reset");
    let first_session = app.user(&email).await;
    app.mail.wait_for(&email, 1).await; // verification

    let res = app
        .post(
            &new_client(),
            "/api/v1/auth/forgot-password",
            json!({"email": email.to_uppercase()}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let mail = app.mail.wait_for(&email, 2).await;
    assert!(mail.subject().contains("Reset"), "{}", mail.subject());
    assert!(mail
        .text()
        .contains(&format!("{}/ui/reset-password?token=", app.base)));
    let token = mail.token();
    assert!(token.len() >= 43);

    let res = app
        .post(
            &new_client(),
            "/api/v1/auth/reset-password",
            json!({"token": token, "password": "password"}),
        )
        .await;
    let body = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert!(body["fields"]["password"].is_string());

    let res = app
        .post(
            &new_client(),
            "/api/v1/auth/reset-password",
            json!({"token": token, "password": "fresh-start-2026"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.me_status(&first_session).await,
        StatusCode::UNAUTHORIZED,
        "every session revoked"
    );
    assert_eq!(
        app.login(&new_client(), &email, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login(&new_client(), &email, "fresh-start-2026")
            .await
            .status(),
        StatusCode::OK
    );

    // Single use.
    let res = app
        .post(
            &new_client(),
            "/api/v1/auth/reset-password",
            json!({"token": token, "password": "another-start-2026"}),
        )
        .await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
}

#[tokio::test]
async fn forgot_password_never_reveals_whether_the_email_exists() {
    let app = TestApp::spawn().await;
    let email = unique_email("exists");
    app.user(&email).await;
    let nobody = unique_email("nobody");
    let a = app
        .post(
            &new_client(),
            "/api/v1/auth/forgot-password",
            json!({"email": email}),
        )
        .await;
    let b = app
        .post(
            &new_client(),
            "/api/v1/auth/forgot-password",
            json!({"email": nobody}),
        )
        .await;
    assert_eq!(a.status(), StatusCode::NO_CONTENT);
    assert_eq!(b.status(), StatusCode::NO_CONTENT);
    assert_eq!(a.text().await.unwrap(), b.text().await.unwrap());
    app.mail.wait_for(&email, 2).await;
    assert!(app.mail.to(&nobody).is_empty());
    let res = app
        .post(&new_client(), "/api/v1/auth/forgot-password", json!({}))
        .await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    let res = app
        .post(
            &new_client(),
            "/api/v1/auth/forgot-password",
            json!({"email": ["a@x.test"]}),
        )
        .await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
}

#[tokio::test]
async fn a_newer_reset_link_kills_older_ones() {
    let app = TestApp::spawn().await;
    let email = unique_email("twice");
    app.user(&email).await;
    app.mail.wait_for(&email, 1).await;
    app.post(
        &new_client(),
        "/api/v1/auth/forgot-password",
        json!({"email": email}),
    )
    .await;
    let old = app.mail.wait_for(&email, 2).await.token();
    app.post(
        &new_client(),
        "/api/v1/auth/forgot-password",
        json!({"email": email}),
    )
    .await;
    let new = app.mail.wait_for(&email, 3).await.token();
    let res = app
        .post(
            &new_client(),
            "/api/v1/auth/reset-password",
            json!({"token": old, "password": "fresh-start-2026"}),
        )
        .await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    let res = app
        .post(
            &new_client(),
            "/api/v1/auth/reset-password",
            json!({"token": new, "password": "fresh-start-2026"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn reset_links_expire_after_an_hour() {
    let app = TestApp::spawn().await;
    let email = unique_email("expire");
    app.user(&email).await;
    app.mail.wait_for(&email, 1).await;
    app.post(
        &new_client(),
        "/api/v1/auth/forgot-password",
        json!({"email": email}),
    )
    .await;
    let token = app.mail.wait_for(&email, 2).await.token();
    app.clock.advance(chrono::Duration::minutes(61));
    let res = app
        .post(
            &new_client(),
            "/api/v1/auth/reset-password",
            json!({"token": token, "password": "fresh-start-2026"}),
        )
        .await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert_eq!(
        app.login(&new_client(), &email, PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn twelve_parallel_redemptions_of_one_reset_token_succeed_once() {
    let app = TestApp::spawn().await;
    let email = unique_email("parallel");
    app.user(&email).await;
    app.mail.wait_for(&email, 1).await;
    app.post(
        &new_client(),
        "/api/v1/auth/forgot-password",
        json!({"email": email}),
    )
    .await;
    let token = app.mail.wait_for(&email, 2).await.token();
    let mut tasks = Vec::new();
    for i in 0..12 {
        let url = app.url("/api/v1/auth/reset-password");
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            let password = format!("parallel-winner-{i:02}");
            let status = new_client()
                .post(url)
                .json(&json!({"token": token, "password": password}))
                .send()
                .await
                .unwrap()
                .status();
            (status, password)
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (status, password) = t.await.unwrap();
        match status {
            StatusCode::NO_CONTENT => winners.push(password),
            StatusCode::UNPROCESSABLE_ENTITY => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(
        app.login(&new_client(), &email, &winners[0]).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn reset_password_bad_input() {
    let app = TestApp::spawn().await;
    let c = new_client();
    let res = app
        .post(
            &c,
            "/api/v1/auth/reset-password",
            json!({"password": "fresh-start-2026"}),
        )
        .await;
    let body = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert_eq!(body["fields"]["token"], "is required");
    let res = app
        .post(
            &c,
            "/api/v1/auth/reset-password",
            json!({"token": 7, "password": "fresh-start-2026"}),
        )
        .await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    let res = app
        .post(
            &c,
            "/api/v1/auth/reset-password",
            json!({"token": "t".repeat(5000), "password": "fresh-start-2026"}),
        )
        .await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    let res = app
        .post(
            &c,
            "/api/v1/auth/reset-password",
            json!({"token": "made-up", "password": "fresh-start-2026"}),
        )
        .await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
}

#[tokio::test]
async fn mail_waits_in_the_outbox_while_the_mail_server_is_down() {
    // Reserve a port, then close it: nothing listens there yet.
    let probe = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let mut app = TestApp::spawn_bare(port, |_| {}).await;
    let email = unique_email("outage");
    app.unverified_user(&email).await;
    // Let the worker fail at least once.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    app.mail = MailCatcher::start(listener).await;
    // The retry is due after the first backoff step (5 s).
    let mail = app.mail.wait_for(&email, 1).await;
    assert!(mail.subject().contains("Confirm"));
    let res = app
        .post(
            &new_client(),
            "/api/v1/auth/verify-email",
            json!({"token": mail.token()}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
}
