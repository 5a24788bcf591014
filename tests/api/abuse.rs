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
