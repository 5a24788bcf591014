//! Per-IP budgets that hold and the HTTP edge (issue 17, points 1 and 6):
//! IPv6 /64s and mapped IPv4 as one client, `X-Forwarded-For` entries with
//! ports, no trust for loopback, slow and idle connections closed, bounded
//! metric labels, duplicated credentials.

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

/// A login (wrong password) relayed by the local proxy for `forwarded_for`.
async fn login_via_proxy(app: &TestApp, forwarded_for: &str) -> reqwest::Response {
    Client::new()
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({"email": "someone@example.test", "password": "wrong-password-1"}))
        .send()
        .await
        .unwrap()
}

/// Tessera behind a proxy on this machine, with `limit` credential
/// requests per client per minute.
async fn behind_proxy(limit: u32) -> TestApp {
    TestApp::spawn_with(|c| {
        c.security.rate_limit_per_minute = limit;
        c.trusted_proxies = vec!["127.0.0.1/32".into()];
    })
    .await
}

#[tokio::test]
async fn an_ipv6_client_is_budgeted_per_64() {
    let app = behind_proxy(3).await;
    for n in 1..=3 {
        let res = login_via_proxy(&app, &format!("2001:db8:1:2::{n:x}")).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    // Any other address of the same /64 is the same client.
    for addr in ["2001:db8:1:2:ffff:ffff:ffff:ffff", "[2001:db8:1:2::99]:443"] {
        let res = login_via_proxy(&app, addr).await;
        expect_error(res, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
    }
    // The next /64 is someone else.
    let res = login_via_proxy(&app, "2001:db8:1:3::1").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_mapped_ipv4_address_is_the_ipv4_address() {
    let app = behind_proxy(2).await;
    let res = login_via_proxy(&app, "::ffff:192.0.2.1").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = login_via_proxy(&app, "192.0.2.1").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = login_via_proxy(&app, "[::ffff:192.0.2.1]:5000").await;
    expect_error(res, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
    assert_eq!(
        login_via_proxy(&app, "192.0.2.2").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn forwarded_entries_with_ports_resolve_to_their_address() {
    let app = behind_proxy(2).await;
    for port in [4711, 4712] {
        let res = login_via_proxy(&app, &format!("203.0.113.7:{port}")).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    // The same client without a port, and behind an entry it made up
    // itself (which a port on the proxy's entry must not let through).
    for forwarded in ["203.0.113.7", "198.51.100.1, 203.0.113.7:9"] {
        let res = login_via_proxy(&app, forwarded).await;
        expect_error(res, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
    }

    // Sessions record the address without the port.
    let app = behind_proxy(100).await;
    let c = new_client();
    let res = c
        .post(app.url("/api/v1/auth/signup"))
        .header("x-forwarded-for", "[2001:db8::7]:61000")
        .json(&json!({"email": unique_email("ported"), "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let sessions: Value = app.get(&c, "/api/v1/sessions").await.json().await.unwrap();
    assert_eq!(sessions[0]["ip"], "2001:db8::7");
}

#[tokio::test]
async fn loopback_is_trusted_for_nothing() {
    let app = TestApp::spawn_with(|c| {
        c.cron_secret = Some("cron-secret-123".to_owned().into());
        c.metrics.token = Some("scrape-secret-1234".to_owned().into());
    })
    .await;
    // From 127.0.0.1 without a secret: the plan check is 401 (seed 001's
    // answer to a missing credential), metrics 403 (as they always were).
    let res = app.get(&new_client(), "/api/auth/validate").await;
    expect_error(res, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    let res = app.get(&new_client(), "/metrics").await;
    expect_error(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;

    // With the secret they work; the cron secret also reads metrics.
    let res = app
        .bearer_get("cron-secret-123", "/api/auth/validate")
        .await;
    assert_eq!(body(res, StatusCode::OK).await["success"], true);
    for secret in ["scrape-secret-1234", "cron-secret-123"] {
        let res = app.bearer_get(secret, "/metrics").await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    // The metrics token is for reading only.
    let res = app
        .bearer_get("scrape-secret-1234", "/api/auth/validate")
        .await;
    expect_error(res, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn the_allowlist_names_clients_behind_a_trusted_proxy() {
    let app = TestApp::spawn_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1".into()];
        c.admin_allow_from = vec!["10.0.0.0/8".into()];
    })
    .await;
    let get = |path: &'static str, forwarded: Option<&'static str>| {
        let mut req = Client::new().get(app.url(path));
        if let Some(ip) = forwarded {
            req = req.header("x-forwarded-for", ip);
        }
        req.send()
    };
    for path in ["/metrics", "/api/auth/validate"] {
        assert_eq!(
            get(path, Some("10.1.2.3")).await.unwrap().status(),
            StatusCode::OK,
            "{path}"
        );
        // The proxy itself, and the world behind it, are not on the list.
        for forwarded in [None, Some("203.0.113.9"), Some("10.1.2.3, 203.0.113.9")] {
            let status = get(path, forwarded).await.unwrap().status();
            assert!(
                status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN,
                "{path} {forwarded:?}: {status}"
            );
        }
    }
}
