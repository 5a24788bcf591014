use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn personal_access_tokens_create_use_list_revoke() {
    let app = TestApp::spawn().await;
    let email = unique_email("pat");
    let c = app.user(&email).await;
    let created = app
        .create_pat(
            &c,
            json!({"name": "ci", "scopes": ["read", "write"], "expires_in_days": 30}),
        )
        .await;
    let token = created["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("tsr_pat_"), "{token}");
    assert!(token.len() >= "tsr_pat_".len() + 43);
    assert_eq!(created["name"], "ci");
    assert_eq!(created["scopes"], json!(["read", "write"]));
    assert!(created["expires_at"].is_string());
    assert!(created["last_used_at"].is_null());

    let res = app.bearer_get(&token, "/api/v1/auth/me").await;
    assert_eq!(res.status(), StatusCode::OK);
    let me: Value = res.json().await.unwrap();
    assert_eq!(me["user"]["email"], email);

    let list: Value = app.get(&c, "/api/v1/tokens").await.json().await.unwrap();
    let listed = &list.as_array().unwrap()[0];
    assert_eq!(listed["id"], created["id"]);
    assert!(
        listed.get("token").is_none(),
        "the secret is never shown again"
    );
    assert!(!list.to_string().contains(&token[8..]));
    assert!(listed["last_used_at"].is_string(), "use is recorded");

    // A bearer write needs no CSRF token.
    let res = app
        .bearer(
            &token,
            Method::DELETE,
            &format!("/api/v1/tokens/{}", uuid::Uuid::new_v4()),
            None,
        )
        .await;
    expect_error(res, StatusCode::NOT_FOUND, "NOT_FOUND").await;

    // A token cannot mint tokens.
    let res = app
        .bearer(
            &token,
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": "child", "scopes": ["read"]})),
        )
        .await;
    expect_error(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;

    let id = created["id"].as_str().unwrap();
    let res = app
        .write(&c, Method::DELETE, &format!("/api/v1/tokens/{id}"), None)
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    expect_error(
        app.bearer_get(&token, "/api/v1/auth/me").await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
    let res = app
        .write(&c, Method::DELETE, &format!("/api/v1/tokens/{id}"), None)
        .await;
    expect_error(res, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    let list: Value = app.get(&c, "/api/v1/tokens").await.json().await.unwrap();
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn read_scope_refuses_writes() {
    let app = TestApp::spawn().await;
    let c = app.user(&unique_email("ro")).await;
    let created = app
        .create_pat(&c, json!({"name": "reader", "scopes": ["read"]}))
        .await;
    let token = created["token"].as_str().unwrap();
    assert_eq!(
        app.bearer_get(token, "/api/v1/auth/me").await.status(),
        StatusCode::OK
    );
    let res = app
        .bearer(token, Method::POST, "/api/v1/auth/token", None)
        .await;
    expect_error(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;
}

#[tokio::test]
async fn tokens_of_other_users_cannot_be_revoked_and_expired_tokens_fail() {
    let app = TestApp::spawn().await;
    let alice = app.user(&unique_email("alice")).await;
    let mallory = app.user(&unique_email("mallory")).await;
    let created = app
        .create_pat(
            &alice,
            json!({"name": "a", "scopes": ["read"], "expires_in_days": 1}),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    let res = app
        .write(
            &mallory,
            Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            None,
        )
        .await;
    expect_error(res, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    let res = app
        .write(&mallory, Method::DELETE, "/api/v1/tokens/not-a-uuid", None)
        .await;
    expect_error(res, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    let token = created["token"].as_str().unwrap();
    assert_eq!(
        app.bearer_get(token, "/api/v1/auth/me").await.status(),
        StatusCode::OK
    );
    app.clock.advance(chrono::Duration::hours(25));
    assert_eq!(
        app.bearer_get(token, "/api/v1/auth/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn token_creation_bad_input() {
    let app = TestApp::spawn().await;
    let c = app.user(&unique_email("badpat")).await;
    let cases = [
        (json!({"scopes": ["read"]}), "name"),
        (json!({"name": "x"}), "scopes"),
        (json!({"name": "x", "scopes": []}), "scopes"),
        (json!({"name": "x", "scopes": ["admin"]}), "scopes"),
        (json!({"name": "x", "scopes": "read"}), "scopes"),
        (json!({"name": 5, "scopes": ["read"]}), "name"),
        (json!({"name": "n".repeat(101), "scopes": ["read"]}), "name"),
        (
            json!({"name": "x", "scopes": ["read"], "expires_in_days": 0}),
            "expires_in_days",
        ),
        (
            json!({"name": "x", "scopes": ["read"], "expires_in_days": "soon"}),
            "expires_in_days",
        ),
        (
            json!({"name": "x", "scopes": ["read"], "tenant_id": uuid::Uuid::new_v4()}),
            "tenant_id",
        ),
        (
            json!({"name": "x", "scopes": ["read"], "tenant_id": "nope"}),
            "tenant_id",
        ),
    ];
    for (body, field) in cases {
        let res = app
            .write(&c, Method::POST, "/api/v1/tokens", Some(body.clone()))
            .await;
        let err = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
        assert!(err["fields"][field].is_string(), "{body} → {err}");
    }
    let list: Value = app.get(&c, "/api/v1/tokens").await.json().await.unwrap();
    assert_eq!(list, json!([]));
}

fn decode_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[tokio::test]
async fn jwt_access_tokens_verify_with_the_jwks_and_die_with_their_session() {
    let app = TestApp::spawn().await;
    let email = unique_email("jwt");
    let c = app.user(&email).await;
    let res = app
        .write(&c, Method::POST, "/api/v1/auth/token", None)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 900);
    let jwt = body["access_token"].as_str().unwrap().to_owned();

    let header = decode_part(&jwt, 0);
    let claims = decode_part(&jwt, 1);
    assert_eq!(header["alg"], "EdDSA");
    let me: Value = app.get(&c, "/api/v1/auth/me").await.json().await.unwrap();
    assert_eq!(claims["sub"], me["user"]["id"]);
    assert_eq!(claims["tid"], me["tenant"]["id"]);
    assert_eq!(claims["iss"], app.base);
    assert!(claims["sid"].is_string() && claims["jti"].is_string() && claims["aud"].is_string());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        900
    );

    // The JWKS publishes the key named by `kid`, and it verifies the token.
    let jwks: Value = app
        .get(&c, "/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("kid published");
    let decoding =
        jsonwebtoken::DecodingKey::from_ed_components(key["x"].as_str().unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&[claims["aud"].as_str().unwrap()]);
    jsonwebtoken::decode::<Value>(&jwt, &decoding, &validation).expect("verifies with the JWKS");

    let res = app.bearer_get(&jwt, "/api/v1/auth/me").await;
    assert_eq!(res.status(), StatusCode::OK);
    // A JWT cannot mint a fresh JWT.
    let res = app
        .bearer(&jwt, Method::POST, "/api/v1/auth/token", None)
        .await;
    expect_error(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;

    // Tampering, alg: none, and a changed kid all fail.
    let parts: Vec<&str> = jwt.split('.').collect();
    let mut forged = claims.clone();
    forged["sub"] = json!(uuid::Uuid::new_v4());
    let forged_body = URL_SAFE_NO_PAD.encode(forged.to_string());
    for bad in [
        format!("{}.{}.{}", parts[0], forged_body, parts[2]),
        format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
            parts[1]
        ),
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"EdDSA","kid":"other"}"#),
            parts[1],
            parts[2]
        ),
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","kid":"x"}"#),
            parts[1],
            parts[2]
        ),
    ] {
        expect_error(
            app.bearer_get(&bad, "/api/v1/auth/me").await,
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
        )
        .await;
    }

    // Logging out kills the session's JWTs at once.
    let res = app
        .write(&c, Method::POST, "/api/v1/auth/logout", None)
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    expect_error(
        app.bearer_get(&jwt, "/api/v1/auth/me").await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
}

#[tokio::test]
async fn jwts_expire() {
    let app = TestApp::spawn_with(|c| c.jwt.ttl_seconds = 60).await;
    let c = app.user(&unique_email("exp")).await;
    let jwt = app.jwt(&c).await;
    assert_eq!(
        app.bearer_get(&jwt, "/api/v1/auth/me").await.status(),
        StatusCode::OK
    );
    app.clock.advance(chrono::Duration::seconds(61));
    assert_eq!(
        app.bearer_get(&jwt, "/api/v1/auth/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.me_status(&c).await,
        StatusCode::OK,
        "the session itself lives on"
    );
}

#[tokio::test]
async fn pat_jwts_carry_no_session_and_the_signing_key_survives_restarts() {
    let app = TestApp::spawn().await;
    let c = app.user(&unique_email("patjwt")).await;
    let created = app
        .create_pat(&c, json!({"name": "w", "scopes": ["write"]}))
        .await;
    let jwt = app.exchange(created["token"].as_str().unwrap()).await;
    assert!(decode_part(&jwt, 1).get("sid").is_none());
    assert_eq!(
        app.bearer_get(&jwt, "/api/v1/auth/me").await.status(),
        StatusCode::OK
    );

    // A second core on the same database signs with the same key.
    let again = tessera::Tessera::new(
        (*app.core.config).clone(),
        app.core.store.clone(),
        app.clock.clone(),
    )
    .await
    .unwrap();
    assert_eq!(again.keys().jwks(), app.core.keys().jwks());
}
