//! Side channels and leaked secrets (issue 16, points 5 and 6), probed as an
//! attacker outside the server would: response times, response shapes,
//! logs, URLs and cookies.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// An attacker with a list of addresses times wrong-password logins: an
/// account imported with a bcrypt hash must not answer slower than an
/// address with no account, or the timing tells which addresses were
/// imported (and so which are worth attacking).
#[tokio::test]
async fn imported_bcrypt_accounts_and_unknown_emails_fail_in_the_same_time() {
    let app = TestApp::spawn_with(|c| {
        // Every probe is a failure; the lock would answer early (and has its
        // own tests).
        c.security.lockout_max_attempts = 1000;
    })
    .await;
    let imported = unique_email("imported-bcrypt");
    // A realistic cost for hashes coming from another system.
    let hash = bcrypt::hash("old-system-password", 10).unwrap();
    let report = app
        .core
        .import_users(&json!({"email": imported, "password_hash": hash}).to_string())
        .await;
    assert_eq!(report.imported, 1, "{:?}", report.bad);

    let probe = |email: String| {
        let app = &app;
        async move {
            let started = Instant::now();
            let res = app.login(&new_client(), &email, "not-the-password").await;
            let took = started.elapsed();
            expect_error(res, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
            took
        }
    };
    // Warm both paths (connections, caches) before measuring.
    probe(imported.clone()).await;
    probe(unique_email("nobody")).await;
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for round in 0..15 {
        // Interleaved, alternating which goes first, so load on the machine
        // falls on both alike.
        if round % 2 == 0 {
            known.push(probe(imported.clone()).await);
            unknown.push(probe(unique_email("nobody")).await);
        } else {
            unknown.push(probe(unique_email("nobody")).await);
            known.push(probe(imported.clone()).await);
        }
    }
    let (known, unknown) = (median(known), median(unknown));
    let (fast, slow) = (known.min(unknown), known.max(unknown));
    let gap = slow - fast;
    eprintln!("median failed login: imported bcrypt {known:?}, unknown email {unknown:?}");
    assert!(
        gap <= slow / 5 + Duration::from_millis(5),
        "failed logins differ by {gap:?}: imported bcrypt {known:?}, unknown email {unknown:?}"
    );
}

/// A bcrypt hash of `cost` in form only (the import looks at the form and
/// the cost; nothing logs in with it).
fn bcrypt_shaped(cost: u32) -> String {
    format!("$2b${cost:02}${}", "a".repeat(53))
}

/// An argon2id PHC string with `params` and a made-up salt and output.
fn argon2_shaped(params: &str) -> String {
    format!(
        "$argon2id$v=19${params}$c2FsdHNhbHRzYWx0c2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    )
}

/// An operator importing another system's users learns, line by line, which
/// hashes are too costly to check at login: a bcrypt cost above the cap, or
/// argon2 parameters beyond a login's time or memory. Such a hash would let
/// anyone with the address burn seconds of CPU per guess, and would slow
/// every failed login down to its cost.
#[tokio::test]
async fn imports_refuse_hashes_costlier_than_a_login_may_spend() {
    let app = TestApp::spawn().await;
    let lines = [
        (bcrypt_shaped(12), None),
        (
            bcrypt_shaped(13),
            Some("bcrypt at cost 13, above the limit of 12 (security.max_bcrypt_cost)"),
        ),
        (argon2_shaped("m=65536,t=3,p=4"), None),
        (
            argon2_shaped("m=19456,t=20,p=1"),
            Some("asks for 20 passes (t)"),
        ),
        (
            argon2_shaped("m=65536,t=5,p=1"),
            Some("m x t = 327680 KiB-passes of work"),
        ),
        (
            argon2_shaped("m=19456,t=2,p=32"),
            Some("asks for 32 lanes (p)"),
        ),
        (
            argon2_shaped("m=1048576,t=1,p=1"),
            Some("asks for 1048576 KiB of memory (m)"),
        ),
        (
            "$argon2id$v=19$nonsense".to_owned(),
            Some("not a valid argon2 PHC string"),
        ),
    ];
    let text = lines
        .iter()
        .map(|(hash, _)| {
            json!({"email": unique_email("costly"), "password_hash": hash}).to_string()
        })
        .collect::<Vec<_>>()
        .join("\n");
    let report = app.core.import_users(&text).await;
    assert_eq!(report.imported, 2, "{:?}", report.bad);
    let refused: Vec<(usize, &str)> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, (_, why))| why.map(|w| (i + 1, w)))
        .collect();
    assert_eq!(report.bad.len(), refused.len(), "{:?}", report.bad);
    for ((line, reason), (expected_line, expected)) in report.bad.iter().zip(&refused) {
        assert_eq!(line, expected_line);
        assert!(
            reason.starts_with("password_hash ") && reason.contains(expected),
            "line {line}: {reason:?} should say {expected:?}"
        );
    }

    // The cap is the operator's to raise.
    let app = TestApp::spawn_with(|c| c.security.max_bcrypt_cost = 13).await;
    let line = json!({"email": unique_email("costly"), "password_hash": bcrypt_shaped(13)});
    let report = app.core.import_users(&line.to_string()).await;
    assert_eq!(report.imported, 1, "{:?}", report.bad);
}

/// What the JSON says without its values: keys and value types, with an
/// array as the set of its items' shapes.
fn shape(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| (key.clone(), shape(value)))
                .collect(),
        ),
        Value::Array(items) => {
            let shapes: std::collections::BTreeSet<String> =
                items.iter().map(|item| shape(item).to_string()).collect();
            json!(shapes)
        }
        Value::String(_) => json!("string"),
        Value::Number(_) => json!("number"),
        Value::Bool(_) => json!("bool"),
        Value::Null => json!("null"),
    }
}

/// An attacker asks to sign in by passkey with addresses of all kinds: one
/// with a passkey, one with an account but no passkey, one with no account.
/// The answers have the same status, headers and JSON shape, down to the
/// items of `allowCredentials`; only random values differ.
#[tokio::test]
async fn passkey_sign_in_options_look_alike_for_every_address() {
    use base64::Engine as _;
    let (app, origin) = crate::passkeys::app().await;
    let with_passkey = unique_email("with-passkey");
    let owner = app.user(&with_passkey).await;
    crate::passkeys::register(&app, &owner, &mut crate::passkeys::device(), &origin, "Key").await;
    let without_passkey = unique_email("without-passkey");
    app.user(&without_passkey).await;

    let start = |email: String| {
        let app = &app;
        async move {
            let res = app
                .post(
                    &new_client(),
                    "/api/v1/auth/passkeys/login/start",
                    json!({"email": email}),
                )
                .await;
            let status = res.status();
            let content_type = res.headers()["content-type"].clone();
            let cookies = res.headers().get_all("set-cookie").iter().count();
            let body: serde_json::Value = res.json().await.unwrap();
            (status, content_type, cookies, body)
        }
    };
    let real = start(with_passkey).await;
    assert_eq!(real.0, StatusCode::OK);
    let real_shape = shape(&real.3);
    let public_key = &real.3["options"]["publicKey"];
    assert!(
        public_key["allowCredentials"][0]
            .get("transports")
            .is_none(),
        "transports name the kind of device; decoys cannot fake them: {public_key}"
    );
    let mut decoys = vec![without_passkey];
    decoys.extend((0..12).map(|_| unique_email("nobody")));
    for email in decoys {
        let decoy = start(email.clone()).await;
        assert_eq!((decoy.0, &decoy.1, decoy.2), (real.0, &real.1, real.2));
        assert_eq!(
            shape(&decoy.3),
            real_shape,
            "{email}: {}\nreal: {}",
            decoy.3,
            real.3
        );
        let options = &decoy.3["options"]["publicKey"];
        for field in ["timeout", "rpId", "userVerification"] {
            assert_eq!(options[field], public_key[field], "{field}");
        }
        assert_eq!(
            options["challenge"].as_str().unwrap().len(),
            public_key["challenge"].as_str().unwrap().len()
        );
        // A believable number of believable credential ids.
        let ids = options["allowCredentials"].as_array().unwrap();
        assert!((1..=3).contains(&ids.len()), "{options}");
        for id in ids {
            let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(id["id"].as_str().unwrap())
                .unwrap();
            assert!([16, 20, 32, 64, 65].contains(&raw.len()), "{}", raw.len());
        }
        // And a browser's WebAuthn client takes it like a real one.
        serde_json::from_value::<webauthn_rs::prelude::RequestChallengeResponse>(
            decoy.3["options"].clone(),
        )
        .unwrap();
    }
}

/// The `tessera` binary serving at `public_url` without SMTP; a sign-up
/// makes it send a verification mail. Returns what it logged.
async fn log_of_a_signup_without_smtp(public_url: impl Fn(u16) -> String) -> (String, String) {
    let (dir, db) = fresh_database().await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TESSERA_DATABASE_URL", &db)
        .env("TESSERA_LOG_FORMAT", "json")
        .env("TESSERA_LISTEN", format!("127.0.0.1:{port}"))
        .env("TESSERA_PUBLIC_URL", public_url(port))
        .arg("serve")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    wait_until_up(&base).await;
    let email = unique_email("logged");
    let res = new_client()
        .post(format!("{base}/api/v1/auth/signup"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        let text = std::fs::read_to_string(&log_path).unwrap();
        if text
            .lines()
            .any(|l| l.contains(&email) && l.contains("subject"))
        {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "no mail logged for {email}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = server.kill();
    let _ = server.wait();
    (text, email)
}

/// Logs travel further than mail (collectors, tickets, screenshots). A
/// server whose public URL is a real host and has no SMTP server logs who
/// a mail was for and what it was about, with a warning, but never its body
/// and the token link in it; a development server (loopback public URL)
/// logs the body so its links can be followed.
#[tokio::test]
async fn without_smtp_mail_bodies_are_logged_only_for_a_loopback_public_url() {
    let (log, email) = log_of_a_signup_without_smtp(|_| "https://auth.example.test".into()).await;
    let line = log
        .lines()
        .find(|l| l.contains(&email) && l.contains("subject"))
        .unwrap();
    assert!(line.contains("Confirm your email address"), "{line}");
    assert!(line.contains("no SMTP server configured"), "{line}");
    assert!(
        !log.contains("token=") && !log.contains("/ui/verify-email"),
        "a link leaked into the log:\n{log}"
    );
    assert!(
        log.contains("TESSERA_SMTP_URL is unset: no mail is delivered"),
        "{log}"
    );

    let (log, email) =
        log_of_a_signup_without_smtp(|port| format!("http://localhost:{port}")).await;
    let line = log
        .lines()
        .find(|l| l.contains(&email) && l.contains("subject"))
        .unwrap();
    assert!(line.contains("/ui/verify-email?token="), "{line}");
}

/// Mail that could not be delivered keeps its link in the database only
/// for `mail.retention_days`; then the sweep deletes it.
#[tokio::test]
async fn undeliverable_mail_is_purged_after_its_retention() {
    // Nothing listens on the SMTP port: every delivery fails, and one
    // failure is the last.
    let app = TestApp::spawn_bare(free_port(), |c| {
        c.mail.max_attempts = 1;
        crate::metrics::scrapeable(c);
    })
    .await;
    app.signup(&new_client(), &unique_email("bounced")).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let metrics = crate::metrics::scrape(&app).await;
        if metrics.contains("tessera_mail_failed_total 1") {
            break;
        }
        assert!(Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let depth = || async { app.core.store.outbox_stats().await.unwrap().depth };
    assert_eq!(depth().await, 1, "given up, kept for the operator");
    app.clock.advance(chrono::Duration::days(6));
    app.core.run_due_jobs().await;
    assert_eq!(depth().await, 1, "still within the 7 days");
    app.clock.advance(chrono::Duration::days(2));
    app.core.run_due_jobs().await;
    assert_eq!(depth().await, 0, "purged past the retention");
}

/// A Turnstile verifier on loopback that passes `good-token` and records
/// the `remoteip` of each call.
async fn recording_verifier() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use axum::routing::post;
    use axum::{Form, Json, Router};
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = Router::new().route(
        "/siteverify",
        post(
            move |Form(form): Form<std::collections::HashMap<String, String>>| async move {
                record.lock().unwrap().push(
                    form.get("remoteip")
                        .cloned()
                        .unwrap_or_else(|| "<none>".into()),
                );
                Json(json!({"success": form.get("response").map(String::as_str) == Some("good-token")}))
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/siteverify", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

async fn captcha_login(app_base: &str, forwarded_for: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{app_base}/api/v1/auth/login"))
        .header("x-captcha-response", "good-token")
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({"email": "nobody@example.test", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
}

/// Behind a trusted proxy the verifier is told the browser's address (the
/// one the rate limiter uses), not the proxy's; a client cannot pick the
/// address by sending `X-Forwarded-For` to a server that trusts no proxy;
/// and a server that cannot tell the client's address refuses rather than
/// skip the check.
#[tokio::test]
async fn the_bot_check_sends_the_resolved_client_ip_and_fails_closed() {
    let (verify_url, seen) = recording_verifier().await;
    let url = verify_url.clone();
    let behind_proxy = TestApp::spawn_with(move |c| {
        c.turnstile.secret = Some("s3cret".to_owned().into());
        c.turnstile.verify_url = url;
        c.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let res = captcha_login(&behind_proxy.base, "203.0.113.7").await;
    expect_error(res, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    assert_eq!(seen.lock().unwrap().last().unwrap(), "203.0.113.7");
    // The hosted pages send the same address.
    let client = new_client();
    let form_token = behind_proxy.form_token(&client, "/ui/sign-in").await;
    let res = client
        .post(behind_proxy.url("/ui/sign-in"))
        .header("x-forwarded-for", "198.51.100.23")
        .form(&[
            ("form_token", form_token.as_str()),
            ("email", "nobody@example.test"),
            ("password", PASSWORD),
            ("cf-turnstile-response", "good-token"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(seen.lock().unwrap().last().unwrap(), "198.51.100.23");

    // No trusted proxy: the header is the client's own claim, ignored.
    let url = verify_url.clone();
    let direct = TestApp::spawn_with(move |c| {
        c.turnstile.secret = Some("s3cret".to_owned().into());
        c.turnstile.verify_url = url;
    })
    .await;
    let res = captcha_login(&direct.base, "203.0.113.7").await;
    expect_error(res, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    assert_eq!(seen.lock().unwrap().last().unwrap(), "127.0.0.1");

    // Served without connection info (a wiring mistake), there is no client
    // address: refused, and the verifier is not even asked.
    let calls = seen.lock().unwrap().len();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = tessera::http::router(direct.core.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let res = captcha_login(&base, "203.0.113.7").await;
    expect_error(res, StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE").await;
    assert_eq!(seen.lock().unwrap().len(), calls);
}
