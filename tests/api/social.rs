//! Social login against a real OpenID Connect provider on loopback
//! (oauth2-mock-server, started per test from `tests/oidc`).

use std::process::Stdio;
use std::sync::OnceLock;

use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};
use tessera::config::OAuthProviderConfig;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::*;

const CLIENT_ID: &str = "tessera-test-client";

/// The provider process and its control port.
pub(crate) struct Provider {
    pub(crate) issuer: String,
    control: String,
    _child: Child,
}

fn oidc_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc")
}

/// Installs the provider's npm package once per test run.
fn install_provider() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        if oidc_dir().join("node_modules/oauth2-mock-server").exists() {
            return;
        }
        let status = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--silent"])
            .current_dir(oidc_dir())
            .status()
            .expect("npm runs");
        assert!(status.success(), "npm ci in tests/oidc failed");
    });
}

impl Provider {
    pub(crate) async fn start() -> Provider {
        tokio::task::spawn_blocking(install_provider).await.unwrap();
        let mut child = Command::new("node")
            .arg(oidc_dir().join("provider.mjs"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node starts");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).await.unwrap();
        let ready: Value = serde_json::from_str(&line).expect("the provider says where it is");
        Provider {
            issuer: ready["issuer"].as_str().unwrap().to_owned(),
            control: ready["control"].as_str().unwrap().to_owned(),
            _child: child,
        }
    }

    async fn control(&self, path: &str, body: Value) {
        let res = reqwest::Client::new()
            .post(format!("{}{path}", self.control))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
    }

    /// Who signs in at the provider from now on.
    pub(crate) async fn user(&self, sub: &str, email: &str, verified: bool) {
        self.control(
            "/user",
            json!({"sub": sub, "email": email, "email_verified": verified, "name": "Ada Lovelace"}),
        )
        .await;
    }

    pub(crate) fn config(&self) -> OAuthProviderConfig {
        OAuthProviderConfig {
            client_id: Some(CLIENT_ID.into()),
            client_secret: Some("tessera-test-secret".to_owned().into()),
            issuer: Some(self.issuer.clone()),
            ..OAuthProviderConfig::default()
        }
    }
}

/// Tessera with the provider configured as `mock` and as `google`.
pub(crate) async fn app_with(provider: &Provider) -> TestApp {
    let config = provider.config();
    TestApp::spawn_with(move |c| {
        c.app_url = Some("http://app.example.test/home".parse().unwrap());
        c.cors_origins = vec!["https://admin.example.test".into()];
        c.oauth.insert("mock".into(), config.clone());
        c.oauth.insert("google".into(), config);
    })
    .await
}

pub(crate) fn location(res: &Response) -> String {
    res.headers()["location"].to_str().unwrap().to_owned()
}

/// Follows the browser's way through the provider: from Tessera's redirect
/// to the provider, back to the callback URL it sends. Returns that URL.
async fn through_provider(client: &Client, start: &Response) -> String {
    assert_eq!(start.status(), StatusCode::FOUND);
    let at_provider = client.get(location(start)).send().await.unwrap();
    assert_eq!(at_provider.status(), StatusCode::FOUND);
    location(&at_provider)
}

/// Starts at `/api/v1/auth/oauth/mock` and returns the callback's answer.
async fn sign_in(app: &TestApp, client: &Client, redirect_to: Option<&str>) -> Response {
    let path = match redirect_to {
        Some(to) => format!(
            "/api/v1/auth/oauth/mock?redirect_to={}",
            form_urlencoded::byte_serialize(to.as_bytes()).collect::<String>()
        ),
        None => "/api/v1/auth/oauth/mock".into(),
    };
    let start = app.get(client, &path).await;
    let callback = through_provider(client, &start).await;
    client.get(callback).send().await.unwrap()
}

#[tokio::test]
async fn a_new_user_signs_up_with_a_verified_provider_email() {
    let provider = Provider::start().await;
    let app = app_with(&provider).await;
    let email = unique_email("social-new");
    provider.user("sub-new", &email, true).await;
    let client = new_client();

    let start = app
        .get(&client, "/api/v1/auth/oauth/mock?redirect_to=/dashboard")
        .await;
    let authorize = location(&start);
    assert!(authorize.starts_with(&provider.issuer), "{authorize}");
    for param in [
        "state=",
        "nonce=",
        "code_challenge=",
        "code_challenge_method=S256",
    ] {
        assert!(authorize.contains(param), "{param} in {authorize}");
    }
    let cookie = set_cookie(&start, "tessera_oauth").expect("state cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));

    let callback = through_provider(&client, &start).await;
    assert!(callback.starts_with(&format!("{}/api/v1/auth/oauth/mock/callback?", app.base)));
    let done = client.get(&callback).send().await.unwrap();
    assert_eq!(
        done.status(),
        StatusCode::FOUND,
        "{}",
        done.text().await.unwrap()
    );
    assert_eq!(location(&done), "http://app.example.test/dashboard");
    assert!(set_cookie(&done, "ces_session").is_some());

    let user = me(&app, &client).await;
    assert_eq!(user["user"]["email"], email);
    assert_eq!(user["user"]["email_verified"], true);
    assert_eq!(user["user"]["has_password"], false);
    assert_eq!(user["user"]["name"], "Ada Lovelace");
    let linked = body(
        app.get(&client, "/api/v1/auth/linked-accounts").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(linked[0]["provider"], "mock");
    assert_eq!(linked[0]["email"], email);

    // The same person again: the same account, found by (issuer, subject).
    let again = new_client();
    let res = sign_in(&app, &again, None).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(location(&res), "http://app.example.test/home");
    assert_eq!(user_id(&app, &again).await, user_id(&app, &client).await);

    // A replayed callback (same state, same code) signs nobody in.
    let replay = new_client();
    let res = replay.get(&callback).send().await.unwrap();
    expect_error(res, StatusCode::BAD_REQUEST, "BAD_REQUEST").await;
    let res = client.get(&callback).send().await.unwrap();
    assert!(set_cookie(&res, "ces_session").is_none());
    expect_error(res, StatusCode::BAD_REQUEST, "BAD_REQUEST").await;
}

#[tokio::test]
async fn an_existing_verified_account_is_linked_and_signed_in() {
    let provider = Provider::start().await;
    let app = app_with(&provider).await;
    let email = unique_email("social-verified");
    let existing = app
        .core
        .create_user_cli(&email, PASSWORD, false)
        .await
        .unwrap();
    provider.user("sub-verified", &email, true).await;
    let client = new_client();
    let res = sign_in(&app, &client, None).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(user_id(&app, &client).await, existing.id.to_string());
    // The password still works beside the provider.
    assert_eq!(
        app.login(&new_client(), &email, PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_pre_registered_unverified_account_is_never_taken_over() {
    let provider = Provider::start().await;
    let app = app_with(&provider).await;
    let victim = unique_email("victim");
    // The attacker signs up first with the victim's address (never verified).
    let attacker = app.unverified_user(&victim).await;
    provider.user("victim-at-provider", &victim, true).await;
    // The provider proves the address: the owner gets a fresh account, and
    // the attacker's is gone with its session and password.
    let client = new_client();
    let res = sign_in(&app, &client, None).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    assert!(set_cookie(&res, "ces_session").is_some());
    let me_now = me(&app, &client).await;
    assert_eq!(me_now["user"]["email"], victim.as_str());
    assert_eq!(me_now["user"]["has_password"], false, "{me_now}");
    assert_eq!(app.me_status(&attacker).await, StatusCode::UNAUTHORIZED);
    let res = app.login(&new_client(), &victim, PASSWORD).await;
    expect_error(res, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    let linked = body_of(&app, &client, "/api/v1/auth/linked-accounts").await;
    assert_eq!(linked.as_array().unwrap().len(), 1, "{linked}");
}

async fn body_of(app: &TestApp, client: &Client, path: &str) -> Value {
    body(app.get(client, path).await, StatusCode::OK).await
}

#[tokio::test]
async fn an_unverified_provider_email_neither_links_nor_signs_up() {
    let provider = Provider::start().await;
    let app = app_with(&provider).await;
    let email = unique_email("social-unverified");
    let existing = app
        .core
        .create_user_cli(&email, PASSWORD, false)
        .await
        .unwrap();
    provider.user("sub-unverified", &email, false).await;
    let client = new_client();
    let res = sign_in(&app, &client, None).await;
    expect_error(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    assert_eq!(app.me_status(&client).await, StatusCode::UNAUTHORIZED);
    assert!(app
        .core
        .store
        .identities(existing.id)
        .await
        .unwrap()
        .is_empty());

    let stranger = unique_email("social-stranger");
    provider.user("sub-stranger", &stranger, false).await;
    let res = sign_in(&app, &new_client(), None).await;
    expect_error(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    assert!(app
        .core
        .store
        .find_user_by_email(&stranger)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn tampered_missing_or_foreign_state_signs_nobody_in() {
    let provider = Provider::start().await;
    let app = app_with(&provider).await;
    provider
        .user("sub-state", &unique_email("state"), true)
        .await;

    // The victim's browser started a sign-in; the attacker's callback URL
    // (the attacker's own state and code) lands in another browser.
    let attacker = new_client();
    let start = app.get(&attacker, "/api/v1/auth/oauth/mock").await;
    let attacker_callback = through_provider(&attacker, &start).await;
    let victim = new_client();
    let _ = app.get(&victim, "/api/v1/auth/oauth/mock").await;
    let res = victim.get(&attacker_callback).send().await.unwrap();
    expect_error(res, StatusCode::BAD_REQUEST, "BAD_REQUEST").await;
    assert_eq!(app.me_status(&victim).await, StatusCode::UNAUTHORIZED);

    // A changed state, or none at all.
    let client = new_client();
    let start = app.get(&client, "/api/v1/auth/oauth/mock").await;
    let callback = through_provider(&client, &start).await;
    let tampered = callback.replace("state=", "state=x");
    let res = client.get(&tampered).send().await.unwrap();
    expect_error(res, StatusCode::BAD_REQUEST, "BAD_REQUEST").await;
    let res = app
        .get(&client, "/api/v1/auth/oauth/mock/callback?code=abc")
        .await;
    expect_error(res, StatusCode::BAD_REQUEST, "BAD_REQUEST").await;
    assert_eq!(app.me_status(&client).await, StatusCode::UNAUTHORIZED);

    // An unknown provider is a 404.
    let res = app.get(&client, "/api/v1/auth/oauth/nope").await;
    expect_error(res, StatusCode::NOT_FOUND, "NOT_FOUND").await;
}

#[tokio::test]
async fn provider_errors_and_bad_id_tokens_end_without_a_session() {
    let provider = Provider::start().await;
    let app = app_with(&provider).await;
    provider
        .user("sub-errors", &unique_email("errors"), true)
        .await;

    // The user declined at the provider.
    let client = new_client();
    let start = app.get(&client, "/api/v1/auth/oauth/mock").await;
    let callback = through_provider(&client, &start).await;
    let state = url::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let res = app
        .get(
            &client,
            &format!("/api/v1/auth/oauth/mock/callback?state={state}&error=access_denied"),
        )
        .await;
    let body = expect_error(res, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    assert!(body["message"].as_str().unwrap().contains("access_denied"));

    // The token endpoint refuses the code.
    provider.control("/fail-next-token", json!({})).await;
    let res = sign_in(&app, &new_client(), None).await;
    expect_error(res, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;

    // ID tokens for another client, from another issuer, with another
    // nonce, or already expired.
    for tamper in [
        json!({"aud": "someone-else"}),
        json!({"iss": "https://evil.example"}),
        json!({"nonce": "replayed-nonce"}),
        json!({"exp": 1_000_000_000}),
        json!({"sub": ""}),
    ] {
        provider.control("/tamper", tamper.clone()).await;
        let client = new_client();
        let res = sign_in(&app, &client, None).await;
        assert!(set_cookie(&res, "ces_session").is_none(), "{tamper}");
        expect_error(res, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
        assert_eq!(app.me_status(&client).await, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn a_provider_that_rotates_its_signing_key_still_signs_in() {
    let provider = Provider::start().await;
    let app = app_with(&provider).await;
    provider
        .user("sub-rotate", &unique_email("rotate"), true)
        .await;
    let res = sign_in(&app, &new_client(), None).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    // A new key, not in the key set Tessera has cached; the provider signs
    // with its keys in turn, so the next ID tokens use it.
    provider.control("/rotate", json!({})).await;
    for _ in 0..3 {
        let client = new_client();
        let res = sign_in(&app, &client, None).await;
        assert_eq!(
            res.status(),
            StatusCode::FOUND,
            "{}",
            res.text().await.unwrap()
        );
        assert_eq!(app.me_status(&client).await, StatusCode::OK);
    }
}

#[tokio::test]
async fn hostile_redirect_targets_fall_back_to_the_app_url() {
    let provider = Provider::start().await;
    let app = app_with(&provider).await;
    provider
        .user("sub-redirect", &unique_email("redirect"), true)
        .await;
    for hostile in [
        "//evil.com",
        "/\\evil.com",
        "https:evil.com",
        "https://app.example.test@evil.com",
        "http://app.example.test@evil.com/",
        "http://app.example.test.evil.com/",
        "https://admin.example.test.evil.example/",
        "javascript:alert(1)",
        "data:text/html,hi",
        "ftp://app.example.test/",
    ] {
        let res = sign_in(&app, &new_client(), Some(hostile)).await;
        assert_eq!(res.status(), StatusCode::FOUND, "{hostile}");
        assert_eq!(location(&res), "http://app.example.test/home", "{hostile}");
    }
    for (allowed, expected) in [
        ("/settings?tab=2", "http://app.example.test/settings?tab=2"),
        ("http://app.example.test/x", "http://app.example.test/x"),
        (
            "https://admin.example.test/after",
            "https://admin.example.test/after",
        ),
    ] {
        let res = sign_in(&app, &new_client(), Some(allowed)).await;
        assert_eq!(location(&res), expected, "{allowed}");
    }
}

#[tokio::test]
async fn linking_unlinking_and_the_last_way_to_sign_in() {
    let provider = Provider::start().await;
    let app = app_with(&provider).await;

    // A social-only account cannot drop its only sign-in method.
    let social_email = unique_email("social-only");
    provider.user("sub-only", &social_email, true).await;
    let social = new_client();
    sign_in(&app, &social, None).await;
    let res = app
        .write(
            &social,
            reqwest::Method::DELETE,
            "/api/v1/auth/linked-accounts/mock",
            None,
        )
        .await;
    expect_error(res, StatusCode::CONFLICT, "CONFLICT").await;
    // After setting a password it can.
    let res = app
        .write(
            &social,
            reqwest::Method::POST,
            "/api/v1/auth/set-password",
            Some(json!({"new_password": "a-first-password-2026"})),
        )
        .await;
    assert!(res.status().is_success(), "{}", res.status());
    let res = app
        .write(
            &social,
            reqwest::Method::DELETE,
            "/api/v1/auth/linked-accounts/mock",
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = app
        .write(
            &social,
            reqwest::Method::DELETE,
            "/api/v1/auth/linked-accounts/mock",
            None,
        )
        .await;
    expect_error(res, StatusCode::NOT_FOUND, "NOT_FOUND").await;

    // A signed-in password user links a provider identity explicitly, even
    // one whose email differs from the account's.
    let owner = app.user(&unique_email("linker")).await;
    provider
        .user("sub-linked", &unique_email("elsewhere"), false)
        .await;
    let res = app
        .write(
            &owner,
            reqwest::Method::POST,
            "/api/v1/auth/linked-accounts/mock",
            Some(json!({"redirect_to": "/linked"})),
        )
        .await;
    let started = body(res, StatusCode::OK).await;
    let at_provider = owner
        .get(started["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let done = owner.get(location(&at_provider)).send().await.unwrap();
    assert_eq!(done.status(), StatusCode::FOUND);
    assert_eq!(location(&done), "http://app.example.test/linked");
    let linked = body_of(&app, &owner, "/api/v1/auth/linked-accounts").await;
    assert_eq!(linked.as_array().unwrap().len(), 1);
    // That identity now signs in to the owner's account.
    let client = new_client();
    sign_in(&app, &client, None).await;
    assert_eq!(user_id(&app, &client).await, user_id(&app, &owner).await);

    // Another user cannot link an identity that belongs to someone else.
    let other = app.user(&unique_email("other-linker")).await;
    let res = app
        .write(
            &other,
            reqwest::Method::POST,
            "/api/v1/auth/linked-accounts/mock",
            Some(json!({})),
        )
        .await;
    let started = body(res, StatusCode::OK).await;
    let at_provider = other
        .get(started["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let res = other.get(location(&at_provider)).send().await.unwrap();
    expect_error(res, StatusCode::CONFLICT, "CONFLICT").await;
}

#[tokio::test]
async fn the_legacy_and_dashboard_surfaces_sign_in_with_their_own_cookies() {
    let provider = Provider::start().await;
    let app = app_with(&provider).await;
    let email = unique_email("surfaces");
    provider.user("sub-surfaces", &email, true).await;

    // Seed 001: /api/auth/google → Google (here: the mock) → auth_token.
    let legacy = new_client();
    let start = app.get(&legacy, "/api/auth/google").await;
    let callback = through_provider(&legacy, &start).await;
    assert!(callback.starts_with(&format!("{}/api/auth/google/callback?", app.base)));
    let done = legacy.get(&callback).send().await.unwrap();
    assert_eq!(done.status(), StatusCode::FOUND);
    assert_eq!(location(&done), "http://app.example.test/home");
    assert!(set_cookie(&done, "auth_token").is_some());
    let res = app.get(&legacy, "/api/auth/me").await;
    assert_eq!(body(res, StatusCode::OK).await["user"]["email"], email);

    // Seed 002: sign-in/social → {url} → /auth/callback/mock → ces_session.
    provider
        .user("sub-dashboard", &unique_email("dashboard"), true)
        .await;
    let dash = new_client();
    let res = app
        .post(
            &dash,
            "/auth/sign-in/social",
            json!({"provider": "mock", "callbackURL": "http://app.example.test/welcome"}),
        )
        .await;
    let started = body(res, StatusCode::OK).await;
    assert_eq!(started["redirect"], true);
    let at_provider = dash
        .get(started["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let callback = location(&at_provider);
    assert!(callback.starts_with(&format!("{}/auth/callback/mock?", app.base)));
    let done = dash.get(&callback).send().await.unwrap();
    assert_eq!(location(&done), "http://app.example.test/welcome");
    let res = app.get(&dash, "/auth/linked-accounts").await;
    let linked = body(res, StatusCode::OK).await;
    assert_eq!(linked[0]["providerId"], "mock");
    // The dashboard's unlink refuses to remove the only way in.
    let res = dash
        .post(app.url("/auth/unlink-provider"))
        .header("origin", &app.base)
        .json(&json!({"providerId": "mock"}))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::CONFLICT, "CONFLICT").await;
}

/// GitHub's user and emails API, as GitHub answers them, on loopback.
async fn github_api(primary_verified: bool) -> String {
    use axum::routing::get;
    let api = axum::Router::new()
        .route(
            "/user",
            get(|| async { axum::Json(json!({"id": 583231, "login": "octocat", "name": "The Octocat"})) }),
        )
        .route(
            "/user/emails",
            get(move || async move {
                axum::Json(json!([
                    {"email": "octocat@example.test", "primary": true, "verified": primary_verified},
                    {"email": "other@example.test", "primary": false, "verified": true},
                ]))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, api).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn the_github_preset_uses_the_verified_primary_email() {
    // The mock serves GitHub's authorize and token steps (plain OAuth2 with
    // PKCE); the user API is GitHub-shaped.
    let provider = Provider::start().await;
    for (verified, expected) in [(true, StatusCode::FOUND), (false, StatusCode::FORBIDDEN)] {
        let api = github_api(verified).await;
        let github = OAuthProviderConfig {
            authorize_url: Some(format!("{}/authorize", provider.issuer)),
            token_url: Some(format!("{}/token", provider.issuer)),
            api_url: Some(api),
            ..provider.config()
        };
        let app = TestApp::spawn_with(move |c| {
            c.oauth.insert("github".into(), github);
        })
        .await;
        let client = new_client();
        let start = app.get(&client, "/api/v1/auth/oauth/github").await;
        let authorize = location(&start);
        assert!(
            authorize.contains("code_challenge_method=S256"),
            "{authorize}"
        );
        assert!(
            authorize.contains("scope=read%3Auser+user%3Aemail"),
            "{authorize}"
        );
        let callback = through_provider(&client, &start).await;
        let res = client.get(callback).send().await.unwrap();
        assert_eq!(res.status(), expected, "{}", res.text().await.unwrap());
        if verified {
            let user = me(&app, &client).await;
            assert_eq!(user["user"]["email"], "octocat@example.test");
            assert_eq!(user["user"]["name"], "The Octocat");
            let linked = body_of(&app, &client, "/api/v1/auth/linked-accounts").await;
            assert_eq!(linked[0]["provider"], "github");
        } else {
            assert_eq!(app.me_status(&client).await, StatusCode::UNAUTHORIZED);
        }
    }
}

/// An account with TOTP on, and a way to make its current code.
async fn with_totp(app: &TestApp, email: &str) -> impl Fn(&TestApp) -> String {
    app.core
        .create_user_cli(email, PASSWORD, false)
        .await
        .unwrap();
    let owner = new_client();
    app.login(&owner, email, PASSWORD).await;
    let secret = app.enable_totp(&owner).await.secret;
    // The next code is a new one (a code never works twice).
    app.next_totp_step();
    move |app: &TestApp| app.totp_code(&secret)
}

#[tokio::test]
async fn social_login_does_not_skip_the_second_factor() {
    let provider = Provider::start().await;
    let app = app_with(&provider).await;
    let email = unique_email("social-2fa");
    let code = with_totp(&app, &email).await;

    provider.user("sub-2fa", &email, true).await;
    let client = new_client();
    let res = sign_in(&app, &client, Some("/after")).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    assert!(set_cookie(&res, "ces_session").is_none());
    let to = url::Url::parse(&location(&res)).unwrap();
    assert_eq!(to.path(), "/after");
    let query: std::collections::HashMap<_, _> = to.query_pairs().into_owned().collect();
    assert_eq!(query["two_factor_required"], "true");
    // The challenge is not in the URL (browser history, proxy logs,
    // Referer), but in a short-lived HttpOnly cookie.
    assert!(!query.contains_key("challenge"), "{to}");
    let cookie = set_cookie(&res, "tessera_2fa").expect("the challenge cookie");
    let challenge = cookie_value(&res, "tessera_2fa");
    assert!(challenge.len() >= 43, "{cookie}");
    assert!(!location(&res).contains(&challenge));
    for part in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=300"] {
        assert!(cookie.contains(part), "{part} in {cookie}");
    }
    assert_eq!(app.me_status(&client).await, StatusCode::UNAUTHORIZED);
    // The app finishes with the code alone: the cookie carries the challenge.
    let res = app
        .post(
            &client,
            "/api/v1/auth/2fa/verify",
            json!({"code": code(&app)}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let cleared = set_cookie(&res, "tessera_2fa").expect("the challenge cookie is cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(me(&app, &client).await["user"]["email"], email);
}

#[tokio::test]
async fn every_second_step_reads_the_challenge_cookie_of_a_social_sign_in() {
    let provider = Provider::start().await;
    let app = app_with(&provider).await;
    let email = unique_email("social-2fa-surfaces");
    let code = with_totp(&app, &email).await;
    provider.user("sub-2fa-surfaces", &email, true).await;
    // A browser back from the provider: where it is sent, holding the
    // challenge cookie.
    let socially = |redirect_to: String| {
        let app = &app;
        async move {
            let client = new_client();
            let res = sign_in(app, &client, Some(&redirect_to)).await;
            assert!(set_cookie(&res, "tessera_2fa").is_some());
            assert!(!location(&res).contains("challenge="));
            (client, location(&res))
        }
    };

    // The API surfaces: a body without a challenge.
    for (path, cookie) in [
        ("/api/auth/2fa/verify", "auth_token"),
        ("/auth/two-factor/verify", "ces_session"),
    ] {
        let (client, _) = socially("/after".into()).await;
        let res = client
            .post(app.url(path))
            .header("origin", &app.base)
            .json(&json!({"code": code(&app)}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert!(set_cookie(&res, cookie).is_some(), "{path}");
        let cleared = set_cookie(&res, "tessera_2fa").unwrap();
        assert!(cleared.contains("Max-Age=0"), "{path}: {cleared}");
        app.clock.advance(chrono::Duration::seconds(30));
    }

    // The hosted pages: the provider returns the browser to the sign-in
    // page, which asks for the code; the form carries no challenge.
    let back = format!("{}/ui/sign-in?redirect_to=%2Fui%2Faccount", app.base);
    let (client, to) = socially(back).await;
    assert!(to.contains("two_factor_required=true"), "{to}");
    let res = client.get(&to).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(html.contains("<h1>Two-step verification</h1>"), "{html}");
    assert_eq!(html::input_value(&html, "challenge"), "");
    let form_token = html::form_token(&html);
    let code_now = code(&app);
    let res = client
        .post(app.url("/ui/two-factor"))
        .form(&[
            ("form_token", form_token.as_str()),
            ("code", code_now.as_str()),
            ("redirect_to", "/ui/account"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(set_cookie(&res, "ces_session").is_some());
    let cleared = set_cookie(&res, "tessera_2fa").unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(me(&app, &client).await["user"]["email"], email);
}

#[tokio::test]
async fn failed_browser_callbacks_end_on_the_app_with_an_error_code() {
    let provider = Provider::start().await;
    let app = app_with(&provider).await;
    let email = unique_email("cancel");
    provider.user("sub-cancel", &email, true).await;

    // Seed 001: the user pressed cancel at Google (the state is real).
    let legacy = new_client();
    let start = app.get(&legacy, "/api/auth/google").await;
    let callback = through_provider(&legacy, &start).await;
    let state = url::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let res = legacy
        .get(app.url(&format!(
            "/api/auth/google/callback?state={state}&error=access_denied"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(
        location(&res),
        "http://app.example.test/home?error=access_denied"
    );
    assert!(set_cookie(&res, "auth_token").is_none());
    // A missing or spent state.
    for path in [
        "/api/auth/google/callback?code=x".to_owned(),
        format!("/api/auth/google/callback?state={state}&code=x"),
        "/auth/callback/mock?code=x&state=nope".to_owned(),
    ] {
        let res = new_client().get(app.url(&path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::FOUND, "{path}");
        assert_eq!(
            location(&res),
            "http://app.example.test/home?error=invalid_state",
            "{path}"
        );
        // A redirect, not a JSON page for the browser to show.
        assert!(res.headers().get("content-type").is_none());
    }
    // Seed 002: a code the provider does not know fails the exchange.
    let dash = new_client();
    let res = app
        .post(&dash, "/auth/sign-in/social", json!({"provider": "mock"}))
        .await;
    let started = body(res, StatusCode::OK).await;
    let at_provider = dash
        .get(started["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let callback = location(&at_provider);
    let mut forged = url::Url::parse(&callback).unwrap();
    let pairs: Vec<(String, String)> = forged
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "code" {
                "forged-code".into()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    forged.query_pairs_mut().clear().extend_pairs(pairs);
    let res = dash.get(forged.as_str()).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    let to = location(&res);
    assert!(
        to.starts_with("http://app.example.test/home?error="),
        "{to}"
    );
    assert_eq!(app.me_status(&dash).await, StatusCode::UNAUTHORIZED);
}
