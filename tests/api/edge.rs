//! Per-IP budgets that hold and the HTTP edge (issue 17, points 1 and 6):
//! IPv6 /64s and mapped IPv4 as one client, `X-Forwarded-For` entries with
//! ports, no trust for loopback, slow and idle connections closed, bounded
//! metric labels, duplicated credentials.

use std::time::Duration;

use tokio::time::Instant;

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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

/// Reads until the server closes the connection; how long that took, or
/// `None` when it was still open after `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(start + within, stream.read(&mut buf)).await {
            Err(_) => return None,
            // EOF, or a reset: either way the server let go.
            Ok(Ok(0)) | Ok(Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => continue,
        }
    }
}

/// Reads one whole answer (headers and a `Content-Length` body).
async fn read_answer(stream: &mut TcpStream) -> String {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("an answer within 10 s")
            .unwrap();
        assert!(n > 0, "closed before answering");
        data.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&data).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                return text;
            }
        }
    }
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap()
}

const HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nHost: tessera\r\n\r\n";

#[tokio::test]
async fn unfinished_request_heads_are_closed_at_the_header_timeout() {
    let app = TestApp::spawn_with(|c| {
        c.http.header_timeout_seconds = 1;
        c.cron_secret = Some("cron-secret-123".to_owned().into());
    })
    .await;
    let mut silent = connect(&app).await;
    let mut half_line = connect(&app).await;
    half_line.write_all(b"GET /hea").await.unwrap();
    let mut half_head = connect(&app).await;
    half_head
        .write_all(b"GET /health HTTP/1.1\r\nHost: tessera\r\nX-Slow: ")
        .await
        .unwrap();
    // Trickling bytes does not reset the deadline (slowloris proper).
    let mut trickle = connect(&app).await;
    let trickling = tokio::spawn(async move {
        for byte in b"GET /health HTTP/1.1\r\nX-A: b\r\n".iter() {
            if trickle.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        trickle
    });
    for (name, stream) in [
        ("nothing sent", &mut silent),
        ("half a request line", &mut half_line),
        ("half the headers", &mut half_head),
    ] {
        let took = closed_within(stream, Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("{name}: still open after 5 s"));
        assert!(took < Duration::from_secs(4), "{name}: {took:?}");
    }
    let mut trickle = trickling.await.unwrap();
    assert!(closed_within(&mut trickle, Duration::from_secs(3))
        .await
        .is_some());

    // A client that finishes in time is served, and the closings are counted.
    let mut prompt = connect(&app).await;
    prompt.write_all(HEALTH).await.unwrap();
    assert!(read_answer(&mut prompt).await.starts_with("HTTP/1.1 200"));
    let text = app
        .bearer_get("cron-secret-123", "/metrics")
        .await
        .text()
        .await
        .unwrap();
    let timeouts: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("tessera_http_header_timeouts_total "))
        .expect("the timeout counter")
        .parse()
        .unwrap();
    assert!(timeouts >= 4, "{text}");
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let app = TestApp::spawn_with(|c| c.http.header_timeout_seconds = 1).await;
    let mut stream = connect(&app).await;
    // Requests in good time keep the connection.
    for _ in 0..3 {
        stream.write_all(HEALTH).await.unwrap();
        assert!(read_answer(&mut stream).await.starts_with("HTTP/1.1 200"));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Then silence: closed within the timeout (and a little).
    let took = closed_within(&mut stream, Duration::from_secs(5))
        .await
        .expect("an idle keep-alive connection is closed");
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[tokio::test]
async fn past_the_connection_cap_new_connections_wait_for_a_slot() {
    let app = TestApp::spawn_with(|c| {
        c.http.header_timeout_seconds = 2;
        c.http.max_connections = 2;
    })
    .await;
    let _hogs = [connect(&app).await, connect(&app).await];
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The kernel completes the handshake; the server takes the connection
    // only when a hog has been closed at its header timeout.
    let start = Instant::now();
    let mut waiting = connect(&app).await;
    waiting.write_all(HEALTH).await.unwrap();
    let answer = read_answer(&mut waiting).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let took = start.elapsed();
    assert!(
        took > Duration::from_millis(1200) && took < Duration::from_secs(6),
        "{took:?}"
    );
}

#[tokio::test]
async fn invented_methods_do_not_grow_the_metric_labels() {
    let app =
        TestApp::spawn_with(|c| c.cron_secret = Some("cron-secret-123".to_owned().into())).await;
    let client = Client::new();
    for n in 0..40 {
        let method = reqwest::Method::from_bytes(format!("BREW{n}").as_bytes()).unwrap();
        for path in ["/health", "/api/v1/auth/me", "/no/such/path"] {
            let res = client.request(method.clone(), app.url(path)).send().await;
            assert!(res.unwrap().status().is_client_error());
        }
    }
    let text = app
        .bearer_get("cron-secret-123", "/metrics")
        .await
        .text()
        .await
        .unwrap();
    assert!(!text.contains("BREW"), "{text}");
    let series = |method: &str| {
        text.lines()
            .filter(|l| {
                l.starts_with("tessera_http_requests_total{")
                    && l.contains(&format!("method=\"{method}\""))
            })
            .count()
    };
    // At most one series per route and status for all 40 methods.
    assert!((1..=3).contains(&series("other")), "{text}");
    let other: u64 = text
        .lines()
        .filter(|l| l.starts_with("tessera_http_requests_total{") && l.contains("\"other\""))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(other, 120, "{text}");
}

#[tokio::test]
async fn two_authorization_headers_are_a_bad_request() {
    let app =
        TestApp::spawn_with(|c| c.cron_secret = Some("cron-secret-123".to_owned().into())).await;
    let email = unique_email("twoauth");
    let c = app.user(&email).await;
    let jwt = app.jwt(&c).await;
    // The valid one on its own works.
    assert_eq!(
        app.bearer_get(&jwt, "/api/v1/auth/me").await.status(),
        StatusCode::OK
    );
    for path in [
        "/api/v1/auth/me",
        "/api/auth/me",
        "/metrics",
        "/api/auth/validate",
    ] {
        for (first, second) in [
            (format!("Bearer {jwt}"), "Bearer junk".to_owned()),
            ("Bearer junk".to_owned(), format!("Bearer {jwt}")),
            (
                "Bearer cron-secret-123".to_owned(),
                "Bearer cron-secret-123".to_owned(),
            ),
        ] {
            let res = Client::new()
                .get(app.url(path))
                .header("authorization", first)
                .header("authorization", second)
                .send()
                .await
                .unwrap();
            expect_error(res, StatusCode::BAD_REQUEST, "BAD_REQUEST").await;
        }
    }
}

#[tokio::test]
async fn of_duplicate_session_cookies_any_valid_one_authenticates() {
    let app = TestApp::spawn().await;
    let email = unique_email("twocookies");
    let res = app.signup(&new_client(), &email).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let valid = cookie_value(&res, "ces_session");
    let junk = "A".repeat(43);
    let with_cookies = |path: &str, cookie: String| {
        Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(app.url(path))
            .header("cookie", cookie)
            .send()
    };
    for cookie in [
        format!("ces_session={junk}; ces_session={valid}"),
        format!("ces_session={valid}; ces_session={junk}"),
        format!("ces_session=x; ces_session=y; ces_session={valid}"),
        format!("ces_session={junk}; auth_token={valid}"),
    ] {
        for path in ["/api/v1/auth/me", "/api/auth/me", "/auth/me"] {
            let res = with_cookies(path, cookie.clone()).await.unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{path} with {cookie}");
        }
        // The hosted pages (which read `ces_session` only) too: the account
        // page, not a redirect to sign in.
        if !cookie.contains("auth_token") {
            let res = with_cookies("/ui/account", cookie.clone()).await.unwrap();
            assert_eq!(res.status(), StatusCode::OK, "/ui/account with {cookie}");
        }
    }
    // Only junk: still 401, never anonymous.
    let res = with_cookies(
        "/api/v1/auth/me",
        format!("ces_session={junk}; ces_session=other"),
    )
    .await
    .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    // A cookie write with the valid copy's CSRF token works beside a junk copy.
    let csrf: Value = with_cookies(
        "/api/v1/auth/csrf",
        format!("ces_session={junk}; ces_session={valid}"),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let res = Client::new()
        .patch(app.url("/api/v1/auth/me"))
        .header("cookie", format!("ces_session={junk}; ces_session={valid}"))
        .header("x-csrf-token", csrf["csrf_token"].as_str().unwrap())
        .json(&json!({"name": "Two Cookies"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        body(res, StatusCode::OK).await["user"]["name"],
        "Two Cookies"
    );
}
