//! The legacy surface, `/api/auth`, for its two kinds of clients: browsers
//! on the `auth_token` cookie, and JWT-only clients. A thin adapter over the
//! same service calls as `/api/v1`. Sessions ride in the `auth_token`
//! cookie or as a Bearer JWT; cookie writes are protected by the `Origin`
//! check.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::http::bot;
use crate::http::cookies;
use crate::http::error::ErrorBody;
use crate::http::extract::{operator_access, AppJson, AppQuery, CredentialLimit};
use crate::http::oauth;
use crate::http::surface::{self, AnyPrincipal, SignedIn, Surface};
use crate::http::v1::views::{self, InviteView, TenantView};
use crate::service::{
    CallbackParams, ClientInfo, LoginOutcome, OAuthCallback, Principal, SecondFactor, SignupInput,
    Tessera,
};
use crate::store::User;

/// The surface of every route here.
const SURFACE: Surface = Surface::Legacy;

/// The routes of `/api/auth`, each declared once (path and method from the
/// handler's `#[utoipa::path]`).
pub fn router(core: &Arc<Tessera>) -> OpenApiRouter<Arc<Tessera>> {
    // Sign-up, login and recovery pass the bot check first.
    let bot = || from_fn_with_state(core.clone(), bot::check);
    OpenApiRouter::new()
        .routes(routes!(login).map(|r| r.route_layer(bot())))
        .routes(routes!(register).map(|r| r.route_layer(bot())))
        .routes(routes!(signup).map(|r| r.route_layer(bot())))
        .routes(routes!(signup_invite).map(|r| r.route_layer(bot())))
        .routes(routes!(forgot_password).map(|r| r.route_layer(bot())))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(password))
        .routes(routes!(reset_password))
        .routes(routes!(refresh))
        .routes(routes!(validate))
        .routes(routes!(verify_two_factor))
        .routes(routes!(google))
        .routes(routes!(google_callback))
        .layer(Extension(SURFACE))
}

/// The user as `/api/auth` shows it.
#[derive(Serialize, ToSchema)]
pub struct LegacyUser {
    pub id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

impl From<&User> for LegacyUser {
    fn from(u: &User) -> Self {
        LegacyUser {
            id: u.id,
            email: u.email.clone(),
            name: u.name.clone(),
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct LegacyLoginResponse {
    pub user: LegacyUser,
    pub tenants: Vec<TenantView>,
    pub invites: Vec<InviteView>,
    /// A JWT for the new session (for JWT-only clients).
    pub access_token: String,
    #[schema(example = "bearer")]
    pub token_type: String,
    /// A Tessera addition for JWT-only clients: exchanged at `POST /api/auth/refresh`
    /// for a new access token while the session lasts. Single use.
    pub refresh_token: String,
}

/// `POST /api/auth/refresh` (a Tessera addition): the refresh token to spend.
#[derive(Deserialize, ToSchema)]
pub struct LegacyRefreshBody {
    pub refresh_token: String,
}

/// A new access token and the refresh token to use next time.
#[derive(Serialize, ToSchema)]
pub struct LegacyRefreshResponse {
    pub access_token: String,
    #[schema(example = "bearer")]
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u32,
    /// The next refresh token; the one sent is now spent.
    pub refresh_token: String,
}

#[derive(Serialize, ToSchema)]
pub struct LegacyMeResponse {
    pub user: LegacyUser,
    pub tenants: Vec<TenantView>,
    pub invites: Vec<InviteView>,
}

#[derive(Deserialize, ToSchema)]
pub struct LegacyLoginBody {
    pub email: String,
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
pub struct RegisterBody {
    pub email: String,
    pub password: String,
    pub name: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct LegacySignupBody {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
pub struct SignupInviteBody {
    pub first_name: String,
    pub last_name: String,
    pub password: String,
    pub invite_token: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LegacyPasswordBody {
    pub current_password: String,
    pub new_password: String,
}

#[derive(Deserialize, ToSchema)]
pub struct LegacyEmailBody {
    pub email: String,
}

#[derive(Deserialize, ToSchema)]
pub struct ResetBody {
    pub token: String,
    pub password: String,
}

fn message(text: &str) -> Json<Value> {
    Json(json!({ "message": text }))
}

async fn me_parts(core: &Tessera, user: &User) -> AppResult<(Vec<TenantView>, Vec<InviteView>)> {
    // Two independent reads: in parallel, on two pooled connections.
    let (tenants, invites) =
        tokio::try_join!(core.memberships(user.id), core.my_invites(&user.email))?;
    Ok((
        views::tenants(&tenants),
        views::invites(&invites, core.clock.now()),
    ))
}

/// `me_parts` as a credential sees them: a tenant-bound one sees its
/// tenant only, and no invitations to others.
async fn visible_me_parts(
    core: &Tessera,
    p: &Principal,
) -> AppResult<(Vec<TenantView>, Vec<InviteView>)> {
    if p.bound_tenant.is_none() {
        return me_parts(core, &p.user).await;
    }
    let (_, tenants) = core.tenant_context(p).await?;
    Ok((views::tenants(&tenants), Vec::new()))
}

/// The union answer of both kinds of clients, with the `auth_token` cookie.
#[utoipa::path(post, path = "/api/auth/login", tag = "legacy", request_body = LegacyLoginBody,
    responses((status = 200, body = LegacyLoginResponse), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn login(
    State(core): State<Arc<Tessera>>,
    _limit: CredentialLimit,
    client: ClientInfo,
    AppJson(body): AppJson<LegacyLoginBody>,
) -> AppResult<Response> {
    let outcome = core.login(&body.email, &body.password, &client).await?;
    login_answer(&core, outcome).await
}

/// The union answer and the `auth_token` cookie, or the 2FA challenge.
async fn login_answer(core: &Tessera, outcome: LoginOutcome) -> AppResult<Response> {
    surface::login_answer(core, SURFACE, outcome, |s| union_answer(core, s)).await
}

/// The login body for a new session (both kinds of clients).
async fn union_answer(core: &Tessera, s: SignedIn) -> AppResult<LegacyLoginResponse> {
    let (tenants, invites) = me_parts(core, &s.user).await?;
    let refresh_token = core.first_refresh_token(&s.session).await?;
    let jwt = core.issue_jwt(&s.principal())?;
    Ok(LegacyLoginResponse {
        user: LegacyUser::from(&s.user),
        tenants,
        invites,
        access_token: jwt.access_token,
        token_type: "bearer".into(),
        refresh_token,
    })
}

/// Ends the session; `{"success": true}` and a cleared cookie.
#[utoipa::path(post, path = "/api/auth/logout", tag = "legacy",
    responses((status = 200, body = Object), (status = 401, body = ErrorBody)))]
pub async fn logout(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    AnyPrincipal(p): AnyPrincipal,
) -> AppResult<Response> {
    let cleared = surface::sign_out(&core, SURFACE, &p, &client).await?;
    Ok((cleared, Json(json!({ "success": true }))).into_response())
}

/// The current user, tenants and pending invites (cookie or Bearer JWT).
#[utoipa::path(get, path = "/api/auth/me", tag = "legacy",
    responses((status = 200, body = LegacyMeResponse), (status = 401, body = ErrorBody)))]
pub async fn me(
    State(core): State<Arc<Tessera>>,
    AnyPrincipal(p): AnyPrincipal,
) -> AppResult<Json<LegacyMeResponse>> {
    let (tenants, invites) = visible_me_parts(&core, &p).await?;
    Ok(Json(LegacyMeResponse {
        user: LegacyUser::from(&p.user),
        tenants,
        invites,
    }))
}

/// `201 {user}` and the `auth_token` cookie.
#[utoipa::path(post, path = "/api/auth/register", tag = "legacy", request_body = RegisterBody,
    responses((status = 201, body = Object), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn register(
    State(core): State<Arc<Tessera>>,
    _limit: CredentialLimit,
    client: ClientInfo,
    AppJson(body): AppJson<RegisterBody>,
) -> AppResult<Response> {
    let input = SignupInput {
        email: body.email,
        password: body.password,
        name: body.name,
        ..SignupInput::default()
    };
    let outcome = core.signup(input, &client).await?;
    let body = Json(json!({ "user": LegacyUser::from(&outcome.user) }));
    Ok(match outcome.session {
        Some((secret, session)) => (
            StatusCode::CREATED,
            [(
                header::SET_COOKIE,
                cookies::set_session(&core, SURFACE.session_cookie(), &secret, session.expires_at),
            )],
            body,
        )
            .into_response(),
        None => (StatusCode::CREATED, body).into_response(),
    })
}

/// Creates the user and their organization; `201 {id, email, first_name, last_name}`.
#[utoipa::path(post, path = "/api/auth/signup", tag = "legacy", request_body = LegacySignupBody,
    responses((status = 201, body = Object), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn signup(
    State(core): State<Arc<Tessera>>,
    _limit: CredentialLimit,
    client: ClientInfo,
    AppJson(body): AppJson<LegacySignupBody>,
) -> AppResult<(StatusCode, Json<Value>)> {
    // Both names are required: an empty one is missing, not absent.
    let mut missing = crate::error::FieldErrors::new();
    for (field, value) in [
        ("first_name", &body.first_name),
        ("last_name", &body.last_name),
    ] {
        if value.trim().is_empty() {
            missing.insert(field.into(), "is required".into());
        }
    }
    if !missing.is_empty() {
        return Err(AppError::fields(missing));
    }
    // The answer carries no token: a session nobody can use is not made.
    let input = SignupInput {
        email: body.email,
        password: body.password,
        first_name: Some(body.first_name),
        last_name: Some(body.last_name),
        without_session: true,
        ..SignupInput::default()
    };
    let user = core.signup(input, &client).await?.user;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": user.id, "email": user.email,
            "first_name": user.first_name, "last_name": user.last_name,
        })),
    ))
}

/// Sign up through an invitation (the email comes from the invite).
#[utoipa::path(post, path = "/api/auth/signup_invite", tag = "legacy", request_body = SignupInviteBody,
    responses((status = 201, body = Object), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn signup_invite(
    State(core): State<Arc<Tessera>>,
    _limit: CredentialLimit,
    client: ClientInfo,
    AppJson(body): AppJson<SignupInviteBody>,
) -> AppResult<(StatusCode, Json<Value>)> {
    if body.invite_token.trim().is_empty() {
        return Err(AppError::field("invite_token", "is required"));
    }
    let input = SignupInput {
        password: body.password,
        first_name: Some(body.first_name),
        last_name: Some(body.last_name),
        invite_token: Some(body.invite_token),
        ..SignupInput::default()
    };
    let outcome = core.signup(input, &client).await?;
    let user = outcome.user;
    let (secret, session) = match outcome.session {
        Some(started) => started,
        None => core.start_session(&user, None, &client).await?,
    };
    let refresh_token = core.first_refresh_token(&session).await?;
    let access_token = core
        .issue_jwt(&Principal::for_new_session(user.clone(), secret, session))?
        .access_token;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": user.id, "email": user.email,
            "first_name": user.first_name, "last_name": user.last_name,
            "access_token": access_token,
            "refresh_token": refresh_token,
        })),
    ))
}

/// A Tessera addition: a JWT-only client spends its refresh
/// token for a new access token and the next refresh token. A token is good
/// once; parallel uses within a few seconds get the same pair, and a later
/// reuse ends the session.
#[utoipa::path(post, path = "/api/auth/refresh", tag = "legacy", request_body = LegacyRefreshBody,
    responses((status = 200, body = LegacyRefreshResponse), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn refresh(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    AppJson(body): AppJson<LegacyRefreshBody>,
) -> AppResult<Json<LegacyRefreshResponse>> {
    match body.refresh_token.trim().len() {
        0 => return Err(AppError::field("refresh_token", "is required")),
        n if n > 1024 => return Err(AppError::field("refresh_token", "is too long")),
        _ => {}
    }
    let pair = core.refresh_pair(&body.refresh_token, &client).await?;
    Ok(Json(LegacyRefreshResponse {
        access_token: pair.access_token,
        token_type: "bearer".into(),
        expires_in: pair.expires_in,
        refresh_token: pair.refresh_token,
    }))
}

/// Change the password (`currentPassword`, `newPassword`).
#[utoipa::path(post, path = "/api/auth/password", tag = "legacy", request_body = LegacyPasswordBody,
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn password(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    AnyPrincipal(p): AnyPrincipal,
    AppJson(body): AppJson<LegacyPasswordBody>,
) -> AppResult<Json<Value>> {
    // A JWT issued for a session acts for that session here (JWT-only clients
    // hold only the JWT); PATs are refused.
    let keep = match (&p.kind, &p.session) {
        (crate::service::PrincipalKind::Pat { .. }, _) | (_, None) => {
            return Err(AppError::forbidden(
                "This needs a signed-in session, not a token.",
            ))
        }
        (_, Some(session)) => session.id,
    };
    core.change_password(
        &p.user,
        Some(keep),
        &body.current_password,
        &body.new_password,
        &client,
    )
    .await
    .map_err(AppError::camel_case_fields)?;
    Ok(message("Password updated successfully"))
}

/// Always the same answer, whether or not the email has an account.
#[utoipa::path(post, path = "/api/auth/forgot-password", tag = "legacy", request_body = LegacyEmailBody,
    responses((status = 200, body = Object), (status = 422, body = ErrorBody)))]
pub async fn forgot_password(
    State(core): State<Arc<Tessera>>,
    _limit: CredentialLimit,
    AppJson(body): AppJson<LegacyEmailBody>,
) -> AppResult<Json<Value>> {
    core.forgot_password(&body.email)?;
    Ok(message(
        "If an account exists with this email, you will receive a reset link shortly.",
    ))
}

/// Set a new password with the mailed token.
#[utoipa::path(post, path = "/api/auth/reset-password", tag = "legacy", request_body = ResetBody,
    responses((status = 200, body = Object), (status = 422, body = ErrorBody)))]
pub async fn reset_password(
    State(core): State<Arc<Tessera>>,
    _limit: CredentialLimit,
    client: ClientInfo,
    AppJson(body): AppJson<ResetBody>,
) -> AppResult<Json<Value>> {
    core.reset_password(&body.token, &body.password, &client)
        .await?;
    Ok(message("Password updated successfully."))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValidateResponse {
    pub success: bool,
    #[schema(example = "2 users corrected and sessions reset.")]
    pub message: String,
    pub updated_ids: Vec<Uuid>,
}

/// The plan check, for a cron job: it needs `Authorization: Bearer
/// <cron_secret>`, or a caller in `admin_allow_from` (loopback included only
/// when listed there). Refused with `401`, as its callers expect of
/// a missing or wrong credential.
#[utoipa::path(get, path = "/api/auth/validate", tag = "legacy",
    responses((status = 200, body = ValidateResponse), (status = 401, body = ErrorBody)))]
pub async fn validate(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    headers: HeaderMap,
) -> AppResult<Json<ValidateResponse>> {
    if !operator_access(&headers, &client, &[core.config.cron_secret.as_ref()]) {
        return Err(AppError::unauthorized());
    }
    let ids = core.run_plan_check(None).await?;
    Ok(Json(ValidateResponse {
        success: true,
        message: format!("{} users corrected and sessions reset.", ids.len()),
        updated_ids: ids,
    }))
}

/// To Google's consent screen (the `oauth.google` provider).
#[utoipa::path(get, path = "/api/auth/google", tag = "legacy",
    responses((status = 302, description = "To Google; sets the `tessera_oauth` state cookie"),
        (status = 404, description = "`oauth.google` is not configured", body = ErrorBody)))]
pub async fn google(
    State(core): State<Arc<Tessera>>,
    _limit: CredentialLimit,
) -> AppResult<Response> {
    let (to, cookie) = oauth::start(&core, "google", OAuthCallback::Legacy, None, None).await?;
    Ok(oauth::redirect(&to, [cookie]))
}

/// Sets `auth_token` and redirects to the app URL.
#[utoipa::path(get, path = "/api/auth/google/callback", tag = "legacy",
    responses((status = 302, description = "Signed in; sets `auth_token`"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn google_callback(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    headers: HeaderMap,
    AppQuery(q): AppQuery<CallbackParams>,
) -> Response {
    oauth::callback_response(
        &core,
        "google",
        q,
        &headers,
        &client,
        SURFACE.session_cookie(),
        oauth::CallbackErrors::ToApp,
    )
    .await
}

#[derive(Deserialize, ToSchema)]
pub struct TwoFactorVerifyBody {
    /// When absent, the `tessera_2fa` cookie a social sign-in set.
    #[serde(default)]
    pub challenge: Option<String>,
    pub code: Option<String>,
    pub backup_code: Option<String>,
}

/// The second step of a login with 2FA on: the union login answer.
#[utoipa::path(post, path = "/api/auth/2fa/verify", tag = "legacy", request_body = TwoFactorVerifyBody,
    responses((status = 200, body = LegacyLoginResponse), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn verify_two_factor(
    State(core): State<Arc<Tessera>>,
    _limit: CredentialLimit,
    client: ClientInfo,
    headers: HeaderMap,
    AppJson(body): AppJson<TwoFactorVerifyBody>,
) -> AppResult<Response> {
    let challenge = cookies::two_factor_challenge(body.challenge.as_deref(), &headers);
    let factor = SecondFactor::codes(body.code.as_deref(), body.backup_code.as_deref());
    let outcome = core.verify_two_factor(&challenge, factor, &client).await?;
    let answer = login_answer(&core, outcome).await?;
    Ok(cookies::clear_two_factor_on_success(
        &core, &headers, answer,
    ))
}
