//! `tessera users import`: legacy hashes log in and are re-hashed.

use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::*;

#[tokio::test]
async fn imported_users_log_in_with_old_passwords_and_are_rehashed() {
    let app = TestApp::spawn().await;
    let sha = hex::encode(Sha256::digest(b"SecurePassword123!"));
    let bcrypted = bcrypt::hash("old-bcrypt-pass", 4).unwrap();
    let (a, b, c) = (
        unique_email("sha"),
        unique_email("bcrypt"),
        unique_email("nohash"),
    );
    let lines = [
        json!({"email": a, "password_hash": sha, "first_name": "John", "last_name": "Doe",
               "tenants": [{"name": "Acme Imported", "role": "owner"}]})
        .to_string(),
        json!({"email": b, "password_hash": bcrypted, "email_verified": true,
               "tenants": [{"name": "Acme Imported", "role": "member"}]})
        .to_string(),
        json!({"email": c}).to_string(),
        json!({"email": "bad@example.test", "password_hash": "plaintext!"}).to_string(),
        "{not json".to_string(),
        json!({"email": "x@example.test", "tenants": [{"name": "T", "role": "root"}]}).to_string(),
    ];
    let text = lines.join("\n");
    let report = app.core.import_users(&text).await;
    assert_eq!(report.imported, 3);
    assert_eq!(report.skipped, 0);
    assert_eq!(
        report.bad.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        vec![4, 5, 6]
    );
    // Re-running is safe.
    let again = app.core.import_users(&text).await;
    assert_eq!((again.imported, again.skipped), (0, 3));

    let res = app.login(&new_client(), &a, "SecurePassword123!").await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["tenants"][0]["name"], "Acme Imported");
    let res = app.login(&new_client(), &b, "old-bcrypt-pass").await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["tenants"][0]["role"], "member",
        "joined the same tenant"
    );
    assert_eq!(body["user"]["email_verified"], true);
    assert_eq!(
        app.login(&new_client(), &a, "wrong").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login(&new_client(), &c, "anything-at-all")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );

    // Both were re-hashed to argon2id on that first login.
    for email in [&a, &b] {
        let user = app
            .core
            .store
            .find_user_by_email(email)
            .await
            .unwrap()
            .unwrap();
        assert!(user.password_hash.unwrap().starts_with("$argon2id$"));
    }
    assert_eq!(
        app.login(&new_client(), &a, "SecurePassword123!")
            .await
            .status(),
        StatusCode::OK
    );
}
