//! The hosted pages (`/ui`) over HTTP: what a browser gets and sends. The
//! same flows are driven in a real browser by `tests/browser` (see
//! `tests/browser.rs`); these check the server's side of every form.

use reqwest::{header, Client, Response, StatusCode};
use serde_json::json;

use tessera::clock::Clock;

use crate::helpers::*;

fn location(res: &Response) -> String {
    res.headers()[header::LOCATION].to_str().unwrap().to_owned()
}

/// Asserts a 422 page whose error sits next to the field `id`.
async fn assert_field_error(res: Response, id: &str) -> String {
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = res.text().await.unwrap();
    assert!(html::has_field_error(&page, id), "{page}");
    page
}

/// Opens a mailed verification link and presses its button, as a person
/// does; opening it alone verifies nothing.
async fn confirm_address(app: &TestApp, client: &Client, path: &str) -> (StatusCode, String) {
    let (status, page) = app.page(client, path).await;
    if status != StatusCode::OK {
        return (status, page);
    }
    assert!(
        page.contains("<h1>Confirm your email address</h1>"),
        "{page}"
    );
    let res = app
        .submit(
            client,
            "/ui/verify-email",
            &[
                ("form_token", &html::form_token(&page)),
                ("token", &html::input_value(&page, "token")),
            ],
        )
        .await;
    let status = res.status();
    (status, res.text().await.unwrap())
}

#[tokio::test]
async fn pages_have_labels_autocomplete_and_a_strict_policy() {
    let app = TestApp::spawn().await;
    for (path, fields) in [
        (
            "/ui/sign-in",
            vec![("email", "username"), ("password", "current-password")],
        ),
        (
            "/ui/sign-up",
            vec![
                ("name", "name"),
                ("email", "username"),
                ("password", "new-password"),
            ],
        ),
        ("/ui/forgot-password", vec![("email", "username")]),
    ] {
        let res = new_client().get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let csp = res.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert!(res.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("HttpOnly"));
        let html = res.text().await.unwrap();
        assert!(html.contains("<html lang=\"en\">") && html.contains("name=\"viewport\""));
        assert_eq!(html.matches("<h1>").count(), 1, "{path}: one h1");
        for (id, autocomplete) in fields {
            assert!(html::has_label_for(&html, id), "{path}: label for {id}");
            let input = html::input_tag(&html, id);
            assert!(
                input.contains(&format!("autocomplete=\"{autocomplete}\"")),
                "{path}: {input}"
            );
        }
        assert!(
            !html.contains("<script"),
            "{path}: no script without the bot check"
        );
    }
    let css = new_client()
        .get(app.url("/ui/static/tessera.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), StatusCode::OK);
    assert!(css.text().await.unwrap().contains(":focus-visible"));
}

#[tokio::test]
async fn sign_up_sign_out_and_sign_in_through_the_pages() {
    let app = TestApp::spawn().await;
    let client = new_client();
    let email = unique_email("pages");
    let res = app.ui_sign_up(&client, &email).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/ui/account");
    assert!(set_cookie(&res, "ces_session").is_some_and(|c| c.contains("HttpOnly")));
    let (html, csrf) = app.account_page(&client).await;
    assert!(html.contains("<h1>Your account</h1>") && html.contains(&email));
    assert!(html.contains("s workspace"), "{html}");
    // The same session works on the API.
    assert_eq!(app.me_status(&client).await, StatusCode::OK);

    let res = app
        .submit(&client, "/ui/sign-out", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(location(&res).starts_with("/ui/sign-in"));
    assert_eq!(app.me_status(&client).await, StatusCode::UNAUTHORIZED);
    // Signed out, the account page sends you to sign in and back.
    let res = client.get(app.url("/ui/account")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(location(&res).starts_with("/ui/sign-in?redirect_to="));

    // A wrong password: the page again, the email kept, the error on top.
    let res = app.ui_sign_in(&client, &email, "not-the-password").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let html = res.text().await.unwrap();
    assert!(html::has_alert(&html), "{html}");
    assert!(html.contains(&format!("value=\"{email}\"")));
    assert!(
        !html.contains("not-the-password"),
        "passwords are never drawn back"
    );

    let res = app.ui_sign_in(&client, &email, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/ui/account");
    assert_eq!(app.me_status(&client).await, StatusCode::OK);
}

#[tokio::test]
async fn field_errors_are_sentences_next_to_their_fields() {
    let app = TestApp::spawn().await;
    let client = new_client();
    let token = app.form_token(&client, "/ui/sign-up").await;
    for (field, email, password) in [
        ("email", "not-an-email", PASSWORD),
        ("password", "ok@example.test", "short"),
    ] {
        let res = app
            .submit(
                &client,
                "/ui/sign-up",
                &[
                    ("form_token", &token),
                    ("email", email),
                    ("password", password),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let html = res.text().await.unwrap();
        assert!(html::describes_error(&html, field), "{field}: {html}");
        let error = html::field_error(&html, field);
        assert!(
            error.ends_with('.') && error.len() > 10,
            "{field}: {error:?}"
        );
        assert!(
            error.starts_with(if field == "email" {
                "Email "
            } else {
                "Password "
            }),
            "{error}"
        );
        assert!(html.contains("aria-invalid=\"true\""));
    }
    // Missing fields read as empty and are named the same way.
    let res = app
        .submit(&client, "/ui/sign-up", &[("form_token", &token)])
        .await;
    assert_field_error(res, "email").await;
}

#[tokio::test]
async fn forms_without_their_token_or_from_elsewhere_are_refused() {
    let app = TestApp::spawn().await;
    let client = new_client();
    let email = unique_email("csrf");
    app.ui_sign_up(&client, &email).await;
    let (_, csrf) = app.account_page(&client).await;

    // Anonymous forms: no token, a token that is not the cookie's, a
    // foreign Origin.
    let stranger = new_client();
    let token = app.form_token(&stranger, "/ui/sign-in").await;
    for form in [
        vec![("email", email.as_str()), ("password", PASSWORD)],
        vec![
            ("form_token", "forged-token-forged-token-forged-token-xxxx"),
            ("email", &email),
            ("password", PASSWORD),
        ],
    ] {
        let res = app.submit(&stranger, "/ui/sign-in", &form).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert!(set_cookie(&res, "ces_session").is_none());
        assert!(res.text().await.unwrap().contains("This form has expired"));
    }
    let res = stranger
        .post(app.url("/ui/sign-in"))
        .header("origin", "https://evil.example")
        .form(&[
            ("form_token", token.as_str()),
            ("email", &email),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // A form posted from a page that never set the cookie.
    let res = app
        .submit(
            &new_client(),
            "/ui/sign-in",
            &[
                ("form_token", &token),
                ("email", &email),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // Signed-in forms: the session's CSRF token or nothing happens.
    let res = app
        .submit(
            &client,
            "/ui/account/profile",
            &[("csrf_token", "wrong"), ("name", "Mallory")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = app
        .submit(&client, "/ui/account/profile", &[("name", "Mallory")])
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(me(&app, &client).await["user"]["name"], "Ada");
    let res = app
        .submit(
            &client,
            "/ui/account/profile",
            &[("csrf_token", &csrf), ("name", "Grace")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/ui/account?done=profile");
    assert_eq!(me(&app, &client).await["user"]["name"], "Grace");
    let (_, html) = app.page(&client, "/ui/account?done=profile").await;
    assert!(
        html.contains("role=\"status\">Your profile is saved."),
        "{html}"
    );
}

#[tokio::test]
async fn bad_form_bodies_get_pages_not_crashes() {
    let app = TestApp::spawn().await;
    let client = new_client();
    let token = app.form_token(&client, "/ui/sign-in").await;
    // Not a form.
    let res = client
        .post(app.url("/ui/sign-in"))
        .json(&json!({"email": "a@example.test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("could not be read"));
    // Too large.
    let big = "x".repeat(100_000);
    let res = app
        .submit(
            &client,
            "/ui/sign-in",
            &[("form_token", &token), ("email", &big)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Oversized and odd values within the limit: field errors.
    let long = "y".repeat(20_000);
    let res = app
        .submit(
            &client,
            "/ui/sign-in",
            &[
                ("form_token", &token),
                ("email", &long),
                ("password", &long),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Signed in: a token expiry that is not a number.
    app.ui_sign_up(&client, &unique_email("odd")).await;
    let (_, csrf) = app.account_page(&client).await;
    let res = app
        .submit(
            &client,
            "/ui/account/tokens",
            &[
                ("csrf_token", &csrf),
                ("name", "n"),
                ("read", "on"),
                ("expires_in_days", "soon"),
            ],
        )
        .await;
    assert_field_error(res, "token-days").await;
    // Ids that are not ids.
    let res = app
        .submit(
            &client,
            "/ui/account/tokens/revoke",
            &[("csrf_token", &csrf), ("token_id", "12")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_mailed_links_open_the_pages() {
    let app = TestApp::spawn().await;
    let client = new_client();
    let email = unique_email("links");
    app.ui_sign_up(&client, &email).await;

    // Verification.
    let mail = app.mail.wait_for(&email, 1).await;
    assert!(mail
        .text()
        .contains(&format!("{}/ui/verify-email?token=", app.base)));
    let path = format!("/ui/verify-email?token={}", mail.token());
    // A mail scanner fetching the link verifies nothing.
    let (status, html) = app.page(&new_client(), &path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains("Email verified"), "{html}");
    assert!(!me(&app, &client).await["user"]["email_verified"]
        .as_bool()
        .unwrap());
    let (status, html) = confirm_address(&app, &new_client(), &path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<h1>Email verified</h1>"), "{html}");
    assert!(me(&app, &client).await["user"]["email_verified"]
        .as_bool()
        .unwrap());
    let (status, html) = app.page(&new_client(), &path).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("<h1>This link does not work</h1>") && html.contains("Send a new link"));

    // Recovery: ask on the page, open the link, set a new password.
    let other = new_client();
    let token = app.form_token(&other, "/ui/forgot-password").await;
    let res = app
        .submit(
            &other,
            "/ui/forgot-password",
            &[("form_token", &token), ("email", &email)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains(
        "If an account exists for that address, we have sent it a link to reset the password."
    ));
    let mail = app.mail.wait_for(&email, 2).await;
    assert!(mail
        .text()
        .contains(&format!("{}/ui/reset-password?token=", app.base)));
    let path = format!("/ui/reset-password?token={}", mail.token());
    let (status, html) = app.page(&other, &path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<h1>Choose a new password</h1>"));
    let form_token = html::form_token(&html);
    let reset_token = html::input_value(&html, "token");
    let new_password = "a-brand-new-passphrase";
    let res = app
        .submit(
            &other,
            "/ui/reset-password",
            &[
                ("form_token", &form_token),
                ("token", &reset_token),
                ("password", new_password),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("<h1>Password changed</h1>"));
    // Every session ended; the old password fails, the new one works.
    assert_eq!(app.me_status(&client).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.ui_sign_in(&other, &email, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.ui_sign_in(&other, &email, new_password).await.status(),
        StatusCode::SEE_OTHER
    );
    // The link works once.
    let (status, html) = app.page(&new_client(), &path).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("Ask for a new link"));
}

#[tokio::test]
async fn two_step_verification_set_up_and_used_through_the_pages() {
    let app = TestApp::spawn().await;
    let client = new_client();
    let email = unique_email("totp");
    app.ui_sign_up(&client, &email).await;
    app.verify_address(&email).await;
    let (_, csrf) = app.account_page(&client).await;
    let res = app
        .submit(
            &client,
            "/ui/account/two-factor/setup",
            &[("csrf_token", &csrf), ("password", "wrong-password-here")],
        )
        .await;
    assert_field_error(res, "totp-password").await;
    let res = app
        .submit(
            &client,
            "/ui/account/two-factor/setup",
            &[("csrf_token", &csrf), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(html.contains("<svg role=\"img\" aria-label=\"QR code for your authenticator app\""));
    let secret = html::text_of(&html, "totp-secret");
    // A wrong code: the same key is shown again with the error.
    let res = app
        .submit(
            &client,
            "/ui/account/two-factor/enable",
            &[("csrf_token", &csrf), ("code", "000000")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = res.text().await.unwrap();
    assert_eq!(html::text_of(&html, "totp-secret"), secret);
    let now = app.clock.now().timestamp();
    let res = app
        .submit(
            &client,
            "/ui/account/two-factor/enable",
            &[("csrf_token", &csrf), ("code", &totp_at(&secret, now))],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    let codes = html::element_until(&html, "backup-codes", "</ul>");
    assert_eq!(codes.matches("<li>").count(), 10);
    assert!(html.contains("<strong>On</strong>"));

    // Signing in now asks for the second step.
    let other = new_client();
    let res = app.ui_sign_in(&other, &email, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(set_cookie(&res, "ces_session").is_none());
    let html = res.text().await.unwrap();
    assert!(
        html.contains("<h1>Two-step verification</h1>")
            && html.contains("autocomplete=\"one-time-code\"")
    );
    let form_token = html::form_token(&html);
    let challenge = html::input_value(&html, "challenge");
    let res = app
        .submit(
            &other,
            "/ui/two-factor",
            &[
                ("form_token", &form_token),
                ("challenge", &challenge),
                ("code", "000000"),
            ],
        )
        .await;
    let html = assert_field_error(res, "code").await;
    assert_eq!(
        html::input_value(&html, "challenge"),
        challenge,
        "the same sign-in goes on"
    );
    let res = app
        .submit(
            &other,
            "/ui/two-factor",
            &[
                ("form_token", &form_token),
                ("challenge", &challenge),
                ("code", &totp_at(&secret, now + 30)),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/ui/account");
    assert_eq!(app.me_status(&other).await, StatusCode::OK);
}

#[tokio::test]
async fn tokens_are_shown_once_used_and_revoked() {
    let app = TestApp::spawn().await;
    let client = new_client();
    let email = unique_email("pat");
    app.ui_sign_up(&client, &email).await;
    app.verify_address(&email).await;
    let (_, csrf) = app.account_page(&client).await;
    let res = app
        .submit(
            &client,
            "/ui/account/tokens",
            &[("csrf_token", &csrf), ("name", "ci"), ("read", "on")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let html = res.text().await.unwrap();
    let secret = html::text_of(&html, "new-token");
    assert!(secret.starts_with("tsr_pat_"));
    assert_eq!(
        app.bearer_get(&secret, "/api/v1/auth/me").await.status(),
        StatusCode::OK
    );
    // Listed, never shown again.
    let (html, _) = app.account_page(&client).await;
    assert!(!html.contains(&secret) && html.contains("aria-label=\"Revoke ci\""));
    let id = html::input_values(&html, "token_id").pop().unwrap();
    let res = app
        .submit(
            &client,
            "/ui/account/tokens/revoke",
            &[("csrf_token", &csrf), ("token_id", &id)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.bearer_get(&secret, "/api/v1/auth/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn sessions_are_listed_and_revoked_from_the_page() {
    let app = TestApp::spawn().await;
    let email = unique_email("sessions");
    let first = new_client();
    app.ui_sign_up(&first, &email).await;
    let second = new_client();
    app.ui_sign_in(&second, &email, PASSWORD).await;
    let (html, csrf) = app.account_page(&first).await;
    assert_eq!(html.matches("This device").count(), 1);
    let ids = html::input_values(&html, "session_id");
    assert_eq!(ids.len(), 1, "a revoke button for the other session only");
    let res = app
        .submit(
            &first,
            "/ui/account/sessions/revoke",
            &[("csrf_token", &csrf), ("session_id", &ids[0])],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.me_status(&second).await, StatusCode::UNAUTHORIZED);
    assert_eq!(app.me_status(&first).await, StatusCode::OK);
}

#[tokio::test]
async fn the_account_page_sends_the_verification_link_again() {
    let app = TestApp::spawn().await;
    let email = unique_email("resend");
    let client = new_client();
    app.ui_sign_up(&client, &email).await;
    app.mail.wait_for(&email, 1).await;
    let (html, csrf) = app.account_page(&client).await;
    assert!(html.contains("not verified yet"));
    assert!(html.contains("action=\"/ui/account/verify-email/resend\""));

    // Without the session's CSRF token nothing is sent.
    let res = app
        .submit(&client, "/ui/account/verify-email/resend", &[])
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    let res = app
        .submit(
            &client,
            "/ui/account/verify-email/resend",
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/ui/account?done=verify-sent");
    let (_, html) = app.page(&client, &location(&res)).await;
    assert!(
        html.contains("A new verification link is on its way"),
        "{html}"
    );
    let mail = app.mail.wait_for(&email, 2).await;
    let path = format!("/ui/verify-email?token={}", mail.token());
    let (status, html) = confirm_address(&app, &new_client(), &path).await;
    assert_eq!(status, StatusCode::OK, "{html}");

    let (html, _) = app.account_page(&client).await;
    assert!(html.contains(">verified<"));
    assert!(!html.contains("/ui/account/verify-email/resend"));
}

#[tokio::test]
async fn invitations_are_accepted_on_the_way_in() {
    let app = TestApp::spawn().await;
    let owner = app.user(&unique_email("owner")).await;
    let tenant = me(&app, &owner).await["tenant"].clone();
    let invitee = unique_email("invitee");
    let res = app
        .send_invite(&owner, tenant["id"].as_str().unwrap(), &invitee, "member")
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let mail = app.mail.wait_for(&invitee, 1).await;
    assert!(mail
        .text()
        .contains(&format!("{}/ui/accept-invite?token=", app.base)));
    let token = mail.token();
    let path = format!("/ui/accept-invite?token={token}");

    // Someone else signed in: told so, offered to sign out.
    let stranger = new_client();
    app.ui_sign_up(&stranger, &unique_email("stranger")).await;
    let (status, html) = app.page(&stranger, &path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&invitee) && html.contains("but this invitation is for"));
    let csrf = html::csrf_token(&html);
    let res = app
        .submit(
            &stranger,
            "/ui/accept-invite",
            &[("csrf_token", &csrf), ("token", &token)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // Signed out: sign in or sign up to accept; signing up joins.
    let guest = new_client();
    let (_, html) = app.page(&guest, &path).await;
    let org = html::escaped(tenant["name"].as_str().unwrap());
    assert!(html.contains(&format!("<h1>Join {org}</h1>")), "{html}");
    assert!(html.contains("Sign in to accept") && html.contains("Create an account to accept"));
    let (status, html) = app
        .page(&guest, &format!("/ui/sign-up?invite_token={token}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(&format!("value=\"{invitee}\" required readonly"))
            || html.contains(&format!("value=\"{invitee}\"")),
        "{html}"
    );
    let form_token = html::form_token(&html);
    let res = app
        .submit(
            &guest,
            "/ui/sign-up",
            &[
                ("form_token", &form_token),
                ("name", "Grace"),
                ("email", &invitee),
                ("password", PASSWORD),
                ("invite_token", &token),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (html, _) = app.account_page(&guest).await;
    assert!(html.contains(&org), "{html}");
    // Used up.
    let (status, html) = app.page(&new_client(), &path).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("This invitation does not work"));
}

#[tokio::test]
async fn an_invitee_with_an_account_signs_in_and_accepts() {
    let app = TestApp::spawn().await;
    let owner = app.user(&unique_email("owner")).await;
    let tenant = me(&app, &owner).await["tenant"].clone();
    let invitee = unique_email("member");
    app.user(&invitee).await;
    app.send_invite(&owner, tenant["id"].as_str().unwrap(), &invitee, "admin")
        .await;
    let token = app.mail.wait_for(&invitee, 2).await.token();
    let guest = new_client();
    let (_, html) = app
        .page(&guest, &format!("/ui/accept-invite?token={token}"))
        .await;
    // "Sign in to accept" brings you back to the invitation.
    let href = html::href_starting_with(&html, "/ui/sign-in?redirect_to=");
    let (_, html) = app.page(&guest, &href).await;
    let form_token = html::form_token(&html);
    let redirect_to = html::unescape(&html::input_value(&html, "redirect_to"));
    let res = app
        .submit(
            &guest,
            "/ui/sign-in",
            &[
                ("form_token", &form_token),
                ("email", &invitee),
                ("password", PASSWORD),
                ("redirect_to", &redirect_to),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let back = location(&res);
    assert!(
        back.starts_with(&format!("{}/ui/accept-invite?token=", app.base)),
        "{back}"
    );
    let (_, html) = app.page(&guest, &back[app.base.len()..]).await;
    let csrf = html::csrf_token(&html);
    let res = app
        .submit(
            &guest,
            "/ui/accept-invite",
            &[("csrf_token", &csrf), ("token", &token)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    let org = html::escaped(tenant["name"].as_str().unwrap());
    assert!(
        html.contains(&format!("<h1>You joined {org}</h1>")),
        "{html}"
    );
}

#[tokio::test]
async fn after_sign_in_only_allowed_targets_are_followed() {
    let app =
        TestApp::spawn_with(|c| c.cors_origins = vec!["https://app.example.test".into()]).await;
    let email = unique_email("target");
    app.user(&email).await;
    for (asked, expected) in [
        ("https://evil.example/steal", "/ui/account".to_owned()),
        ("//evil.example", "/ui/account".to_owned()),
        ("javascript:alert(1)", "/ui/account".to_owned()),
        (
            "https://app.example.test/welcome",
            "https://app.example.test/welcome".to_owned(),
        ),
        (
            "/ui/account?done=linked",
            format!("{}/ui/account?done=linked", app.base),
        ),
    ] {
        let client = new_client();
        let token = app.form_token(&client, "/ui/sign-in").await;
        let res = app
            .submit(
                &client,
                "/ui/sign-in",
                &[
                    ("form_token", &token),
                    ("email", &email),
                    ("password", PASSWORD),
                    ("redirect_to", asked),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{asked}");
        assert_eq!(location(&res), expected, "{asked}");
    }
}

#[tokio::test]
async fn mail_links_follow_the_operators_templates_and_pages_can_be_off() {
    let app = TestApp::spawn_with(|c| {
        c.ui.verify_email_url = Some("https://app.example.test/verify?t={token}".into());
        c.ui.enabled = false;
    })
    .await;
    let email = unique_email("templated");
    app.unverified_user(&email).await;
    let mail = app.mail.wait_for(&email, 1).await;
    assert!(
        mail.text().contains("https://app.example.test/verify?t="),
        "{}",
        mail.text()
    );
    let res = new_client()
        .get(app.url("/ui/sign-in"))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::NOT_FOUND, "NOT_FOUND").await;
}

#[tokio::test]
async fn the_profile_is_edited_through_the_api_too() {
    let app = TestApp::spawn().await;
    let client = app.user(&unique_email("profile")).await;
    let res = app
        .write(
            &client,
            reqwest::Method::PATCH,
            "/api/v1/auth/me",
            Some(json!({"name": "Ada Lovelace", "first_name": "Ada"})),
        )
        .await;
    let saved = body(res, StatusCode::OK).await;
    assert_eq!(saved["user"]["name"], "Ada Lovelace");
    assert_eq!(saved["user"]["first_name"], "Ada");
    // Left out: kept. Empty: cleared.
    let res = app
        .write(
            &client,
            reqwest::Method::PATCH,
            "/api/v1/auth/me",
            Some(json!({"first_name": ""})),
        )
        .await;
    let cleared = body(res, StatusCode::OK).await;
    assert_eq!(cleared["user"]["name"], "Ada Lovelace");
    assert!(cleared["user"]["first_name"].is_null());
    assert_eq!(me(&app, &client).await["user"]["name"], "Ada Lovelace");
}

#[tokio::test]
async fn social_buttons_come_back_to_the_sign_in_page_and_its_second_step() {
    let app = TestApp::spawn_with(|c| {
        c.oauth.insert(
            "google".into(),
            tessera::config::OAuthProviderConfig {
                client_id: Some("cid".into()),
                ..Default::default()
            },
        );
        c.oauth.insert(
            "github".into(),
            tessera::config::OAuthProviderConfig {
                client_id: Some("gid".into()),
                ..Default::default()
            },
        );
    })
    .await;
    let (_, html) = app
        .page(&new_client(), "/ui/sign-in?redirect_to=/ui/account")
        .await;
    assert!(
        html.contains(">Continue with Google</a>") && html.contains(">Continue with GitHub</a>")
    );
    // The provider sends the browser back to the sign-in page, which then
    // goes on to the same place a password sign-in would.
    let back = format!("{}/ui/sign-in?redirect_to=%2Fui%2Faccount", app.base);
    let mut expected = url::Url::parse(&app.url("/api/v1/auth/oauth/google")).unwrap();
    expected.query_pairs_mut().append_pair("redirect_to", &back);
    let href = expected
        .as_str()
        .trim_start_matches(&app.base)
        .replace('&', "&amp;");
    assert!(html.contains(&format!("href=\"{href}\"")), "{href}\n{html}");
    // With two-step verification on, the provider's return asks for it;
    // the challenge is in the cookie the callback set, never in the URL.
    let res = new_client()
        .get(app.url(
            "/ui/sign-in?redirect_to=%2Fui%2Faccount&two_factor_required=true&challenge=abc123",
        ))
        .header("cookie", "tessera_2fa=from-the-cookie")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(html.contains("<h1>Two-step verification</h1>"));
    assert_eq!(html::input_value(&html, "challenge"), "");
    assert!(!html.contains("abc123") && !html.contains("from-the-cookie"));
    // Without the cookie (it expired), sign in again.
    let (status, html) = app
        .page(
            &new_client(),
            "/ui/sign-in?redirect_to=%2Fui%2Faccount&two_factor_required=true",
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains("<h1>Two-step verification</h1>"));
    assert!(html.contains("This sign-in has expired; sign in again."));
    // Signed in already, the sign-in page goes straight on.
    let client = new_client();
    let email = unique_email("social");
    app.ui_sign_up(&client, &email).await;
    app.verify_address(&email).await;
    let res = client
        .get(app.url("/ui/sign-in?redirect_to=%2Fui%2Faccount%3Fdone%3Dlinked"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&res),
        format!("{}/ui/account?done=linked", app.base)
    );
    // Linking from the account page: off to the provider, with the state
    // cookie that binds the flow to this browser.
    let (html, csrf) = app.account_page(&client).await;
    assert!(html.contains(">Link GitHub</button>") && html.contains(">Link Google</button>"));
    let res = app
        .submit(
            &client,
            "/ui/account/linked/link",
            &[("csrf_token", &csrf), ("provider", "github")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(
        location(&res).starts_with("https://github.com/login/oauth/authorize?"),
        "{}",
        location(&res)
    );
    assert!(set_cookie(&res, "tessera_oauth").is_some());
    // Unlinking what is not linked: said next to the form.
    let res = app
        .submit(
            &client,
            "/ui/account/linked/unlink",
            &[("csrf_token", &csrf), ("provider", "github")],
        )
        .await;
    assert!(res.status().is_client_error());
    assert!(html::has_alert(&res.text().await.unwrap()));
}
