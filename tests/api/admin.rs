use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

const ADMIN_PASSWORD: &str = "admin-password-123";

/// A signed-in global administrator and their user id.
async fn admin(app: &TestApp) -> (Client, String) {
    let email = unique_email("root");
    let user = app
        .core
        .create_user_cli(&email, ADMIN_PASSWORD, true)
        .await
        .unwrap();
    let c = new_client();
    let login = body(app.login(&c, &email, ADMIN_PASSWORD).await, StatusCode::OK).await;
    assert_eq!(login["user"]["id"], user.id.to_string());
    (c, user.id.to_string())
}

async fn patch_user(app: &TestApp, c: &Client, id: &str, change: Value) -> Response {
    app.write(
        c,
        Method::PATCH,
        &format!("/api/v1/admin/users/{id}"),
        Some(change),
    )
    .await
}

async fn get_user(app: &TestApp, c: &Client, id: &str) -> Value {
    body(
        app.get(c, &format!("/api/v1/admin/users/{id}")).await,
        StatusCode::OK,
    )
    .await
}

async fn list_users(app: &TestApp, c: &Client, query: &str) -> Value {
    body(
        app.get(c, &format!("/api/v1/admin/users?{query}")).await,
        StatusCode::OK,
    )
    .await
}

fn ids(page: &Value) -> Vec<String> {
    page["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn non_admins_are_refused_on_every_admin_route() {
    let app = TestApp::spawn().await;
    let (root, _root_id) = admin(&app).await;
    let bob = app.user(&unique_email("plain")).await;
    let bob_id = user_id(&app, &bob).await;
    let user_path = format!("/api/v1/admin/users/{bob_id}");

    for path in [
        "/api/v1/admin/users".to_owned(),
        "/api/v1/admin/users?q=a&limit=10&offset=0".to_owned(),
        user_path.clone(),
        "/api/v1/admin/audit".to_owned(),
        "/api/v1/admin/audit?action=login.failure&limit=50".to_owned(),
    ] {
        expect_error(
            app.get(&bob, &path).await,
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
        )
        .await;
    }
    let res = patch_user(&app, &bob, &bob_id, json!({"is_admin": true})).await;
    expect_error(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let res = patch_user(&app, &bob, &bob_id, json!({"plan": "pro"})).await;
    expect_error(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let res = app.write(&bob, Method::DELETE, &user_path, None).await;
    expect_error(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let res = app
        .write(&bob, Method::POST, "/api/v1/admin/plans/validate", None)
        .await;
    expect_error(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    // Nothing changed.
    let seen = get_user(&app, &root, &bob_id).await;
    assert_eq!(seen["is_admin"], false);
    assert_eq!(seen["plan"], "free");
    assert_eq!(app.me_status(&bob).await, StatusCode::OK);

    // Anonymous callers are not signed in at all.
    expect_error(
        app.get(&new_client(), "/api/v1/admin/users").await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;

    // Once made an administrator, bob's next request is allowed.
    let res = patch_user(&app, &root, &bob_id, json!({"is_admin": true})).await;
    assert_eq!(body(res, StatusCode::OK).await["is_admin"], true);
    let page = list_users(&app, &bob, "limit=10").await;
    assert!(page["total"].as_i64().unwrap() >= 2, "{page}");
}

#[tokio::test]
async fn users_are_searched_and_paged() {
    let app = TestApp::spawn().await;
    let (root, root_id) = admin(&app).await;
    let tag = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
    let mut expected = Vec::new();
    for i in 0..3 {
        let email = format!("srch{i}-{tag}@example.test");
        let c = app.user(&email).await;
        expected.push(user_id(&app, &c).await);
    }
    app.user(&unique_email("unrelated")).await;

    // The search ignores case.
    let upper = tag.to_uppercase();
    let page = list_users(&app, &root, &format!("q={upper}&limit=10&offset=0")).await;
    assert_eq!(page["total"], 3, "{page}");
    assert_eq!(page["limit"], 10);
    assert_eq!(page["offset"], 0);
    let mut found = ids(&page);
    found.sort();
    let mut want = expected.clone();
    want.sort();
    assert_eq!(found, want);
    for u in page["users"].as_array().unwrap() {
        assert!(u["email"].as_str().unwrap().contains(&tag), "{u}");
        assert_eq!(u["is_admin"], false);
        assert_eq!(u["disabled"], false);
        assert!(u["created_at"].is_string() && u["plan"].is_string(), "{u}");
        assert!(u.get("password_hash").is_none(), "{u}");
    }

    // Pages do not overlap and together cover the matches.
    let first = list_users(&app, &root, &format!("q={tag}&limit=2&offset=0")).await;
    let second = list_users(&app, &root, &format!("q={tag}&limit=2&offset=2")).await;
    assert_eq!(first["total"], 3);
    assert_eq!(second["total"], 3);
    assert_eq!(second["offset"], 2);
    let (a, b) = (ids(&first), ids(&second));
    assert_eq!(a.len(), 2);
    assert_eq!(b.len(), 1);
    assert!(!a.contains(&b[0]));
    let mut all: Vec<String> = a.into_iter().chain(b).collect();
    all.sort();
    assert_eq!(all, want);

    // Without a query everybody is counted: three, one unrelated, the admin.
    let everyone = list_users(&app, &root, "limit=100").await;
    assert_eq!(everyone["total"], 5, "{everyone}");
    let admin_row = everyone["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == root_id.as_str())
        .expect("the admin is listed");
    assert_eq!(admin_row["is_admin"], true);

    for bad in ["limit=0", "limit=101"] {
        let res = app.get(&root, &format!("/api/v1/admin/users?{bad}")).await;
        let err = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
        assert!(err["fields"]["limit"].is_string(), "{err}");
    }

    // One user, with their tenants.
    let one = get_user(&app, &root, &expected[0]).await;
    assert_eq!(one["id"], expected[0]);
    assert_eq!(one["email"], format!("srch0-{tag}@example.test"));
    assert_eq!(one["disabled"], false);
    let tenants = one["tenants"].as_array().unwrap();
    assert_eq!(tenants.len(), 1, "{one}");
    assert_eq!(tenants[0]["role"], "owner");
    for path in [
        format!("/api/v1/admin/users/{}", uuid::Uuid::new_v4()),
        "/api/v1/admin/users/not-a-uuid".to_owned(),
    ] {
        expect_error(
            app.get(&root, &path).await,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
        )
        .await;
    }
}

#[tokio::test]
async fn disabling_kills_sessions_pats_and_jwts_at_once() {
    let app = TestApp::spawn().await;
    let (root, root_id) = admin(&app).await;
    let email = unique_email("disable");
    let bob = app.user(&email).await;
    let bob_id = user_id(&app, &bob).await;

    let pat = app.pat(&bob, "ci", &["read"]).await;
    let jwt = app.jwt(&bob).await;
    assert_eq!(app.me_status(&bob).await, StatusCode::OK);
    assert_eq!(
        app.bearer_get(&pat, "/api/v1/auth/me").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.bearer_get(&jwt, "/api/v1/auth/me").await.status(),
        StatusCode::OK
    );

    let res = patch_user(&app, &root, &bob_id, json!({"disabled": true})).await;
    let updated = body(res, StatusCode::OK).await;
    assert_eq!(updated["id"], bob_id);
    assert_eq!(updated["disabled"], true);
    assert_eq!(get_user(&app, &root, &bob_id).await["disabled"], true);

    expect_error(
        app.get(&bob, "/api/v1/auth/me").await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
    for token in [&pat, &jwt] {
        expect_error(
            app.bearer_get(token, "/api/v1/auth/me").await,
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
        )
        .await;
    }
    let res = app.login(&new_client(), &email, PASSWORD).await;
    assert_ne!(
        res.status(),
        StatusCode::OK,
        "a disabled user cannot sign in"
    );

    // Re-enabled, bob signs in again.
    let res = patch_user(&app, &root, &bob_id, json!({"disabled": false})).await;
    assert_eq!(body(res, StatusCode::OK).await["disabled"], false);
    let again = new_client();
    assert_eq!(
        app.login(&again, &email, PASSWORD).await.status(),
        StatusCode::OK
    );
    assert_eq!(app.me_status(&again).await, StatusCode::OK);

    // An administrator cannot disable themselves.
    let res = patch_user(&app, &root, &root_id, json!({"disabled": true})).await;
    expect_error(res, StatusCode::CONFLICT, "CONFLICT").await;
    assert_eq!(app.me_status(&root).await, StatusCode::OK);
    assert_eq!(get_user(&app, &root, &root_id).await["disabled"], false);
}

#[tokio::test]
async fn unlock_clears_a_lockout() {
    let app = TestApp::spawn().await;
    let (root, _) = admin(&app).await;
    let email = unique_email("locked");
    let bob = app.user(&email).await;
    let bob_id = user_id(&app, &bob).await;
    for _ in 0..5 {
        let res = app.login(&new_client(), &email, "wrong-password-1").await;
        expect_error(res, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    }
    let res = app.login(&new_client(), &email, PASSWORD).await;
    expect_error(res, StatusCode::TOO_MANY_REQUESTS, "ACCOUNT_LOCKED").await;

    let res = patch_user(&app, &root, &bob_id, json!({"unlock": true})).await;
    assert_eq!(body(res, StatusCode::OK).await["id"], bob_id);
    let c = new_client();
    assert_eq!(
        app.login(&c, &email, PASSWORD).await.status(),
        StatusCode::OK
    );
    assert_eq!(app.me_status(&c).await, StatusCode::OK);
}

#[tokio::test]
async fn deleting_users_ends_their_sessions_but_not_orphaned_tenants() {
    let app = TestApp::spawn().await;
    let (root, root_id) = admin(&app).await;
    let email = unique_email("doomed");
    let bob = app.user(&email).await;
    let bob_id = user_id(&app, &bob).await;

    let res = app
        .write(
            &root,
            Method::DELETE,
            &format!("/api/v1/admin/users/{bob_id}"),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    expect_error(
        app.get(&bob, "/api/v1/auth/me").await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
    expect_error(
        app.login(&new_client(), &email, PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
    expect_error(
        app.get(&root, &format!("/api/v1/admin/users/{bob_id}"))
            .await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    let res = app
        .write(
            &root,
            Method::DELETE,
            &format!("/api/v1/admin/users/{bob_id}"),
            None,
        )
        .await;
    expect_error(res, StatusCode::NOT_FOUND, "NOT_FOUND").await;

    // Carol is the sole owner of a tenant dave belongs to.
    let carol = app.user(&unique_email("carol")).await;
    let carol_id = user_id(&app, &carol).await;
    let tid = app.current_tenant_id(&carol).await;
    let dave_email = unique_email("dave");
    let dave = app.user(&dave_email).await;
    let token = app.invite(&carol, &tid, &dave_email, "member").await;
    body(app.accept_invite(&dave, &token).await, StatusCode::OK).await;

    let res = app
        .write(
            &root,
            Method::DELETE,
            &format!("/api/v1/admin/users/{carol_id}"),
            None,
        )
        .await;
    expect_error(res, StatusCode::CONFLICT, "CONFLICT").await;
    assert_eq!(app.me_status(&carol).await, StatusCode::OK);
    assert_eq!(
        app.get(&dave, &format!("/api/v1/tenants/{tid}"))
            .await
            .status(),
        StatusCode::OK
    );

    // Nor can an administrator delete themselves.
    let res = app
        .write(
            &root,
            Method::DELETE,
            &format!("/api/v1/admin/users/{root_id}"),
            None,
        )
        .await;
    expect_error(res, StatusCode::CONFLICT, "CONFLICT").await;
    assert_eq!(app.me_status(&root).await, StatusCode::OK);
}

#[tokio::test]
async fn expired_plans_are_reset_by_the_admin_validator() {
    let app = TestApp::spawn().await;
    let (root, _) = admin(&app).await;
    let bob = app.user(&unique_email("payer")).await;
    let bob_id = user_id(&app, &bob).await;
    let carol = app.user(&unique_email("steady")).await;
    let carol_id = user_id(&app, &carol).await;

    let expires = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let res = patch_user(
        &app,
        &root,
        &bob_id,
        json!({"plan": "pro", "plan_expires_at": expires}),
    )
    .await;
    let updated = body(res, StatusCode::OK).await;
    assert_eq!(updated["plan"], "pro");
    assert!(updated["plan_expires_at"].is_string(), "{updated}");
    let me = body(app.get(&bob, "/api/v1/auth/me").await, StatusCode::OK).await;
    assert_eq!(me["user"]["plan"], "pro");

    // Before expiry nothing needs correcting.
    let res = app
        .write(&root, Method::POST, "/api/v1/admin/plans/validate", None)
        .await;
    let run = body(res, StatusCode::OK).await;
    assert!(
        !run["updated_ids"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i.as_str() == Some(bob_id.as_str())),
        "{run}"
    );
    assert_eq!(app.me_status(&bob).await, StatusCode::OK);

    app.clock.advance(chrono::Duration::hours(2));
    let res = app
        .write(&root, Method::POST, "/api/v1/admin/plans/validate", None)
        .await;
    let run = body(res, StatusCode::OK).await;
    let updated_ids = run["updated_ids"].as_array().unwrap();
    assert!(
        updated_ids
            .iter()
            .any(|i| i.as_str() == Some(bob_id.as_str())),
        "{run}"
    );
    assert!(
        !updated_ids
            .iter()
            .any(|i| i.as_str() == Some(carol_id.as_str())),
        "{run}"
    );
    assert_eq!(run["count"], updated_ids.len());

    let seen = get_user(&app, &root, &bob_id).await;
    assert_eq!(seen["plan"], "free");
    expect_error(
        app.get(&bob, "/api/v1/auth/me").await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
    // Users on a plan without expiry, and the admin, keep their sessions.
    assert_eq!(app.me_status(&carol).await, StatusCode::OK);
    assert_eq!(app.me_status(&root).await, StatusCode::OK);
}

#[tokio::test]
async fn legacy_validate_endpoint_answers_the_allowlist() {
    // Loopback is allowed here only because the allowlist says so.
    let app = TestApp::spawn_with(|c| c.admin_allow_from = vec!["127.0.0.1".into()]).await;
    let (root, _) = admin(&app).await;
    let bob = app.user(&unique_email("legacy")).await;
    let bob_id = user_id(&app, &bob).await;
    let expires = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let res = patch_user(
        &app,
        &root,
        &bob_id,
        json!({"plan": "pro", "plan_expires_at": expires}),
    )
    .await;
    assert_eq!(body(res, StatusCode::OK).await["plan"], "pro");
    app.clock.advance(chrono::Duration::hours(2));

    // A caller relayed by a proxy that is not trusted is not this machine:
    // refused, and nothing is corrected.
    let res = new_client()
        .get(app.url("/api/auth/validate"))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    assert_eq!(get_user(&app, &root, &bob_id).await["plan"], "pro");

    let res = new_client()
        .get(app.url("/api/auth/validate"))
        .send()
        .await
        .unwrap();
    let run = body(res, StatusCode::OK).await;
    assert_eq!(run["success"], true);
    assert_eq!(run["message"], "1 users corrected and sessions reset.");
    assert_eq!(run["updatedIds"], json!([bob_id]));

    assert_eq!(get_user(&app, &root, &bob_id).await["plan"], "free");
    assert_eq!(app.me_status(&bob).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn failed_logins_are_audited() {
    let app = TestApp::spawn().await;
    let (root, _) = admin(&app).await;
    let email = unique_email("audited");
    let bob = app.user(&email).await;
    let bob_id = user_id(&app, &bob).await;
    let res = app.login(&new_client(), &email, "wrong-password-1").await;
    expect_error(res, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;

    let page = body(
        app.get(&root, "/api/v1/admin/audit?action=login.failure&limit=50")
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(page["limit"], 50);
    assert_eq!(page["offset"], 0);
    let events = page["events"].as_array().unwrap();
    assert!(!events.is_empty(), "{page}");
    for e in events {
        assert_eq!(e["action"], "login.failure", "{e}");
        assert!(e["at"].is_string(), "{e}");
    }
    let event = events
        .iter()
        .find(|e| e["target_id"] == bob_id.as_str())
        .unwrap_or_else(|| panic!("no login.failure for bob in {page}"));
    assert!(
        event.get("actor_id").is_some() && event.get("detail").is_some(),
        "{event}"
    );
    assert!(
        event.get("ip").is_some() && event.get("tenant_id").is_some(),
        "{event}"
    );
    assert!(
        !event.to_string().contains("wrong-password-1"),
        "passwords are never recorded: {event}"
    );
}

#[tokio::test]
async fn password_and_token_events_are_audited() {
    let app = TestApp::spawn().await;
    let admin_email = unique_email("auditor");
    app.core
        .create_user_cli(&admin_email, "admin-password-123", true)
        .await
        .unwrap();
    let admin = new_client();
    assert_eq!(
        app.login(&admin, &admin_email, "admin-password-123")
            .await
            .status(),
        StatusCode::OK
    );

    let email = unique_email("actions");
    let c = app.user(&email).await;
    let created = app
        .create_pat(&c, json!({"name": "t", "scopes": ["read"]}))
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let res = app
        .write(&c, Method::DELETE, &format!("/api/v1/tokens/{id}"), None)
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = app
        .write(
            &c,
            Method::POST,
            "/api/v1/auth/change-password",
            Some(json!({"current_password": PASSWORD, "new_password": "audited-change-1"})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    for action in ["signup", "token.create", "token.revoke", "password.change"] {
        let res = admin
            .get(app.url(&format!("/api/v1/admin/audit?action={action}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        assert!(
            body["events"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["actor_id"].is_string() && e["ip"].is_string()),
            "{action}: {body}"
        );
    }
}

#[tokio::test]
async fn validate_from_elsewhere_needs_the_cron_secret() {
    let app =
        TestApp::spawn_with(|c| c.cron_secret = Some("cron-secret-123".to_owned().into())).await;
    let call = |bearer: Option<&'static str>| {
        let mut req = Client::new()
            .get(app.url("/api/auth/validate"))
            .header("x-forwarded-for", "203.0.113.9");
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        req.send()
    };
    expect_error(
        call(None).await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
    expect_error(
        call(Some("wrong")).await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
    let res = call(Some("cron-secret-123")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["success"], true);
}
