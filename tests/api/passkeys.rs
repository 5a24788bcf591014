//! Passkeys with a software authenticator (webauthn-authenticator-rs's
//! SoftPasskey) acting as the browser and the device.

use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use url::Url;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse};

use crate::helpers::*;

pub(crate) type Device = WebauthnAuthenticator<SoftPasskey>;

/// Tessera with passkeys bound to `localhost` (authenticators refuse bare
/// IP addresses); the origin the "browser" reports is localhost's.
pub(crate) async fn app() -> (TestApp, Url) {
    let app = TestApp::spawn_with(|c| {
        let port = c.public_url.port().unwrap();
        c.webauthn.rp_id = Some("localhost".into());
        c.webauthn.origins = vec![format!("http://localhost:{port}")];
    })
    .await;
    let port = Url::parse(&app.base).unwrap().port().unwrap();
    let origin = Url::parse(&format!("http://localhost:{port}")).unwrap();
    (app, origin)
}

pub(crate) fn device() -> Device {
    // `true`: the soft token reports user verification (a PIN or a touch).
    WebauthnAuthenticator::new(SoftPasskey::new(true))
}

/// Registers a passkey on `device` for the signed-in `client`.
pub(crate) async fn register(
    app: &TestApp,
    client: &Client,
    device: &mut Device,
    origin: &Url,
    name: &str,
) -> Value {
    let res = app
        .write(
            client,
            Method::POST,
            "/api/v1/auth/passkeys/register/start",
            None,
        )
        .await;
    let start = body(res, StatusCode::OK).await;
    let options: CreationChallengeResponse =
        serde_json::from_value(start["options"].clone()).unwrap();
    let credential = device.do_registration(origin.clone(), options).unwrap();
    let res = app
        .write(
            client,
            Method::POST,
            "/api/v1/auth/passkeys/register/finish",
            Some(json!({
                "ceremony_id": start["ceremony_id"],
                "credential": credential,
                "name": name,
            })),
        )
        .await;
    body(res, StatusCode::CREATED).await
}

/// Answers a ceremony's request options with `device`.
fn assert_with(device: &mut Device, origin: &Url, start: &Value) -> Value {
    let options: RequestChallengeResponse =
        serde_json::from_value(start["options"].clone()).unwrap();
    serde_json::to_value(device.do_authentication(origin.clone(), options).unwrap()).unwrap()
}

async fn login_start(app: &TestApp, email: &str) -> Value {
    let res = app
        .post(
            &new_client(),
            "/api/v1/auth/passkeys/login/start",
            json!({"email": email}),
        )
        .await;
    body(res, StatusCode::OK).await
}

#[tokio::test]
async fn register_list_rename_and_sign_in_without_a_password() {
    let (app, origin) = app().await;
    let email = unique_email("passkey");
    let owner = app.user(&email).await;
    let mut laptop = device();
    let created = register(&app, &owner, &mut laptop, &origin, "Laptop").await;
    assert_eq!(created["name"], "Laptop");
    let id = created["id"].as_str().unwrap().to_owned();

    let listed = body(
        app.get(&owner, "/api/v1/auth/passkeys").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(listed[0]["last_used_at"].is_null());
    let res = app
        .write(
            &owner,
            Method::PATCH,
            &format!("/api/v1/auth/passkeys/{id}"),
            Some(json!({"name": "Work laptop"})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    // Passwordless sign-in on a new browser.
    let start = login_start(&app, &email).await;
    let assertion = assert_with(&mut laptop, &origin, &start);
    let browser = new_client();
    let res = app
        .post(
            &browser,
            "/api/v1/auth/passkeys/login/finish",
            json!({"ceremony_id": start["ceremony_id"], "credential": assertion}),
        )
        .await;
    assert!(set_cookie(&res, "ces_session").is_some());
    assert_eq!(body(res, StatusCode::OK).await["user"]["email"], email);
    assert_eq!(app.me_status(&browser).await, StatusCode::OK);
    let listed = body(
        app.get(&owner, "/api/v1/auth/passkeys").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed[0]["name"], "Work laptop");
    assert!(listed[0]["last_used_at"].is_string());

    // The same assertion again: the ceremony is spent.
    let res = app
        .post(
            &new_client(),
            "/api/v1/auth/passkeys/login/finish",
            json!({"ceremony_id": start["ceremony_id"], "credential": assertion}),
        )
        .await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;

    // Another device's passkey does not open this account.
    let start = login_start(&app, &email).await;
    let mut stranger = device();
    let options: RequestChallengeResponse =
        serde_json::from_value(start["options"].clone()).unwrap();
    assert!(stranger.do_authentication(origin.clone(), options).is_err());

    // Deleting it (the password remains) ends passkey sign-in.
    let res = app
        .write(
            &owner,
            Method::DELETE,
            &format!("/api/v1/auth/passkeys/{id}"),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let start = login_start(&app, &email).await;
    let options: RequestChallengeResponse =
        serde_json::from_value(start["options"].clone()).unwrap();
    assert!(laptop.do_authentication(origin.clone(), options).is_err());
}

#[tokio::test]
async fn login_start_reveals_nothing_about_the_email() {
    let (app, origin) = app().await;
    let email = unique_email("passkey-real");
    let owner = app.user(&email).await;
    register(&app, &owner, &mut device(), &origin, "Key").await;
    let real = login_start(&app, &email).await;
    let nobody = unique_email("passkey-nobody");
    let fake = login_start(&app, &nobody).await;
    let keys = |v: &Value| {
        let mut k: Vec<String> = v["options"]["publicKey"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        k.sort();
        k
    };
    assert_eq!(keys(&real), keys(&fake));
    // One passkey for most addresses, two or three for some, as real
    // accounts have them.
    let listed = fake["options"]["publicKey"]["allowCredentials"]
        .as_array()
        .unwrap()
        .len();
    assert!((1..=3).contains(&listed), "{fake}");
    // Stable for the address, like a real credential id.
    let again = login_start(&app, &nobody).await;
    assert_eq!(
        fake["options"]["publicKey"]["allowCredentials"],
        again["options"]["publicKey"]["allowCredentials"]
    );
    // Finishing a decoy is a plain refusal.
    let res = app
        .post(
            &new_client(),
            "/api/v1/auth/passkeys/login/finish",
            json!({"ceremony_id": fake["ceremony_id"], "credential": {"id": "x"}}),
        )
        .await;
    assert!(res.status().is_client_error());
}

#[tokio::test]
async fn a_passkey_from_another_origin_is_refused() {
    let (app, _) = app().await;
    let owner = app.user(&unique_email("passkey-origin")).await;
    let res = app
        .write(
            &owner,
            Method::POST,
            "/api/v1/auth/passkeys/register/start",
            None,
        )
        .await;
    let start = body(res, StatusCode::OK).await;
    let options: CreationChallengeResponse =
        serde_json::from_value(start["options"].clone()).unwrap();
    let phishing = Url::parse("http://localhost:1").unwrap();
    let credential = device().do_registration(phishing, options).unwrap();
    let res = app
        .write(
            &owner,
            Method::POST,
            "/api/v1/auth/passkeys/register/finish",
            Some(json!({"ceremony_id": start["ceremony_id"], "credential": credential})),
        )
        .await;
    let err = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert!(err["fields"]["credential"].is_string());
    let listed = body(
        app.get(&owner, "/api/v1/auth/passkeys").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed, json!([]));
}

#[tokio::test]
async fn a_passkey_answers_the_second_step_of_a_password_login() {
    let (app, origin) = app().await;
    let email = unique_email("passkey-2fa");
    let owner = app.user(&email).await;
    let mut key = device();
    register(&app, &owner, &mut key, &origin, "Key").await;
    // Turn TOTP on (codes from the independent implementation).
    app.enable_totp(&owner).await;
    let status = body(app.get(&owner, "/api/v1/auth/2fa").await, StatusCode::OK).await;
    assert_eq!(status["methods"], json!(["totp", "passkey"]));

    let browser = new_client();
    let res = app.login(&browser, &email, PASSWORD).await;
    let challenge = body(res, StatusCode::OK).await["challenge"].clone();
    let res = app
        .post(
            &browser,
            "/api/v1/auth/2fa/passkey/start",
            json!({"challenge": challenge}),
        )
        .await;
    let start = body(res, StatusCode::OK).await;
    let assertion = assert_with(&mut key, &origin, &start);
    let res = app
        .post(
            &browser,
            "/api/v1/auth/2fa/verify",
            json!({"challenge": challenge, "ceremony_id": start["ceremony_id"], "credential": assertion}),
        )
        .await;
    assert!(set_cookie(&res, "ces_session").is_some());
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(app.me_status(&browser).await, StatusCode::OK);
}

#[tokio::test]
async fn the_last_way_to_sign_in_cannot_be_removed() {
    use crate::social::{location, Provider};
    let provider = Provider::start().await;
    let issuer_config = provider.config();
    let app = TestApp::spawn_with(move |c| {
        let port = c.public_url.port().unwrap();
        c.webauthn.rp_id = Some("localhost".into());
        c.webauthn.origins = vec![format!("http://localhost:{port}")];
        c.oauth.insert("mock".into(), issuer_config);
    })
    .await;
    let origin = Url::parse(&app.base.replace("127.0.0.1", "localhost")).unwrap();
    // A social-only account (no password).
    provider
        .user("sub-passkey", &unique_email("passkey-social"), true)
        .await;
    let owner = new_client();
    let start = app.get(&owner, "/api/v1/auth/oauth/mock").await;
    let at_provider = owner.get(location(&start)).send().await.unwrap();
    owner.get(location(&at_provider)).send().await.unwrap();
    assert_eq!(me(&app, &owner).await["user"]["has_password"], false);

    let created = register(&app, &owner, &mut device(), &origin, "Only").await;
    // With a passkey, the provider may go...
    let res = app
        .write(
            &owner,
            Method::DELETE,
            "/api/v1/auth/linked-accounts/mock",
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    // ...but then the passkey is the only way in and stays.
    let id = created["id"].as_str().unwrap();
    let res = app
        .write(
            &owner,
            Method::DELETE,
            &format!("/api/v1/auth/passkeys/{id}"),
            None,
        )
        .await;
    expect_error(res, StatusCode::CONFLICT, "CONFLICT").await;
}

#[tokio::test]
async fn malformed_or_foreign_passkey_ids_are_not_found() {
    let (app, origin) = app().await;
    let owner = app.user(&unique_email("passkey-ids")).await;
    let created = register(&app, &owner, &mut device(), &origin, "Mine").await;
    let other = app.user(&unique_email("passkey-other")).await;
    let id = created["id"].as_str().unwrap();
    for (client, path) in [
        (&owner, "/api/v1/auth/passkeys/null,null".to_owned()),
        (&other, format!("/api/v1/auth/passkeys/{id}")),
    ] {
        let res = app.write(client, Method::DELETE, &path, None).await;
        expect_error(res, StatusCode::NOT_FOUND, "NOT_FOUND").await;
        let res = app
            .write(client, Method::PATCH, &path, Some(json!({"name": "x"})))
            .await;
        expect_error(res, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    }
    let listed = body(
        app.get(&owner, "/api/v1/auth/passkeys").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed[0]["name"], "Mine");
}
