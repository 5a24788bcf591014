//! `GET /metrics`: Prometheus text of what the service did, for a scraper
//! holding the metrics token (or the cron secret) or one in
//! `admin_allow_from`.

use reqwest::{Client, StatusCode};
use tessera::Config;

use crate::helpers::*;

const TOKEN: &str = "scrape-secret-1234";

/// The configuration a scraper with [`TOKEN`] needs.
pub fn scrapeable(c: &mut Config) {
    c.metrics.token = Some(TOKEN.to_owned().into());
}

/// Scrapes with [`TOKEN`]; the app must be [`scrapeable`].
pub async fn scrape(app: &TestApp) -> String {
    let res = app.bearer_get(TOKEN, "/metrics").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    res.text().await.unwrap()
}

#[tokio::test]
async fn metrics_count_requests_logins_and_limits_and_read_the_pools() {
    let app = TestApp::spawn_with(|c| {
        scrapeable(c);
        c.security.rate_limit_per_minute = 4;
    })
    .await;
    app.at_minute_start();
    let email = unique_email("metrics");
    app.user(&email).await;
    let c = new_client();
    assert_eq!(
        app.login(&c, &email, "wrong-password-here").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login(&c, &email, PASSWORD).await.status(),
        StatusCode::OK
    );
    assert_eq!(app.me_status(&c).await, StatusCode::OK);
    assert_eq!(
        app.get(&c, "/no/such/path").await.status(),
        StatusCode::NOT_FOUND
    );
    // The fourth credential request of the minute is the last allowed.
    app.login(&c, &email, PASSWORD).await;
    assert_eq!(
        app.login(&c, &email, PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );

    let text = scrape(&app).await;
    for expected in [
        "tessera_http_requests_total{route=\"/api/v1/auth/login\",method=\"POST\",status=\"401\"} 1",
        "tessera_http_requests_total{route=\"/api/v1/auth/me\",method=\"GET\",status=\"200\"} 1",
        "tessera_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 1",
        "tessera_http_request_duration_seconds_count{route=\"/api/v1/auth/me\",method=\"GET\"} 1",
        "tessera_logins_total{outcome=\"failure\"} 1",
        "tessera_logins_total{outcome=\"success\"} 2",
        "tessera_rate_limited_total 1",
        "tessera_password_hash_queue_depth ",
        "tessera_password_hash_running ",
        "tessera_credential_cache_misses_total",
        "tessera_mail_outbox_depth",
        "tessera_mail_outbox_oldest_age_seconds",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    assert!(text.contains("tessera_db_connections{pool="), "{text}");
    // The verification mail was delivered and counted; the hashing pool is
    // idle once the last answer is out (a worker may still be finishing the
    // moment the client reads it).
    app.mail.wait_for(&email, 1).await;
    let start = std::time::Instant::now();
    loop {
        let text = scrape(&app).await;
        if text.contains("tessera_mail_sent_total 1")
            && text.contains("tessera_password_hash_running 0")
            && text.contains("tessera_password_hash_queue_depth 0")
        {
            break;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(10));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn lockouts_are_counted() {
    let app = TestApp::spawn_with(|c| {
        scrapeable(c);
        c.security.lockout_max_attempts = 2;
    })
    .await;
    let email = unique_email("locked");
    app.user(&email).await;
    let c = new_client();
    for _ in 0..2 {
        app.login(&c, &email, "wrong-password-here").await;
    }
    expect_error(
        app.login(&c, &email, PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "ACCOUNT_LOCKED",
    )
    .await;
    let text = scrape(&app).await;
    assert!(text.contains("tessera_lockouts_total 1"), "{text}");
    assert!(
        text.contains("tessera_logins_total{outcome=\"locked\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_are_for_the_token_holder_or_the_allowlist() {
    let app = TestApp::spawn_with(scrapeable).await;
    // This machine is nobody special.
    expect_error(
        app.get(&Client::new(), "/metrics").await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    let wrong = app.bearer_get("scrape-secret-9999", "/metrics").await;
    expect_error(wrong, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let right = app.bearer_get(TOKEN, "/metrics").await;
    assert_eq!(right.status(), StatusCode::OK);
    assert!(right.text().await.unwrap().contains("# EOF"));

    let app = TestApp::spawn_with(|c| c.admin_allow_from = vec!["127.0.0.0/8".into()]).await;
    assert_eq!(
        app.get(&Client::new(), "/metrics").await.status(),
        StatusCode::OK
    );
    // Relayed by a proxy that is not trusted, the caller is not this machine.
    let res = Client::new()
        .get(app.url("/metrics"))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    // A wrong credential is refused even from an allowed address.
    let wrong = app.bearer_get("not-the-token", "/metrics").await;
    expect_error(wrong, StatusCode::FORBIDDEN, "FORBIDDEN").await;

    let app = TestApp::spawn_with(|c| c.metrics.enabled = false).await;
    expect_error(
        app.get(&Client::new(), "/metrics").await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
}
