//! The hosted pages under `/ui`: server-rendered HTML (askama templates
//! compiled into the binary) over the same service calls and session
//! cookie as the API. See `docs/hosted-pages.md`.
//!
//! Forms are protected against cross-site posts: signed-in forms carry the
//! session's CSRF token, anonymous ones a token that must match the
//! `tessera_form` cookie set with the page; a present `Origin` must be the
//! public URL's. Errors are the API's, drawn next to their fields.

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;

use crate::crypto::token::{constant_time_eq, csrf_token_for};
use crate::error::AppError;
use crate::http::cookies;
// The session cookie: the canonical surface's.
use crate::http::surface::{origin_allowed, SESSION_COOKIE};
use crate::service::{Credential, Principal, Tessera};

mod account;
mod auth;
mod forms;

/// The cookie anonymous forms are checked against.
const FORM_COOKIE: &str = "tessera_form";

/// Every page and form target, named once: the router mounts
/// [`Page::route`], links, redirects and templates use [`Page::href`]
/// (`{{ Page::SignIn.href() }}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Home,
    Stylesheet,
    SignIn,
    TwoFactor,
    SignUp,
    SignOut,
    ForgotPassword,
    ResetPassword,
    VerifyEmail,
    VerifyEmailResend,
    AcceptInvite,
    Account,
    AccountProfile,
    AccountVerifyResend,
    AccountPassword,
    AccountSetPassword,
    AccountRevokeSession,
    AccountRevokeOtherSessions,
    AccountTokens,
    AccountRevokeToken,
    AccountTotpSetup,
    AccountTotpEnable,
    AccountTotpDisable,
    AccountBackupCodes,
    AccountUnlink,
    AccountLink,
}

impl Page {
    /// The full path, for links, redirects and form actions.
    pub const fn href(self) -> &'static str {
        match self {
            Page::Home => "/ui/",
            Page::Stylesheet => "/ui/static/tessera.css",
            Page::SignIn => "/ui/sign-in",
            Page::TwoFactor => "/ui/two-factor",
            Page::SignUp => "/ui/sign-up",
            Page::SignOut => "/ui/sign-out",
            Page::ForgotPassword => "/ui/forgot-password",
            Page::ResetPassword => "/ui/reset-password",
            Page::VerifyEmail => "/ui/verify-email",
            Page::VerifyEmailResend => "/ui/verify-email/resend",
            Page::AcceptInvite => "/ui/accept-invite",
            Page::Account => "/ui/account",
            Page::AccountProfile => "/ui/account/profile",
            Page::AccountVerifyResend => "/ui/account/verify-email/resend",
            Page::AccountPassword => "/ui/account/password",
            Page::AccountSetPassword => "/ui/account/set-password",
            Page::AccountRevokeSession => "/ui/account/sessions/revoke",
            Page::AccountRevokeOtherSessions => "/ui/account/sessions/revoke-others",
            Page::AccountTokens => "/ui/account/tokens",
            Page::AccountRevokeToken => "/ui/account/tokens/revoke",
            Page::AccountTotpSetup => "/ui/account/two-factor/setup",
            Page::AccountTotpEnable => "/ui/account/two-factor/enable",
            Page::AccountTotpDisable => "/ui/account/two-factor/disable",
            Page::AccountBackupCodes => "/ui/account/two-factor/backup-codes",
            Page::AccountUnlink => "/ui/account/linked/unlink",
            Page::AccountLink => "/ui/account/linked/link",
        }
    }

    /// The path under `/ui`, where the pages' router is nested.
    pub fn route(self) -> &'static str {
        &self.href()["/ui".len()..]
    }
}

pub fn router() -> Router<Arc<Tessera>> {
    Router::new()
        .route(
            Page::Home.route(),
            get(|| async { Redirect::to(Page::Account.href()) }),
        )
        .route(Page::Stylesheet.route(), get(stylesheet))
        .route(
            Page::SignIn.route(),
            get(auth::sign_in_page).post(auth::sign_in),
        )
        .route(Page::TwoFactor.route(), post(auth::two_factor))
        .route(
            Page::SignUp.route(),
            get(auth::sign_up_page).post(auth::sign_up),
        )
        .route(Page::SignOut.route(), post(auth::sign_out))
        .route(
            Page::ForgotPassword.route(),
            get(auth::forgot_page).post(auth::forgot),
        )
        .route(
            Page::ResetPassword.route(),
            get(auth::reset_page).post(auth::reset),
        )
        .route(
            Page::VerifyEmail.route(),
            get(auth::verify_page).post(auth::verify),
        )
        .route(Page::VerifyEmailResend.route(), post(auth::resend))
        .route(
            Page::AcceptInvite.route(),
            get(auth::invite_page).post(auth::accept_invite),
        )
        .route(Page::Account.route(), get(account::page))
        .route(Page::AccountProfile.route(), post(account::profile))
        .route(
            Page::AccountVerifyResend.route(),
            post(account::resend_verification),
        )
        .route(
            Page::AccountPassword.route(),
            post(account::change_password),
        )
        .route(
            Page::AccountSetPassword.route(),
            post(account::set_password),
        )
        .route(
            Page::AccountRevokeSession.route(),
            post(account::revoke_session),
        )
        .route(
            Page::AccountRevokeOtherSessions.route(),
            post(account::revoke_other_sessions),
        )
        .route(Page::AccountTokens.route(), post(account::create_token))
        .route(
            Page::AccountRevokeToken.route(),
            post(account::revoke_token),
        )
        .route(Page::AccountTotpSetup.route(), post(account::totp_setup))
        .route(Page::AccountTotpEnable.route(), post(account::totp_enable))
        .route(
            Page::AccountTotpDisable.route(),
            post(account::totp_disable),
        )
        .route(
            Page::AccountBackupCodes.route(),
            post(account::backup_codes),
        )
        .route(Page::AccountUnlink.route(), post(account::unlink))
        .route(Page::AccountLink.route(), post(account::link))
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            // The stylesheet is the same for every build; pages are not.
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../../static/tessera.css"),
    )
        .into_response()
}

/// What every page's frame needs.
pub struct Layout {
    pub title: &'static str,
    pub brand: String,
    pub wide: bool,
    /// Shown in the header when someone is signed in.
    pub sign_out_csrf: Option<String>,
    pub turnstile_site_key: Option<String>,
}

impl Layout {
    pub fn new(core: &Tessera, title: &'static str) -> Layout {
        Layout {
            title,
            brand: core.config.mfa.issuer.clone(),
            wide: false,
            sign_out_csrf: None,
            turnstile_site_key: core
                .config
                .turnstile
                .secret
                .as_ref()
                .and(core.config.turnstile.site_key.clone()),
        }
    }

    pub fn signed_in(mut self, viewer: &Viewer) -> Layout {
        self.sign_out_csrf = Some(viewer.csrf.clone());
        self
    }
}

/// A form's state when it is drawn again: what was typed (never
/// passwords), the errors by field, and a sentence for the top.
#[derive(Default)]
pub struct FormState {
    values: BTreeMap<&'static str, String>,
    errors: BTreeMap<String, String>,
    pub alert: Option<String>,
    pub notice: Option<String>,
}

impl FormState {
    pub fn with(mut self, field: &'static str, value: &str) -> Self {
        self.values.insert(field, value.to_owned());
        self
    }

    pub fn val(&self, field: &str) -> &str {
        self.values.get(field).map_or("", String::as_str)
    }

    pub fn err(&self, field: &str) -> Option<&str> {
        self.errors.get(field).map(String::as_str)
    }

    /// Places an error of the service: each field's reason next to the
    /// field (as a sentence), anything else at the top.
    pub fn error(mut self, err: AppError) -> Self {
        let (alert, errors) = split_error(err);
        self.alert = alert;
        self.errors = errors;
        self
    }
}

/// An error as the pages show it: a sentence for the top (unless only
/// fields were wrong) and one per field.
pub fn split_error(err: AppError) -> (Option<String>, BTreeMap<String, String>) {
    match err.fields {
        Some(fields) if !fields.is_empty() => {
            let errors = fields
                .into_iter()
                .map(|(field, reason)| {
                    let sentence =
                        format!("{} {}.", field_label(&field), reason.trim_end_matches('.'));
                    (field, sentence)
                })
                .collect();
            (None, errors)
        }
        _ => (Some(err.message), BTreeMap::new()),
    }
}

/// How a field the service names is called on the pages.
fn field_label(field: &str) -> String {
    let label = match field {
        "email" => "Email",
        "password" => "Password",
        "new_password" => "The new password",
        "current_password" => "The current password",
        "name" => "Name",
        "first_name" => "First name",
        "last_name" => "Last name",
        "code" => "The code",
        "backup_code" => "The backup code",
        "token" => "This link",
        "invite_token" => "This invitation",
        "challenge" => "This sign-in",
        "scopes" => "Scopes",
        "expires_in_days" => "The expiry",
        other => return capitalise(&other.replace('_', " ")),
    };
    label.to_owned()
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The signed-in person looking at a page, from the session cookie only.
pub struct Viewer {
    pub principal: Principal,
    /// The session's CSRF token, for the page's forms.
    pub csrf: String,
}

impl Viewer {
    /// Checks a posted CSRF token against the session's.
    pub fn check(&self, sent: &str) -> Result<(), FormRefused> {
        if constant_time_eq(sent, &self.csrf) {
            Ok(())
        } else {
            Err(FormRefused)
        }
    }
}

impl OptionalFromRequestParts<Arc<Tessera>> for Viewer {
    /// A page saying the service could not tell (the database is down):
    /// not "signed out", which would send someone signed in to sign in.
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        core: &Arc<Tessera>,
    ) -> Result<Option<Self>, Self::Rejection> {
        // Any valid copy of the cookie signs in (see `cookies::values`).
        for secret in cookies::values(&parts.headers, SESSION_COOKIE) {
            match core.authenticate(Credential::Cookie(&secret)).await {
                Ok(Some(principal)) => {
                    return Ok(Some(Viewer {
                        csrf: csrf_token_for(&secret),
                        principal,
                    }))
                }
                Ok(None) => continue,
                Err(err) => return Err(error_page(core, err)),
            }
        }
        Ok(None)
    }
}

/// A page that needs someone signed in; everyone else is sent to sign in
/// and brought back.
pub struct SignedIn(pub Viewer);

impl FromRequestParts<Arc<Tessera>> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        core: &Arc<Tessera>,
    ) -> Result<Self, Self::Rejection> {
        let viewer =
            <Viewer as OptionalFromRequestParts<_>>::from_request_parts(parts, core).await?;
        match viewer {
            Some(viewer) => Ok(SignedIn(viewer)),
            None => {
                let back = if parts.method == axum::http::Method::GET {
                    parts
                        .uri
                        .path_and_query()
                        .map(|p| p.as_str())
                        .unwrap_or(Page::Account.href())
                } else {
                    Page::Account.href()
                };
                let target = format!("{}{back}", core.config.public_base());
                Err(see_other(&sign_in_href(&target)))
            }
        }
    }
}

/// The query of a page; anything unreadable reads as absent.
pub fn query<T: DeserializeOwned + Default>(raw: Option<String>) -> T {
    serde_urlencoded::from_str(raw.as_deref().unwrap_or_default()).unwrap_or_default()
}

/// `/ui/sign-in?redirect_to=…`
pub fn sign_in_href(redirect_to: &str) -> String {
    with_query(Page::SignIn.href(), &[("redirect_to", redirect_to)])
}

pub fn with_query(path: &str, pairs: &[(&str, &str)]) -> String {
    let pairs: Vec<_> = pairs.iter().filter(|(_, v)| !v.is_empty()).collect();
    if pairs.is_empty() {
        return path.to_owned();
    }
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        query.append_pair(k, v);
    }
    format!("{path}?{}", query.finish())
}

/// What the form tokens are signed for.
const FORM_PURPOSE: &str = "tessera-form-v1";

/// The anonymous-form token of this browser: the cookie's when Tessera
/// signed it, else a new signed one (with the cookie to set).
pub fn form_token(core: &Tessera, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    if let Some(token) =
        cookies::value(headers, FORM_COOKIE).filter(|t| core.form_signer.verify(t, FORM_PURPOSE))
    {
        return (token, None);
    }
    let token = core.form_signer.issue(FORM_PURPOSE);
    let header = cookies::set(core, FORM_COOKIE, &token, "/ui", None);
    (token, Some(header))
}

/// Checks an anonymous form: its token must be one Tessera signed and
/// match the cookie (a cookie planted by whoever can set cookies for the
/// domain is not enough), and a present `Origin` must be the public URL's.
pub fn check_anonymous_form(
    core: &Tessera,
    headers: &HeaderMap,
    sent: &str,
) -> Result<(), FormRefused> {
    check_origin(core, headers)?;
    match cookies::value(headers, FORM_COOKIE) {
        Some(cookie)
            if !sent.is_empty()
                && constant_time_eq(&cookie, sent)
                && core.form_signer.verify(&cookie, FORM_PURPOSE) =>
        {
            Ok(())
        }
        _ => Err(FormRefused),
    }
}

/// A present `Origin` must be the public URL's (browsers send it with
/// every form post); unlike the API surfaces, no CORS origin may post.
pub fn check_origin(core: &Tessera, headers: &HeaderMap) -> Result<(), FormRefused> {
    if origin_allowed(core, headers, false) {
        Ok(())
    } else {
        Err(FormRefused)
    }
}

/// A form that failed its CSRF check; answered with a page saying so.
#[derive(Debug)]
pub struct FormRefused;

impl IntoResponse for FormRefused {
    fn into_response(self) -> Response {
        forbidden_form()
    }
}

fn forbidden_form() -> Response {
    // Drawn without the core: a fixed, self-contained page.
    let body = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
        <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
        <title>Form expired</title><link rel=\"stylesheet\" href=\"/ui/static/tessera.css\"></head>\
        <body><main id=\"main\" class=\"card\"><h1>This form has expired</h1>\
        <div class=\"alert error\" role=\"alert\">The form was too old, or was sent from another site. \
        Go back, reload the page and try again.</div></main></body></html>";
    html(StatusCode::FORBIDDEN, body.to_owned(), None)
}

/// `303 See Other` to a page.
pub fn see_other(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(location) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// An HTML page with the pages' security headers, setting `cookie` when
/// given.
pub fn html(status: StatusCode, body: String, cookie: Option<HeaderValue>) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    // Not `no-referrer` as elsewhere: browsers then send `Origin: null` with
    // a form, and the origin check needs the real one. Nothing leaves the
    // site either way.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if let Some(cookie) = cookie {
        headers.append(header::SET_COOKIE, cookie);
    }
    response
}

/// Same-origin everything; the bot-check widget, when on, from its origin.
const CSP: &str = "default-src 'self'; img-src 'self' data:; \
    script-src 'self' https://challenges.cloudflare.com; frame-src https://challenges.cloudflare.com; \
    base-uri 'none'; object-src 'none'; frame-ancestors 'none'";

/// Renders a template into a page.
pub fn render(status: StatusCode, page: &impl Template, cookie: Option<HeaderValue>) -> Response {
    match page.render() {
        Ok(body) => html(status, body, cookie),
        Err(err) => AppError::internal(anyhow::anyhow!("rendering a page: {err}")).into_response(),
    }
}

/// A link on a message page.
pub struct Link {
    pub href: String,
    pub label: &'static str,
}

/// A page with a heading, a sentence and maybe a link.
#[derive(Template)]
#[template(path = "ui/message.html")]
pub struct MessagePage {
    pub layout: Layout,
    pub heading: String,
    pub text: String,
    pub more: Vec<String>,
    pub is_error: bool,
    pub is_status: bool,
    pub link: Option<Link>,
}

impl MessagePage {
    pub fn new(layout: Layout, heading: impl Into<String>, text: impl Into<String>) -> MessagePage {
        MessagePage {
            layout,
            heading: heading.into(),
            text: text.into(),
            more: Vec::new(),
            is_error: false,
            is_status: false,
            link: None,
        }
    }

    pub fn link(mut self, href: impl Into<String>, label: &'static str) -> Self {
        self.link = Some(Link {
            href: href.into(),
            label,
        });
        self
    }
}

/// An error that is not about a form's fields (the rate limit, the hash
/// pool, the database), as a page with its status.
pub fn error_page(core: &Tessera, mut err: AppError) -> Response {
    let status = crate::http::error::status(err.code);
    let retry_after = err.retry_after;
    let heading = if err.code == crate::error::ErrorCode::Unavailable {
        "Temporarily unavailable"
    } else {
        "Something went wrong"
    };
    let mut page = MessagePage::new(Layout::new(core, heading), heading, err.message.clone());
    page.is_error = true;
    page = page.link(Page::SignIn.href(), "Back to sign in");
    let mut response = render(status, &page, None);
    crate::http::error::note(&mut response, &mut err);
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// The answer to a form the service refused: the form drawn again (by
/// `draw`) with each error next to its field, or a page of its own for
/// errors that are not the form's (limits, outages).
pub fn redraw(
    core: &Tessera,
    err: AppError,
    form: FormState,
    draw: impl FnOnce(FormState, StatusCode) -> Response,
) -> Response {
    if !is_form_error(&err) {
        return error_page(core, err);
    }
    let status = crate::http::error::status(err.code);
    draw(form.error(err), status)
}

/// Whether an error belongs next to a form (its fields, a wrong password,
/// a refusal) rather than on a page of its own (limits, outages).
pub fn is_form_error(err: &AppError) -> bool {
    use crate::error::ErrorCode::*;
    !matches!(
        err.code,
        RateLimited | Internal | Unavailable | PayloadTooLarge
    )
}

/// Where someone goes after signing in or up: an allowed `redirect_to`,
/// else the app URL when one is configured, else the account page.
pub fn landing(core: &Tessera, redirect_to: &str) -> String {
    let redirect_to = redirect_to.trim();
    if !redirect_to.is_empty() {
        if let Some(url) = core.redirect_target(redirect_to) {
            return url.to_string();
        }
    }
    match &core.config.app_url {
        Some(app) => app.to_string(),
        None => Page::Account.href().to_owned(),
    }
}

/// The display name of a configured provider.
pub fn provider_label(name: &str) -> String {
    match name {
        "github" => "GitHub".to_owned(),
        "gitlab" => "GitLab".to_owned(),
        other => capitalise(other),
    }
}

/// The providers that are configured (have a client id), by name.
pub fn providers(core: &Tessera) -> Vec<String> {
    core.config
        .oauth
        .iter()
        .filter(|(_, p)| p.client_id.is_some())
        .map(|(name, _)| name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::FieldErrors;

    #[test]
    fn field_errors_become_sentences_by_their_fields() {
        let mut fields = FieldErrors::new();
        fields.insert("password".into(), "must be at least 8 characters".into());
        fields.insert("current_password".into(), "is wrong".into());
        let (alert, errors) = split_error(AppError::fields(fields));
        assert_eq!(alert, None);
        assert_eq!(
            errors["password"],
            "Password must be at least 8 characters."
        );
        assert_eq!(errors["current_password"], "The current password is wrong.");
        let (alert, errors) = split_error(AppError::unauthorized());
        assert!(alert.is_some_and(|a| !a.is_empty()));
        assert!(errors.is_empty());
    }

    #[test]
    fn query_strings_are_encoded_and_empty_values_left_out() {
        assert_eq!(
            with_query("/ui/sign-in", &[("redirect_to", "https://a.test/x?y=1&z")]),
            "/ui/sign-in?redirect_to=https%3A%2F%2Fa.test%2Fx%3Fy%3D1%26z"
        );
        assert_eq!(
            with_query("/ui/sign-up", &[("invite_token", "")]),
            "/ui/sign-up"
        );
    }
}
