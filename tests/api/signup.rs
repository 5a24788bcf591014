use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn signup_creates_user_and_owned_tenant_sets_cookie_and_mails_verification() {
    let app = TestApp::spawn().await;
    let email = unique_email("new");
    let res = app
        .post(
            &app.client,
            "/api/v1/auth/signup",
            json!({"email": format!("  {}  ", email.to_uppercase()), "password": PASSWORD,
                   "name": "Ada Lovelace", "tenant_name": "Analytical Engines"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let cookie = set_cookie(&res, "ces_session").expect("session cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain http public URL: {cookie}"
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["email"], email);
    assert_eq!(body["user"]["email_verified"], false);
    assert_eq!(body["user"]["has_password"], true);
    assert_eq!(body["user"]["name"], "Ada Lovelace");
    assert!(body["user"].get("password_hash").is_none());
    assert!(!body.to_string().contains("argon2"));
    assert_eq!(body["tenants"].as_array().unwrap().len(), 1);
    assert_eq!(body["tenants"][0]["name"], "Analytical Engines");
    assert_eq!(body["tenants"][0]["role"], "owner");

    // The cookie is a live session whose current tenant is the new one.
    let me: Value = app
        .get(&app.client, "/api/v1/auth/me")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["user"]["email"], email);
    assert_eq!(me["tenant"]["id"], body["tenants"][0]["id"]);

    // The verification mail arrives and its token verifies the address.
    let mail = app.mail.wait_for(&email, 1).await;
    assert!(mail.subject().contains("Confirm"), "{}", mail.subject());
    assert!(mail
        .text()
        .contains(&format!("{}/ui/verify-email?token=", app.base)));
    let res = app
        .post(
            &app.client,
            "/api/v1/auth/verify-email",
            json!({"token": mail.token()}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let verified: Value = res.json().await.unwrap();
    assert_eq!(verified["user"]["email_verified"], true);
    // The token is single use.
    let res = app
        .post(
            &app.client,
            "/api/v1/auth/verify-email",
            json!({"token": mail.token()}),
        )
        .await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
}

#[tokio::test]
async fn emails_are_unique_whatever_their_case() {
    let app = TestApp::spawn().await;
    let email = unique_email("dup");
    app.user(&email).await;
    let res = app.signup(&new_client(), &email.to_uppercase()).await;
    let body = expect_error(res, StatusCode::CONFLICT, "USER_EXISTS").await;
    assert!(body.get("fields").is_none());
}

#[tokio::test]
async fn sixteen_parallel_signups_of_one_email_make_one_user() {
    let app = TestApp::spawn().await;
    let email = unique_email("race");
    let mut tasks = Vec::new();
    for i in 0..16 {
        let client = new_client();
        let url = app.url("/api/v1/auth/signup");
        let email = if i % 2 == 0 {
            email.clone()
        } else {
            email.to_uppercase()
        };
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .json(&json!({"email": email, "password": PASSWORD}))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    // The address is never verified in between, so a later sign-up may
    // take it over from an earlier one (each answered as a fresh sign-up);
    // any that loses the race is 409. Never anything else.
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT),
        "{statuses:?}"
    );
    assert!(statuses.contains(&StatusCode::CREATED), "{statuses:?}");
    // Exactly one account stands, with exactly one tenant, and exactly one
    // working verification link.
    let res = app.login(&new_client(), &email, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["tenants"].as_array().unwrap().len(), 1);
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    app.mail.wait_for(&email, created).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let mut working = 0;
    for mail in app.mail.to(&email) {
        let res = app
            .post(
                &new_client(),
                "/api/v1/auth/verify-email",
                json!({"token": mail.token()}),
            )
            .await;
        if res.status() == StatusCode::OK {
            working += 1;
        }
    }
    assert_eq!(working, 1);
}

#[tokio::test]
async fn address_lists_and_malformed_emails_are_refused() {
    let app = TestApp::spawn().await;
    for bad in [
        "a@x.test,b@y.test",
        "a@x.test b@y.test",
        "Alice <a@x.test>",
        "no-at-sign",
        "a@b@c.test",
        "",
    ] {
        let res = app
            .post(
                &new_client(),
                "/api/v1/auth/signup",
                json!({"email": bad, "password": PASSWORD}),
            )
            .await;
        let body = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
        assert!(body["fields"]["email"].is_string(), "{bad}: {body}");
    }
}

#[tokio::test]
async fn password_policy_is_enforced_with_reasons() {
    let app = TestApp::spawn().await;
    let cases = [
        ("short1!", "at least 8"),
        (&"x".repeat(129) as &str, "at most 128"),
        ("password1", "common"),
        ("qwertyuiop", "common"),
    ];
    for (password, reason) in cases {
        let res = app
            .post(
                &new_client(),
                "/api/v1/auth/signup",
                json!({"email": unique_email("pw"), "password": password}),
            )
            .await;
        let body = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
        let field = body["fields"]["password"].as_str().unwrap();
        assert!(field.contains(reason), "{password:?}: {field}");
        assert!(
            !body.to_string().contains(password),
            "never echo a password"
        );
    }
    // The email's local part inside the password.
    let res = app
        .post(
            &new_client(),
            "/api/v1/auth/signup",
            json!({"email": "zebrafish@example.test", "password": "my-Zebrafish-2024"}),
        )
        .await;
    let body = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert!(body["fields"]["password"]
        .as_str()
        .unwrap()
        .contains("email"));
    // Length counts code points: eight accented letters pass.
    let res = app
        .post(
            &new_client(),
            "/api/v1/auth/signup",
            json!({"email": unique_email("pw"), "password": "ééééééé9"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn missing_wrong_typed_and_oversized_fields() {
    let app = TestApp::spawn().await;
    let c = new_client();
    let res = app
        .post(&c, "/api/v1/auth/signup", json!({"password": PASSWORD}))
        .await;
    let body = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert_eq!(body["fields"]["email"], "is required");

    let res = app
        .post(
            &c,
            "/api/v1/auth/signup",
            json!({"email": unique_email("m")}),
        )
        .await;
    let body = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert_eq!(body["fields"]["password"], "is required");

    let res = app
        .post(
            &c,
            "/api/v1/auth/signup",
            json!({"email": 42, "password": PASSWORD}),
        )
        .await;
    let body = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert!(body["fields"]["email"].is_string());

    let res = app
        .post(
            &c,
            "/api/v1/auth/signup",
            json!({"email": unique_email("m"), "password": PASSWORD, "name": ["x"]}),
        )
        .await;
    let body = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert!(body["fields"]["name"].is_string());

    let long_email = format!("{}@example.test", "a".repeat(300));
    let res = app
        .post(
            &c,
            "/api/v1/auth/signup",
            json!({"email": long_email, "password": PASSWORD}),
        )
        .await;
    let body = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert!(body["fields"]["email"].is_string());

    let res = app
        .post(
            &c,
            "/api/v1/auth/signup",
            json!({"email": unique_email("m"), "password": PASSWORD, "name": "n".repeat(201)}),
        )
        .await;
    let body = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert!(body["fields"]["name"].as_str().unwrap().contains("200"));

    // A body over the limit is refused before it is parsed.
    let res = app
        .post(
            &c,
            "/api/v1/auth/signup",
            json!({"email": unique_email("m"), "password": PASSWORD, "name": "n".repeat(100_000)}),
        )
        .await;
    expect_error(res, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE").await;

    // Nothing was created by any of these.
    assert_eq!(app.me_status(&c).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn required_verification_holds_back_the_session_until_verified() {
    let app = TestApp::spawn_with(|c| c.auth.require_verified_email = true).await;
    let email = unique_email("strict");
    let res = app.signup(&app.client, &email).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert!(set_cookie(&res, "ces_session").is_none());
    assert_eq!(app.me_status(&app.client).await, StatusCode::UNAUTHORIZED);

    let res = app.login(&app.client, &email, PASSWORD).await;
    expect_error(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;

    let token = app.mail.wait_for(&email, 1).await.token();
    let res = app
        .post(
            &app.client,
            "/api/v1/auth/verify-email",
            json!({"token": token}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app.login(&app.client, &email, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(app.me_status(&app.client).await, StatusCode::OK);
}

#[tokio::test]
async fn resend_verification_mails_only_unverified_accounts_and_answers_alike() {
    let app = TestApp::spawn().await;
    let email = unique_email("resend");
    app.unverified_user(&email).await;
    let first = app.mail.wait_for(&email, 1).await;

    let res = app
        .post(
            &new_client(),
            "/api/v1/auth/resend-verification",
            json!({"email": email}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let second = app.mail.wait_for(&email, 2).await;
    assert_ne!(first.token(), second.token());
    // The newer link replaces the older one.
    let res = app
        .post(
            &new_client(),
            "/api/v1/auth/verify-email",
            json!({"token": first.token()}),
        )
        .await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    let res = app
        .post(
            &new_client(),
            "/api/v1/auth/verify-email",
            json!({"token": second.token()}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);

    // Verified and unknown addresses get the same answer and no mail.
    for address in [email.clone(), unique_email("nobody")] {
        let res = app
            .post(
                &new_client(),
                "/api/v1/auth/resend-verification",
                json!({"email": address}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        assert_eq!(res.text().await.unwrap(), "");
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(app.mail.to(&email).len(), 2);
}

#[tokio::test]
async fn verification_links_expire_after_a_day() {
    let app = TestApp::spawn().await;
    let email = unique_email("late");
    app.user(&email).await;
    let token = app.mail.wait_for(&email, 1).await.token();
    app.clock.advance(chrono::Duration::hours(25));
    let res = app
        .post(
            &new_client(),
            "/api/v1/auth/verify-email",
            json!({"token": token}),
        )
        .await;
    let body = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert!(body["fields"]["token"].is_string());
}
