//! Scope (issue 17): a tenant-bound credential stays in its tenant, leaving
//! a tenant takes every credential out of it, and everything an account
//! creates has a budget. Probed as a holder of a low-privilege credential.

use futures::future::join_all;
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

/// A verified user with a second tenant; returns (client, own tenant id,
/// second tenant id).
async fn user_with_two_tenants(app: &TestApp, email: &str) -> (Client, String, String) {
    let c = app.user(email).await;
    let own = me(app, &c).await["tenants"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = app.create_tenant(&c, "Second").await;
    (c, own, second)
}

async fn pat(app: &TestApp, c: &Client, tenant: Option<&str>, scopes: &[&str]) -> (String, String) {
    let mut payload = json!({"name": "bot", "scopes": scopes});
    if let Some(t) = tenant {
        payload["tenant_id"] = json!(t);
    }
    let made = app.create_pat(c, payload).await;
    (
        made["token"].as_str().unwrap().to_owned(),
        made["id"].as_str().unwrap().to_owned(),
    )
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_tenant_bound_token_and_its_jwt_see_and_touch_only_their_tenant() {
    let app = TestApp::spawn().await;
    let email = unique_email("bound");
    let (c, own, second) = user_with_two_tenants(&app, &email).await;
    let (bound, bound_id) = pat(&app, &c, Some(&own), &["read", "write"]).await;
    let (_, other_id) = pat(&app, &c, Some(&second), &["read"]).await;
    let (_, unbound_id) = pat(&app, &c, None, &["read"]).await;

    // Exchanged for a JWT: the JWT is bound the same way.
    let jwt = app.exchange(&bound).await;

    for credential in [&bound, &jwt] {
        // `me` on every surface lists the bound tenant only.
        let me_v1 = body(
            app.bearer(credential, Method::GET, "/api/v1/auth/me", None)
                .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(ids(&me_v1["tenants"]), vec![own.clone()], "{me_v1}");
        assert_eq!(me_v1["tenant"]["id"], own.as_str());
        let me_legacy = body(
            app.bearer(credential, Method::GET, "/api/auth/me", None)
                .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(ids(&me_legacy["tenants"]), vec![own.clone()], "{me_legacy}");
        assert_eq!(me_legacy["invites"], json!([]));
        let listed = body(
            app.bearer(credential, Method::GET, "/api/v1/tenants", None)
                .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(ids(&listed), vec![own.clone()]);
        // The other tenant does not exist for it.
        let res = app
            .bearer(
                credential,
                Method::GET,
                &format!("/api/v1/tenants/{second}"),
                None,
            )
            .await;
        expect_error(res, StatusCode::NOT_FOUND, "NOT_FOUND").await;
        // Tokens: only those of its tenant, listed or revoked.
        let tokens = body(
            app.bearer(credential, Method::GET, "/api/v1/tokens", None)
                .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(ids(&tokens), vec![bound_id.clone()], "{tokens}");
        for foreign in [&other_id, &unbound_id] {
            let res = app
                .bearer(
                    credential,
                    Method::DELETE,
                    &format!("/api/v1/tokens/{foreign}"),
                    None,
                )
                .await;
            expect_error(res, StatusCode::NOT_FOUND, "NOT_FOUND").await;
        }
        // User-wide actions need a session or an unbound token.
        for (method, path, payload) in [
            (Method::DELETE, "/api/v1/sessions", None),
            (Method::GET, "/api/v1/sessions", None),
            (
                Method::PATCH,
                "/api/v1/auth/me",
                Some(json!({"name": "Mallory"})),
            ),
            (
                Method::POST,
                "/api/v1/tenants",
                Some(json!({"name": "Sneaky"})),
            ),
            (Method::GET, "/api/v1/invites", None),
            (
                Method::POST,
                "/api/v1/invites/accept",
                Some(json!({"invite_token": "x".repeat(43)})),
            ),
            (
                Method::POST,
                "/api/v1/auth/change-password",
                Some(json!({"current_password": PASSWORD, "new_password": "another-secret-7"})),
            ),
        ] {
            let res = app.bearer(credential, method.clone(), path, payload).await;
            assert_eq!(res.status(), StatusCode::FORBIDDEN, "{method} {path}");
        }
    }
    // The other tokens were not touched.
    let tokens = body(app.get(&c, "/api/v1/tokens").await, StatusCode::OK).await;
    assert_eq!(ids(&tokens).len(), 3);
    assert_eq!(me(&app, &c).await["user"]["name"], Value::Null);
}

#[tokio::test]
async fn the_admin_api_refuses_a_tenant_bound_token_of_an_admin() {
    let app = TestApp::spawn().await;
    let email = unique_email("admin-bound");
    app.core
        .create_user_cli(&email, PASSWORD, true)
        .await
        .unwrap();
    let c = new_client();
    assert_eq!(
        app.login(&c, &email, PASSWORD).await.status(),
        StatusCode::OK
    );
    let own = me(&app, &c).await["tenants"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (bound, _) = pat(&app, &c, Some(&own), &["read", "write"]).await;
    let (unbound, _) = pat(&app, &c, None, &["read"]).await;
    let res = app
        .bearer(&unbound, Method::GET, "/api/v1/admin/users", None)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app
        .bearer(&bound, Method::GET, "/api/v1/admin/users", None)
        .await;
    expect_error(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let jwt = app.exchange(&bound).await;
    let res = app
        .bearer(&jwt, Method::GET, "/api/v1/admin/users", None)
        .await;
    expect_error(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;
}

/// An owner with a tenant and a verified admin who joined it by
/// invitation: (owner, tenant id, admin).
async fn tenant_with_admin(app: &TestApp) -> (Client, String, Client) {
    let owner = app.user(&unique_email("owner")).await;
    let tenant = me(app, &owner).await["tenants"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin_email = unique_email("admin");
    let token = app.invite(&owner, &tenant, &admin_email, "admin").await;
    let admin = app.user(&admin_email).await;
    let res = app.accept_invite(&admin, &token).await;
    assert_eq!(res.status(), StatusCode::OK);
    (owner, tenant, admin)
}

#[tokio::test]
async fn a_removed_member_keeps_no_way_into_the_tenant() {
    let app = TestApp::spawn().await;
    let (owner, tenant, member) = tenant_with_admin(&app).await;
    let res = app
        .write(
            &member,
            Method::POST,
            "/api/v1/auth/switch-tenant",
            Some(json!({"tenant_id": tenant})),
        )
        .await;
    assert_eq!(
        body(res, StatusCode::OK).await["tenant"]["id"],
        tenant.as_str()
    );
    let (bound, _) = pat(&app, &member, Some(&tenant), &["read"]).await;
    let member_id = user_id(&app, &member).await;
    // The member (an admin) invites someone before being removed.
    let guest = unique_email("guest");
    let guest_invite = app.invite(&member, &tenant, &guest, "member").await;

    let res = app
        .write(
            &owner,
            Method::DELETE,
            &format!("/api/v1/tenants/{tenant}/members/{member_id}"),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    // The session left the tenant; `me` no longer shows it.
    let now = me(&app, &member).await;
    assert_ne!(now["tenant"]["id"], tenant.as_str(), "{now}");
    assert!(!ids(&now["tenants"]).contains(&tenant), "{now}");
    // No JWT names it.
    let jwt = app.jwt(&member).await;
    let claims = jwt_claims(&jwt);
    assert_ne!(claims["tid"], tenant.as_str(), "{claims}");
    // The token bound to it is dead.
    assert_eq!(
        app.bearer_get(&bound, "/api/v1/auth/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
    // What the member sent as an admin stops working.
    let res = app
        .post(
            &new_client(),
            "/api/v1/auth/signup",
            json!({"email": "", "password": PASSWORD, "invite_token": guest_invite}),
        )
        .await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
}

#[tokio::test]
async fn demoting_an_inviter_below_admin_revokes_their_pending_invitations() {
    let app = TestApp::spawn().await;
    let (owner, tenant, admin) = tenant_with_admin(&app).await;
    let guest = unique_email("guest");
    let res = app.send_invite(&admin, &tenant, &guest, "member").await;
    let invite = body(res, StatusCode::CREATED).await;
    let guest_token = app.mail.wait_for(&guest, 1).await.token();
    let admin_id = user_id(&app, &admin).await;
    let res = app
        .write(
            &owner,
            Method::PATCH,
            &format!("/api/v1/tenants/{tenant}/members/{admin_id}"),
            Some(json!({"role": "member"})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let pending = body(
        app.get(&owner, &format!("/api/v1/tenants/{tenant}/invites"))
            .await,
        StatusCode::OK,
    )
    .await;
    let still = pending
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == invite["id"]);
    assert!(still.is_none_or(|i| i["status"] != "pending"), "{pending}");
    let res = app
        .post(
            &new_client(),
            "/api/v1/auth/signup",
            json!({"email": "", "password": PASSWORD, "invite_token": guest_token}),
        )
        .await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
}

#[tokio::test]
async fn invitations_are_budgeted_per_inviter_and_mail_no_links() {
    let app = TestApp::spawn_with(|c| c.security.invites_per_hour = 3).await;
    let c = app.user(&unique_email("relay")).await;
    let tenant = app
        .create_tenant(&c, "Cheap pills at https://evil.test/x or evil.test now")
        .await;
    let targets: Vec<String> = (0..10).map(|n| unique_email(&format!("t{n}"))).collect();
    let csrf = app.csrf(&c).await;
    let statuses = join_all(targets.iter().map(|t| {
        c.post(app.url(&format!("/api/v1/tenants/{tenant}/invites")))
            .header("x-csrf-token", &csrf)
            .json(&json!({"email": t, "role": "member"}))
            .send()
    }))
    .await
    .into_iter()
    .map(|r| r.unwrap().status())
    .collect::<Vec<_>>();
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 3, "{statuses:?}");
    assert!(statuses
        .iter()
        .all(|s| *s == StatusCode::CREATED || *s == StatusCode::TOO_MANY_REQUESTS));
    let res = app
        .send_invite(&c, &tenant, &unique_email("late"), "member")
        .await;
    let err = expect_error(res, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
    assert!(err["message"].as_str().unwrap().contains('3'), "{err}");

    // The mails that went out carry no link in the names.
    let mut seen = 0;
    for t in &targets {
        for mail in app.mail.to(t) {
            seen += 1;
            let subject = mail.subject();
            assert!(
                !subject.contains("evil") && !subject.contains("Bcc"),
                "{subject}"
            );
            assert!(subject.chars().count() < 120, "{subject}");
            assert!(!mail.text().contains("evil.test"), "{}", mail.text());
        }
    }
    // Mail delivery is asynchronous; at least one arrived to look at.
    if seen == 0 {
        let first = statuses
            .iter()
            .position(|s| *s == StatusCode::CREATED)
            .unwrap();
        let mail = app.mail.wait_for(&targets[first], 1).await;
        assert!(!mail.subject().contains("evil"));
    }
}

#[tokio::test]
async fn tenants_tokens_and_passkeys_have_budgets() {
    let app = TestApp::spawn_with(|c| {
        c.security.tenants_per_hour = 3;
        c.security.max_tenants_per_user = 4;
        c.security.max_tokens_per_user = 2;
    })
    .await;
    let c = app.user(&unique_email("hoarder")).await;
    // The sign-up's own tenant counts: two more this hour, then refused.
    for n in 0..2 {
        let res = app
            .write(
                &c,
                Method::POST,
                "/api/v1/tenants",
                Some(json!({"name": format!("T{n}")})),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    let res = app
        .write(
            &c,
            Method::POST,
            "/api/v1/tenants",
            Some(json!({"name": "T2"})),
        )
        .await;
    let err = expect_error(res, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
    assert!(err["message"].as_str().unwrap().contains('3'), "{err}");
    // An hour later one more fits, then the cap on tenants owned holds.
    app.clock.advance(chrono::Duration::minutes(61));
    let res = app
        .write(
            &c,
            Method::POST,
            "/api/v1/tenants",
            Some(json!({"name": "T3"})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = app
        .write(
            &c,
            Method::POST,
            "/api/v1/tenants",
            Some(json!({"name": "T4"})),
        )
        .await;
    expect_error(res, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;

    // Tokens: two live at most, in a burst too.
    let csrf = app.csrf(&c).await;
    let statuses = join_all((0..6).map(|n| {
        c.post(app.url("/api/v1/tokens"))
            .header("x-csrf-token", &csrf)
            .json(&json!({"name": format!("t{n}"), "scopes": ["read"]}))
            .send()
    }))
    .await
    .into_iter()
    .map(|r| r.unwrap().status())
    .collect::<Vec<_>>();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        2,
        "{statuses:?}"
    );
    // Revoking one frees its place.
    let tokens = body(app.get(&c, "/api/v1/tokens").await, StatusCode::OK).await;
    let id = tokens[0]["id"].as_str().unwrap();
    let res = app
        .write(&c, Method::DELETE, &format!("/api/v1/tokens/{id}"), None)
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let (_, _) = pat(&app, &c, None, &["read"]).await;
}

// 7. Hosted forms check Origin, signed in or not.

#[tokio::test]
async fn signed_in_forms_refuse_a_foreign_or_null_origin() {
    let app = TestApp::spawn().await;
    let c = app.user(&unique_email("forms")).await;
    let (_, page) = app.page(&c, "/ui/account").await;
    let csrf = html::csrf_token(&page);
    for origin in ["https://evil.test", "null"] {
        for (path, form) in [
            ("/ui/account/profile", vec![("name", "Mallory")]),
            ("/ui/account/tokens", vec![("name", "x"), ("read", "on")]),
            (
                "/ui/account/password",
                vec![
                    ("current_password", PASSWORD),
                    ("new_password", "another-secret-7"),
                ],
            ),
        ] {
            let mut fields = vec![("csrf_token", csrf.as_str())];
            fields.extend(form);
            let res = c
                .post(app.url(path))
                .header("origin", origin)
                .form(&fields)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::FORBIDDEN, "{origin} {path}");
        }
    }
    // Nothing happened.
    assert_eq!(me(&app, &c).await["user"]["name"], Value::Null);
    // The same form from the right origin works.
    let res = c
        .post(app.url("/ui/account/profile"))
        .header("origin", app.base.as_str())
        .form(&[("csrf_token", csrf.as_str()), ("name", "Ada")])
        .send()
        .await
        .unwrap();
    assert!(
        res.status().is_success() || res.status().is_redirection(),
        "{}",
        res.status()
    );
    assert_eq!(me(&app, &c).await["user"]["name"], "Ada");
}

#[tokio::test]
async fn an_anonymous_form_token_must_be_one_tessera_signed() {
    let app = TestApp::spawn().await;
    let email = unique_email("planted");
    app.user(&email).await;
    // An attacker who can set cookies for the domain plants its own pair.
    let planted = "A".repeat(43);
    let res = new_client()
        .post(app.url("/ui/sign-in"))
        .header("cookie", format!("tessera_form={planted}"))
        .form(&[
            ("form_token", planted.as_str()),
            ("email", email.as_str()),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // A real browser's pair works.
    let browser = new_client();
    let token = app.form_token(&browser, "/ui/sign-in").await;
    assert!(token.contains('.'), "a signed value: {token}");
    let res = browser
        .post(app.url("/ui/sign-in"))
        .form(&[
            ("form_token", token.as_str()),
            ("email", email.as_str()),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
}
