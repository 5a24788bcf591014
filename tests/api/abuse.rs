//! Per-IP limits on credential endpoints, trusted proxies, security headers.

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

async fn login_from(app: &TestApp, forwarded_for: Option<&str>) -> reqwest::Response {
    let mut req = Client::new()
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": "someone@example.test", "password": "wrong-password-1"}));
    if let Some(ip) = forwarded_for {
        req = req.header("x-forwarded-for", ip);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn credential_endpoints_share_a_per_ip_budget() {
    let app = TestApp::spawn_with(|c| c.security.rate_limit_per_minute = 3).await;
    app.at_minute_start();
    for _ in 0..3 {
        assert_eq!(
            login_from(&app, None).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let res = login_from(&app, None).await;
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    expect_error(res, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;

    // Every surface's credential endpoints spend the same budget.
    for (path, body) in [
        (
            "/api/v1/auth/forgot-password",
            json!({"email": "a@example.test"}),
        ),
        (
            "/api/auth/login",
            json!({"email": "a@example.test", "password": "x"}),
        ),
        (
            "/auth/sign-in/email",
            json!({"email": "a@example.test", "password": "x"}),
        ),
        (
            "/api/v1/auth/signup",
            json!({"email": "a@example.test", "password": PASSWORD}),
        ),
    ] {
        let res = app.post(&new_client(), path, body).await;
        expect_error(res, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
    }
    // A forged X-Forwarded-For from an untrusted peer changes nothing.
    let res = login_from(&app, Some("198.51.100.7")).await;
    expect_error(res, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
    // Other endpoints keep answering.
    assert_eq!(
        app.get(&new_client(), "/health").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get(&new_client(), "/api/v1/auth/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
    // A new minute, a new budget.
    app.clock.advance(chrono::Duration::seconds(61));
    assert_eq!(
        login_from(&app, None).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_address_counts() {
    let app = TestApp::spawn_with(|c| {
        c.security.rate_limit_per_minute = 2;
        c.trusted_proxies = vec!["127.0.0.1/32".into()];
    })
    .await;
    app.at_minute_start();
    for _ in 0..2 {
        assert_eq!(
            login_from(&app, Some("198.51.100.1")).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let res = login_from(&app, Some("198.51.100.1")).await;
    expect_error(res, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
    // Entries a client prepends itself are ignored: the proxy's is the right-most.
    let res = login_from(&app, Some("203.0.113.50, 198.51.100.1")).await;
    expect_error(res, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
    assert_eq!(
        login_from(&app, Some("198.51.100.2")).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // Sessions record the forwarded address.
    let email = unique_email("proxied");
    let c = new_client();
    let res = c
        .post(app.url("/api/v1/auth/signup"))
        .header("x-forwarded-for", "198.51.100.3")
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let sessions: Value = app.get(&c, "/api/v1/sessions").await.json().await.unwrap();
    assert_eq!(sessions[0]["ip"], "198.51.100.3");
}

#[tokio::test]
async fn security_headers_and_hsts_only_on_https() {
    let app = TestApp::spawn().await;
    let res = app.get(&new_client(), "/health").await;
    assert_eq!(
        res.headers()["content-security-policy"],
        "frame-ancestors 'none'"
    );
    assert_eq!(res.headers()["x-frame-options"], "DENY");
    assert_eq!(res.headers()["referrer-policy"], "no-referrer");
    assert!(res.headers().get("strict-transport-security").is_none());

    let app =
        TestApp::spawn_with(|c| c.public_url = "https://auth.example.test".parse().unwrap()).await;
    let res = app.get(&new_client(), "/health").await;
    assert!(res.headers()["strict-transport-security"]
        .to_str()
        .unwrap()
        .starts_with("max-age="));
    let res = app.signup(&new_client(), &unique_email("secure")).await;
    assert!(set_cookie(&res, "ces_session").unwrap().contains("Secure"));
}

#[tokio::test]
async fn reset_mail_to_one_address_is_capped_and_the_answers_do_not_change() {
    let app = TestApp::spawn_with(|c| c.security.mail_per_address_per_hour = 3).await;
    let email = unique_email("flooded");
    app.user(&email).await;
    app.mail.wait_for(&email, 1).await; // verification
    let forgot = || async {
        let res = app
            .post(
                &new_client(),
                "/api/v1/auth/forgot-password",
                json!({"email": email}),
            )
            .await;
        (res.status(), res.text().await.unwrap())
    };
    let first = forgot().await;
    for _ in 0..7 {
        assert_eq!(forgot().await, first, "every answer is the same");
    }
    app.mail.wait_for(&email, 1 + 3).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(app.mail.to(&email).len(), 1 + 3, "no more than the cap");
    // The newest link mailed still works (mail may arrive out of order): the
    // cap stopped new links, it did not retire the one the user has.
    let mut worked = 0;
    for mail in &app.mail.to(&email)[1..] {
        let res = app
            .post(
                &new_client(),
                "/api/v1/auth/reset-password",
                json!({"token": mail.token(), "password": "after-the-flood-2026"}),
            )
            .await;
        worked += usize::from(res.status() == StatusCode::NO_CONTENT);
    }
    assert_eq!(worked, 1);

    // An hour on, the address gets mail again.
    app.clock.advance(chrono::Duration::minutes(61));
    assert_eq!(forgot().await, first);
    app.mail.wait_for(&email, 1 + 3 + 1).await;
}

/// A HIBP-style range API on loopback that lists one password.
async fn breach_api(listed: &str) -> String {
    use axum::extract::Path;
    use axum::routing::get;
    use sha1::{Digest, Sha1};
    let digest = hex::encode_upper(Sha1::digest(listed.as_bytes()));
    let (listed_prefix, listed_suffix) = digest.split_at(5);
    let (listed_prefix, listed_suffix) = (listed_prefix.to_owned(), listed_suffix.to_owned());
    let api = axum::Router::new().route(
        "/range/{prefix}",
        get(move |Path(prefix): Path<String>| async move {
            // Padding lines (count 0) on every answer, as the real API sends.
            let mut body = String::from("0000000000000000000000000000000000A:0\r\n");
            if prefix == listed_prefix {
                body.push_str(&format!("{listed_suffix}:52579\r\n"));
            }
            body
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, api).await.unwrap() });
    format!("http://{addr}/range/")
}

#[tokio::test]
async fn breached_passwords_are_refused_when_the_check_is_on() {
    let breached = "correct-horse-battery-9";
    let url = breach_api(breached).await;
    let app = TestApp::spawn_with(|c| c.security.breached_password_url = Some(url)).await;
    let res = app
        .post(
            &new_client(),
            "/api/v1/auth/signup",
            json!({"email": unique_email("breach"), "password": breached}),
        )
        .await;
    let body = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert!(
        body["fields"]["password"]
            .as_str()
            .unwrap()
            .contains("breach"),
        "{body}"
    );
    let res = app
        .post(
            &new_client(),
            "/api/v1/auth/signup",
            json!({"email": unique_email("breach"), "password": "not-in-any-list-2026"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);

    // Changing to a breached password is refused too, naming the field.
    let user = app.user(&unique_email("changer")).await;
    let res = app
        .write(
            &user,
            reqwest::Method::POST,
            "/api/v1/auth/change-password",
            Some(json!({"current_password": PASSWORD, "new_password": breached})),
        )
        .await;
    let body = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert!(body["fields"]["new_password"].is_string(), "{body}");
}

#[tokio::test]
async fn an_unreachable_breach_api_lets_passwords_through() {
    // A port nothing listens on: the check fails open.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/range/", closed.local_addr().unwrap());
    drop(closed);
    let app = TestApp::spawn_with(|c| c.security.breached_password_url = Some(url)).await;
    let res = app
        .post(
            &new_client(),
            "/api/v1/auth/signup",
            json!({"email": unique_email("open"), "password": "correct-horse-battery-9"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn starting_social_sign_ins_spends_the_per_ip_budget() {
    // No provider needs to answer: an unknown provider is a 404, and the
    // limit applies before that.
    let app = TestApp::spawn_with(|c| c.security.rate_limit_per_minute = 3).await;
    app.at_minute_start();
    let client = new_client();
    for _ in 0..3 {
        let res = app.get(&client, "/api/v1/auth/oauth/nope").await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
    }
    let res = app.get(&client, "/api/v1/auth/oauth/nope").await;
    assert!(res.headers().contains_key("retry-after"));
    expect_error(res, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
}
