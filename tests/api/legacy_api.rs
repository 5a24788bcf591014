//! Seeds 001 and 003 read as a client's manual: every call they show, in
//! order, with the fields, statuses, cookies and messages they document.

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn seed_001_walkthrough() {
    let app =
        TestApp::spawn_with(|c| c.cron_secret = Some("cron-secret-123".to_owned().into())).await;
    let email = unique_email("seed1");
    seed_001::register(&app, &email).await;
    let c = seed_001::login(&app, &email).await;
    seed_001::me_with_the_cookie(&app, &c, &email).await;
    seed_001::change_password(&app, &c).await;
    let token = seed_001::forgot_password(&app, &email).await;
    seed_001::reset_password(&app, &c, &token).await;
    seed_001::logout(&app, &email).await;
    seed_001::validate(&app).await;
}

/// The steps of [`seed_001_walkthrough`], in order.
mod seed_001 {
    use super::*;

    /// Register: 201, the user, and the auth_token cookie.
    pub async fn register(app: &TestApp, email: &str) {
        let c = new_client();
        let res = app
            .post(
                &c,
                "/api/auth/register",
                json!({"email": email, "password": PASSWORD, "name": "User Name"}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let cookie = set_cookie(&res, "auth_token").expect("auth_token set");
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["user"]["email"], email);
        assert!(body["user"]["id"].is_string());
    }

    /// Login: user, tenants with roles, invites, and the cookie.
    pub async fn login(app: &TestApp, email: &str) -> Client {
        let c = new_client();
        let res = app.legacy_login(&c, email, PASSWORD).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(set_cookie(&res, "auth_token").is_some());
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["user"]["email"], email);
        assert_eq!(body["tenants"][0]["role"], "owner");
        assert!(body["tenants"][0]["id"].is_string() && body["tenants"][0]["name"].is_string());
        assert_eq!(body["invites"], json!([]));
        assert_eq!(body["token_type"], "bearer");
        c
    }

    /// Me, with the cookie.
    pub async fn me_with_the_cookie(app: &TestApp, c: &Client, email: &str) {
        let res = app.get(c, "/api/auth/me").await;
        assert_eq!(res.status(), StatusCode::OK);
        let me: Value = res.json().await.unwrap();
        assert_eq!(me["user"]["email"], email);
        assert_eq!(me["user"]["name"], "User Name");
        assert!(me["tenants"].is_array() && me["invites"].is_array());
    }

    /// Change password (camelCase body), the documented message.
    pub async fn change_password(app: &TestApp, c: &Client) {
        let res = app
            .post(
                c,
                "/api/auth/password",
                json!({"currentPassword": "wrong-one-123", "newPassword": "second-secret-1"}),
            )
            .await;
        let err = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
        assert!(err["fields"]["currentPassword"].is_string(), "{err}");
        let res = app
            .post(
                c,
                "/api/auth/password",
                json!({"currentPassword": PASSWORD, "newPassword": "second-secret-1"}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.json::<Value>().await.unwrap(),
            json!({"message": "Password updated successfully"})
        );
    }

    /// Forgot password: the same message whatever the email; returns the
    /// mailed token.
    pub async fn forgot_password(app: &TestApp, email: &str) -> String {
        for address in [email.to_owned(), unique_email("nobody")] {
            let res = app
                .post(
                    &new_client(),
                    "/api/auth/forgot-password",
                    json!({"email": address}),
                )
                .await;
            assert_eq!(res.status(), StatusCode::OK);
            assert_eq!(
                res.json::<Value>().await.unwrap(),
                json!({"message": "If an account exists with this email, you will receive a reset link shortly."})
            );
        }
        app.mail.wait_for(email, 2).await.token()
    }

    /// Reset password with the mailed token; `c`'s session ends.
    pub async fn reset_password(app: &TestApp, c: &Client, token: &str) {
        let res = app
            .post(
                &new_client(),
                "/api/auth/reset-password",
                json!({"token": token, "password": "third-secret-1"}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.json::<Value>().await.unwrap(),
            json!({"message": "Password updated successfully."})
        );
        assert_eq!(
            app.get(c, "/api/auth/me").await.status(),
            StatusCode::UNAUTHORIZED,
            "reset ends sessions"
        );
    }

    /// Logout: {"success": true} and a cleared cookie; the session is gone.
    pub async fn logout(app: &TestApp, email: &str) {
        let c = new_client();
        app.legacy_login(&c, email, "third-secret-1").await;
        let res = app.post(&c, "/api/auth/logout", json!({})).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(set_cookie(&res, "auth_token")
            .unwrap()
            .contains("Max-Age=0"));
        assert_eq!(res.json::<Value>().await.unwrap(), json!({"success": true}));
        assert_eq!(
            app.get(&c, "/api/auth/me").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }

    /// Validate, as a cron job with the secret.
    pub async fn validate(app: &TestApp) {
        let res = app
            .bearer_get("cron-secret-123", "/api/auth/validate")
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["success"], true);
        assert_eq!(body["message"], "0 users corrected and sessions reset.");
        assert_eq!(body["updatedIds"], json!([]));
    }
}

#[tokio::test]
async fn seed_003_walkthrough() {
    let app = TestApp::spawn().await;
    let email = unique_email("seed3");
    seed_003::sign_up(&app, &email).await;
    seed_003::sign_up_again(&app, &email).await;
    let org = seed_003::login(&app, &email).await;
    seed_003::sign_up_via_invitation(&app, &email, &org).await;
}

/// The steps of [`seed_003_walkthrough`], in order.
mod seed_003 {
    use super::*;

    /// Sign up with an organization: 201 {id, email, first_name, last_name}.
    pub async fn sign_up(app: &TestApp, email: &str) {
        let res = app
            .post(
                &new_client(),
                "/api/auth/signup",
                json!({
                    "email": email, "first_name": "John", "last_name": "Doe", "password": "SecurePassword123!"
                }),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let body: Value = res.json().await.unwrap();
        assert!(uuid::Uuid::parse_str(body["id"].as_str().unwrap()).is_ok());
        assert_eq!(body["email"], email);
        assert_eq!(body["first_name"], "John");
        assert_eq!(body["last_name"], "Doe");
    }

    /// Signing up again before the address is verified starts it afresh
    /// (answered as a fresh sign-up); once verified, it is taken. Without
    /// the names, it is refused.
    pub async fn sign_up_again(app: &TestApp, email: &str) {
        let res = app
            .post(
                &new_client(),
                "/api/auth/signup",
                json!({
                    "email": email, "first_name": "John", "last_name": "Doe", "password": "SecurePassword123!"
                }),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        app.mail.wait_for(email, 2).await;
        app.verify_address(email).await;
        let res = app
            .post(
                &new_client(),
                "/api/auth/signup",
                json!({
                    "email": email, "first_name": "John", "last_name": "Doe", "password": "SecurePassword123!"
                }),
            )
            .await;
        expect_error(res, StatusCode::CONFLICT, "USER_EXISTS").await;
        let res = app
            .post(
                &new_client(),
                "/api/auth/signup",
                json!({"email": unique_email("x"), "password": "SecurePassword123!"}),
            )
            .await;
        let err = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
        assert!(err["fields"]["first_name"].is_string());
    }

    /// Login: access_token (a JWT) and token_type "bearer"; a wrong
    /// password is a plain 401. Returns the organization's id.
    pub async fn login(app: &TestApp, email: &str) -> String {
        let res = app
            .legacy_login(&new_client(), email, "SecurePassword123!")
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["token_type"], "bearer");
        let jwt = body["access_token"].as_str().unwrap().to_owned();
        assert_eq!(jwt.matches('.').count(), 2);
        // Tessera's addition: a refresh token for a client without the cookie.
        assert!(body["refresh_token"].as_str().unwrap().len() >= 43);
        assert_eq!(
            body["tenants"][0]["role"], "owner",
            "the organization was created"
        );
        let res = app.bearer_get(&jwt, "/api/auth/me").await;
        assert_eq!(res.status(), StatusCode::OK);
        let org = res.json::<Value>().await.unwrap()["tenants"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let res = expect_error(
            app.legacy_login(&new_client(), email, "wrong-password")
                .await,
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
        )
        .await;
        assert!(res.get("fields").is_none());
        org
    }

    /// Sign up via invitation: the email comes from the invite; the token
    /// is single use.
    pub async fn sign_up_via_invitation(app: &TestApp, email: &str, org: &str) {
        let owner = new_client();
        app.login(&owner, email, "SecurePassword123!").await;
        let invitee = unique_email("invitee");
        let token = app.invite(&owner, org, &invitee, "member").await;
        let res = app
            .post(&new_client(), "/api/auth/signup_invite", json!({
                "first_name": "Jane", "last_name": "Roe", "password": "SecurePassword123!", "invite_token": token
            }))
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["email"], invitee);
        assert_eq!(body["first_name"], "Jane");
        assert_eq!(body["last_name"], "Roe");
        assert!(body["id"].is_string());
        let jwt = body["access_token"].as_str().unwrap();
        let refreshed = app
            .post(
                &new_client(),
                "/api/auth/refresh",
                json!({"refresh_token": body["refresh_token"]}),
            )
            .await;
        assert_eq!(refreshed.status(), StatusCode::OK);
        let me: Value = app
            .bearer_get(jwt, "/api/auth/me")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(me["tenants"].as_array().unwrap().len(), 1);
        assert_eq!(me["tenants"][0]["id"], org);
        assert_eq!(me["tenants"][0]["role"], "member");
        // The token is single use.
        let res = app
            .post(&new_client(), "/api/auth/signup_invite", json!({
                "first_name": "Jane", "last_name": "Roe", "password": "SecurePassword123!", "invite_token": token
            }))
            .await;
        expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    }
}

#[tokio::test]
async fn cookie_writes_from_foreign_origins_are_refused() {
    let app =
        TestApp::spawn_with(|c| c.cors_origins = vec!["https://app.example.test".into()]).await;
    let c = new_client();
    let email = unique_email("origin");
    app.post(
        &c,
        "/api/auth/register",
        json!({"email": email, "password": PASSWORD}),
    )
    .await;
    for origin in [
        "https://evil.example",
        "https://app.example.test.evil.example",
        "null",
    ] {
        let res = c
            .post(app.url("/api/auth/logout"))
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        expect_error(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    }
    assert_eq!(app.get(&c, "/api/auth/me").await.status(), StatusCode::OK);
    let res = c
        .post(app.url("/api/auth/logout"))
        .header("origin", "https://app.example.test")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // Bearer requests are exempt.
    let res = app.legacy_login(&new_client(), &email, PASSWORD).await;
    let jwt = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = Client::new()
        .post(app.url("/api/auth/logout"))
        .bearer_auth(&jwt)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

/// Seed 001's Google login: `GET /api/auth/google` redirects to the consent
/// screen (here a real OpenID Connect provider on loopback configured as
/// `oauth.google`); the callback sets `auth_token` and redirects to the app.
#[tokio::test]
async fn seed_001_google_login() {
    use crate::social::{app_with, location, Provider};
    let provider = Provider::start().await;
    let app = app_with(&provider).await;
    let email = unique_email("seed1-google");
    provider.user("google-sub-1", &email, true).await;
    let browser = new_client();

    let res = app.get(&browser, "/api/auth/google").await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let consent = location(&res);
    assert!(consent.starts_with(&provider.issuer), "{consent}");
    let back = browser.get(&consent).send().await.unwrap();
    let callback = location(&back);
    assert!(callback.starts_with(&app.url("/api/auth/google/callback?")));

    let res = browser.get(&callback).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(location(&res), "http://app.example.test/home");
    let cookie = set_cookie(&res, "auth_token").expect("auth_token");
    assert!(cookie.contains("HttpOnly"));
    let me: Value = app
        .get(&browser, "/api/auth/me")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["user"]["email"], email);
}

#[tokio::test]
async fn seed_003_signup_makes_no_session_and_needs_both_names() {
    let app = TestApp::spawn().await;
    let email = unique_email("seed3-names");
    for (first, last, field) in [("", "Doe", "first_name"), ("John", "  ", "last_name")] {
        let res = app
            .post(
                &new_client(),
                "/api/auth/signup",
                json!({"email": email, "first_name": first, "last_name": last, "password": PASSWORD}),
            )
            .await;
        let err = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
        assert!(err["fields"][field].is_string(), "{err}");
    }
    let c = new_client();
    let res = app
        .post(
            &c,
            "/api/auth/signup",
            json!({"email": email, "first_name": "John", "last_name": "Doe", "password": PASSWORD}),
        )
        .await;
    assert!(set_cookie(&res, "auth_token").is_none());
    assert!(set_cookie(&res, "ces_session").is_none());
    let created = body(res, StatusCode::CREATED).await;
    assert!(created.get("access_token").is_none(), "{created}");
    // No session was made for anyone to hold.
    let user = app
        .core
        .store
        .find_user_by_email(&email)
        .await
        .unwrap()
        .unwrap();
    let sessions = app
        .core
        .store
        .list_sessions(user.id, app.core.clock.now())
        .await
        .unwrap();
    assert!(sessions.is_empty(), "{} sessions", sessions.len());
}

#[tokio::test]
async fn two_surfaces_in_one_browser_each_mean_their_own_cookie() {
    let app = TestApp::spawn().await;
    let dashboard_user = unique_email("dash-user");
    let legacy_user = unique_email("legacy-user");
    app.user(&dashboard_user).await;
    app.user(&legacy_user).await;
    // One browser: signed in on the dashboard as one, on the legacy app as
    // the other (ces_session and auth_token side by side).
    let browser = new_client();
    assert_eq!(
        app.login(&browser, &dashboard_user, PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
    let res = app.legacy_login(&browser, &legacy_user, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
    let who = |path: &'static str| {
        let browser = browser.clone();
        let url = app.url(path);
        async move {
            let res = browser.get(url).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{path}");
            res.json::<Value>().await.unwrap()["user"]["email"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    assert_eq!(who("/api/auth/me").await, legacy_user);
    assert_eq!(who("/api/v1/auth/me").await, dashboard_user);
    assert_eq!(who("/auth/me").await, dashboard_user);

    // The legacy logout ends the legacy session and clears its cookie only.
    let res = app.post(&browser, "/api/auth/logout", json!({})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let cleared = set_cookie(&res, "auth_token").expect("auth_token cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(who("/api/v1/auth/me").await, dashboard_user);
    // With auth_token gone, the legacy surface falls back to the other.
    assert_eq!(who("/api/auth/me").await, dashboard_user);
}

/// Seed 003 JWT client: sign in once, then keep a fresh access token with
/// `POST /api/auth/refresh`, no cookie involved.
async fn jwt_client_login(app: &TestApp, email: &str) -> (String, String) {
    // A client without a cookie jar: nothing but the body is kept.
    let res = reqwest::Client::new()
        .post(app.url("/api/auth/login"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let body = body(res, StatusCode::OK).await;
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

async fn refresh(app: &TestApp, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/api/auth/refresh"))
        .json(&json!({ "refresh_token": token }))
        .send()
        .await
        .unwrap()
}

async fn refreshed(app: &TestApp, token: &str) -> (String, String) {
    let body = body(refresh(app, token).await, StatusCode::OK).await;
    assert_eq!(body["token_type"], "bearer");
    assert!(body["expires_in"].as_u64().unwrap() > 0);
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn seed_003_refresh_tokens_rotate_and_a_late_reuse_ends_the_session() {
    let app = TestApp::spawn().await;
    let email = unique_email("refresh");
    let browser = app.user(&email).await;
    let (jwt, rt1) = jwt_client_login(&app, &email).await;
    assert_eq!(
        app.bearer_get(&jwt, "/api/auth/me").await.status(),
        StatusCode::OK
    );

    // A new pair; the new access token works.
    let (jwt2, rt2) = refreshed(&app, &rt1).await;
    assert_ne!(rt2, rt1);
    assert_ne!(jwt2, jwt);
    let me = body(app.bearer_get(&jwt2, "/api/auth/me").await, StatusCode::OK).await;
    assert_eq!(me["user"]["email"], email);

    // Two tabs refresh at once with the same token: both get the same new
    // pair, and nobody is signed out.
    let answers = futures::future::join_all((0..6).map(|_| refreshed(&app, &rt2))).await;
    let (jwt3, rt3) = answers[0].clone();
    assert!(
        answers.iter().all(|a| *a == (jwt3.clone(), rt3.clone())),
        "{answers:?}"
    );
    assert_ne!(rt3, rt2);
    assert_eq!(
        app.bearer_get(&jwt3, "/api/auth/me").await.status(),
        StatusCode::OK
    );
    let (jwt4, rt4) = refreshed(&app, &rt3).await;

    // Within the grace window a retry still gets the same pair.
    app.clock.advance(chrono::Duration::seconds(2));
    assert_eq!(refreshed(&app, &rt3).await, (jwt4.clone(), rt4.clone()));

    // Long after: a spent token coming back is a stolen copy. The session
    // ends, with every token of it and the JWT it minted.
    app.clock.advance(chrono::Duration::seconds(60));
    let res = refresh(&app, &rt1).await;
    expect_error(res, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    let res = refresh(&app, &rt4).await;
    expect_error(res, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    assert_eq!(
        app.bearer_get(&jwt4, "/api/auth/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
    // Other sessions of the account are not touched.
    assert_eq!(app.me_status(&browser).await, StatusCode::OK);
}

#[tokio::test]
async fn seed_003_refresh_tokens_die_with_their_session() {
    let app = TestApp::spawn().await;
    let email = unique_email("refresh-end");
    let browser = app.user(&email).await;

    // Signing out with the access token ends the refresh chain.
    let (jwt, rt) = jwt_client_login(&app, &email).await;
    let res = reqwest::Client::new()
        .post(app.url("/api/auth/logout"))
        .bearer_auth(&jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    expect_error(
        refresh(&app, &rt).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;

    // A password change elsewhere signs the other sessions out, this one too.
    let (_, rt) = jwt_client_login(&app, &email).await;
    let res = app
        .write(
            &browser,
            reqwest::Method::POST,
            "/api/v1/auth/change-password",
            Some(json!({"current_password": PASSWORD, "new_password": "An0ther-long-passphrase"})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    expect_error(
        refresh(&app, &rt).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
}

#[tokio::test]
async fn seed_003_refreshing_keeps_an_idle_client_alive_but_never_past_expiry() {
    let app = TestApp::spawn().await;
    let email = unique_email("refresh-idle");
    app.user(&email).await;
    let (_, mut rt) = jwt_client_login(&app, &email).await;
    // Idle timeout 168 h, absolute 720 h (the defaults). A client that
    // refreshes every 100 hours stays signed in...
    for _ in 0..7 {
        app.clock.advance(chrono::Duration::hours(100));
        let (jwt, next) = refreshed(&app, &rt).await;
        assert_eq!(
            app.bearer_get(&jwt, "/api/auth/me").await.status(),
            StatusCode::OK
        );
        rt = next;
    }
    // ...until the session's absolute expiry.
    app.clock.advance(chrono::Duration::hours(21));
    expect_error(
        refresh(&app, &rt).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;

    // One that goes quiet for longer than the idle timeout must sign in again.
    let (_, rt) = jwt_client_login(&app, &email).await;
    app.clock.advance(chrono::Duration::hours(169));
    expect_error(
        refresh(&app, &rt).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
}

#[tokio::test]
async fn seed_003_refresh_refuses_bad_bodies_and_unknown_tokens() {
    let app = TestApp::spawn().await;
    for bad in [
        json!({}),
        json!({"refresh_token": 12}),
        json!({"refresh_token": null}),
        json!([]),
    ] {
        let res = reqwest::Client::new()
            .post(app.url("/api/auth/refresh"))
            .json(&bad)
            .send()
            .await
            .unwrap();
        expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    }
    for token in ["", "  ", &"x".repeat(10_000)] {
        let res = refresh(&app, token).await;
        let err = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
        assert!(err["fields"]["refresh_token"].is_string(), "{err}");
    }
    // Well-formed but never issued.
    for token in [
        "not-a-token",
        "Zm9yZ2VkLXJlZnJlc2gtdG9rZW4tb2YtZm9ydHktdGhyZWU",
    ] {
        let res = refresh(&app, token).await;
        expect_error(res, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    }
    // A session token or an access token is not a refresh token.
    let email = unique_email("refresh-kinds");
    app.user(&email).await;
    let (jwt, _) = jwt_client_login(&app, &email).await;
    expect_error(
        refresh(&app, &jwt).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
}
