//! The dashboard surface, `/auth`, with camelCase bodies: a thin
//! adapter over the same service calls. Sessions ride in `ces_session`;
//! cookie writes are protected by the `Origin` check, and CORS answers only
//! origins on the allowlist.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use uuid::Uuid;

use crate::domain::Role;
use crate::error::{AppError, AppResult};
use crate::http::bot;
use crate::http::cookies;
use crate::http::extract::{AppJson, AppQuery, CredentialLimit};
use crate::http::oauth;
use crate::http::surface::{self, SessionUser, SignedInSession, Surface};
use crate::service::{
    CallbackParams, ClientInfo, LoginOutcome, OAuthCallback, SecondFactor, SignupInput, Tessera,
};
use crate::store::{Membership, Session, User};

/// The surface of every route here.
const SURFACE: Surface = Surface::Dashboard;

pub fn router(core: &Arc<Tessera>) -> Router<Arc<Tessera>> {
    Router::new()
        .route("/me", get(me))
        .route("/session", get(session))
        .route("/logout", post(logout))
        .route("/sign-out", post(logout))
        .route(
            "/sign-up/email",
            post(sign_up).route_layer(from_fn_with_state(core.clone(), bot::check)),
        )
        .route(
            "/sign-in/email",
            post(sign_in).route_layer(from_fn_with_state(core.clone(), bot::check)),
        )
        .route(
            "/forget-password",
            post(forget_password).route_layer(from_fn_with_state(core.clone(), bot::check)),
        )
        .route("/set-password", post(set_password))
        .route("/verify-email", get(verify_email))
        .route("/resend-verification", post(resend_verification))
        .route("/sign-in/social", post(sign_in_social))
        .route("/link-social", post(link_social))
        .route("/callback/{provider}", get(social_callback))
        .route("/linked-accounts", get(linked_accounts))
        .route("/unlink-provider", post(unlink_provider))
        .route("/two-factor/status", get(two_factor_status))
        .route("/two-factor/verify", post(verify_two_factor))
        .layer(Extension(SURFACE))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DashUser {
    id: Uuid,
    email: String,
    email_verified: bool,
    name: Option<String>,
    has_password: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<&User> for DashUser {
    fn from(u: &User) -> Self {
        DashUser {
            id: u.id,
            email: u.email.clone(),
            email_verified: u.email_verified_at.is_some(),
            name: u.name.clone(),
            has_password: u.password_hash.is_some(),
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DashSession {
    id: Uuid,
    user_id: Uuid,
    expires_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
    ip_address: Option<String>,
    user_agent: Option<String>,
}

impl From<&Session> for DashSession {
    fn from(s: &Session) -> Self {
        DashSession {
            id: s.id,
            user_id: s.user_id,
            expires_at: s.expires_at,
            created_at: s.created_at,
            ip_address: s.ip.clone(),
            user_agent: s.user_agent.clone(),
        }
    }
}

/// A workspace (tenant) as `/auth/me` lists it; the current one has no plan.
#[derive(Serialize)]
struct DashWorkspace {
    id: Uuid,
    name: String,
    slug: String,
    role: Role,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan: Option<String>,
}

impl DashWorkspace {
    fn current(m: &Membership) -> Self {
        DashWorkspace {
            id: m.id,
            name: m.name.clone(),
            slug: m.slug.clone(),
            role: m.role,
            plan: None,
        }
    }

    fn listed(m: &Membership) -> Self {
        DashWorkspace {
            plan: Some(m.plan.clone()),
            ..DashWorkspace::current(m)
        }
    }
}

#[derive(Serialize)]
struct MeAnswer {
    user: DashUser,
    workspace: Option<DashWorkspace>,
    workspaces: Vec<DashWorkspace>,
}

/// A session and its user (`session`, and a sign-in's answer).
#[derive(Serialize)]
struct SessionAnswer {
    user: DashUser,
    session: DashSession,
}

#[derive(Serialize)]
struct UserAnswer {
    user: DashUser,
}

/// `{"success": true}` (sign-out).
#[derive(Serialize)]
struct Success {
    success: bool,
}

/// `{"status": true}`, with the user or a message when there is one.
#[derive(Serialize)]
struct Status {
    status: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<DashUser>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'static str>,
}

impl Status {
    const DONE: Status = Status {
        status: true,
        user: None,
        message: None,
    };
}

/// One way into the account: the password (`credential`) or a provider.
#[derive(Serialize)]
#[serde(untagged, rename_all_fields = "camelCase")]
enum LinkedAccount {
    Credential {
        provider_id: &'static str,
        account_id: Uuid,
        created_at: DateTime<Utc>,
    },
    Social {
        id: Uuid,
        provider_id: String,
        account_id: String,
        email: Option<String>,
        created_at: DateTime<Utc>,
    },
}

/// Where the browser goes to sign in with a provider.
#[derive(Serialize)]
struct SocialStart {
    url: String,
    redirect: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TwoFactorStatus {
    enabled: bool,
    methods: Vec<&'static str>,
    backup_codes_remaining: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignUpBody {
    email: String,
    password: String,
    name: Option<String>,
    /// Where the verification link lands once it has done its work.
    #[serde(rename = "callbackURL")]
    callback_url: Option<String>,
}

#[derive(Deserialize)]
struct SignInBody {
    email: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EmailBody {
    email: String,
    /// `forget-password`: the app's reset page; the mailed link is
    /// `redirectTo?token=…` (allowlisted like social sign-in targets).
    redirect_to: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SetPasswordBody {
    new_password: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UnlinkBody {
    provider_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VerifyQuery {
    token: String,
    #[serde(rename = "callbackURL")]
    callback_url: Option<String>,
}

/// The user and a summary of their workspaces.
async fn me(
    State(core): State<Arc<Tessera>>,
    SessionUser(p): SessionUser,
) -> AppResult<Json<MeAnswer>> {
    let (current, tenants) = core.tenant_context(&p).await?;
    Ok(Json(MeAnswer {
        user: DashUser::from(&p.user),
        workspace: current.as_ref().map(DashWorkspace::current),
        workspaces: tenants.iter().map(DashWorkspace::listed).collect(),
    }))
}

/// The raw session and user.
async fn session(SessionUser(p): SessionUser) -> AppResult<Json<SessionAnswer>> {
    let session = p
        .session
        .as_ref()
        .ok_or_else(|| AppError::forbidden("This credential is not a session."))?;
    Ok(Json(SessionAnswer {
        user: DashUser::from(&p.user),
        session: DashSession::from(session),
    }))
}

async fn logout(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    SessionUser(p): SessionUser,
) -> AppResult<Response> {
    let cleared = surface::sign_out(&core, SURFACE, &p, &client).await?;
    Ok((cleared, Json(Success { success: true })).into_response())
}

/// Creates an unverified account and mails the verification link; an
/// unverified address signing up again gets a new link and the same answer.
async fn sign_up(
    State(core): State<Arc<Tessera>>,
    _limit: CredentialLimit,
    client: ClientInfo,
    AppJson(body): AppJson<SignUpBody>,
) -> AppResult<Json<UserAnswer>> {
    // Through the same allowlist as social sign-in; never followed blindly.
    let verify_callback = match body
        .callback_url
        .as_deref()
        .filter(|c| !c.trim().is_empty())
    {
        Some(raw) => Some(
            core.redirect_target(raw)
                .ok_or_else(|| AppError::field("callbackURL", "is not an allowed address"))?,
        ),
        None => None,
    };
    let input = SignupInput {
        email: body.email,
        password: body.password,
        name: body.name,
        verify_callback,
        ..SignupInput::default()
    };
    let user = core.signup_unverified(input, &client).await?;
    Ok(Json(UserAnswer {
        user: DashUser::from(&user),
    }))
}

async fn sign_in(
    State(core): State<Arc<Tessera>>,
    _limit: CredentialLimit,
    client: ClientInfo,
    AppJson(body): AppJson<SignInBody>,
) -> AppResult<Response> {
    let outcome = core.login(&body.email, &body.password, &client).await?;
    sign_in_answer(&core, outcome).await
}

/// `{user, session}` and the cookie, or the 2FA challenge.
async fn sign_in_answer(core: &Tessera, outcome: LoginOutcome) -> AppResult<Response> {
    surface::login_answer(core, SURFACE, outcome, |s| async move {
        Ok(SessionAnswer {
            user: DashUser::from(&s.user),
            session: DashSession::from(&s.session),
        })
    })
    .await
}

async fn forget_password(
    State(core): State<Arc<Tessera>>,
    _limit: CredentialLimit,
    AppJson(body): AppJson<EmailBody>,
) -> AppResult<Json<Status>> {
    match body.redirect_to.as_deref().filter(|r| !r.trim().is_empty()) {
        Some(page) => core.forgot_password_to(&body.email, page, "redirectTo")?,
        None => core.forgot_password(&body.email)?,
    }
    Ok(Json(Status {
        message: Some(
            "If an account exists with this email, you will receive a reset link shortly.",
        ),
        ..Status::DONE
    }))
}

async fn set_password(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    signed_in: SignedInSession,
    AppJson(body): AppJson<SetPasswordBody>,
) -> AppResult<Json<Status>> {
    let keep = Some(signed_in.session_id);
    core.set_password(&signed_in.principal.user, keep, &body.new_password, &client)
        .await
        .map_err(AppError::camel_case_fields)?;
    Ok(Json(Status::DONE))
}

/// Verifies the address, joins the tenants that invited it, and redirects to
/// `callbackURL` when it is on the allowlist (else answers JSON).
async fn verify_email(
    State(core): State<Arc<Tessera>>,
    AppQuery(q): AppQuery<VerifyQuery>,
) -> AppResult<Response> {
    let user = core.verify_email_and_join(&q.token).await?;
    match q.callback_url.and_then(|u| core.redirect_target(&u)) {
        Some(url) => Ok(Redirect::to(url.as_str()).into_response()),
        None => Ok(Json(Status {
            user: Some(DashUser::from(&user)),
            ..Status::DONE
        })
        .into_response()),
    }
}

async fn resend_verification(
    State(core): State<Arc<Tessera>>,
    _limit: CredentialLimit,
    AppJson(body): AppJson<EmailBody>,
) -> AppResult<Json<Status>> {
    core.resend_verification(&body.email)?;
    Ok(Json(Status::DONE))
}

/// Linked providers, Better Auth style: the password (`credential`) and
/// every social identity.
async fn linked_accounts(
    State(core): State<Arc<Tessera>>,
    SessionUser(p): SessionUser,
) -> AppResult<Json<Vec<LinkedAccount>>> {
    let mut accounts = Vec::new();
    if p.user.password_hash.is_some() {
        accounts.push(LinkedAccount::Credential {
            provider_id: "credential",
            account_id: p.user.id,
            created_at: p.user.created_at,
        });
    }
    for identity in core.linked_accounts(&p.user).await? {
        accounts.push(LinkedAccount::Social {
            id: identity.id,
            provider_id: identity.provider,
            account_id: identity.subject,
            email: identity.email,
            created_at: identity.created_at,
        });
    }
    Ok(Json(accounts))
}

/// Unlinks a provider, never the last way to sign in (409).
async fn unlink_provider(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    SessionUser(p): SessionUser,
    AppJson(body): AppJson<UnlinkBody>,
) -> AppResult<Json<Status>> {
    core.unlink_provider(&p.user, &body.provider_id, &client)
        .await?;
    Ok(Json(Status::DONE))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SocialBody {
    provider: String,
    #[serde(rename = "callbackURL")]
    callback_url: Option<String>,
}

/// Starts social sign-in: `{url, redirect: true}` and the state cookie; the
/// client sends the browser to `url`.
async fn sign_in_social(
    State(core): State<Arc<Tessera>>,
    _limit: CredentialLimit,
    AppJson(body): AppJson<SocialBody>,
) -> AppResult<Response> {
    social_start(&core, body, None).await
}

/// Links another provider to the signed-in account.
async fn link_social(
    State(core): State<Arc<Tessera>>,
    signed_in: SignedInSession,
    AppJson(body): AppJson<SocialBody>,
) -> AppResult<Response> {
    social_start(&core, body, Some(&signed_in.principal.user)).await
}

async fn social_start(
    core: &Tessera,
    body: SocialBody,
    link: Option<&User>,
) -> AppResult<Response> {
    let (url, cookie) = oauth::start(
        core,
        &body.provider,
        OAuthCallback::Dashboard,
        body.callback_url.as_deref(),
        link,
    )
    .await
    .map_err(AppError::camel_case_fields)?;
    let body = SocialStart {
        url: url.to_string(),
        redirect: true,
    };
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

/// The provider's redirect back: the session cookie, then `callbackURL`.
async fn social_callback(
    State(core): State<Arc<Tessera>>,
    Path(provider): Path<String>,
    client: ClientInfo,
    headers: HeaderMap,
    AppQuery(q): AppQuery<CallbackParams>,
) -> Response {
    oauth::callback_response(
        &core,
        &provider,
        q,
        &headers,
        &client,
        SURFACE.session_cookie(),
        oauth::CallbackErrors::ToApp,
    )
    .await
}

/// Two-factor status (two-factor authentication is not available yet).
async fn two_factor_status(
    State(core): State<Arc<Tessera>>,
    SessionUser(p): SessionUser,
) -> AppResult<Json<TwoFactorStatus>> {
    let status = core.two_factor_status(&p.user).await?;
    Ok(Json(TwoFactorStatus {
        enabled: status.enabled,
        methods: status.methods,
        backup_codes_remaining: status.backup_codes_remaining,
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TwoFactorVerifyBody {
    /// When absent, the `tessera_2fa` cookie a social sign-in set.
    #[serde(default)]
    challenge: Option<String>,
    code: Option<String>,
    backup_code: Option<String>,
}

/// The second step of a sign-in with 2FA on.
async fn verify_two_factor(
    State(core): State<Arc<Tessera>>,
    _limit: CredentialLimit,
    client: ClientInfo,
    headers: HeaderMap,
    AppJson(body): AppJson<TwoFactorVerifyBody>,
) -> AppResult<Response> {
    let challenge = cookies::two_factor_challenge(body.challenge.as_deref(), &headers);
    let factor = SecondFactor::codes(body.code.as_deref(), body.backup_code.as_deref());
    let outcome = core
        .verify_two_factor(&challenge, factor, &client)
        .await
        .map_err(AppError::camel_case_fields)?;
    let answer = sign_in_answer(&core, outcome).await?;
    Ok(cookies::clear_two_factor_on_success(
        &core, &headers, answer,
    ))
}
