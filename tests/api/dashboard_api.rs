//! Seed 002 (`/auth`) read as a client's manual.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn seed_002_walkthrough() {
    let app =
        TestApp::spawn_with(|c| c.cors_origins = vec!["https://app.example.test".into()]).await;
    let email = unique_email("dash");
    let (c, first) = seed_002::sign_up(&app, &email).await;
    let second = seed_002::sign_up_again_while_unverified(&app, &email, &first).await;
    let tenant = seed_002::an_invite_waits_for_the_address(&app, &email).await;
    seed_002::verify_email(&app, &second).await;
    seed_002::sign_up_once_verified(&app, &email).await;
    seed_002::sign_in(&app, &c, &email, &tenant).await;
    seed_002::linked_accounts_and_two_factor(&app, &c).await;
    seed_002::recovery(&app, &email).await;
    seed_002::foreign_origins(&app, &c).await;
    seed_002::sign_out(&app, &c).await;
}

/// The steps of [`seed_002_walkthrough`], in order.
mod seed_002 {
    use reqwest::Client;

    use super::*;

    /// Sign-up creates an unverified user, no session, and mails a link;
    /// returns the client and the mailed token.
    pub async fn sign_up(app: &TestApp, email: &str) -> (Client, String) {
        let c = new_client();
        let res = app
            .post(
                &c,
                "/auth/sign-up/email",
                json!({"email": email, "password": PASSWORD, "name": "Dana"}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(set_cookie(&res, "ces_session").is_none());
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["user"]["emailVerified"], false);
        assert_eq!(body["user"]["name"], "Dana");
        assert_eq!(
            app.get(&c, "/auth/me").await.status(),
            StatusCode::UNAUTHORIZED
        );
        let first = app.mail.wait_for(email, 1).await.token();
        (c, first)
    }

    /// Signing up again while unverified resends and answers alike;
    /// returns the new token.
    pub async fn sign_up_again_while_unverified(app: &TestApp, email: &str, first: &str) -> String {
        let res = app
            .post(
                &new_client(),
                "/auth/sign-up/email",
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let second = app.mail.wait_for(email, 2).await.token();
        assert_ne!(first, second);
        second
    }

    /// An invite waiting for the address (accepted on verification);
    /// returns the inviting tenant's id.
    pub async fn an_invite_waits_for_the_address(app: &TestApp, email: &str) -> String {
        let owner_email = unique_email("owner");
        let owner = app.user(&owner_email).await;
        let tenant = app.current_tenant_id(&owner).await;
        let res = app.send_invite(&owner, &tenant, email, "member").await;
        assert_eq!(res.status(), StatusCode::CREATED);
        tenant
    }

    /// Verify with a callback on the allowlist: redirect; off it: JSON.
    pub async fn verify_email(app: &TestApp, token: &str) {
        let res = app
            .get(
                &new_client(),
                &format!(
                    "/auth/verify-email?token={token}&callbackURL=https://app.example.test/welcome"
                ),
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            res.headers()["location"],
            "https://app.example.test/welcome"
        );
        let res = app
            .get(&new_client(), &format!("/auth/verify-email?token={token}"))
            .await;
        expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    }

    /// Now verified: signing up again is a duplicate.
    pub async fn sign_up_once_verified(app: &TestApp, email: &str) {
        let res = app
            .post(
                &new_client(),
                "/auth/sign-up/email",
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        expect_error(res, StatusCode::CONFLICT, "USER_EXISTS").await;
    }

    /// Sign in: user and session, with the cookie; the invitation was
    /// accepted.
    pub async fn sign_in(app: &TestApp, c: &Client, email: &str, tenant: &str) {
        let res = app.dashboard_sign_in(c, email, PASSWORD).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(set_cookie(&res, "ces_session").is_some());
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["user"]["emailVerified"], true);
        assert!(body["session"]["expiresAt"].is_string());

        let me: Value = app.get(c, "/auth/me").await.json().await.unwrap();
        let names: Vec<&str> = me["workspaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["id"].as_str().unwrap())
            .collect();
        assert!(
            names.contains(&tenant),
            "joined the inviting workspace: {me}"
        );
        let session: Value = app.get(c, "/auth/session").await.json().await.unwrap();
        assert_eq!(session["user"]["email"], email);
        assert!(session["session"]["userId"].is_string());
    }

    /// A password account lists its password (`credential`) and no
    /// provider, no second factor, and cannot set a password again.
    pub async fn linked_accounts_and_two_factor(app: &TestApp, c: &Client) {
        let linked: Value = app
            .get(c, "/auth/linked-accounts")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(linked.as_array().unwrap().len(), 1, "{linked}");
        assert_eq!(linked[0]["providerId"], "credential");
        let status: Value = app
            .get(c, "/auth/two-factor/status")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(status["enabled"], false);
        let res = app
            .post(
                c,
                "/auth/set-password",
                json!({"newPassword": "another-secret-9"}),
            )
            .await;
        expect_error(res, StatusCode::CONFLICT, "CONFLICT").await;
    }

    /// Asking for a reset link or a verification link answers 200.
    pub async fn recovery(app: &TestApp, email: &str) {
        let res = app
            .post(
                &new_client(),
                "/auth/forget-password",
                json!({"email": unique_email("nobody")}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let res = app
            .post(
                &new_client(),
                "/auth/resend-verification",
                json!({"email": email}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
    }

    /// Foreign origins can neither write with the cookie nor read via CORS.
    pub async fn foreign_origins(app: &TestApp, c: &Client) {
        let res = c
            .post(app.url("/auth/sign-out"))
            .header("origin", "https://evil.example")
            .send()
            .await
            .unwrap();
        expect_error(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;
        let res = c
            .get(app.url("/auth/me"))
            .header("origin", "https://evil.example")
            .send()
            .await
            .unwrap();
        assert!(res.headers().get("access-control-allow-origin").is_none());
        let res = c
            .get(app.url("/auth/me"))
            .header("origin", "https://app.example.test")
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.headers()["access-control-allow-origin"],
            "https://app.example.test"
        );
        assert_eq!(res.headers()["access-control-allow-credentials"], "true");
    }

    /// Sign out ends the session.
    pub async fn sign_out(app: &TestApp, c: &Client) {
        let res = c.post(app.url("/auth/sign-out")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            app.get(c, "/auth/me").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
}

#[tokio::test]
async fn the_auth_routes_take_sessions_not_personal_access_tokens() {
    let app = TestApp::spawn().await;
    let c = app.user(&unique_email("dash-pat")).await;
    let pat = app.pat(&c, "automation", &["read", "write"]).await;
    // The token works on the workspace API...
    assert_eq!(
        app.bearer_get(&pat, "/api/v1/auth/me").await.status(),
        StatusCode::OK
    );
    // ...and on no /auth route.
    for path in [
        "/auth/me",
        "/auth/session",
        "/auth/linked-accounts",
        "/auth/two-factor/status",
    ] {
        let res = app.bearer_get(&pat, path).await;
        expect_error(res, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    }
    let res = app
        .bearer(&pat, reqwest::Method::POST, "/auth/sign-out", None)
        .await;
    expect_error(res, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    // Nor does a JWT exchanged for the token: it has no session either.
    let jwt = app.exchange(&pat).await;
    assert_eq!(
        app.bearer_get(&jwt, "/api/v1/auth/me").await.status(),
        StatusCode::OK
    );
    for path in ["/auth/me", "/auth/session"] {
        let res = app.bearer_get(&jwt, path).await;
        expect_error(res, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    }
    // A JWT issued for the browser's session is that session.
    let session_jwt = app.jwt(&c).await;
    assert_eq!(
        app.bearer_get(&session_jwt, "/auth/me").await.status(),
        StatusCode::OK
    );
    // The browser's session cookie keeps working.
    assert_eq!(app.get(&c, "/auth/me").await.status(), StatusCode::OK);
    assert_eq!(app.get(&c, "/auth/session").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn forget_password_links_to_the_apps_own_page_when_allowed() {
    let app = TestApp::spawn().await;
    let email = unique_email("dash-reset");
    app.user(&email).await;
    // An origin off the allowlist is refused, and nothing is sent.
    let res = app
        .post(
            &new_client(),
            "/auth/forget-password",
            json!({"email": email, "redirectTo": "https://evil.test/reset"}),
        )
        .await;
    let err = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert!(err["fields"]["redirectTo"].is_string(), "{err}");
    // The app's own page: the mailed link is that page with the token.
    let page = format!("{}/account/new-password", app.base);
    let res = app
        .post(
            &new_client(),
            "/auth/forget-password",
            json!({"email": email, "redirectTo": page}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let mail = app.mail.wait_for(&email, 2).await;
    assert!(
        mail.text().contains(&format!("{page}?token=")),
        "{}",
        mail.text()
    );
    assert_eq!(
        app.mail.to(&email).len(),
        2,
        "the refused request sent nothing"
    );
    let res = app
        .post(
            &new_client(),
            "/api/v1/auth/reset-password",
            json!({"token": mail.token(), "password": "brand-new-secret-4"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.login(&new_client(), &email, "brand-new-secret-4")
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn sign_up_callback_url_is_where_the_verification_link_lands() {
    let app = TestApp::spawn().await;
    let email = unique_email("dash-callback");
    let res = app
        .post(
            &new_client(),
            "/auth/sign-up/email",
            json!({"email": email, "password": PASSWORD, "name": "Ada",
                   "callbackURL": "https://evil.test/welcome"}),
        )
        .await;
    let err = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert!(err["fields"]["callbackURL"].is_string(), "{err}");

    let landing = format!("{}/welcome?from=mail", app.base);
    let res = app
        .post(
            &new_client(),
            "/auth/sign-up/email",
            json!({"email": email, "password": PASSWORD, "name": "Ada", "callbackURL": landing}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let mail = app.mail.wait_for(&email, 1).await;
    let text = mail.text();
    let start = text.find("http").unwrap();
    let link: String = text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    assert!(link.contains("callbackURL="), "{link}");
    // Opening the link shows the button; pressing it verifies and lands.
    let browser = new_client();
    let page = browser
        .get(&link)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let field = |name: &str| html::unescape(&html::input_value(&page, name));
    let res = browser
        .post(app.url("/ui/verify-email"))
        .form(&[
            ("form_token", field("form_token")),
            ("token", field("token")),
            ("callbackURL", field("callbackURL")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], landing.as_str());
    let res = app.login(&new_client(), &email, PASSWORD).await;
    assert_eq!(
        body(res, StatusCode::OK).await["user"]["email_verified"],
        true
    );
}
