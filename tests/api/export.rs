//! `GET /api/v1/auth/me/export`: everything Tessera holds about a person,
//! read by its owner and by someone hunting for secrets in it.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn the_export_holds_the_account_and_no_secret() {
    let app = TestApp::spawn().await;
    let email = unique_email("export");
    let c = app.user(&email).await;
    let session_secret = cookie_value(&app.login(&c, &email, PASSWORD).await, "ces_session");
    let pat = app.pat(&c, "deploy bot", &["read"]).await;
    let tenant = app.create_tenant(&c, "Side project").await;
    // A second device.
    let phone = reqwest::Client::builder()
        .cookie_store(true)
        .user_agent("PhoneBrowser/1.0")
        .build()
        .unwrap();
    app.login(&phone, &email, PASSWORD).await;
    // Someone else, whose events must not show.
    app.user(&unique_email("stranger")).await;

    let res = app.get(&c, "/api/v1/auth/me/export").await;
    let raw = res.text().await.unwrap();
    let export: Value = serde_json::from_str(&raw).unwrap();
    let me = export["user"]["id"].as_str().unwrap().to_owned();
    assert_eq!(export["user"]["email"], email);
    assert_eq!(export["user"]["email_verified"], true);
    assert!(export["exported_at"].is_string());

    let tenants = export["tenants"].as_array().unwrap();
    assert_eq!(tenants.len(), 2, "{tenants:?}");
    assert!(tenants
        .iter()
        .any(|t| t["id"] == tenant.as_str() && t["role"] == "owner"));

    let sessions = export["sessions"].as_array().unwrap();
    assert!(sessions.len() >= 2, "{sessions:?}");
    assert!(sessions
        .iter()
        .any(|s| s["user_agent"] == "PhoneBrowser/1.0" && s["ip"] == "127.0.0.1"));
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);

    let tokens = export["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0]["name"], "deploy bot");
    assert_eq!(tokens[0]["scopes"], json!(["read"]));
    assert!(tokens[0].get("token").is_none());

    assert_eq!(export["passkeys"], json!([]));
    assert_eq!(export["linked_accounts"], json!([]));
    assert_eq!(export["two_factor"]["enabled"], false);
    assert_eq!(export["consents"], json!([]));

    let events = export["audit_events"].as_array().unwrap();
    let actions: Vec<&str> = events.iter().filter_map(|e| e["action"].as_str()).collect();
    for expected in ["signup", "login.success", "token.create", "tenant.create"] {
        assert!(actions.contains(&expected), "{expected} in {actions:?}");
    }
    assert!(events
        .iter()
        .all(|e| e["actor_id"] == me.as_str() || e["target_id"] == me.as_str()));

    // No secret of any kind.
    assert!(!raw.contains(&pat), "the PAT secret leaked");
    assert!(!raw.contains(&pat["tsr_pat_".len()..]));
    assert!(!raw.contains(&session_secret), "a session token leaked");
    assert!(!raw.contains("$argon2"), "a password hash leaked");
    assert!(!raw.contains(PASSWORD));

    // The export itself is on record, in the next one.
    let again = body(app.get(&c, "/api/v1/auth/me/export").await, StatusCode::OK).await;
    assert!(again["audit_events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "account.export"));
}

#[tokio::test]
async fn only_the_signed_in_session_may_export() {
    let app = TestApp::spawn().await;
    let c = app.user(&unique_email("export-auth")).await;
    let pat = app.pat(&c, "reader", &["read", "write"]).await;
    let jwt = app.jwt(&c).await;
    for token in [&pat, &jwt] {
        let res = app.bearer_get(token, "/api/v1/auth/me/export").await;
        expect_error(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    }
    let res = app.get(&new_client(), "/api/v1/auth/me/export").await;
    expect_error(res, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    assert_eq!(
        app.get(&c, "/api/v1/auth/me/export").await.status(),
        StatusCode::OK
    );
}
