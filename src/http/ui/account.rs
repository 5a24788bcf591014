//! The account page: profile and organizations, password, sessions,
//! personal access tokens, two-step verification and linked accounts.
//! Each action posts to its own path; a plain success comes back to the
//! page with a notice (post, redirect, get), while secrets shown once (a new
//! token, backup codes, a TOTP key) are drawn in the answer itself.

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::forms::{form_tokens, SignedInForm};
use super::{
    error_page, is_form_error, provider_label, providers, query, render, see_other, split_error,
    Layout, Page, SignedIn, Viewer,
};
use crate::error::{AppError, AppResult};
use crate::http::oauth;
use crate::mail::templates::lifetime;
use crate::service::{
    ClientInfo, NewPatInput, OAuthCallback, SecondFactor, Tessera, TotpSetup, VERIFY_TTL,
};

pub struct OrgRow {
    pub name: String,
    pub role: String,
}

pub struct SessionRow {
    pub id: Uuid,
    pub current: bool,
    pub device: String,
    pub detail: String,
}

pub struct TokenRow {
    pub id: Uuid,
    pub name: String,
    pub scopes: String,
    pub detail: String,
}

pub struct SetupView {
    pub secret: String,
    /// Generated here from the `otpauth://` URI: no user text in it.
    pub qr_svg: String,
}

pub struct LinkedRow {
    pub provider: String,
    pub label: String,
    pub email: Option<String>,
}

pub struct LinkableRow {
    pub provider: String,
    pub label: String,
}

#[derive(Template)]
#[template(path = "ui/account.html")]
pub struct AccountPage {
    layout: Layout,
    csrf: String,
    email: String,
    verified: bool,
    name: String,
    orgs: Vec<OrgRow>,
    has_password: bool,
    sessions: Vec<SessionRow>,
    tokens: Vec<TokenRow>,
    new_token: Option<String>,
    two_factor_on: bool,
    backup_codes_left: i64,
    backup_codes: Option<Vec<String>>,
    totp_setup: Option<SetupView>,
    linked: Vec<LinkedRow>,
    linkable: Vec<LinkableRow>,
    notice: Option<String>,
    alert: Option<String>,
    /// The form the errors belong to.
    form: &'static str,
    errors: BTreeMap<String, String>,
}

impl AccountPage {
    fn err(&self, form: &str, field: &str) -> Option<&str> {
        (self.form == form)
            .then(|| self.errors.get(field).map(String::as_str))
            .flatten()
    }
}

/// What an action adds to the page it draws.
#[derive(Default)]
struct Extras {
    notice: Option<String>,
    alert: Option<String>,
    form: &'static str,
    errors: BTreeMap<String, String>,
    new_token: Option<String>,
    backup_codes: Option<Vec<String>>,
    show_setup: Option<TotpSetup>,
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A short name for a browser, from its user agent.
fn device(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent.filter(|ua| !ua.is_empty()) else {
        return "Unknown device".into();
    };
    let browser = [
        ("Edg/", "Edge"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    .iter()
    .find(|(needle, _)| ua.contains(needle))
    .map(|(_, name)| *name);
    let system = [
        ("Android", "Android"),
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(needle, _)| ua.contains(needle))
    .map(|(_, name)| *name);
    match (browser, system) {
        (Some(b), Some(s)) => format!("{b} on {s}"),
        (Some(b), None) => b.to_owned(),
        (None, Some(s)) => s.to_owned(),
        (None, None) => ua.chars().take(60).collect(),
    }
}

/// The QR code of an `otpauth://` URI as inline SVG, labelled for screen
/// readers.
fn qr_svg(uri: &str) -> AppResult<String> {
    let code = qrcode::QrCode::new(uri.as_bytes())
        .map_err(|e| AppError::internal(anyhow::anyhow!("QR code: {e}")))?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    let svg = match svg.find("<svg") {
        Some(start) => &svg[start..],
        None => &svg[..],
    };
    Ok(svg.replacen(
        "<svg",
        "<svg role=\"img\" aria-label=\"QR code for your authenticator app\"",
        1,
    ))
}

async fn account_page(core: &Tessera, viewer: &Viewer, extras: Extras) -> AppResult<AccountPage> {
    let principal = &viewer.principal;
    let user = &principal.user;
    let current = principal.session.as_ref().map(|s| s.id);
    let orgs = core
        .memberships(user.id)
        .await?
        .iter()
        .map(|m| OrgRow {
            name: m.name.clone(),
            role: m.role.to_string(),
        })
        .collect();
    let sessions = core
        .list_sessions(principal)
        .await?
        .into_iter()
        .map(|s| SessionRow {
            id: s.id,
            current: Some(s.id) == current,
            device: device(s.user_agent.as_deref()),
            detail: format!(
                "signed in {}{}; last seen {}",
                when(s.created_at),
                s.ip.map(|ip| format!(" from {ip}")).unwrap_or_default(),
                when(s.last_seen_at)
            ),
        })
        .collect();
    let tokens = core
        .list_pats(principal)
        .await?
        .into_iter()
        .map(|t| TokenRow {
            id: t.id,
            scopes: t.scopes.names().collect::<Vec<_>>().join(", "),
            detail: format!(
                "created {}; last used {}; {}",
                when(t.created_at),
                t.last_used_at.map_or("never".to_owned(), when),
                t.expires_at
                    .map_or("does not expire".to_owned(), |e| format!(
                        "expires {}",
                        when(e)
                    ))
            ),
            name: t.name,
        })
        .collect();
    let status = core.two_factor_status(user).await?;
    let totp_setup = match extras.show_setup {
        Some(setup) => Some(SetupView {
            qr_svg: qr_svg(&setup.otpauth_uri)?,
            secret: setup.secret,
        }),
        None => None,
    };
    let identities = core.linked_accounts(user).await?;
    let linked: Vec<LinkedRow> = identities
        .iter()
        .map(|i| LinkedRow {
            provider: i.provider.clone(),
            label: provider_label(&i.provider),
            email: i.email.clone(),
        })
        .collect();
    let linkable = providers(core)
        .into_iter()
        .filter(|p| !identities.iter().any(|i| &i.provider == p))
        .map(|p| LinkableRow {
            label: provider_label(&p),
            provider: p,
        })
        .collect();
    let mut layout = Layout::new(core, "Your account").signed_in(viewer);
    layout.wide = true;
    Ok(AccountPage {
        layout,
        csrf: viewer.csrf.clone(),
        email: user.email.clone(),
        verified: user.email_verified_at.is_some(),
        name: user.name.clone().unwrap_or_default(),
        orgs,
        has_password: user.password_hash.is_some(),
        sessions,
        tokens,
        new_token: extras.new_token,
        two_factor_on: status.enabled,
        backup_codes_left: status.backup_codes_remaining,
        backup_codes: extras.backup_codes,
        totp_setup,
        linked,
        linkable,
        notice: extras.notice,
        alert: extras.alert,
        form: extras.form,
        errors: extras.errors,
    })
}

async fn show(core: &Tessera, viewer: &Viewer, extras: Extras, status: StatusCode) -> Response {
    match account_page(core, viewer, extras).await {
        Ok(page) => render(status, &page, None),
        Err(err) => error_page(core, err),
    }
}

/// An action that failed: its form's errors on the page, or a page of its own.
async fn failed(core: &Tessera, viewer: &Viewer, form: &'static str, err: AppError) -> Response {
    failed_showing(core, viewer, form, err, None).await
}

/// [`failed`], drawing a TOTP setup still waiting for its code.
async fn failed_showing(
    core: &Tessera,
    viewer: &Viewer,
    form: &'static str,
    err: AppError,
    show_setup: Option<TotpSetup>,
) -> Response {
    if !is_form_error(&err) {
        return error_page(core, err);
    }
    let status = crate::http::error::status(err.code);
    let (alert, errors) = split_error(err);
    let extras = Extras {
        form,
        alert,
        errors,
        show_setup,
        ..Extras::default()
    };
    show(core, viewer, extras, status).await
}

/// The answer to an action that shows nothing new: back to the page with
/// its notice, or the page with the form's errors.
async fn after(
    core: &Tessera,
    viewer: &Viewer,
    form: &'static str,
    done: &str,
    result: AppResult<()>,
) -> Response {
    match result {
        Ok(()) => see_other(&format!("{}?done={done}", Page::Account.href())),
        Err(err) => failed(core, viewer, form, err).await,
    }
}

/// The sentence for `?done=…` after an action (a fixed set: nothing from
/// the query is echoed).
fn done_notice(done: &str) -> Option<String> {
    Some(
        match done {
            "profile" => "Your profile is saved.",
            "password" => "Your password is changed; every other session is signed out.",
            "password-set" => "Your password is set.",
            "session" => "That session is signed out.",
            "sessions" => "Every other session is signed out.",
            "token-revoked" => "The token is revoked; it no longer works.",
            "2fa-off" => "Two-step verification is off.",
            "unlinked" => "The account is unlinked.",
            "linked" => "The account is linked.",
            "verify-sent" => {
                return Some(format!(
                    "A new verification link is on its way; it works for {}.",
                    lifetime(VERIFY_TTL)
                ))
            }
            _ => return None,
        }
        .to_owned(),
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PageQuery {
    done: String,
}

pub async fn page(
    State(core): State<Arc<Tessera>>,
    SignedIn(viewer): SignedIn,
    RawQuery(raw): RawQuery,
) -> Response {
    let q: PageQuery = query(raw);
    let extras = Extras {
        notice: done_notice(&q.done),
        ..Extras::default()
    };
    show(&core, &viewer, extras, StatusCode::OK).await
}

form_tokens!(CsrfToken::csrf_token for
    ProfileForm, PasswordForm, SessionForm, CsrfOnly, TokenForm, RevokeTokenForm,
    PasswordOnlyForm, CodeForm, ProviderForm,
);

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ProfileForm {
    csrf_token: String,
    name: String,
}

pub async fn profile(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    SignedInForm(viewer, f): SignedInForm<ProfileForm>,
) -> Response {
    let user = &viewer.principal.user;
    let result = core
        .update_profile(user, Some(&f.name), None, None, &client)
        .await
        .map(drop);
    after(&core, &viewer, "profile", "profile", result).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PasswordForm {
    csrf_token: String,
    current_password: String,
    new_password: String,
}

pub async fn change_password(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    SignedInForm(viewer, f): SignedInForm<PasswordForm>,
) -> Response {
    let p = &viewer.principal;
    let session = p.session.as_ref().map(|s| s.id);
    let result = core
        .change_password(
            &p.user,
            session,
            &f.current_password,
            &f.new_password,
            &client,
        )
        .await;
    after(&core, &viewer, "password", "password", result).await
}

pub async fn set_password(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    SignedInForm(viewer, f): SignedInForm<PasswordForm>,
) -> Response {
    let p = &viewer.principal;
    let session = p.session.as_ref().map(|s| s.id);
    let result = core
        .set_password(&p.user, session, &f.new_password, &client)
        .await;
    after(&core, &viewer, "set-password", "password-set", result).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SessionForm {
    csrf_token: String,
    session_id: String,
}

pub async fn revoke_session(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    SignedInForm(viewer, f): SignedInForm<SessionForm>,
) -> Response {
    let Ok(id) = f.session_id.parse::<Uuid>() else {
        return failed(
            &core,
            &viewer,
            "sessions",
            AppError::not_found("No such session."),
        )
        .await;
    };
    let result = core
        .revoke_own_session(&viewer.principal, id, &client)
        .await;
    after(&core, &viewer, "sessions", "session", result).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CsrfOnly {
    csrf_token: String,
}

pub async fn revoke_other_sessions(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    SignedInForm(viewer, _): SignedInForm<CsrfOnly>,
) -> Response {
    let result = core.revoke_other_sessions(&viewer.principal, &client).await;
    after(&core, &viewer, "sessions", "sessions", result).await
}

/// Mails the signed-in user a new verification link (the per-address mail
/// cap applies, as for the anonymous form).
pub async fn resend_verification(
    State(core): State<Arc<Tessera>>,
    SignedInForm(viewer, _): SignedInForm<CsrfOnly>,
) -> Response {
    let result = core.resend_verification(&viewer.principal.user.email);
    after(&core, &viewer, "profile", "verify-sent", result).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct TokenForm {
    csrf_token: String,
    name: String,
    read: String,
    write: String,
    expires_in_days: String,
}

pub async fn create_token(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    SignedInForm(viewer, f): SignedInForm<TokenForm>,
) -> Response {
    let mut scopes = Vec::new();
    if !f.read.is_empty() {
        scopes.push("read".to_owned());
    }
    if !f.write.is_empty() {
        scopes.push("write".to_owned());
    }
    let days = f.expires_in_days.trim();
    let expires_in_days = if days.is_empty() {
        None
    } else {
        match days.parse::<i64>() {
            Ok(days) => Some(days),
            Err(_) => {
                let err = AppError::field("expires_in_days", "must be a whole number of days");
                return failed(&core, &viewer, "tokens", err).await;
            }
        }
    };
    let input = NewPatInput {
        name: f.name,
        scopes,
        expires_in_days,
        tenant_id: None,
    };
    match core.create_pat(&viewer.principal, input, &client).await {
        Ok((secret, _)) => {
            let extras = Extras {
                new_token: Some(secret),
                ..Extras::default()
            };
            show(&core, &viewer, extras, StatusCode::CREATED).await
        }
        Err(err) => failed(&core, &viewer, "tokens", err).await,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RevokeTokenForm {
    csrf_token: String,
    token_id: String,
}

pub async fn revoke_token(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    SignedInForm(viewer, f): SignedInForm<RevokeTokenForm>,
) -> Response {
    let Ok(id) = f.token_id.parse::<Uuid>() else {
        return failed(
            &core,
            &viewer,
            "tokens",
            AppError::not_found("No such token."),
        )
        .await;
    };
    let result = core.revoke_pat(&viewer.principal, id, &client).await;
    after(&core, &viewer, "tokens", "token-revoked", result).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PasswordOnlyForm {
    csrf_token: String,
    password: String,
}

pub async fn totp_setup(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    SignedInForm(viewer, f): SignedInForm<PasswordOnlyForm>,
) -> Response {
    match core
        .totp_setup(&viewer.principal.user, &f.password, &client)
        .await
    {
        Ok(setup) => {
            let extras = Extras {
                show_setup: Some(setup),
                ..Extras::default()
            };
            show(&core, &viewer, extras, StatusCode::OK).await
        }
        Err(err) => failed(&core, &viewer, "2fa-setup", err).await,
    }
}

/// What the one code field of a form holds: six digits are a TOTP code,
/// anything else a backup code.
fn code_or_backup(code: &str) -> SecondFactor<'_> {
    let code = code.trim();
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        SecondFactor::codes(Some(code), None)
    } else {
        SecondFactor::codes(None, Some(code).filter(|c| !c.is_empty()))
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CodeForm {
    csrf_token: String,
    code: String,
    password: String,
}

pub async fn totp_enable(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    SignedInForm(viewer, f): SignedInForm<CodeForm>,
) -> Response {
    let p = &viewer.principal;
    let session = p.session.as_ref().map(|s| s.id);
    match core.totp_enable(&p.user, session, &f.code, &client).await {
        Ok(codes) => {
            // The user changed (2FA on): draw from what is stored now.
            let fresh = match core.active_user(p.user.id).await {
                Ok(Some(user)) => user,
                _ => return see_other(Page::Account.href()),
            };
            let viewer = Viewer {
                principal: crate::service::Principal {
                    user: fresh,
                    ..viewer.principal.clone()
                },
                csrf: viewer.csrf.clone(),
            };
            let extras = Extras {
                backup_codes: Some(codes),
                ..Extras::default()
            };
            show(&core, &viewer, extras, StatusCode::OK).await
        }
        Err(err) => {
            // The key is still waiting for a right code: show it again.
            let pending = if is_form_error(&err) {
                core.pending_totp(&p.user).await.ok().flatten()
            } else {
                None
            };
            failed_showing(&core, &viewer, "2fa-enable", err, pending).await
        }
    }
}

pub async fn totp_disable(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    SignedInForm(viewer, f): SignedInForm<CodeForm>,
) -> Response {
    let factor = code_or_backup(&f.code);
    let result = core
        .two_factor_disable(&viewer.principal.user, &f.password, factor, &client)
        .await;
    after(&core, &viewer, "2fa-off", "2fa-off", result).await
}

pub async fn backup_codes(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    SignedInForm(viewer, f): SignedInForm<CodeForm>,
) -> Response {
    match core
        .regenerate_backup_codes(
            &viewer.principal.user,
            &f.password,
            code_or_backup(&f.code),
            &client,
        )
        .await
    {
        Ok(codes) => {
            let extras = Extras {
                backup_codes: Some(codes),
                ..Extras::default()
            };
            show(&core, &viewer, extras, StatusCode::OK).await
        }
        Err(err) => failed(&core, &viewer, "2fa-codes", err).await,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ProviderForm {
    csrf_token: String,
    provider: String,
}

pub async fn unlink(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    SignedInForm(viewer, f): SignedInForm<ProviderForm>,
) -> Response {
    let result = core
        .unlink_provider(&viewer.principal.user, &f.provider, &client)
        .await;
    after(&core, &viewer, "linked", "unlinked", result).await
}

/// Starts linking a provider: off to the provider, back to this page.
pub async fn link(
    State(core): State<Arc<Tessera>>,
    SignedInForm(viewer, f): SignedInForm<ProviderForm>,
) -> Response {
    let back = format!("{}/ui/account?done=linked", core.config.public_base());
    match oauth::start(
        &core,
        &f.provider,
        OAuthCallback::Api,
        Some(&back),
        Some(&viewer.principal.user),
    )
    .await
    {
        Ok((to, cookie)) => {
            let mut response = see_other(to.as_str());
            response.headers_mut().append(header::SET_COOKIE, cookie);
            response
        }
        Err(err) => failed(&core, &viewer, "linked", err).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_named_from_user_agents() {
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36";
        assert_eq!(device(Some(chrome)), "Chrome on Linux");
        assert_eq!(device(Some("curl/8.5.0")), "curl");
        assert_eq!(device(None), "Unknown device");
    }

    #[test]
    fn the_qr_code_is_labelled_svg() {
        let svg =
            qr_svg("otpauth://totp/Tessera:a@example.test?secret=JBSWY3DPEHPK3PXP&issuer=Tessera")
                .unwrap();
        assert!(
            svg.starts_with("<svg role=\"img\" aria-label=\"QR code for your authenticator app\"")
        );
        assert!(!svg.contains("<?xml"));
    }
}
