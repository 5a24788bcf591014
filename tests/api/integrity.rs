//! Account integrity (issue 16), as an attacker would try it: a squatter
//! who signed up with someone else's address, parallel guessing bursts,
//! re-checks used as a guessing oracle, and a victim locked out from
//! elsewhere.

use futures::future::join_all;
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

const WRONG: &str = "wrong-password-1";

/// Fires `n` copies of a request at once; returns their statuses.
async fn burst(n: usize, send: impl Fn() -> reqwest::RequestBuilder) -> Vec<StatusCode> {
    join_all((0..n).map(|_| {
        let req = send();
        async move { req.send().await.unwrap().status() }
    }))
    .await
}

fn answered(statuses: &[StatusCode]) -> usize {
    statuses
        .iter()
        .filter(|s| **s != StatusCode::TOO_MANY_REQUESTS)
        .count()
}

/// The newest mail to `email` whose text contains `marker`, and its token.
fn newest_token(app: &TestApp, email: &str, marker: &str) -> String {
    app.mail
        .to(email)
        .into_iter()
        .rev()
        .find(|m| m.text().contains(marker))
        .unwrap_or_else(|| panic!("no mail with {marker} for {email}"))
        .token()
}

/// Waits until `email` has `count` mails containing `marker`.
async fn wait_for_kind(app: &TestApp, email: &str, marker: &str, count: usize) {
    for _ in 0..300 {
        let have = app
            .mail
            .to(email)
            .iter()
            .filter(|m| m.text().contains(marker))
            .count();
        if have >= count {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no mail #{count} with {marker} for {email}");
}

/// Follows the newest reset link mailed to `email` with a new password;
/// returns the (now spent) token.
async fn reset_by_mail(app: &TestApp, email: &str, password: &str) -> String {
    wait_for_kind(app, email, RESET_LINK, 1).await;
    let token = newest_token(app, email, RESET_LINK);
    let res = app
        .post(
            &new_client(),
            "/api/v1/auth/reset-password",
            json!({"token": token, "password": password}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    token
}

const VERIFY_LINK: &str = "/verify-email?token=";
const RESET_LINK: &str = "/reset-password?token=";

// 1. Pre-registration squatting.

#[tokio::test]
async fn an_unverified_account_mints_no_durable_credential_on_any_surface() {
    let app = TestApp::spawn().await;
    let email = unique_email("squat-creds");
    let squatter = app.unverified_user(&email).await;

    // The session works (the seeds need it)...
    assert_eq!(app.me_status(&squatter).await, StatusCode::OK);
    // ...but nothing that outlives it can be made.
    for (path, body) in [
        ("/api/v1/tokens", json!({"name": "ci", "scopes": ["read"]})),
        ("/api/v1/auth/2fa/totp/setup", json!({"password": PASSWORD})),
        ("/api/v1/auth/passkeys/register/start", json!({})),
    ] {
        let res = app.write(&squatter, Method::POST, path, Some(body)).await;
        let err = expect_error(res, StatusCode::FORBIDDEN, "EMAIL_NOT_VERIFIED").await;
        assert!(err["message"].as_str().unwrap().contains("Verify"), "{err}");
    }

    // Nor can it link a social identity, on either surface that links.
    let res = app
        .write(
            &squatter,
            Method::POST,
            "/api/v1/auth/linked-accounts/google",
            Some(json!({})),
        )
        .await;
    expect_error(res, StatusCode::FORBIDDEN, "EMAIL_NOT_VERIFIED").await;
    let res = app
        .post(
            &squatter,
            "/auth/link-social",
            json!({"provider": "google"}),
        )
        .await;
    expect_error(res, StatusCode::FORBIDDEN, "EMAIL_NOT_VERIFIED").await;

    // The hosted account page refuses too.
    let (_, page) = app.page(&squatter, "/ui/account").await;
    let csrf = html::csrf_token(&page);
    let res = squatter
        .post(app.url("/ui/account/tokens"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("name", "ci"),
            ("scope", "read"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.text().await.unwrap().contains("Verify your email"));

    // Once the address is proven, the same calls work.
    app.verify_address(&email).await;
    let res = app
        .write(
            &squatter,
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": "ci", "scopes": ["read"]})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
}

/// A squatter's account with a session, an own tenant, a second tenant and
/// a pending invitation; returns (squatter's client, invite token, the
/// first verification token).
async fn squat(app: &TestApp, email: &str) -> (Client, String, String) {
    let squatter = new_client();
    let res = app
        .post(
            &squatter,
            "/api/v1/auth/signup",
            json!({"email": email, "password": "squatters-own-pass", "tenant_name": "Squat Co"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    wait_for_kind(app, email, VERIFY_LINK, 1).await;
    let first_link = newest_token(app, email, VERIFY_LINK);
    let tenant = app.create_tenant(&squatter, "Squat Two").await;
    let invitee = unique_email("squat-invitee");
    let invite = app.invite(&squatter, &tenant, &invitee, "admin").await;
    (squatter, invite, first_link)
}

async fn tenant_names(app: &TestApp, client: &Client) -> Vec<String> {
    me(app, client).await["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

/// A sign-up route, its body for an email, and its fresh answer's status.
type SignUpRoute = (&'static str, fn(&str) -> Value, StatusCode);

#[tokio::test]
async fn the_owner_signing_up_on_any_surface_takes_the_address_over_afresh() {
    let app = TestApp::spawn().await;
    let signups: [SignUpRoute; 3] = [
        (
            "/api/v1/auth/signup",
            |e| json!({"email": e, "password": PASSWORD}),
            StatusCode::CREATED,
        ),
        (
            "/auth/sign-up/email",
            |e| json!({"email": e, "password": PASSWORD, "name": "Owner"}),
            StatusCode::OK,
        ),
        (
            "/api/auth/register",
            |e| json!({"email": e, "password": PASSWORD, "name": "Owner"}),
            StatusCode::CREATED,
        ),
    ];
    for (path, make, fresh_status) in signups {
        let email = unique_email("squatted");
        let (squatter, invite, first_link) = squat(&app, &email).await;

        // The owner signs up: answered exactly as a fresh sign-up.
        let owner = new_client();
        let res = app.post(&owner, path, make(&email)).await;
        assert_eq!(res.status(), fresh_status, "{path}");

        // The squatter's session, links and invitation are dead.
        assert_eq!(
            app.me_status(&squatter).await,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
        let res = app
            .post(
                &new_client(),
                "/api/v1/auth/verify-email",
                json!({"token": first_link}),
            )
            .await;
        expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
        let res = app
            .post(
                &new_client(),
                "/api/v1/auth/signup",
                json!({"email": "", "password": PASSWORD, "invite_token": invite}),
            )
            .await;
        expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
        // The squatter's password opens nothing.
        let res = app.login(&new_client(), &email, "squatters-own-pass").await;
        expect_error(res, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;

        // The owner verifies with the new link and finds a fresh account.
        wait_for_kind(&app, &email, VERIFY_LINK, 2).await;
        let token = newest_token(&app, &email, VERIFY_LINK);
        let res = app
            .post(
                &new_client(),
                "/api/v1/auth/verify-email",
                json!({"token": token}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let c = new_client();
        assert_eq!(
            app.login(&c, &email, PASSWORD).await.status(),
            StatusCode::OK
        );
        let names = tenant_names(&app, &c).await;
        assert_eq!(names.len(), 1, "{path}: {names:?}");
        assert!(!names.iter().any(|n| n.starts_with("Squat")), "{names:?}");
    }
}

#[tokio::test]
async fn a_verified_address_is_still_user_exists() {
    let app = TestApp::spawn().await;
    let email = unique_email("owned");
    let owner = app.user(&email).await;
    let res = app.signup(&new_client(), &email).await;
    expect_error(res, StatusCode::CONFLICT, "USER_EXISTS").await;
    let res = app
        .post(
            &new_client(),
            "/auth/sign-up/email",
            json!({"email": email, "password": PASSWORD, "name": "X"}),
        )
        .await;
    expect_error(res, StatusCode::CONFLICT, "USER_EXISTS").await;
    assert_eq!(app.me_status(&owner).await, StatusCode::OK);
}

#[tokio::test]
async fn parallel_sign_ups_for_one_address_leave_one_account() {
    let app = TestApp::spawn().await;
    let email = unique_email("race");
    app.unverified_user(&email).await;
    let statuses = burst(6, || {
        new_client()
            .post(app.url("/api/v1/auth/signup"))
            .json(&json!({"email": email, "password": PASSWORD}))
    })
    .await;
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT),
        "{statuses:?}"
    );
    eprintln!("{statuses:?}");
    assert!(statuses.contains(&StatusCode::CREATED));
    // Whatever the order, one account stands and the password works.
    let res = app.login(&new_client(), &email, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn opening_a_mailed_link_verifies_nothing_and_joins_nothing() {
    let app = TestApp::spawn().await;
    let inviter = app.user(&unique_email("inviter")).await;
    let tenant = &me(&app, &inviter).await["tenants"][0];
    let email = unique_email("scanned");
    app.invite(&inviter, tenant["id"].as_str().unwrap(), &email, "member")
        .await;

    // A squatter signs up with the invited address, unverified.
    let squatter = app.unverified_user(&email).await;
    wait_for_kind(&app, &email, VERIFY_LINK, 1).await;
    let token = newest_token(&app, &email, VERIFY_LINK);
    // A mail scanner fetches every link in the inbox, twice.
    for mail in app.mail.to(&email) {
        let text = mail.text();
        for start in text.match_indices("http://").map(|(i, _)| i) {
            let link: String = text[start..]
                .chars()
                .take_while(|c| !c.is_whitespace())
                .collect();
            for _ in 0..2 {
                let res = new_client().get(&link).send().await.unwrap();
                assert!(res.status().is_success(), "{link}: {}", res.status());
            }
        }
    }
    let me_now = me(&app, &squatter).await;
    assert_eq!(me_now["user"]["email_verified"], false);
    assert_eq!(me_now["tenants"].as_array().unwrap().len(), 1, "{me_now}");
    // The link still works for the human who presses the button.
    let res = app
        .post(
            &new_client(),
            "/api/v1/auth/verify-email",
            json!({"token": token}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_completed_reset_revokes_every_session_and_every_token() {
    let app = TestApp::spawn().await;
    let email = unique_email("reset-all");
    let first = app.user(&email).await;
    let second = new_client();
    assert_eq!(
        app.login(&second, &email, PASSWORD).await.status(),
        StatusCode::OK
    );
    let pat = app.pat(&first, "ci", &["read", "write"]).await;
    assert_eq!(
        app.bearer_get(&pat, "/api/v1/auth/me").await.status(),
        StatusCode::OK
    );
    let jwt = app.jwt(&first).await;

    let res = app
        .post(
            &new_client(),
            "/api/v1/auth/forgot-password",
            json!({"email": email}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    reset_by_mail(&app, &email, "brand-new-secret-9").await;

    assert_eq!(app.me_status(&first).await, StatusCode::UNAUTHORIZED);
    assert_eq!(app.me_status(&second).await, StatusCode::UNAUTHORIZED);
    for credential in [&pat, &jwt] {
        assert_eq!(
            app.bearer_get(credential, "/api/v1/auth/me").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
}

#[tokio::test]
async fn a_reset_of_a_squatted_address_starts_the_account_afresh() {
    let app = TestApp::spawn().await;
    let email = unique_email("reset-squat");
    let (squatter, invite, _) = squat(&app, &email).await;
    let res = app
        .post(
            &new_client(),
            "/api/auth/forgot-password",
            json!({"email": email}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let token = reset_by_mail(&app, &email, "owners-real-secret").await;

    assert_eq!(app.me_status(&squatter).await, StatusCode::UNAUTHORIZED);
    let owner = new_client();
    assert_eq!(
        app.login(&owner, &email, "owners-real-secret")
            .await
            .status(),
        StatusCode::OK
    );
    let me_now = me(&app, &owner).await;
    assert_eq!(me_now["user"]["email_verified"], true);
    let names = tenant_names(&app, &owner).await;
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("Squat")), "{names:?}");
    // The squatter's invitation died with its account.
    let res = app
        .post(
            &new_client(),
            "/api/v1/auth/signup",
            json!({"email": "", "password": PASSWORD, "invite_token": invite}),
        )
        .await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    // The token was spent.
    let res = app
        .post(
            &new_client(),
            "/api/v1/auth/reset-password",
            json!({"token": token, "password": "squatter-again-1"}),
        )
        .await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
}

// 2. Exact budgets under concurrency.

#[tokio::test]
async fn twenty_parallel_wrong_passwords_get_at_most_the_budget() {
    let app = TestApp::spawn().await;
    let email = unique_email("burst-exact");
    app.user(&email).await;
    let statuses = burst(20, || {
        new_client()
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"email": email, "password": WRONG}))
    })
    .await;
    assert!(answered(&statuses) <= 5, "{statuses:?}");
    assert_eq!(
        answered(&statuses),
        5,
        "every attempt up to the budget is answered: {statuses:?}"
    );
    // Locked now, for the right password too, on every surface.
    for path in [
        "/api/v1/auth/login",
        "/api/auth/login",
        "/auth/sign-in/email",
    ] {
        let res = app
            .post(
                &new_client(),
                path,
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        expect_error(res, StatusCode::TOO_MANY_REQUESTS, "ACCOUNT_LOCKED").await;
    }
}

#[tokio::test]
async fn twenty_parallel_wrong_second_factors_get_at_most_the_budget() {
    let app = TestApp::spawn().await;
    let email = unique_email("burst-totp");
    let (_, secret, codes) = app.user_with_totp(&email).await;
    let right = app.totp_code(&secret);
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };

    let challenge = app.password_step(&new_client(), &email).await;
    let statuses = burst(20, || {
        new_client()
            .post(app.url("/api/v1/auth/2fa/verify"))
            .json(&json!({"challenge": challenge, "code": wrong}))
    })
    .await;
    assert!(answered(&statuses) <= 5, "{statuses:?}");
    // Backup codes share the budget: locked now.
    let res = app
        .post(
            &new_client(),
            "/api/v1/auth/2fa/verify",
            json!({"challenge": challenge, "backup_code": codes[0]}),
        )
        .await;
    expect_error(res, StatusCode::TOO_MANY_REQUESTS, "ACCOUNT_LOCKED").await;

    // After the lock, wrong backup codes in a burst: the same bound.
    app.clock.advance(chrono::Duration::minutes(16));
    app.next_totp_step();
    let challenge = app.password_step(&new_client(), &email).await;
    let statuses = burst(20, || {
        new_client()
            .post(app.url("/api/v1/auth/2fa/verify"))
            .json(&json!({"challenge": challenge, "backup_code": "aaaa-bbbb-cccc"}))
    })
    .await;
    assert!(answered(&statuses) <= 5, "{statuses:?}");
}

#[tokio::test]
async fn a_right_password_before_the_second_step_leaves_it_an_attempt() {
    let app = TestApp::spawn().await;
    let email = unique_email("refund");
    let (_, secret, _) = app.user_with_totp(&email).await;
    for _ in 0..4 {
        let res = app.login(&new_client(), &email, WRONG).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    // The fifth attempt is the right password, then the right code.
    let c = new_client();
    let challenge = app.password_step(&c, &email).await;
    let res = app
        .post(
            &c,
            "/api/v1/auth/2fa/verify",
            json!({"challenge": challenge, "code": app.totp_code(&secret)}),
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "{}",
        res.text().await.unwrap()
    );
}

// 3. Every password check is budgeted.

/// A signed-in change of password, with `current` as the current one.
async fn change_password(app: &TestApp, c: &Client, current: &str) -> reqwest::Response {
    app.write(
        c,
        Method::POST,
        "/api/v1/auth/change-password",
        Some(json!({"current_password": current, "new_password": "another-secret-7"})),
    )
    .await
}

#[tokio::test]
async fn wrong_current_passwords_on_re_checks_spend_the_lockout_budget() {
    let app = TestApp::spawn().await;
    let email = unique_email("recheck");
    let (c, secret, _) = app.user_with_totp(&email).await;
    // One wrong guess through each re-check a stolen session could use.
    let v1 = [
        (
            "/api/v1/auth/change-password",
            json!({"current_password": WRONG, "new_password": "another-secret-7"}),
        ),
        (
            "/api/v1/auth/2fa/backup-codes",
            json!({"password": WRONG, "code": app.totp_code(&secret)}),
        ),
        (
            "/api/v1/auth/2fa/disable",
            json!({"password": WRONG, "code": app.totp_code(&secret)}),
        ),
    ];
    for (path, payload) in v1 {
        let res = app.write(&c, Method::POST, path, Some(payload)).await;
        expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    }
    for _ in 0..2 {
        let res = change_password(&app, &c, WRONG).await;
        expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    }
    // Five wrong: the next re-check and the next login are refused unchecked.
    let res = change_password(&app, &c, PASSWORD).await;
    expect_error(res, StatusCode::TOO_MANY_REQUESTS, "ACCOUNT_LOCKED").await;
    let res = app.login(&new_client(), &email, PASSWORD).await;
    expect_error(res, StatusCode::TOO_MANY_REQUESTS, "ACCOUNT_LOCKED").await;

    // The legacy change-password spends the same budget.
    let email = unique_email("recheck-legacy");
    app.user(&email).await;
    let legacy = new_client();
    let res = app.legacy_login(&legacy, &email, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
    for _ in 0..5 {
        let res = app
            .post(
                &legacy,
                "/api/auth/password",
                json!({"currentPassword": WRONG, "newPassword": "another-secret-7"}),
            )
            .await;
        expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    }
    let res = app
        .post(
            &legacy,
            "/api/auth/password",
            json!({"currentPassword": PASSWORD, "newPassword": "another-secret-7"}),
        )
        .await;
    expect_error(res, StatusCode::TOO_MANY_REQUESTS, "ACCOUNT_LOCKED").await;
    let res = app.login(&new_client(), &email, PASSWORD).await;
    expect_error(res, StatusCode::TOO_MANY_REQUESTS, "ACCOUNT_LOCKED").await;
}

#[tokio::test]
async fn parallel_wrong_current_passwords_get_at_most_the_budget() {
    let app = TestApp::spawn().await;
    let email = unique_email("recheck-burst");
    let c = app.user(&email).await;
    let csrf = app.csrf(&c).await;
    let statuses = burst(20, || {
        c.post(app.url("/api/v1/auth/change-password"))
            .header("x-csrf-token", &csrf)
            .json(&json!({"current_password": WRONG, "new_password": "another-secret-7"}))
    })
    .await;
    assert!(answered(&statuses) <= 5, "{statuses:?}");
}

#[tokio::test]
async fn re_checks_spend_the_per_ip_budget() {
    let app = TestApp::spawn_with(|c| c.security.rate_limit_per_minute = 4).await;
    app.at_minute_start();
    let email = unique_email("recheck-ip");
    // Sign-up spends one of the four.
    let c = app.user(&email).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let res = change_password(&app, &c, WRONG).await;
        statuses.push(res.status());
    }
    assert_eq!(
        *statuses.last().unwrap(),
        StatusCode::TOO_MANY_REQUESTS,
        "{statuses:?}"
    );
    let res = change_password(&app, &c, WRONG).await;
    expect_error(res, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
}

#[tokio::test]
async fn new_backup_codes_and_passkeys_need_the_second_factor() {
    let app = TestApp::spawn_with(|c| {
        let port = c.public_url.port().unwrap();
        c.webauthn.rp_id = Some("localhost".into());
        c.webauthn.origins = vec![format!("http://localhost:{port}")];
    })
    .await;
    let email = unique_email("second-factor");
    let (c, secret, codes) = app.user_with_totp(&email).await;

    // The password alone is no longer enough for new backup codes...
    let res = app
        .write(
            &c,
            Method::POST,
            "/api/v1/auth/2fa/backup-codes",
            Some(json!({"password": PASSWORD})),
        )
        .await;
    let err = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert!(err["fields"]["code"].is_string(), "{err}");
    let res = app
        .write(
            &c,
            Method::POST,
            "/api/v1/auth/2fa/backup-codes",
            Some(json!({"password": PASSWORD, "code": "000000"})),
        )
        .await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    let res = app
        .write(
            &c,
            Method::POST,
            "/api/v1/auth/2fa/backup-codes",
            Some(json!({"password": PASSWORD, "code": app.totp_code(&secret)})),
        )
        .await;
    let fresh = body(res, StatusCode::OK).await;
    assert_eq!(fresh["backup_codes"].as_array().unwrap().len(), 10);

    // ...nor for a new passkey (a backup code of the new set works once).
    let res = app
        .write(
            &c,
            Method::POST,
            "/api/v1/auth/passkeys/register/start",
            None,
        )
        .await;
    let err = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert!(err["fields"]["code"].is_string(), "{err}");
    let res = app
        .write(
            &c,
            Method::POST,
            "/api/v1/auth/passkeys/register/start",
            Some(json!({"backup_code": codes[0]})),
        )
        .await;
    // The old set stopped working with the regeneration.
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    let new_code = fresh["backup_codes"][0].as_str().unwrap();
    let res = app
        .write(
            &c,
            Method::POST,
            "/api/v1/auth/passkeys/register/start",
            Some(json!({"backup_code": new_code})),
        )
        .await;
    let ceremony = body(res, StatusCode::OK).await;
    assert!(ceremony["ceremony_id"].is_string(), "{ceremony}");
}

// 4. Device cookies.

/// A client that signed in to `email` once (and so holds its device cookie).
async fn known_device(app: &TestApp, path: &str, email: &str) -> Client {
    let device = new_client();
    let res = app
        .post(&device, path, json!({"email": email, "password": PASSWORD}))
        .await;
    assert_eq!(res.status(), StatusCode::OK, "{path}");
    let cookie = set_cookie(&res, "tessera_device").expect("a device cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(cookie.contains("Max-Age="), "{cookie}");
    device
}

#[tokio::test]
async fn a_known_device_gets_in_while_an_attacker_holds_the_lock() {
    let app = TestApp::spawn().await;
    for path in [
        "/api/v1/auth/login",
        "/api/auth/login",
        "/auth/sign-in/email",
    ] {
        let email = unique_email("device");
        app.user(&email).await;
        let device = known_device(&app, path, &email).await;

        // The attacker locks the account from elsewhere.
        let statuses = burst(8, || {
            new_client()
                .post(app.url(path))
                .json(&json!({"email": email, "password": WRONG}))
        })
        .await;
        assert!(
            statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
            "{statuses:?}"
        );
        let res = app
            .post(
                &new_client(),
                path,
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        expect_error(res, StatusCode::TOO_MANY_REQUESTS, "ACCOUNT_LOCKED").await;

        // The owner's device is judged on its own budget.
        let res = app
            .post(&device, path, json!({"email": email, "password": PASSWORD}))
            .await;
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "{path}: {}",
            res.text().await.unwrap()
        );
        // Still locked for everyone else.
        let res = app
            .post(
                &new_client(),
                path,
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        expect_error(res, StatusCode::TOO_MANY_REQUESTS, "ACCOUNT_LOCKED").await;
    }
}

#[tokio::test]
async fn a_device_cookie_has_a_smaller_budget_of_its_own_and_binds_one_account() {
    let app = TestApp::spawn().await;
    let email = unique_email("device-budget");
    app.user(&email).await;
    let device = known_device(&app, "/api/v1/auth/login", &email).await;
    // Three wrong guesses from the device use up its budget.
    for _ in 0..3 {
        let res = app.login(&device, &email, WRONG).await;
        expect_error(res, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    }
    let res = app.login(&device, &email, PASSWORD).await;
    expect_error(res, StatusCode::TOO_MANY_REQUESTS, "ACCOUNT_LOCKED").await;
    // Without the device, the account's own budget was untouched.
    assert_eq!(
        app.login(&new_client(), &email, PASSWORD).await.status(),
        StatusCode::OK
    );

    // The cookie of one account is nothing to another.
    let other = unique_email("device-other");
    app.user(&other).await;
    let res = app.login(&new_client(), &email, PASSWORD).await;
    let value = cookie_value(&res, "tessera_device");
    for _ in 0..5 {
        app.login(&new_client(), &other, WRONG).await;
    }
    let borrowed = new_client();
    let res = borrowed
        .post(app.url("/api/v1/auth/login"))
        .header("cookie", format!("tessera_device={value}"))
        .json(&json!({"email": other, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::TOO_MANY_REQUESTS, "ACCOUNT_LOCKED").await;
    // Nor is a forged one.
    let mut forged = value.clone().into_bytes();
    forged[5] = if forged[5] == b'A' { b'B' } else { b'A' };
    let res = new_client()
        .post(app.url("/api/v1/auth/login"))
        .header(
            "cookie",
            format!("tessera_device={}", String::from_utf8(forged).unwrap()),
        )
        .json(&json!({"email": other, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::TOO_MANY_REQUESTS, "ACCOUNT_LOCKED").await;
}
