//! The pages around signing in: sign in (and its second step), sign up,
//! sign out, recovery, email verification and invitations.

use std::sync::Arc;

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::forms::{form_tokens, AnonymousForm, SignedInForm, UiForm};
use super::{
    error_page, form_token, is_form_error, landing, provider_label, providers, query, redraw,
    render, see_other, sign_in_href, with_query, FormState, Layout, MessagePage, Page, Viewer,
    SESSION_COOKIE,
};
use crate::error::AppResult;
use crate::http::{bot, cookies};
use crate::mail::templates::lifetime;
use crate::service::{
    ClientInfo, LoginOutcome, SecondFactor, SignupInput, Tessera, INVITE_TTL, RESET_TTL, VERIFY_TTL,
};

form_tokens!(FormToken::form_token for SignInForm, TwoFactorForm, SignUpForm, EmailForm, ResetForm, VerifyForm);
form_tokens!(CsrfToken::csrf_token for AcceptForm);

fn none_if_empty(value: &str) -> Option<&str> {
    Some(value.trim()).filter(|v| !v.is_empty())
}

/// The bot check of a form's widget token (a pass when the check is off).
async fn human(core: &Tessera, client: &ClientInfo, token: &str) -> AppResult<()> {
    bot::verify(core, none_if_empty(token), client.addr).await
}

/// A signed-in answer: the session cookie, then on to `to`.
fn signed_in(
    core: &Tessera,
    secret: &str,
    device: Option<&str>,
    expires_at: chrono::DateTime<chrono::Utc>,
    to: &str,
) -> Response {
    let mut response = see_other(to);
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        cookies::set_session(core, SESSION_COOKIE, secret, expires_at),
    );
    if let Some(device) = device {
        headers.append(header::SET_COOKIE, cookies::set_device(core, device));
    }
    response
}

/// One configured provider's button on the sign-in page.
pub struct ProviderButton {
    pub href: String,
    pub label: String,
}

#[derive(Template)]
#[template(path = "ui/sign_in.html")]
struct SignInPage {
    layout: Layout,
    form: FormState,
    form_token: String,
    redirect_to: String,
    providers: Vec<ProviderButton>,
    sign_up_href: String,
}

#[derive(Template)]
#[template(path = "ui/two_factor.html")]
struct TwoFactorPage {
    layout: Layout,
    form: FormState,
    form_token: String,
    challenge: String,
    redirect_to: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SignInQuery {
    redirect_to: String,
    /// Back from a social sign-in that needs the second step (whose
    /// challenge is in the `tessera_2fa` cookie, never in the URL).
    two_factor_required: String,
    notice: String,
}

fn sign_in_page_for(
    core: &Tessera,
    headers: &HeaderMap,
    redirect_to: &str,
    form: FormState,
    status: StatusCode,
) -> Response {
    let (token, cookie) = form_token(core, headers);
    // A social sign-in comes back here, so the same rules decide where to go
    // next (and its second step is asked here).
    let back = format!(
        "{}{}",
        core.config.public_base(),
        with_query(Page::SignIn.href(), &[("redirect_to", redirect_to)])
    );
    let providers = providers(core)
        .into_iter()
        .map(|name| ProviderButton {
            href: with_query(
                &format!("/api/v1/auth/oauth/{name}"),
                &[("redirect_to", &back)],
            ),
            label: provider_label(&name),
        })
        .collect();
    let page = SignInPage {
        layout: Layout::new(core, "Sign in"),
        form,
        form_token: token,
        redirect_to: redirect_to.to_owned(),
        providers,
        sign_up_href: with_query(Page::SignUp.href(), &[("redirect_to", redirect_to)]),
    };
    render(status, &page, cookie)
}

fn two_factor_page(
    core: &Tessera,
    headers: &HeaderMap,
    challenge: &str,
    redirect_to: &str,
    form: FormState,
    status: StatusCode,
) -> Response {
    let (token, cookie) = form_token(core, headers);
    let page = TwoFactorPage {
        layout: Layout::new(core, "Two-step verification"),
        form,
        form_token: token,
        challenge: challenge.to_owned(),
        redirect_to: redirect_to.to_owned(),
    };
    render(status, &page, cookie)
}

pub async fn sign_in_page(
    State(core): State<Arc<Tessera>>,
    viewer: Option<Viewer>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let q: SignInQuery = query(raw);
    let mut form = FormState::default();
    if q.two_factor_required == "true" {
        // The form leaves the challenge out: its POST reads the cookie.
        if cookies::value(&headers, cookies::TWO_FACTOR).is_some() {
            return two_factor_page(
                &core,
                &headers,
                "",
                &q.redirect_to,
                FormState::default(),
                StatusCode::OK,
            );
        }
        form.alert = Some("This sign-in has expired; sign in again.".into());
    }
    if viewer.is_some() {
        return see_other(&landing(&core, &q.redirect_to));
    }
    if q.notice == "signed-out" {
        form.notice = Some("You are signed out.".into());
    }
    sign_in_page_for(&core, &headers, &q.redirect_to, form, StatusCode::OK)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SignInForm {
    form_token: String,
    email: String,
    password: String,
    redirect_to: String,
    #[serde(rename = "cf-turnstile-response")]
    turnstile: String,
}

pub async fn sign_in(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    headers: HeaderMap,
    AnonymousForm(f): AnonymousForm<SignInForm>,
) -> Response {
    let outcome = async {
        human(&core, &client, &f.turnstile).await?;
        core.login(&f.email, &f.password, &client).await
    }
    .await;
    match outcome {
        Ok(LoginOutcome::LoggedIn {
            secret,
            session,
            device,
            ..
        }) => signed_in(
            &core,
            &secret,
            Some(&device),
            session.expires_at,
            &landing(&core, &f.redirect_to),
        ),
        Ok(LoginOutcome::TwoFactorRequired { challenge }) => two_factor_page(
            &core,
            &headers,
            &challenge,
            &f.redirect_to,
            FormState::default(),
            StatusCode::OK,
        ),
        Err(err) => redraw(
            &core,
            err,
            FormState::default().with("email", &f.email),
            |form, status| sign_in_page_for(&core, &headers, &f.redirect_to, form, status),
        ),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct TwoFactorForm {
    form_token: String,
    challenge: String,
    code: String,
    backup_code: String,
    redirect_to: String,
}

pub async fn two_factor(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    headers: HeaderMap,
    AnonymousForm(f): AnonymousForm<TwoFactorForm>,
) -> Response {
    let challenge = cookies::two_factor_challenge(Some(&f.challenge), &headers);
    let factor = SecondFactor::codes(none_if_empty(&f.code), none_if_empty(&f.backup_code));
    match core.verify_two_factor(&challenge, factor, &client).await {
        Ok(LoginOutcome::LoggedIn {
            secret,
            session,
            device,
            ..
        }) => {
            let mut response = signed_in(
                &core,
                &secret,
                Some(&device),
                session.expires_at,
                &landing(&core, &f.redirect_to),
            );
            if cookies::value(&headers, cookies::TWO_FACTOR).is_some() {
                response.headers_mut().append(
                    header::SET_COOKIE,
                    cookies::clear_session(&core, cookies::TWO_FACTOR),
                );
            }
            response
        }
        // Not an answer the second step gives; start again.
        Ok(LoginOutcome::TwoFactorRequired { .. }) => see_other(Page::SignIn.href()),
        Err(err)
            if err
                .fields
                .as_ref()
                .is_some_and(|f| f.contains_key("challenge")) =>
        {
            let page = MessagePage::new(
                Layout::new(&core, "Sign in again"),
                "Sign in again",
                "This sign-in has expired or was already used; sign in again.",
            )
            .link(sign_in_href(&f.redirect_to), "Sign in");
            render(StatusCode::UNPROCESSABLE_ENTITY, &page, None)
        }
        Err(err) => redraw(&core, err, FormState::default(), |form, status| {
            two_factor_page(&core, &headers, &f.challenge, &f.redirect_to, form, status)
        }),
    }
}

#[derive(Template)]
#[template(path = "ui/sign_up.html")]
struct SignUpPage {
    layout: Layout,
    form: FormState,
    form_token: String,
    redirect_to: String,
    invite_token: String,
    /// The organization an invitation joins.
    joining: Option<String>,
    sign_in_href: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SignUpQuery {
    redirect_to: String,
    invite_token: String,
}

async fn sign_up_page_for(
    core: &Tessera,
    headers: &HeaderMap,
    redirect_to: &str,
    invite_token: &str,
    mut form: FormState,
    status: StatusCode,
) -> Response {
    let mut joining = None;
    if !invite_token.is_empty() {
        match core.invite_preview(invite_token).await {
            Ok(invite) => {
                joining = Some(invite.tenant_name);
                form = form.with("email", &invite.email);
            }
            Err(_) => {
                form.alert.get_or_insert_with(|| {
                    "This invitation is no longer valid; you can still create an account.".into()
                });
            }
        }
    }
    let (token, cookie) = form_token(core, headers);
    let page = SignUpPage {
        layout: Layout::new(core, "Create your account"),
        form,
        form_token: token,
        redirect_to: redirect_to.to_owned(),
        invite_token: if joining.is_some() {
            invite_token.to_owned()
        } else {
            String::new()
        },
        joining,
        sign_in_href: sign_in_href(redirect_to),
    };
    render(status, &page, cookie)
}

pub async fn sign_up_page(
    State(core): State<Arc<Tessera>>,
    viewer: Option<Viewer>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let q: SignUpQuery = query(raw);
    if viewer.is_some() && q.invite_token.is_empty() {
        return see_other(&landing(&core, &q.redirect_to));
    }
    sign_up_page_for(
        &core,
        &headers,
        &q.redirect_to,
        &q.invite_token,
        FormState::default(),
        StatusCode::OK,
    )
    .await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SignUpForm {
    form_token: String,
    name: String,
    email: String,
    password: String,
    redirect_to: String,
    invite_token: String,
    #[serde(rename = "cf-turnstile-response")]
    turnstile: String,
}

pub async fn sign_up(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    headers: HeaderMap,
    AnonymousForm(f): AnonymousForm<SignUpForm>,
) -> Response {
    let outcome = async {
        human(&core, &client, &f.turnstile).await?;
        let input = SignupInput {
            email: f.email.clone(),
            password: f.password.clone(),
            name: none_if_empty(&f.name).map(str::to_owned),
            first_name: None,
            last_name: None,
            tenant_name: None,
            invite_token: none_if_empty(&f.invite_token).map(str::to_owned),
            without_session: false,
            verify_callback: None,
        };
        core.signup(input, &client).await
    }
    .await;
    match outcome {
        Ok(outcome) => match outcome.session {
            Some((secret, session)) => signed_in(
                &core,
                &secret,
                None,
                session.expires_at,
                &landing(&core, &f.redirect_to),
            ),
            None => {
                let page = MessagePage::new(
                    Layout::new(&core, "Check your inbox"),
                    "Check your inbox",
                    format!(
                        "We have sent a link to {} to confirm the address; open it, then sign in.",
                        outcome.user.email
                    ),
                )
                .link(sign_in_href(&f.redirect_to), "Sign in");
                render(StatusCode::CREATED, &page, None)
            }
        },
        Err(err) if is_form_error(&err) => {
            let status = crate::http::error::status(err.code);
            let form = FormState::default()
                .with("name", &f.name)
                .with("email", &f.email)
                .error(err);
            sign_up_page_for(
                &core,
                &headers,
                &f.redirect_to,
                &f.invite_token,
                form,
                status,
            )
            .await
        }
        Err(err) => error_page(&core, err),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SignOutForm {
    csrf_token: String,
    /// A page of ours to go to afterwards (an invitation, to sign in as
    /// someone else).
    next: String,
}

pub async fn sign_out(
    State(core): State<Arc<Tessera>>,
    viewer: Option<Viewer>,
    client: ClientInfo,
    UiForm(f): UiForm<SignOutForm>,
) -> Response {
    let next = if f.next.starts_with(Page::Home.href()) && !f.next.starts_with("/ui//") {
        f.next.clone()
    } else {
        format!("{}?notice=signed-out", Page::SignIn.href())
    };
    if let Some(viewer) = viewer {
        if let Err(refused) = viewer.check(&f.csrf_token) {
            return refused.into_response();
        }
        if let Err(err) = core.logout(&viewer.principal, &client).await {
            return error_page(&core, err);
        }
    }
    let mut response = see_other(&next);
    response.headers_mut().append(
        header::SET_COOKIE,
        cookies::clear_session(&core, SESSION_COOKIE),
    );
    response
}

#[derive(Template)]
#[template(path = "ui/forgot.html")]
struct ForgotPage {
    layout: Layout,
    form: FormState,
    form_token: String,
}

fn forgot_page_for(
    core: &Tessera,
    headers: &HeaderMap,
    form: FormState,
    status: StatusCode,
) -> Response {
    let (token, cookie) = form_token(core, headers);
    let page = ForgotPage {
        layout: Layout::new(core, "Reset your password"),
        form,
        form_token: token,
    };
    render(status, &page, cookie)
}

pub async fn forgot_page(State(core): State<Arc<Tessera>>, headers: HeaderMap) -> Response {
    forgot_page_for(&core, &headers, FormState::default(), StatusCode::OK)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct EmailForm {
    form_token: String,
    email: String,
    #[serde(rename = "cf-turnstile-response")]
    turnstile: String,
}

pub async fn forgot(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    headers: HeaderMap,
    AnonymousForm(f): AnonymousForm<EmailForm>,
) -> Response {
    let sent = async {
        human(&core, &client, &f.turnstile).await?;
        core.forgot_password(&f.email)
    }
    .await;
    match sent {
        Ok(()) => {
            let form = FormState {
                notice: Some(
                    "If an account exists for that address, we have sent it a link to reset the password."
                        .into(),
                ),
                ..FormState::default()
            };
            forgot_page_for(&core, &headers, form, StatusCode::OK)
        }
        Err(err) => redraw(
            &core,
            err,
            FormState::default().with("email", &f.email),
            |form, status| forgot_page_for(&core, &headers, form, status),
        ),
    }
}

#[derive(Template)]
#[template(path = "ui/reset.html")]
struct ResetPage {
    layout: Layout,
    form: FormState,
    form_token: String,
    token: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct TokenQuery {
    token: String,
    /// The verification link's landing (dashboard sign-up's `callbackURL`).
    #[serde(rename = "callbackURL")]
    callback_url: String,
}

fn dead_reset_link(core: &Tessera) -> Response {
    let page = MessagePage::new(
        Layout::new(core, "This link does not work"),
        "This link does not work",
        format!(
            "The link is wrong, was already used, or has expired (reset links work for {}). \
             Ask for a new one.",
            lifetime(RESET_TTL)
        ),
    )
    .link(Page::ForgotPassword.href(), "Ask for a new link");
    render(StatusCode::UNPROCESSABLE_ENTITY, &page, None)
}

fn reset_page_for(
    core: &Tessera,
    headers: &HeaderMap,
    token: &str,
    form: FormState,
    status: StatusCode,
) -> Response {
    let (form_token, cookie) = form_token(core, headers);
    let page = ResetPage {
        layout: Layout::new(core, "Choose a new password"),
        form,
        form_token,
        token: token.to_owned(),
    };
    render(status, &page, cookie)
}

pub async fn reset_page(
    State(core): State<Arc<Tessera>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let q: TokenQuery = query(raw);
    match core.reset_token_usable(&q.token).await {
        Ok(true) => reset_page_for(
            &core,
            &headers,
            &q.token,
            FormState::default(),
            StatusCode::OK,
        ),
        Ok(false) => dead_reset_link(&core),
        Err(err) => error_page(&core, err),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ResetForm {
    form_token: String,
    token: String,
    password: String,
}

pub async fn reset(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    headers: HeaderMap,
    AnonymousForm(f): AnonymousForm<ResetForm>,
) -> Response {
    match core.reset_password(&f.token, &f.password, &client).await {
        Ok(_) => {
            let page = MessagePage::new(
                Layout::new(&core, "Password changed"),
                "Password changed",
                "Your new password is set, and every session of the account is signed out.",
            )
            .link(Page::SignIn.href(), "Sign in");
            let mut response = render(StatusCode::OK, &page, None);
            response.headers_mut().append(
                header::SET_COOKIE,
                cookies::clear_session(&core, SESSION_COOKIE),
            );
            response
        }
        Err(err) if err.fields.as_ref().is_some_and(|f| f.contains_key("token")) => {
            dead_reset_link(&core)
        }
        Err(err) => redraw(&core, err, FormState::default(), |form, status| {
            reset_page_for(&core, &headers, &f.token, form, status)
        }),
    }
}

#[derive(Template)]
#[template(path = "ui/verify_failed.html")]
struct VerifyFailedPage {
    layout: Layout,
    form: FormState,
    form_token: String,
    /// How long a verification link works.
    link_life: String,
}

fn verify_failed(
    core: &Tessera,
    headers: &HeaderMap,
    form: FormState,
    status: StatusCode,
) -> Response {
    let (token, cookie) = form_token(core, headers);
    let page = VerifyFailedPage {
        layout: Layout::new(core, "This link does not work"),
        form,
        form_token: token,
        link_life: lifetime(VERIFY_TTL),
    };
    render(status, &page, cookie)
}

#[derive(Template)]
#[template(path = "ui/verify_confirm.html")]
struct VerifyConfirmPage {
    layout: Layout,
    form_token: String,
    token: String,
    callback_url: String,
}

/// The mailed verification link: opening it verifies nothing (a mail
/// scanner that fetches links must not finish an account that someone else
/// created with this address); it shows a button whose POST does.
pub async fn verify_page(
    State(core): State<Arc<Tessera>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let q: TokenQuery = query(raw);
    match core.verification_token_usable(&q.token).await {
        Ok(true) => {
            let (form_token, cookie) = form_token(&core, &headers);
            let page = VerifyConfirmPage {
                layout: Layout::new(&core, "Confirm your email address"),
                form_token,
                token: q.token,
                callback_url: q.callback_url,
            };
            render(StatusCode::OK, &page, cookie)
        }
        Ok(false) => verify_failed(
            &core,
            &headers,
            FormState::default(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(err) => error_page(&core, err),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct VerifyForm {
    form_token: String,
    token: String,
    #[serde(rename = "callbackURL")]
    callback_url: String,
}

/// The button of the verification page: verifies the address and joins the
/// organizations that invited it.
pub async fn verify(
    State(core): State<Arc<Tessera>>,
    headers: HeaderMap,
    AnonymousForm(f): AnonymousForm<VerifyForm>,
) -> Response {
    match core.verify_email_and_join(&f.token).await {
        // Where the app asked to land, when the allowlist agrees.
        Ok(_) if !f.callback_url.is_empty() && core.redirect_target(&f.callback_url).is_some() => {
            see_other(core.redirect_or_app(Some(&f.callback_url)).as_str())
        }
        Ok(user) => {
            let page = MessagePage::new(
                Layout::new(&core, "Email verified"),
                "Email verified",
                format!("{} is confirmed as your address.", user.email),
            )
            .link(landing(&core, ""), "Continue");
            render(StatusCode::OK, &page, None)
        }
        Err(err) if is_form_error(&err) => verify_failed(
            &core,
            &headers,
            FormState::default(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(err) => error_page(&core, err),
    }
}

pub async fn resend(
    State(core): State<Arc<Tessera>>,
    headers: HeaderMap,
    AnonymousForm(f): AnonymousForm<EmailForm>,
) -> Response {
    match core.resend_verification(&f.email) {
        Ok(()) => {
            let form = FormState {
                notice: Some(
                    "If that address has an account waiting for confirmation, we have sent it a new link."
                        .into(),
                ),
                ..FormState::default()
            };
            verify_failed(&core, &headers, form, StatusCode::OK)
        }
        Err(err) => redraw(
            &core,
            err,
            FormState::default().with("email", &f.email),
            |form, status| verify_failed(&core, &headers, form, status),
        ),
    }
}

/// Who is looking at an invitation.
pub enum InviteViewer {
    /// Signed in with the invited address (the CSRF token for accepting).
    Invited(String),
    /// Signed in as someone else: (their email, the CSRF token to sign out).
    Other(String, String),
    Nobody,
}

#[derive(Template)]
#[template(path = "ui/invite.html")]
struct InvitePage {
    layout: Layout,
    org: String,
    role: String,
    invited: String,
    token: String,
    viewer: InviteViewer,
    alert: Option<String>,
    self_href: String,
    sign_in_href: String,
    sign_up_href: String,
}

fn dead_invitation(core: &Tessera) -> Response {
    let page = MessagePage::new(
        Layout::new(core, "This invitation does not work"),
        "This invitation does not work",
        format!(
            "The link is wrong, was already used, was withdrawn, or has expired \
             (invitations work for {}). Ask whoever invited you for a new one.",
            lifetime(INVITE_TTL)
        ),
    );
    render(StatusCode::UNPROCESSABLE_ENTITY, &page, None)
}

pub async fn invite_page(
    State(core): State<Arc<Tessera>>,
    viewer: Option<Viewer>,
    RawQuery(raw): RawQuery,
) -> Response {
    let q: TokenQuery = query(raw);
    let invite = match core.invite_preview(&q.token).await {
        Ok(invite) => invite,
        Err(err) if is_form_error(&err) => return dead_invitation(&core),
        Err(err) => return error_page(&core, err),
    };
    let self_href = with_query(Page::AcceptInvite.href(), &[("token", &q.token)]);
    let mut layout = Layout::new(&core, "Invitation");
    let who = match &viewer {
        Some(v) if v.principal.user.email == invite.email => InviteViewer::Invited(v.csrf.clone()),
        Some(v) => InviteViewer::Other(v.principal.user.email.clone(), v.csrf.clone()),
        None => InviteViewer::Nobody,
    };
    if let Some(v) = &viewer {
        layout = layout.signed_in(v);
    }
    let page = InvitePage {
        layout,
        org: invite.tenant_name,
        role: invite.role.to_string(),
        invited: invite.email,
        token: q.token.clone(),
        viewer: who,
        alert: None,
        sign_in_href: sign_in_href(&format!("{}{self_href}", core.config.public_base())),
        sign_up_href: with_query(Page::SignUp.href(), &[("invite_token", &q.token)]),
        self_href,
    };
    render(StatusCode::OK, &page, None)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AcceptForm {
    csrf_token: String,
    token: String,
}

pub async fn accept_invite(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    SignedInForm(viewer, f): SignedInForm<AcceptForm>,
) -> Response {
    match core
        .accept_invite(&viewer.principal, &f.token, &client)
        .await
    {
        Ok(joined) => {
            let layout = Layout::new(&core, "Invitation accepted").signed_in(&viewer);
            let page = MessagePage::new(
                layout,
                format!("You joined {}", joined.name),
                format!("You are a member of {} ({}).", joined.name, joined.role),
            )
            .link(landing(&core, ""), "Continue");
            render(StatusCode::OK, &page, None)
        }
        Err(err) if err.fields.is_some() => dead_invitation(&core),
        Err(err) => {
            let status = crate::http::error::status(err.code);
            let layout = Layout::new(&core, "Invitation").signed_in(&viewer);
            let mut page = MessagePage::new(layout, "The invitation was not accepted", err.message);
            page.is_error = true;
            render(status, &page, None)
        }
    }
}
