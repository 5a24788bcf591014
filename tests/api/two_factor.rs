//! Two-factor authentication, with codes computed by an independent
//! RFC 6238 implementation (`helpers/two_factor.rs`).

use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

async fn verify(app: &TestApp, client: &Client, second: Value) -> reqwest::Response {
    app.post(client, "/api/v1/auth/2fa/verify", second).await
}

#[tokio::test]
async fn setup_and_enable_need_the_password_and_a_real_code() {
    let app = TestApp::spawn().await;
    let email = unique_email("totp-setup");
    let client = app.user(&email).await;
    // A PAT made before 2FA is turned on.
    let pat = app.pat(&client, "ci", &["read"]).await;
    let other_session = new_client();
    app.login(&other_session, &email, PASSWORD).await;

    let res = app
        .write(
            &client,
            Method::POST,
            "/api/v1/auth/2fa/totp/setup",
            Some(json!({"password": "not-my-password"})),
        )
        .await;
    let err = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert!(err["fields"]["password"].is_string());
    let res = app
        .write(
            &client,
            Method::POST,
            "/api/v1/auth/2fa/totp/setup",
            Some(json!({"password": PASSWORD})),
        )
        .await;
    let setup = body(res, StatusCode::OK).await;
    let secret = setup["secret"].as_str().unwrap();
    let uri = setup["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/Tessera:"), "{uri}");
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    assert!(base32_decode(secret).len() >= 20);
    // Not on until confirmed.
    assert_eq!(me(&app, &client).await["user"]["two_factor_enabled"], false);

    let res = app
        .write(
            &client,
            Method::POST,
            "/api/v1/auth/2fa/totp/enable",
            Some(json!({"code": "000000"})),
        )
        .await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    let res = app
        .write(
            &client,
            Method::POST,
            "/api/v1/auth/2fa/totp/enable",
            Some(json!({"code": app.totp_code(secret)})),
        )
        .await;
    let codes = body(res, StatusCode::OK).await["backup_codes"].clone();
    let codes = codes.as_array().unwrap();
    assert_eq!(codes.len(), 10);
    for code in codes {
        // 64 bits: sixteen hex digits.
        let digits: String = code.as_str().unwrap().replace('-', "");
        assert_eq!(digits.len(), 16);
        assert!(digits.bytes().all(|b| b.is_ascii_hexdigit()));
    }
    let status = body(app.get(&client, "/api/v1/auth/2fa").await, StatusCode::OK).await;
    assert_eq!(
        status,
        json!({"enabled": true, "methods": ["totp"], "backup_codes_remaining": 10})
    );
    assert_eq!(me(&app, &client).await["user"]["two_factor_enabled"], true);
    // Nothing made before skips the second factor: the PAT and the other
    // session are gone, this session stays.
    assert_eq!(
        app.bearer_get(&pat, "/api/v1/auth/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.me_status(&other_session).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.me_status(&client).await, StatusCode::OK);
    // The secret is sealed at rest, never stored as the app shows it.
    let user_id = uuid::Uuid::parse_str(&user_id(&app, &client).await).unwrap();
    let factor = app.core.store.totp(user_id).await.unwrap().unwrap();
    assert!(!factor
        .secret_enc
        .windows(20)
        .any(|w| w == base32_decode(secret).as_slice()));
    // A second setup is refused while on.
    let res = app
        .write(
            &client,
            Method::POST,
            "/api/v1/auth/2fa/totp/setup",
            Some(json!({"password": PASSWORD})),
        )
        .await;
    expect_error(res, StatusCode::CONFLICT, "CONFLICT").await;
}

#[tokio::test]
async fn login_needs_the_second_step_and_codes_work_once() {
    let app = TestApp::spawn().await;
    let email = unique_email("totp-login");
    let (_, secret, _) = app.user_with_totp(&email).await;

    let client = new_client();
    let challenge = app.password_step(&client, &email).await;
    assert_eq!(app.me_status(&client).await, StatusCode::UNAUTHORIZED);
    let code = app.totp_code(&secret);
    let res = verify(&app, &client, json!({"challenge": challenge, "code": code})).await;
    assert!(set_cookie(&res, "ces_session").is_some());
    let answer = body(res, StatusCode::OK).await;
    assert_eq!(answer["user"]["email"], email);
    assert_eq!(app.me_status(&client).await, StatusCode::OK);

    // The challenge is spent; the code too, even with a new challenge.
    let res = verify(
        &app,
        &new_client(),
        json!({"challenge": challenge, "code": code}),
    )
    .await;
    let err = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert!(err["fields"]["challenge"].is_string());
    let again = new_client();
    let challenge = app.password_step(&again, &email).await;
    let res = verify(&app, &again, json!({"challenge": challenge, "code": code})).await;
    let err = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert!(err["fields"]["code"].is_string());
    // The next step's code works.
    app.next_totp_step();
    let res = verify(
        &app,
        &again,
        json!({"challenge": challenge, "code": app.totp_code(&secret)}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);

    // Challenges expire after five minutes.
    let late = new_client();
    let challenge = app.password_step(&late, &email).await;
    app.clock.advance(chrono::Duration::minutes(6));
    let res = verify(
        &app,
        &late,
        json!({"challenge": challenge, "code": app.totp_code(&secret)}),
    )
    .await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
}

#[tokio::test]
async fn the_password_alone_opens_nothing_on_any_surface() {
    let app = TestApp::spawn().await;
    let email = unique_email("totp-attacker");
    app.user_with_totp(&email).await;
    let credentials = json!({"email": email, "password": PASSWORD});

    // Legacy: no auth_token, no access_token.
    let legacy = new_client();
    let res = app
        .post(&legacy, "/api/auth/login", credentials.clone())
        .await;
    assert!(set_cookie(&res, "auth_token").is_none());
    let answer = body(res, StatusCode::OK).await;
    assert_eq!(answer["two_factor_required"], true);
    assert!(answer.get("access_token").is_none());
    assert_eq!(
        app.get(&legacy, "/api/auth/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
    // Dashboard: no session.
    let dash = new_client();
    let res = app
        .post(&dash, "/auth/sign-in/email", credentials.clone())
        .await;
    assert!(set_cookie(&res, "ces_session").is_none());
    // In the surface's camelCase.
    let answer = body(res, StatusCode::OK).await;
    assert_eq!(answer["twoFactorRequired"], true, "{answer}");
    assert!(answer["challenge"].is_string() && answer.get("two_factor_required").is_none());
    assert_eq!(
        app.get(&dash, "/auth/session").await.status(),
        StatusCode::UNAUTHORIZED
    );
    // A made-up or empty challenge, or none.
    for second in [
        json!({"challenge": "made-up", "code": "123456"}),
        json!({"challenge": "", "code": "123456"}),
        json!({"code": "123456"}),
    ] {
        let res = verify(&app, &new_client(), second).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    // A password reset does not switch the second factor off.
    app.post(
        &new_client(),
        "/api/v1/auth/forgot-password",
        json!({"email": email}),
    )
    .await;
    let token = app.mail.wait_for(&email, 2).await.token();
    let res = app
        .post(
            &new_client(),
            "/api/v1/auth/reset-password",
            json!({"token": token, "password": "brand-new-secret-2026"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = app
        .login(&new_client(), &email, "brand-new-secret-2026")
        .await;
    assert_eq!(body(res, StatusCode::OK).await["two_factor_required"], true);
}

#[tokio::test]
async fn wrong_codes_count_toward_the_lockout() {
    let app = TestApp::spawn().await;
    let email = unique_email("totp-lockout");
    let (_, secret, _) = app.user_with_totp(&email).await;
    let client = new_client();
    let challenge = app.password_step(&client, &email).await;
    let right = app.totp_code(&secret);
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..5 {
        let res = verify(
            &app,
            &client,
            json!({"challenge": challenge, "code": wrong}),
        )
        .await;
        expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    }
    // Locked: even the right code, and even the right password.
    let res = verify(
        &app,
        &client,
        json!({"challenge": challenge, "code": right}),
    )
    .await;
    assert!(res.headers().contains_key("retry-after"));
    expect_error(res, StatusCode::TOO_MANY_REQUESTS, "ACCOUNT_LOCKED").await;
    let res = app.login(&new_client(), &email, PASSWORD).await;
    expect_error(res, StatusCode::TOO_MANY_REQUESTS, "ACCOUNT_LOCKED").await;
}

#[tokio::test]
async fn a_right_password_does_not_wipe_the_count_of_wrong_codes() {
    let app = TestApp::spawn().await;
    let email = unique_email("totp-spray");
    let (_, secret, _) = app.user_with_totp(&email).await;
    let wrong = if app.totp_code(&secret) == "000000" {
        "111111"
    } else {
        "000000"
    };
    // Four wrong codes per challenge, a fresh password step in between.
    let mut locked = false;
    for _ in 0..3 {
        let client = new_client();
        let res = app.login(&client, &email, PASSWORD).await;
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            locked = true;
            break;
        }
        let challenge = body(res, StatusCode::OK).await["challenge"]
            .as_str()
            .unwrap()
            .to_owned();
        for _ in 0..4 {
            let res = verify(
                &app,
                &client,
                json!({"challenge": challenge, "code": wrong}),
            )
            .await;
            if res.status() == StatusCode::TOO_MANY_REQUESTS {
                locked = true;
            }
        }
    }
    assert!(locked, "12 wrong codes over 3 password steps must lock");
}

#[tokio::test]
async fn backup_codes_work_once_and_recover_a_lost_device() {
    let app = TestApp::spawn().await;
    let email = unique_email("totp-backup");
    let (_, _lost_secret, codes) = app.user_with_totp(&email).await;

    // The device is lost: sign in with a backup code (any case, spaces).
    let client = new_client();
    let challenge = app.password_step(&client, &email).await;
    let typed = codes[0].to_uppercase().replace('-', " ");
    let res = verify(
        &app,
        &client,
        json!({"challenge": challenge, "backup_code": typed}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let status = body(app.get(&client, "/api/v1/auth/2fa").await, StatusCode::OK).await;
    assert_eq!(status["backup_codes_remaining"], 9);
    // Used once only.
    let again = new_client();
    let challenge = app.password_step(&again, &email).await;
    let res = verify(
        &app,
        &again,
        json!({"challenge": challenge, "backup_code": codes[0]}),
    )
    .await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;

    // Regenerating (the password and a second factor: here a backup code
    // of the old set) kills the old set.
    let res = app
        .write(
            &client,
            Method::POST,
            "/api/v1/auth/2fa/backup-codes",
            Some(json!({"password": PASSWORD, "backup_code": codes[2]})),
        )
        .await;
    let fresh = body(res, StatusCode::OK).await["backup_codes"].clone();
    let res = verify(
        &app,
        &again,
        json!({"challenge": challenge, "backup_code": codes[1]}),
    )
    .await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;

    // Turn 2FA off with the password and a backup code, then set up anew.
    let res = app
        .write(
            &client,
            Method::POST,
            "/api/v1/auth/2fa/disable",
            Some(json!({"password": PASSWORD, "backup_code": fresh[0]})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let status = body(app.get(&client, "/api/v1/auth/2fa").await, StatusCode::OK).await;
    assert_eq!(status["enabled"], false);
    let res = app.login(&new_client(), &email, PASSWORD).await;
    assert!(set_cookie(&res, "ces_session").is_some());
    let res = app
        .write(
            &client,
            Method::POST,
            "/api/v1/auth/2fa/totp/setup",
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn disabling_needs_the_password_and_a_second_factor() {
    let app = TestApp::spawn().await;
    let email = unique_email("totp-disable");
    let (client, secret, _) = app.user_with_totp(&email).await;
    for (body_sent, field) in [
        (json!({"password": PASSWORD}), "code"),
        (json!({"password": PASSWORD, "code": "12345x"}), "code"),
        (
            json!({"password": "wrong-password", "code": app.totp_code(&secret)}),
            "password",
        ),
    ] {
        let res = app
            .write(
                &client,
                Method::POST,
                "/api/v1/auth/2fa/disable",
                Some(body_sent),
            )
            .await;
        let err = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
        assert!(err["fields"][field].is_string(), "{err}");
    }
    let res = app
        .write(
            &client,
            Method::POST,
            "/api/v1/auth/2fa/disable",
            Some(json!({"password": PASSWORD, "code": app.totp_code(&secret)})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    // The dashboard's status agrees.
    let status = body(
        app.get(&client, "/auth/two-factor/status").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(status["enabled"], false);
    assert_eq!(status["methods"], json!([]));
}

#[tokio::test]
async fn legacy_and_dashboard_second_steps() {
    let app = TestApp::spawn().await;
    let email = unique_email("totp-surfaces");
    let (_, secret, _) = app.user_with_totp(&email).await;
    let credentials = json!({"email": email, "password": PASSWORD});

    let legacy = new_client();
    let res = app
        .post(&legacy, "/api/auth/login", credentials.clone())
        .await;
    let challenge = body(res, StatusCode::OK).await["challenge"].clone();
    let res = app
        .post(
            &legacy,
            "/api/auth/2fa/verify",
            json!({"challenge": challenge, "code": app.totp_code(&secret)}),
        )
        .await;
    assert!(set_cookie(&res, "auth_token").is_some());
    let answer = body(res, StatusCode::OK).await;
    assert_eq!(answer["token_type"], "bearer");
    assert!(answer["access_token"].is_string());
    // The refresh token of a two-step sign-in works like any other.
    let res = app
        .post(
            &new_client(),
            "/api/auth/refresh",
            json!({"refresh_token": answer["refresh_token"]}),
        )
        .await;
    assert!(body(res, StatusCode::OK).await["access_token"].is_string());

    app.next_totp_step();
    let dash = new_client();
    let res = app.post(&dash, "/auth/sign-in/email", credentials).await;
    let challenge = body(res, StatusCode::OK).await["challenge"].clone();
    let res = app
        .post(
            &dash,
            "/auth/two-factor/verify",
            json!({"challenge": challenge, "code": app.totp_code(&secret)}),
        )
        .await;
    assert!(set_cookie(&res, "ces_session").is_some());
    let answer = body(res, StatusCode::OK).await;
    assert_eq!(answer["user"]["email"], email);
    let status = body(
        app.get(&dash, "/auth/two-factor/status").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(status["enabled"], true);
    assert_eq!(status["methods"], json!(["totp"]));
}
