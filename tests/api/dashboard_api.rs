//! Seed 002 (`/auth`) read as a client's manual.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn seed_002_walkthrough() {
    let app =
        TestApp::spawn_with(|c| c.cors_origins = vec!["https://app.example.test".into()]).await;
    let email = unique_email("dash");

    // Sign-up creates an unverified user, no session, and mails a link.
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
    let first = app.mail.wait_for(&email, 1).await.token();

    // Signing up again while unverified resends and answers alike.
    let res = app
        .post(
            &new_client(),
            "/auth/sign-up/email",
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let second = app.mail.wait_for(&email, 2).await.token();
    assert_ne!(first, second);

    // An invite waiting for the address is accepted on verification.
    let owner_email = unique_email("owner");
    let owner = app.user(&owner_email).await;
    let me: Value = app
        .get(&owner, "/api/v1/auth/me")
        .await
        .json()
        .await
        .unwrap();
    let tenant = me["tenant"]["id"].as_str().unwrap().to_owned();
    let res = app
        .write(
            &owner,
            reqwest::Method::POST,
            &format!("/api/v1/tenants/{tenant}/invites"),
            Some(json!({"email": email, "role": "member"})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);

    // Verify with a callback on the allowlist: redirect; off it: JSON.
    let res = app
        .get(
            &new_client(),
            &format!(
                "/auth/verify-email?token={second}&callbackURL=https://app.example.test/welcome"
            ),
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        res.headers()["location"],
        "https://app.example.test/welcome"
    );
    let res = app
        .get(&new_client(), &format!("/auth/verify-email?token={second}"))
        .await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;

    // Now verified: signing up again is a duplicate.
    let res = app
        .post(
            &new_client(),
            "/auth/sign-up/email",
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
    expect_error(res, StatusCode::CONFLICT, "USER_EXISTS").await;

    // Sign in: user and session, with the cookie.
    let res = app
        .post(
            &c,
            "/auth/sign-in/email",
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(set_cookie(&res, "ces_session").is_some());
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["emailVerified"], true);
    assert!(body["session"]["expiresAt"].is_string());

    let me: Value = app.get(&c, "/auth/me").await.json().await.unwrap();
    let names: Vec<&str> = me["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&tenant.as_str()),
        "joined the inviting workspace: {me}"
    );
    let session: Value = app.get(&c, "/auth/session").await.json().await.unwrap();
    assert_eq!(session["user"]["email"], email);
    assert!(session["session"]["userId"].is_string());

    // A password account lists its password (`credential`) and no provider.
    let linked: Value = app
        .get(&c, "/auth/linked-accounts")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(linked.as_array().unwrap().len(), 1, "{linked}");
    assert_eq!(linked[0]["providerId"], "credential");
    let status: Value = app
        .get(&c, "/auth/two-factor/status")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["enabled"], false);
    let res = app
        .post(
            &c,
            "/auth/set-password",
            json!({"newPassword": "another-secret-9"}),
        )
        .await;
    expect_error(res, StatusCode::CONFLICT, "CONFLICT").await;

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

    // Foreign origins can neither write with the cookie nor read via CORS.
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

    let res = c.post(app.url("/auth/sign-out")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        app.get(&c, "/auth/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_auth_routes_take_sessions_not_personal_access_tokens() {
    let app = TestApp::spawn().await;
    let c = app.user(&unique_email("dash-pat")).await;
    let res = app
        .write(
            &c,
            reqwest::Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": "automation", "scopes": ["read", "write"]})),
        )
        .await;
    let pat = body(res, StatusCode::CREATED).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
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
    let res = reqwest::Client::new()
        .post(app.url("/auth/sign-out"))
        .bearer_auth(&pat)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    // Nor does a JWT exchanged for the token: it has no session either.
    let res = reqwest::Client::new()
        .post(app.url("/api/v1/auth/token"))
        .bearer_auth(&pat)
        .send()
        .await
        .unwrap();
    let jwt = body(res, StatusCode::OK).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.bearer_get(&jwt, "/api/v1/auth/me").await.status(),
        StatusCode::OK
    );
    for path in ["/auth/me", "/auth/session"] {
        let res = app.bearer_get(&jwt, path).await;
        expect_error(res, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    }
    // A JWT issued for the browser's session is that session.
    let res = app
        .write(&c, reqwest::Method::POST, "/api/v1/auth/token", None)
        .await;
    let session_jwt = body(res, StatusCode::OK).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
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
    let html = browser
        .get(&link)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let field = |name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        let at = html.find(&marker).expect(name) + marker.len();
        html[at..].split('"').next().unwrap().replace("&amp;", "&")
    };
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
