use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

/// Creates a tenant as `c`, checking the answer names it and makes `c`
/// its owner; returns its id.
async fn create_tenant(app: &TestApp, c: &Client, name: &str) -> String {
    let tenant = app.create_tenant_json(c, name).await;
    assert_eq!(tenant["name"], name);
    assert_eq!(tenant["role"], "owner");
    tenant["id"].as_str().unwrap().to_owned()
}

/// A new user who joined `tenant_id` with `role` through an invitation.
async fn join(app: &TestApp, inviter: &Client, tenant_id: &str, role: &str) -> (Client, String) {
    let email = unique_email(role);
    let c = app.user(&email).await;
    let token = app.invite(inviter, tenant_id, &email, role).await;
    let joined = body(app.accept_invite(&c, &token).await, StatusCode::OK).await;
    assert_eq!(joined["tenant"]["id"], tenant_id);
    assert_eq!(joined["tenant"]["role"], role);
    let id = user_id(app, &c).await;
    (c, id)
}

async fn members(app: &TestApp, c: &Client, tenant_id: &str) -> Vec<Value> {
    let res = app
        .get(c, &format!("/api/v1/tenants/{tenant_id}/members"))
        .await;
    body(res, StatusCode::OK).await.as_array().unwrap().clone()
}

fn role_of(members: &[Value], user_id: &str) -> Option<String> {
    members
        .iter()
        .find(|m| m["user_id"] == user_id)
        .map(|m| m["role"].as_str().unwrap().to_owned())
}

async fn tenant_status(app: &TestApp, c: &Client, tenant_id: &str) -> StatusCode {
    app.get(c, &format!("/api/v1/tenants/{tenant_id}"))
        .await
        .status()
}

async fn set_role(
    app: &TestApp,
    c: &Client,
    tenant_id: &str,
    user_id: &str,
    role: &str,
) -> Response {
    app.write(
        c,
        Method::PATCH,
        &format!("/api/v1/tenants/{tenant_id}/members/{user_id}"),
        Some(json!({"role": role})),
    )
    .await
}

async fn remove(app: &TestApp, c: &Client, tenant_id: &str, user_id: &str) -> Response {
    app.write(
        c,
        Method::DELETE,
        &format!("/api/v1/tenants/{tenant_id}/members/{user_id}"),
        None,
    )
    .await
}

#[tokio::test]
async fn tenants_are_created_listed_renamed_and_deleted() {
    let app = TestApp::spawn().await;
    let email = unique_email("crud");
    let alice = new_client();
    let own_id = crud::sign_up_with_an_own_tenant(&app, &alice, &email).await;
    let tid = crud::create(&app, &alice, &own_id).await;
    crud::outsiders_and_unknown_ids_find_nothing(&app, &alice, &tid).await;
    crud::rename(&app, &alice, &tid).await;
    crud::delete(&app, &alice, &tid, &own_id).await;
}

/// The steps of [`tenants_are_created_listed_renamed_and_deleted`], in
/// order.
mod crud {
    use super::*;

    /// Signing up makes one tenant, owned; returns its id.
    pub async fn sign_up_with_an_own_tenant(app: &TestApp, alice: &Client, email: &str) -> String {
        let signup = body(app.signup(alice, email).await, StatusCode::CREATED).await;
        let own = signup["tenants"].as_array().unwrap();
        assert_eq!(own.len(), 1, "{signup}");
        assert_eq!(own[0]["role"], "owner");
        let own_id = own[0]["id"].as_str().unwrap().to_owned();

        let list = body(app.get(alice, "/api/v1/tenants").await, StatusCode::OK).await;
        assert_eq!(list.as_array().unwrap().len(), 1);
        assert_eq!(list[0]["id"], own_id);
        own_id
    }

    /// A tenant needs a name; once made it is listed and read back.
    /// Returns its id.
    pub async fn create(app: &TestApp, alice: &Client, own_id: &str) -> String {
        let res = app
            .write(alice, Method::POST, "/api/v1/tenants", Some(json!({})))
            .await;
        let err = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
        assert!(err["fields"]["name"].is_string(), "{err}");

        let tid = create_tenant(app, alice, "Acme Corp").await;
        assert_ne!(tid, own_id);
        let list = body(app.get(alice, "/api/v1/tenants").await, StatusCode::OK).await;
        let list = list.as_array().unwrap();
        assert_eq!(list.len(), 2);
        let acme = list.iter().find(|t| t["id"] == tid.as_str()).unwrap();
        assert_eq!(acme["name"], "Acme Corp");
        assert_eq!(acme["role"], "owner");
        assert!(
            acme["slug"].as_str().is_some_and(|s| !s.is_empty()),
            "{acme}"
        );
        assert!(acme["plan"].is_string() && acme["created_at"].is_string());

        let one = body(
            app.get(alice, &format!("/api/v1/tenants/{tid}")).await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(one["id"], tid);
        assert_eq!(one["name"], "Acme Corp");
        tid
    }

    /// Outsiders, random ids and malformed ids all look alike.
    pub async fn outsiders_and_unknown_ids_find_nothing(app: &TestApp, alice: &Client, tid: &str) {
        let bob = app.user(&unique_email("outsider")).await;
        for path in [
            format!("/api/v1/tenants/{tid}"),
            format!("/api/v1/tenants/{}", uuid::Uuid::new_v4()),
            "/api/v1/tenants/not-a-uuid".to_owned(),
        ] {
            expect_error(
                app.get(&bob, &path).await,
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
            )
            .await;
        }
        expect_error(
            app.get(alice, &format!("/api/v1/tenants/{}", uuid::Uuid::new_v4()))
                .await,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
        )
        .await;
        let res = app
            .write(
                &bob,
                Method::PATCH,
                &format!("/api/v1/tenants/{tid}"),
                Some(json!({"name": "Hijacked"})),
            )
            .await;
        expect_error(res, StatusCode::NOT_FOUND, "NOT_FOUND").await;
        let res = app
            .write(
                &bob,
                Method::DELETE,
                &format!("/api/v1/tenants/{tid}"),
                None,
            )
            .await;
        expect_error(res, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    }

    pub async fn rename(app: &TestApp, alice: &Client, tid: &str) {
        let res = app
            .write(
                alice,
                Method::PATCH,
                &format!("/api/v1/tenants/{tid}"),
                Some(json!({"name": "Acme Inc"})),
            )
            .await;
        let renamed = body(res, StatusCode::OK).await;
        assert_eq!(renamed["id"], tid);
        assert_eq!(renamed["name"], "Acme Inc");
        let one = body(
            app.get(alice, &format!("/api/v1/tenants/{tid}")).await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(one["name"], "Acme Inc");
    }

    /// Deleted: gone from reads and the list; the own tenant stays.
    pub async fn delete(app: &TestApp, alice: &Client, tid: &str, own_id: &str) {
        let res = app
            .write(
                alice,
                Method::DELETE,
                &format!("/api/v1/tenants/{tid}"),
                None,
            )
            .await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        expect_error(
            app.get(alice, &format!("/api/v1/tenants/{tid}")).await,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
        )
        .await;
        let list = body(app.get(alice, "/api/v1/tenants").await, StatusCode::OK).await;
        assert_eq!(list.as_array().unwrap().len(), 1);
        assert_eq!(list[0]["id"], own_id);
    }
}

#[tokio::test]
async fn roles_gate_renaming_deleting_inviting_and_member_changes() {
    let app = TestApp::spawn().await;
    let alice = app.user(&unique_email("owner")).await;
    let alice_id = user_id(&app, &alice).await;
    let tid = create_tenant(&app, &alice, "Team").await;
    let (bob, _bob_id) = join(&app, &alice, &tid, "admin").await;
    let (carol, carol_id) = join(&app, &alice, &tid, "member").await;

    let list = members(&app, &alice, &tid).await;
    assert_eq!(list.len(), 3);
    assert_eq!(role_of(&list, &alice_id).as_deref(), Some("owner"));
    assert_eq!(role_of(&list, &carol_id).as_deref(), Some("member"));
    for m in &list {
        assert!(m["email"].is_string() && m["joined_at"].is_string(), "{m}");
    }
    // Members may look at the member list.
    assert_eq!(members(&app, &carol, &tid).await.len(), 3);

    // A member can neither rename nor delete nor invite nor change roles.
    let path = format!("/api/v1/tenants/{tid}");
    let res = app
        .write(&carol, Method::PATCH, &path, Some(json!({"name": "Mine"})))
        .await;
    expect_error(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let res = app.write(&carol, Method::DELETE, &path, None).await;
    expect_error(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let res = app
        .send_invite(&carol, &tid, &unique_email("x"), "member")
        .await;
    expect_error(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let res = app
        .get(&carol, &format!("/api/v1/tenants/{tid}/invites"))
        .await;
    expect_error(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let res = set_role(&app, &carol, &tid, &alice_id, "member").await;
    expect_error(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let res = remove(&app, &carol, &tid, &alice_id).await;
    expect_error(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;

    // An admin may rename, but not delete.
    let res = app
        .write(&bob, Method::PATCH, &path, Some(json!({"name": "Team B"})))
        .await;
    assert_eq!(body(res, StatusCode::OK).await["name"], "Team B");
    let res = app.write(&bob, Method::DELETE, &path, None).await;
    expect_error(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    assert_eq!(tenant_status(&app, &bob, &tid).await, StatusCode::OK);

    // An admin cannot grant owner, nor touch an owner, nor invite an owner.
    let res = set_role(&app, &bob, &tid, &carol_id, "owner").await;
    expect_error(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let res = set_role(&app, &bob, &tid, &alice_id, "member").await;
    expect_error(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let res = remove(&app, &bob, &tid, &alice_id).await;
    expect_error(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let res = app
        .send_invite(&bob, &tid, &unique_email("boss"), "owner")
        .await;
    expect_error(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let list = members(&app, &alice, &tid).await;
    assert_eq!(role_of(&list, &alice_id).as_deref(), Some("owner"));
    assert_eq!(role_of(&list, &carol_id).as_deref(), Some("member"));

    // An invalid role is a validation failure.
    let res = set_role(&app, &alice, &tid, &carol_id, "superuser").await;
    let err = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert!(err["fields"]["role"].is_string(), "{err}");

    // An admin may promote a member to admin; the next read shows it.
    let res = set_role(&app, &bob, &tid, &carol_id, "admin").await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let list = members(&app, &alice, &tid).await;
    assert_eq!(role_of(&list, &carol_id).as_deref(), Some("admin"));
    let seen = body(app.get(&carol, &path).await, StatusCode::OK).await;
    assert_eq!(seen["role"], "admin");
    // ... and now carol may invite.
    let res = app
        .send_invite(&carol, &tid, &unique_email("newbie"), "member")
        .await;
    assert_eq!(body(res, StatusCode::CREATED).await["status"], "pending");

    // The owner deletes the tenant; every former member loses it.
    let res = app.write(&alice, Method::DELETE, &path, None).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    for c in [&alice, &bob, &carol] {
        expect_error(app.get(c, &path).await, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    }
    let res = app
        .get(&bob, &format!("/api/v1/tenants/{tid}/members"))
        .await;
    expect_error(res, StatusCode::NOT_FOUND, "NOT_FOUND").await;
}

#[tokio::test]
async fn last_owner_stays_and_removed_members_lose_access() {
    let app = TestApp::spawn().await;
    let alice = app.user(&unique_email("last")).await;
    let alice_id = user_id(&app, &alice).await;
    let tid = create_tenant(&app, &alice, "Solo").await;

    let res = set_role(&app, &alice, &tid, &alice_id, "admin").await;
    expect_error(res, StatusCode::CONFLICT, "CONFLICT").await;
    let res = remove(&app, &alice, &tid, &alice_id).await;
    expect_error(res, StatusCode::CONFLICT, "CONFLICT").await;
    assert_eq!(
        role_of(&members(&app, &alice, &tid).await, &alice_id).as_deref(),
        Some("owner")
    );

    // Removal by an owner.
    let (bob, bob_id) = join(&app, &alice, &tid, "member").await;
    assert_eq!(tenant_status(&app, &bob, &tid).await, StatusCode::OK);
    let res = remove(&app, &alice, &tid, &bob_id).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(tenant_status(&app, &bob, &tid).await, StatusCode::NOT_FOUND);
    let list = members(&app, &alice, &tid).await;
    assert_eq!(list.len(), 1);
    assert!(role_of(&list, &bob_id).is_none());
    let tenants = body(app.get(&bob, "/api/v1/tenants").await, StatusCode::OK).await;
    assert!(!tenants
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["id"] == tid.as_str()));
    // Removing again finds nobody.
    let res = remove(&app, &alice, &tid, &bob_id).await;
    expect_error(res, StatusCode::NOT_FOUND, "NOT_FOUND").await;

    // Leaving by oneself.
    let (carol, carol_id) = join(&app, &alice, &tid, "member").await;
    let res = remove(&app, &carol, &tid, &carol_id).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        tenant_status(&app, &carol, &tid).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(members(&app, &alice, &tid).await.len(), 1);

    // With a second owner the first may step down and then leave.
    let (dave, dave_id) = join(&app, &alice, &tid, "member").await;
    let res = set_role(&app, &alice, &tid, &dave_id, "owner").await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = set_role(&app, &alice, &tid, &alice_id, "admin").await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let seen = body(
        app.get(&alice, &format!("/api/v1/tenants/{tid}")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(seen["role"], "admin");
    let res = remove(&app, &alice, &tid, &alice_id).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        tenant_status(&app, &alice, &tid).await,
        StatusCode::NOT_FOUND
    );
    // Dave is now the last owner.
    let res = remove(&app, &dave, &tid, &dave_id).await;
    expect_error(res, StatusCode::CONFLICT, "CONFLICT").await;
    let list = members(&app, &dave, &tid).await;
    assert_eq!(list.len(), 1);
    assert_eq!(role_of(&list, &dave_id).as_deref(), Some("owner"));
}

#[tokio::test]
async fn invitations_are_sent_listed_replaced_and_accepted_once() {
    let app = TestApp::spawn().await;
    let guild = invitations::Guild::new(&app).await;
    let (first, old_token) = guild.invite_bob(&app).await;
    guild.bob_sees_it_listed_and_on_login(&app, &first).await;
    guild.members_and_bad_invitations_are_refused(&app).await;
    let new_token = guild.reinviting_replaces_the_first(&app, &old_token).await;
    guild.bob_accepts(&app, &new_token).await;
    guild.the_invitation_is_used_up(&app, &new_token).await;
}

/// The steps of [`invitations_are_sent_listed_replaced_and_accepted_once`],
/// in order.
mod invitations {
    use super::*;

    /// Alice's tenant "Guild" and Bob, whom she invites.
    pub struct Guild {
        alice: Client,
        alice_email: String,
        tid: String,
        bob: Client,
        bob_email: String,
    }

    impl Guild {
        pub async fn new(app: &TestApp) -> Guild {
            let alice_email = unique_email("inviter");
            let alice = app.user(&alice_email).await;
            let tid = create_tenant(app, &alice, "Guild").await;
            let bob_email = unique_email("invitee");
            let bob = app.user(&bob_email).await;
            Guild {
                alice,
                alice_email,
                tid,
                bob,
                bob_email,
            }
        }

        /// The invitation as answered and its mailed token.
        pub async fn invite_bob(&self, app: &TestApp) -> (Value, String) {
            let (tid, bob_email) = (&self.tid, &self.bob_email);
            let res = app.send_invite(&self.alice, tid, bob_email, "admin").await;
            let first = body(res, StatusCode::CREATED).await;
            assert_eq!(first["status"], "pending");
            assert_eq!(first["email"], bob_email.as_str());
            assert_eq!(first["role"], "admin");
            assert_eq!(first["tenant"]["id"], tid.as_str());
            assert_eq!(first["tenant"]["name"], "Guild");
            assert!(first["expires_at"].is_string() && first["id"].is_string());
            let mail = app.invitation_mail(bob_email, 1).await;
            assert!(mail.subject().contains("invited you"), "{}", mail.subject());
            (first, mail.token())
        }

        /// Bob sees it in his list and on login; Alice has none.
        pub async fn bob_sees_it_listed_and_on_login(&self, app: &TestApp, first: &Value) {
            let mine = body(app.get(&self.bob, "/api/v1/invites").await, StatusCode::OK).await;
            let mine = mine.as_array().unwrap();
            assert_eq!(mine.len(), 1);
            assert_eq!(mine[0]["id"], first["id"]);
            assert_eq!(mine[0]["status"], "pending");
            let login = body(
                app.login(&new_client(), &self.bob_email, PASSWORD).await,
                StatusCode::OK,
            )
            .await;
            let invites = login["invites"].as_array().unwrap();
            assert_eq!(invites.len(), 1, "{login}");
            assert_eq!(invites[0]["tenant"]["id"], self.tid.as_str());
            // The inviter has no invitations of her own.
            let login = body(
                app.login(&new_client(), &self.alice_email, PASSWORD).await,
                StatusCode::OK,
            )
            .await;
            assert_eq!(login["invites"], json!([]));
        }

        /// Existing members cannot be invited; bad addresses are refused.
        pub async fn members_and_bad_invitations_are_refused(&self, app: &TestApp) {
            let (alice, tid) = (&self.alice, &self.tid);
            let res = app
                .send_invite(alice, tid, &self.alice_email, "member")
                .await;
            expect_error(res, StatusCode::CONFLICT, "CONFLICT").await;
            let res = app.send_invite(alice, tid, "not-an-email", "member").await;
            let err =
                expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
            assert!(err["fields"]["email"].is_string(), "{err}");
            let res = app
                .send_invite(alice, tid, &unique_email("r"), "emperor")
                .await;
            let err =
                expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
            assert!(err["fields"]["role"].is_string(), "{err}");
        }

        /// Re-inviting replaces the first invitation, whose token then
        /// fails; returns the new token.
        pub async fn reinviting_replaces_the_first(
            &self,
            app: &TestApp,
            old_token: &str,
        ) -> String {
            let (tid, bob_email) = (&self.tid, &self.bob_email);
            let res = app.send_invite(&self.alice, tid, bob_email, "member").await;
            let second = body(res, StatusCode::CREATED).await;
            assert_eq!(second["role"], "member");
            let new_token = app.invitation_mail(bob_email, 2).await.token();
            assert_ne!(new_token, old_token);
            let listed = body(
                app.get(&self.alice, &format!("/api/v1/tenants/{tid}/invites"))
                    .await,
                StatusCode::OK,
            )
            .await;
            let pending: Vec<&Value> = listed
                .as_array()
                .unwrap()
                .iter()
                .filter(|i| i["email"] == bob_email.as_str() && i["status"] == "pending")
                .collect();
            assert_eq!(pending.len(), 1, "{listed}");
            assert_eq!(pending[0]["id"], second["id"]);
            assert_eq!(pending[0]["role"], "member");

            let err = expect_error(
                app.accept_invite(&self.bob, old_token).await,
                StatusCode::UNPROCESSABLE_ENTITY,
                "VALIDATION_FAILED",
            )
            .await;
            assert!(err["fields"]["invite_token"].is_string(), "{err}");
            assert_eq!(
                tenant_status(app, &self.bob, tid).await,
                StatusCode::NOT_FOUND
            );
            new_token
        }

        /// Bob accepts and is a member.
        pub async fn bob_accepts(&self, app: &TestApp, token: &str) {
            let (bob, tid) = (&self.bob, &self.tid);
            let joined = body(app.accept_invite(bob, token).await, StatusCode::OK).await;
            assert_eq!(joined["tenant"]["id"], tid.as_str());
            assert_eq!(joined["tenant"]["role"], "member");
            assert_eq!(joined["tenant"]["name"], "Guild");
            let seen = body(
                app.get(bob, &format!("/api/v1/tenants/{tid}")).await,
                StatusCode::OK,
            )
            .await;
            assert_eq!(seen["role"], "member");
            let bob_id = user_id(app, bob).await;
            assert_eq!(
                role_of(&members(app, &self.alice, tid).await, &bob_id).as_deref(),
                Some("member")
            );
        }

        /// Used tokens and unknown tokens fail alike; nothing is left
        /// pending, and Bob, now a member, cannot be invited again.
        pub async fn the_invitation_is_used_up(&self, app: &TestApp, token: &str) {
            for token in [token, "tsr_inv_unknown"] {
                let err = expect_error(
                    app.accept_invite(&self.bob, token).await,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "VALIDATION_FAILED",
                )
                .await;
                assert!(err["fields"]["invite_token"].is_string(), "{err}");
            }
            let mine = body(app.get(&self.bob, "/api/v1/invites").await, StatusCode::OK).await;
            assert_eq!(mine, json!([]));
            let res = app
                .send_invite(&self.alice, &self.tid, &self.bob_email, "member")
                .await;
            expect_error(res, StatusCode::CONFLICT, "CONFLICT").await;
        }
    }
}

#[tokio::test]
async fn only_the_invited_address_may_accept_and_revoked_invites_die() {
    let app = TestApp::spawn().await;
    let alice = app.user(&unique_email("host")).await;
    let tid = create_tenant(&app, &alice, "Club").await;
    let dave_email = unique_email("dave");
    let dave = app.user(&dave_email).await;
    let mallory = app.user(&unique_email("mallory")).await;

    let token = app.invite(&alice, &tid, &dave_email, "member").await;
    expect_error(
        app.accept_invite(&mallory, &token).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    assert_eq!(
        tenant_status(&app, &mallory, &tid).await,
        StatusCode::NOT_FOUND
    );
    // Mallory's attempt did not use the invitation up.
    let joined = body(app.accept_invite(&dave, &token).await, StatusCode::OK).await;
    assert_eq!(joined["tenant"]["id"], tid);

    // A revoked invitation's token fails.
    let erin_email = unique_email("erin");
    let erin = app.user(&erin_email).await;
    let sent = body(
        app.send_invite(&alice, &tid, &erin_email, "admin").await,
        StatusCode::CREATED,
    )
    .await;
    let token = app.invitation_mail(&erin_email, 1).await.token();
    let invite_id = sent["id"].as_str().unwrap();
    // Other tenants' admins cannot revoke it.
    let res = app
        .write(
            &mallory,
            Method::DELETE,
            &format!("/api/v1/tenants/{tid}/invites/{invite_id}"),
            None,
        )
        .await;
    expect_error(res, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    let res = app
        .write(
            &alice,
            Method::DELETE,
            &format!("/api/v1/tenants/{tid}/invites/{invite_id}"),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let mine = body(app.get(&erin, "/api/v1/invites").await, StatusCode::OK).await;
    assert_eq!(mine, json!([]));
    let err = expect_error(
        app.accept_invite(&erin, &token).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    assert!(err["fields"]["invite_token"].is_string(), "{err}");
    assert_eq!(
        tenant_status(&app, &erin, &tid).await,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn parallel_accepts_succeed_exactly_once() {
    let app = TestApp::spawn().await;
    let alice = app.user(&unique_email("race-host")).await;
    let tid = create_tenant(&app, &alice, "Race").await;
    let bob_email = unique_email("racer");
    let bob = app.user(&bob_email).await;
    let token = app.invite(&alice, &tid, &bob_email, "member").await;

    let mut csrfs = Vec::new();
    for _ in 0..12 {
        csrfs.push(app.csrf(&bob).await);
    }
    let mut tasks = Vec::new();
    for csrf in csrfs {
        let c = bob.clone();
        let url = app.url("/api/v1/invites/accept");
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            c.post(url)
                .header("x-csrf-token", csrf)
                .json(&json!({"invite_token": token}))
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
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(ok, 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::UNPROCESSABLE_ENTITY),
        "{statuses:?}"
    );
    let bob_id = user_id(&app, &bob).await;
    let list = members(&app, &alice, &tid).await;
    assert_eq!(list.len(), 2);
    assert_eq!(
        list.iter()
            .filter(|m| m["user_id"] == bob_id.as_str())
            .count(),
        1
    );
}

#[tokio::test]
async fn signup_with_an_invitation_joins_only_that_tenant() {
    let app = TestApp::spawn().await;
    let alice = app.user(&unique_email("recruiter")).await;
    let tid = create_tenant(&app, &alice, "Crew").await;
    let email = unique_email("recruit");
    let token = app.invite(&alice, &tid, &email, "admin").await;

    // Another address cannot use the token.
    let res = app
        .post(
            &new_client(),
            "/api/v1/auth/signup",
            json!({"email": unique_email("imposter"), "password": PASSWORD, "invite_token": token}),
        )
        .await;
    let err = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert!(err["fields"]["invite_token"].is_string(), "{err}");

    let c = new_client();
    let res = app
        .post(
            &c,
            "/api/v1/auth/signup",
            json!({"email": email, "password": PASSWORD, "invite_token": token}),
        )
        .await;
    let signup = body(res, StatusCode::CREATED).await;
    assert_eq!(signup["user"]["email"], email);
    assert_eq!(signup["user"]["email_verified"], true);
    let tenants = signup["tenants"].as_array().unwrap();
    assert_eq!(tenants.len(), 1, "{signup}");
    assert_eq!(tenants[0]["id"], tid);
    assert_eq!(tenants[0]["role"], "admin");

    let list = body(app.get(&c, "/api/v1/tenants").await, StatusCode::OK).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], tid);
    let me = me(&app, &c).await;
    assert_eq!(me["user"]["email_verified"], true);
    let new_id = me["user"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        role_of(&members(&app, &alice, &tid).await, &new_id).as_deref(),
        Some("admin")
    );
    // The invitation is used up.
    let err = expect_error(
        app.accept_invite(&c, &token).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    assert!(err["fields"]["invite_token"].is_string(), "{err}");
}

#[tokio::test]
async fn switching_tenant_changes_me_and_new_jwts() {
    let app = TestApp::spawn().await;
    let email = unique_email("switch");
    let alice = app.user(&email).await;
    let own = app.current_tenant_id(&alice).await;
    let tid = create_tenant(&app, &alice, "Second").await;

    let res = app
        .write(
            &alice,
            Method::POST,
            "/api/v1/auth/switch-tenant",
            Some(json!({"tenant_id": tid})),
        )
        .await;
    let switched = body(res, StatusCode::OK).await;
    assert_eq!(switched["tenant"]["id"], tid);
    assert_eq!(switched["tenant"]["role"], "owner");
    assert_eq!(switched["user"]["email"], email);
    assert_eq!(switched["tenants"].as_array().unwrap().len(), 2);

    let now = me(&app, &alice).await;
    assert_eq!(now["tenant"]["id"], tid);

    let jwt = app.jwt(&alice).await;
    assert_eq!(jwt_claims(&jwt)["tid"], tid);

    // Tenants one does not belong to cannot be switched to.
    let bob = app.user(&unique_email("stranger")).await;
    let bobs = app.current_tenant_id(&bob).await;
    for target in [bobs, uuid::Uuid::new_v4().to_string()] {
        let res = app
            .write(
                &alice,
                Method::POST,
                "/api/v1/auth/switch-tenant",
                Some(json!({"tenant_id": target})),
            )
            .await;
        expect_error(res, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    }
    assert_eq!(me(&app, &alice).await["tenant"]["id"], tid);

    // And back.
    let res = app
        .write(
            &alice,
            Method::POST,
            "/api/v1/auth/switch-tenant",
            Some(json!({"tenant_id": own})),
        )
        .await;
    assert_eq!(body(res, StatusCode::OK).await["tenant"]["id"], own);
    assert_eq!(me(&app, &alice).await["tenant"]["id"], own);
}

async fn current_session_id(app: &TestApp, c: &Client) -> String {
    let list = body(app.get(c, "/api/v1/sessions").await, StatusCode::OK).await;
    let current: Vec<&Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["current"] == true)
        .collect();
    assert_eq!(current.len(), 1, "{list}");
    current[0]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn sessions_are_listed_and_revoked() {
    let app = TestApp::spawn().await;
    let email = unique_email("sessions");
    let first = app.user(&email).await;
    let second = new_client();
    assert_eq!(
        app.login(&second, &email, PASSWORD).await.status(),
        StatusCode::OK
    );
    let third = new_client();
    assert_eq!(
        app.login(&third, &email, PASSWORD).await.status(),
        StatusCode::OK
    );

    let list = body(app.get(&first, "/api/v1/sessions").await, StatusCode::OK).await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1);
    for s in list {
        assert!(s["id"].is_string(), "{s}");
        assert!(s["created_at"].is_string() && s["last_seen_at"].is_string());
        assert!(s["expires_at"].is_string());
        assert!(s.get("token").is_none(), "{s}");
    }
    let first_id = current_session_id(&app, &first).await;
    let second_id = current_session_id(&app, &second).await;
    assert_ne!(first_id, second_id);

    // Another user cannot revoke these sessions.
    let mallory = app.user(&unique_email("mallory")).await;
    let res = app
        .write(
            &mallory,
            Method::DELETE,
            &format!("/api/v1/sessions/{first_id}"),
            None,
        )
        .await;
    expect_error(res, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    assert_eq!(app.me_status(&first).await, StatusCode::OK);

    let res = app
        .write(
            &first,
            Method::DELETE,
            &format!("/api/v1/sessions/{second_id}"),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.me_status(&second).await, StatusCode::UNAUTHORIZED);
    assert_eq!(app.me_status(&first).await, StatusCode::OK);
    assert_eq!(app.me_status(&third).await, StatusCode::OK);
    let list = body(app.get(&first, "/api/v1/sessions").await, StatusCode::OK).await;
    assert_eq!(list.as_array().unwrap().len(), 2);

    let res = app
        .write(&first, Method::DELETE, "/api/v1/sessions", None)
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.me_status(&third).await, StatusCode::UNAUTHORIZED);
    assert_eq!(app.me_status(&first).await, StatusCode::OK);
    let list = body(app.get(&first, "/api/v1/sessions").await, StatusCode::OK).await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], first_id);
    assert_eq!(list[0]["current"], true);
    // Mallory's own session was untouched throughout.
    assert_eq!(app.me_status(&mallory).await, StatusCode::OK);
}

#[tokio::test]
async fn tenant_audit_shows_invites_and_removals_to_admins_only() {
    let app = TestApp::spawn().await;
    let alice = app.user(&unique_email("auditor")).await;
    let tid = create_tenant(&app, &alice, "Audited").await;
    let (_bob, bob_id) = join(&app, &alice, &tid, "member").await;
    let (carol, _carol_id) = join(&app, &alice, &tid, "member").await;
    let res = remove(&app, &alice, &tid, &bob_id).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    let res = app
        .get(&alice, &format!("/api/v1/tenants/{tid}/audit"))
        .await;
    let audit = body(res, StatusCode::OK).await;
    let events = audit
        .get("events")
        .unwrap_or(&audit)
        .as_array()
        .unwrap_or_else(|| panic!("no event list in {audit}"))
        .clone();
    assert!(
        events.iter().any(|e| e["action"] == "invite.send"),
        "{audit}"
    );
    let removal = events
        .iter()
        .find(|e| e["action"] == "member.remove")
        .unwrap_or_else(|| panic!("no member.remove in {audit}"));
    assert_eq!(removal["target_id"], bob_id);
    for e in &events {
        assert_eq!(e["tenant_id"], tid, "{e}");
        assert!(e["id"].is_string() || e["id"].is_number(), "{e}");
        assert!(e["at"].is_string(), "{e}");
    }

    let res = app
        .get(&carol, &format!("/api/v1/tenants/{tid}/audit"))
        .await;
    expect_error(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let outsider = app.user(&unique_email("outsider")).await;
    let res = app
        .get(&outsider, &format!("/api/v1/tenants/{tid}/audit"))
        .await;
    expect_error(res, StatusCode::NOT_FOUND, "NOT_FOUND").await;
}
