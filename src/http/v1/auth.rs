//! `/api/v1/auth/*`: sign-up, login, sessions, recovery and verification.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::views::{self, InviteView, TenantView, UserView};
use crate::error::AppResult;
use crate::http::cookies;
use crate::http::error::ErrorBody;
use crate::http::extract::{AppJson, CredentialLimit};
use crate::http::surface::{self, AnyPrincipal, SignedIn, SignedInSession, Surface};
use crate::service::{ClientInfo, LoginOutcome, Principal, SignupInput, Tessera};

/// The surface of every route here.
const SURFACE: Surface = Surface::V1;

#[derive(Deserialize, ToSchema)]
pub struct SignupBody {
    #[schema(example = "user@example.com")]
    pub email: String,
    /// 8 to 128 characters; not a common password; not containing the email's local part.
    pub password: String,
    pub name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// Name of the tenant created for the new user.
    pub tenant_name: Option<String>,
    /// Join the inviting tenant instead of creating one.
    pub invite_token: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SignupResponse {
    pub user: UserView,
    pub tenants: Vec<TenantView>,
}

#[derive(Deserialize, ToSchema)]
pub struct LoginBody {
    #[schema(example = "user@example.com")]
    pub email: String,
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    pub user: UserView,
    pub tenants: Vec<TenantView>,
    /// Pending invitations addressed to the user.
    pub invites: Vec<InviteView>,
}

#[derive(Serialize, ToSchema)]
pub struct MeResponse {
    pub user: UserView,
    /// The tenant the credential currently acts in.
    pub tenant: Option<TenantView>,
    pub tenants: Vec<TenantView>,
}

#[derive(Serialize, ToSchema)]
pub struct RefreshResponse {
    pub user: UserView,
    pub expires_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct CsrfResponse {
    pub csrf_token: String,
}

#[derive(Deserialize, ToSchema)]
pub struct EmailBody {
    #[schema(example = "user@example.com")]
    pub email: String,
}

#[derive(Deserialize, ToSchema)]
pub struct ResetPasswordBody {
    /// The token from the reset link.
    pub token: String,
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
pub struct ChangePasswordBody {
    pub current_password: String,
    pub new_password: String,
}

#[derive(Deserialize, ToSchema)]
pub struct SetPasswordBody {
    pub new_password: String,
}

#[derive(Deserialize, ToSchema)]
pub struct TokenBody {
    /// The token from the verification link.
    pub token: String,
}

#[derive(Serialize, ToSchema)]
pub struct UserResponse {
    pub user: UserView,
}

#[derive(Serialize, ToSchema)]
pub struct AccessTokenResponse {
    pub access_token: String,
    #[schema(example = "bearer")]
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u32,
}

fn with_cookie(
    status: StatusCode,
    cookie: axum::http::HeaderValue,
    body: impl Serialize,
) -> Response {
    (status, [(header::SET_COOKIE, cookie)], Json(body)).into_response()
}

/// Create an account and its own tenant.
#[utoipa::path(post, path = "/api/v1/auth/signup", tag = "auth", request_body = SignupBody,
    responses(
        (status = 201, description = "Created; sets `ces_session` unless verified emails are required", body = SignupResponse),
        (status = 409, description = "USER_EXISTS", body = ErrorBody),
        (status = 422, description = "VALIDATION_FAILED", body = ErrorBody),
    ))]
pub async fn signup(
    State(core): State<Arc<Tessera>>,
    _limit: CredentialLimit,
    client: ClientInfo,
    AppJson(body): AppJson<SignupBody>,
) -> AppResult<Response> {
    let input = SignupInput {
        email: body.email,
        password: body.password,
        name: body.name,
        first_name: body.first_name,
        last_name: body.last_name,
        tenant_name: body.tenant_name,
        invite_token: body.invite_token,
        without_session: false,
        verify_callback: None,
    };
    let outcome = core.signup(input, &client).await?;
    let tenants = core.store.memberships(outcome.user.id).await?;
    let body = SignupResponse {
        user: UserView::from(&outcome.user),
        tenants: views::tenants(&tenants),
    };
    Ok(match outcome.session {
        Some((secret, session)) => with_cookie(
            StatusCode::CREATED,
            cookies::set_session(&core, SURFACE.session_cookie(), &secret, session.expires_at),
            body,
        ),
        None => (StatusCode::CREATED, Json(body)).into_response(),
    })
}

/// Sign in with email and password; sets the `ces_session` cookie.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginBody,
    responses(
        (status = 200, description = "Signed in; sets `ces_session`. With 2FA on: `{two_factor_required: true, challenge}` and no cookie; finish at /api/v1/auth/2fa/verify", body = LoginResponse),
        (status = 401, description = "Wrong email or password (the same answer for both)", body = ErrorBody),
        (status = 403, description = "Account disabled, or email not verified when that is required", body = ErrorBody),
        (status = 422, description = "VALIDATION_FAILED", body = ErrorBody),
    ))]
pub async fn login(
    State(core): State<Arc<Tessera>>,
    _limit: CredentialLimit,
    client: ClientInfo,
    AppJson(body): AppJson<LoginBody>,
) -> AppResult<Response> {
    let outcome = core.login(&body.email, &body.password, &client).await?;
    login_answer(&core, outcome).await
}

/// A login's answer: the session cookie and the user, or the 2FA challenge.
pub(crate) async fn login_answer(core: &Tessera, outcome: LoginOutcome) -> AppResult<Response> {
    surface::login_answer(core, SURFACE, outcome, |s| login_body(core, s)).await
}

async fn login_body(core: &Tessera, s: SignedIn) -> AppResult<LoginResponse> {
    let tenants = core.memberships(s.user.id).await?;
    let invites = core.my_invites(&s.user.email).await?;
    Ok(LoginResponse {
        user: UserView::from(&s.user),
        tenants: views::tenants(&tenants),
        invites: views::invites(&invites, core.clock.now()),
    })
}

/// End the current session and clear the cookie.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses(
        (status = 204, description = "Session revoked; the cookie is cleared"),
        (status = 401, body = ErrorBody),
        (status = 403, description = "CSRF_FAILED, or the credential is a token, not a session", body = ErrorBody),
    ))]
pub async fn logout(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    AnyPrincipal(principal): AnyPrincipal,
) -> AppResult<Response> {
    let cleared = surface::sign_out(&core, SURFACE, &principal, &client).await?;
    Ok((StatusCode::NO_CONTENT, cleared).into_response())
}

/// Replace the session token; the old one stops working at once.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth",
    responses(
        (status = 200, description = "New session token in `ces_session`. The CSRF token changes with it.", body = RefreshResponse),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    ))]
pub async fn refresh(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    AnyPrincipal(principal): AnyPrincipal,
) -> AppResult<Response> {
    let (secret, session) = core.refresh(&principal, &client).await?;
    let body = RefreshResponse {
        user: UserView::from(&principal.user),
        expires_at: session.expires_at,
    };
    Ok(with_cookie(
        StatusCode::OK,
        cookies::set_session(&core, SURFACE.session_cookie(), &secret, session.expires_at),
        body,
    ))
}

/// The CSRF token to send as `X-CSRF-Token` on cookie-authenticated writes.
#[utoipa::path(get, path = "/api/v1/auth/csrf", tag = "auth",
    responses(
        (status = 200, body = CsrfResponse),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The credential is a token: token requests need no CSRF token", body = ErrorBody),
    ))]
pub async fn csrf(AnyPrincipal(principal): AnyPrincipal) -> AppResult<Json<CsrfResponse>> {
    let secret = principal.session_secret().ok_or_else(|| {
        crate::error::AppError::forbidden(
            "CSRF tokens belong to sessions; token requests need none.",
        )
    })?;
    Ok(Json(CsrfResponse {
        csrf_token: crate::crypto::token::csrf_token_for(secret),
    }))
}

async fn me_response(core: &Tessera, principal: &Principal) -> AppResult<MeResponse> {
    let (current, tenants) = core.tenant_context(principal).await?;
    Ok(MeResponse {
        user: UserView::from(&principal.user),
        tenant: current.as_ref().map(TenantView::from),
        tenants: views::tenants(&tenants),
    })
}

#[derive(Deserialize, ToSchema)]
pub struct SwitchTenantBody {
    pub tenant_id: uuid::Uuid,
}

/// Make another of my tenants the session's current one.
#[utoipa::path(post, path = "/api/v1/auth/switch-tenant", tag = "auth", request_body = SwitchTenantBody,
    responses((status = 200, body = MeResponse), (status = 403, description = "Called with a token", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn switch_tenant(
    State(core): State<Arc<Tessera>>,
    AnyPrincipal(principal): AnyPrincipal,
    AppJson(body): AppJson<SwitchTenantBody>,
) -> AppResult<Json<MeResponse>> {
    let principal = core.switch_tenant(&principal, body.tenant_id).await?;
    Ok(Json(me_response(&core, &principal).await?))
}

/// The signed-in user, the current tenant and all the user's tenants.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth",
    responses((status = 200, body = MeResponse), (status = 401, body = ErrorBody)))]
pub async fn me(
    State(core): State<Arc<Tessera>>,
    AnyPrincipal(principal): AnyPrincipal,
) -> AppResult<Json<MeResponse>> {
    Ok(Json(me_response(&core, &principal).await?))
}

/// Everything Tessera holds about me, secrets left out.
#[derive(Serialize, ToSchema)]
pub struct AccountExportView {
    pub exported_at: DateTime<Utc>,
    /// The profile.
    pub user: UserView,
    /// My tenants and my role in each.
    pub tenants: Vec<TenantView>,
    /// Invitations waiting for my address.
    pub invitations: Vec<InviteView>,
    /// My active sessions: device (user agent) and address.
    pub sessions: Vec<views::SessionView>,
    /// My personal access tokens: names, scopes, dates (never the secret).
    pub tokens: Vec<views::TokenView>,
    /// My passkeys: names and dates (never the key).
    pub passkeys: Vec<super::passkeys::PasskeyView>,
    /// The providers linked to my account.
    pub linked_accounts: Vec<super::oauth::LinkedAccount>,
    pub two_factor: super::mfa::TwoFactorStatusView,
    /// Consents given through Tessera. None are recorded yet; the list is
    /// here so the document keeps its shape when they are.
    #[schema(value_type = Vec<Object>)]
    pub consents: Vec<serde_json::Value>,
    /// What I did and what was done to my account, oldest first.
    pub audit_events: Vec<views::AuditEventView>,
}

/// Download everything Tessera holds about me (GDPR articles 15 and 20):
/// profile, tenants and roles, invitations, sessions, tokens, passkeys,
/// linked providers, two-factor status and my audit events. Secrets are
/// never included. Needs the signed-in session itself, not a token.
#[utoipa::path(get, path = "/api/v1/auth/me/export", tag = "auth",
    responses((status = 200, body = AccountExportView), (status = 401, body = ErrorBody),
        (status = 403, description = "Called with a token rather than a session", body = ErrorBody)))]
pub async fn export(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    SignedInSession {
        principal,
        session_id,
    }: SignedInSession,
) -> AppResult<Json<AccountExportView>> {
    let export = core.export_account(&principal, &client).await?;
    let now = core.clock.now();
    Ok(Json(AccountExportView {
        exported_at: now,
        user: UserView::from(&export.user),
        tenants: views::tenants(&export.tenants),
        invitations: views::invites(&export.pending_invites, now),
        sessions: export
            .sessions
            .iter()
            .map(|s| views::SessionView::new(s, s.id == session_id))
            .collect(),
        tokens: export
            .tokens
            .iter()
            .map(|t| views::TokenView::new(t, None))
            .collect(),
        passkeys: export.passkeys.iter().map(Into::into).collect(),
        linked_accounts: export
            .identities
            .into_iter()
            .map(|i| super::oauth::LinkedAccount {
                provider: i.provider,
                email: i.email,
                linked_at: i.created_at,
            })
            .collect(),
        two_factor: super::mfa::TwoFactorStatusView {
            enabled: export.two_factor.enabled,
            methods: export
                .two_factor
                .methods
                .into_iter()
                .map(str::to_owned)
                .collect(),
            backup_codes_remaining: export.two_factor.backup_codes_remaining,
        },
        consents: Vec::new(),
        audit_events: export.audit.iter().map(Into::into).collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct ProfileBody {
    /// Up to 200 characters; an empty string clears it.
    pub name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

/// Change the names I go by; fields left out keep their values.
#[utoipa::path(patch, path = "/api/v1/auth/me", tag = "auth", request_body = ProfileBody,
    responses((status = 200, body = MeResponse), (status = 401, body = ErrorBody),
        (status = 403, description = "A read-only or tenant-bound token", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn update_me(
    State(core): State<Arc<Tessera>>,
    AnyPrincipal(principal): AnyPrincipal,
    client: ClientInfo,
    AppJson(body): AppJson<ProfileBody>,
) -> AppResult<Json<MeResponse>> {
    principal.require_unbound()?;
    let user = core
        .update_profile(
            &principal.user,
            body.name.as_deref(),
            body.first_name.as_deref(),
            body.last_name.as_deref(),
            &client,
        )
        .await?;
    let principal = Principal { user, ..principal };
    Ok(Json(me_response(&core, &principal).await?))
}

/// Start a password reset: mails a link when the account exists.
#[utoipa::path(post, path = "/api/v1/auth/forgot-password", tag = "auth", request_body = EmailBody,
    responses(
        (status = 204, description = "Accepted, whether or not the email has an account"),
        (status = 422, description = "Not an email address", body = ErrorBody),
    ))]
pub async fn forgot_password(
    State(core): State<Arc<Tessera>>,
    _limit: CredentialLimit,
    AppJson(body): AppJson<EmailBody>,
) -> AppResult<StatusCode> {
    core.forgot_password(&body.email)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Set a new password with the token from the reset mail.
#[utoipa::path(post, path = "/api/v1/auth/reset-password", tag = "auth", request_body = ResetPasswordBody,
    responses(
        (status = 204, description = "Password set; every session of the account is revoked"),
        (status = 422, description = "Invalid, used or expired token, or a password the policy refuses", body = ErrorBody),
    ))]
pub async fn reset_password(
    State(core): State<Arc<Tessera>>,
    _limit: CredentialLimit,
    client: ClientInfo,
    AppJson(body): AppJson<ResetPasswordBody>,
) -> AppResult<StatusCode> {
    core.reset_password(&body.token, &body.password, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Change the password, given the current one.
#[utoipa::path(post, path = "/api/v1/auth/change-password", tag = "auth", request_body = ChangePasswordBody,
    responses(
        (status = 204, description = "Changed; every other session is revoked"),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Called with a token rather than a session", body = ErrorBody),
        (status = 422, description = "Wrong current password, or a new password the policy refuses", body = ErrorBody),
    ))]
pub async fn change_password(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    SignedInSession {
        principal,
        session_id,
    }: SignedInSession,
    AppJson(body): AppJson<ChangePasswordBody>,
) -> AppResult<StatusCode> {
    let keep = session_id;
    core.change_password(
        &principal.user,
        Some(keep),
        &body.current_password,
        &body.new_password,
        &client,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Set a first password on an account that has none (social sign-in).
#[utoipa::path(post, path = "/api/v1/auth/set-password", tag = "auth", request_body = SetPasswordBody,
    responses(
        (status = 204, description = "Set; every other session is revoked"),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Called with a token rather than a session", body = ErrorBody),
        (status = 409, description = "The account already has a password", body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
pub async fn set_password(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    SignedInSession {
        principal,
        session_id,
    }: SignedInSession,
    AppJson(body): AppJson<SetPasswordBody>,
) -> AppResult<StatusCode> {
    let keep = session_id;
    core.set_password(&principal.user, Some(keep), &body.new_password, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Confirm the email address with the token from the verification mail.
#[utoipa::path(post, path = "/api/v1/auth/verify-email", tag = "auth", request_body = TokenBody,
    responses(
        (status = 200, body = UserResponse),
        (status = 422, description = "Invalid, used or expired token", body = ErrorBody),
    ))]
pub async fn verify_email(
    State(core): State<Arc<Tessera>>,
    AppJson(body): AppJson<TokenBody>,
) -> AppResult<Json<UserResponse>> {
    let user = core.verify_email(&body.token).await?;
    Ok(Json(UserResponse {
        user: UserView::from(&user),
    }))
}

/// Mail a new verification link when the account exists and is unverified.
#[utoipa::path(post, path = "/api/v1/auth/resend-verification", tag = "auth", request_body = EmailBody,
    responses(
        (status = 204, description = "Accepted, whether or not the email has an account"),
        (status = 422, description = "Not an email address", body = ErrorBody),
    ))]
pub async fn resend_verification(
    State(core): State<Arc<Tessera>>,
    _limit: CredentialLimit,
    AppJson(body): AppJson<EmailBody>,
) -> AppResult<StatusCode> {
    core.resend_verification(&body.email)?;
    Ok(StatusCode::NO_CONTENT)
}

/// A short-lived JWT access token for the caller (EdDSA; verify with the JWKS).
#[utoipa::path(post, path = "/api/v1/auth/token", tag = "auth",
    responses(
        (status = 200, body = AccessTokenResponse),
        (status = 401, body = ErrorBody),
        (status = 403, description = "A JWT cannot be exchanged for another, or a tenant-bound token's tenant is no longer the user's", body = ErrorBody),
    ))]
pub async fn token(
    State(core): State<Arc<Tessera>>,
    AnyPrincipal(principal): AnyPrincipal,
) -> AppResult<Json<AccessTokenResponse>> {
    let issued = core.access_token(&principal).await?;
    Ok(Json(AccessTokenResponse {
        access_token: issued.access_token,
        token_type: "bearer".into(),
        expires_in: issued.expires_in,
    }))
}

/// The public keys that verify Tessera's JWTs.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth",
    responses((status = 200, description = "A JSON Web Key Set of Ed25519 keys", body = Object)))]
pub async fn jwks(State(core): State<Arc<Tessera>>) -> Json<serde_json::Value> {
    Json(core.keys().jwks().clone())
}
