//! `/api/v1/auth/2fa*`: TOTP with backup codes, and the second login step.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::login_answer;
use crate::error::AppResult;
use crate::http::cookies;
use crate::http::error::ErrorBody;
use crate::http::extract::{AppJson, CredentialLimit};
use crate::http::surface::{AnyPrincipal, SignedInSession};
use crate::service::{ClientInfo, PasskeyAssertion, SecondFactor, Tessera};

#[derive(Serialize, ToSchema)]
pub struct TwoFactorStatusView {
    pub enabled: bool,
    /// `totp` when on.
    pub methods: Vec<String>,
    pub backup_codes_remaining: i64,
}

/// My two-factor status.
#[utoipa::path(get, path = "/api/v1/auth/2fa", tag = "2fa",
    responses((status = 200, body = TwoFactorStatusView), (status = 401, body = ErrorBody)))]
pub async fn status(
    State(core): State<Arc<Tessera>>,
    AnyPrincipal(p): AnyPrincipal,
) -> AppResult<Json<TwoFactorStatusView>> {
    let status = core.two_factor_status(&p.user).await?;
    Ok(Json(TwoFactorStatusView {
        enabled: status.enabled,
        methods: status.methods.into_iter().map(str::to_owned).collect(),
        backup_codes_remaining: status.backup_codes_remaining,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct PasswordBody {
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct TotpSetupView {
    /// Base32, for typing into an authenticator app.
    pub secret: String,
    /// `otpauth://totp/…` for a QR code.
    pub otpauth_uri: String,
}

/// Start TOTP setup (needs the password): a new secret, active once a code
/// from it is confirmed at `/totp/enable`.
#[utoipa::path(post, path = "/api/v1/auth/2fa/totp/setup", tag = "2fa", request_body = PasswordBody,
    responses((status = 200, body = TotpSetupView),
        (status = 403, description = "EMAIL_NOT_VERIFIED: the address is not verified yet", body = ErrorBody),
        (status = 409, description = "Already on", body = ErrorBody),
        (status = 422, description = "Wrong password", body = ErrorBody),
        (status = 429, description = "ACCOUNT_LOCKED or RATE_LIMITED: wrong passwords count toward the lockout", body = ErrorBody)))]
pub async fn totp_setup(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    SignedInSession { principal: p, .. }: SignedInSession,
    AppJson(body): AppJson<PasswordBody>,
) -> AppResult<Json<TotpSetupView>> {
    let setup = core.totp_setup(&p.user, &body.password, &client).await?;
    Ok(Json(TotpSetupView {
        secret: setup.secret,
        otpauth_uri: setup.otpauth_uri,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct CodeBody {
    /// Six digits from the authenticator app.
    pub code: String,
}

#[derive(Serialize, ToSchema)]
pub struct BackupCodesView {
    /// Ten single-use codes, shown this once.
    pub backup_codes: Vec<String>,
}

/// Turn TOTP on with a current code. Answers the backup codes; every PAT and
/// every other session is revoked.
#[utoipa::path(post, path = "/api/v1/auth/2fa/totp/enable", tag = "2fa", request_body = CodeBody,
    responses((status = 200, body = BackupCodesView), (status = 409, body = ErrorBody),
        (status = 422, description = "Wrong or reused code", body = ErrorBody)))]
pub async fn totp_enable(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    SignedInSession {
        principal: p,
        session_id,
    }: SignedInSession,
    AppJson(body): AppJson<CodeBody>,
) -> AppResult<Json<BackupCodesView>> {
    let keep = session_id;
    let codes = core
        .totp_enable(&p.user, Some(keep), &body.code, &client)
        .await?;
    Ok(Json(BackupCodesView {
        backup_codes: codes,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct DisableBody {
    pub password: String,
    pub code: Option<String>,
    pub backup_code: Option<String>,
}

/// Turn two-factor off: the password and a current code or a backup code.
#[utoipa::path(post, path = "/api/v1/auth/2fa/disable", tag = "2fa", request_body = DisableBody,
    responses((status = 204), (status = 409, description = "Already off", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn disable(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    SignedInSession { principal: p, .. }: SignedInSession,
    AppJson(body): AppJson<DisableBody>,
) -> AppResult<StatusCode> {
    let factor = SecondFactor::codes(body.code.as_deref(), body.backup_code.as_deref());
    core.two_factor_disable(&p.user, &body.password, factor, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new set of backup codes (needs the password and a current code or a
/// backup code); the old set stops working. Wrong passwords and codes count
/// toward the account lockout.
#[utoipa::path(post, path = "/api/v1/auth/2fa/backup-codes", tag = "2fa", request_body = DisableBody,
    responses((status = 200, body = BackupCodesView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, description = "ACCOUNT_LOCKED or RATE_LIMITED", body = ErrorBody)))]
pub async fn backup_codes(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    SignedInSession { principal: p, .. }: SignedInSession,
    AppJson(body): AppJson<DisableBody>,
) -> AppResult<Json<BackupCodesView>> {
    let factor = SecondFactor::codes(body.code.as_deref(), body.backup_code.as_deref());
    let codes = core
        .regenerate_backup_codes(&p.user, &body.password, factor, &client)
        .await?;
    Ok(Json(BackupCodesView {
        backup_codes: codes,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct VerifyBody {
    /// From the login answer `{two_factor_required: true, challenge}`; when
    /// absent, the `tessera_2fa` cookie a social sign-in set.
    #[serde(default)]
    pub challenge: Option<String>,
    pub code: Option<String>,
    pub backup_code: Option<String>,
    /// With `credential`: a passkey assertion for the ceremony started at
    /// `/api/v1/auth/2fa/passkey/start`.
    pub ceremony_id: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub credential: Option<serde_json::Value>,
}

/// The second step of a login: answers as login does, with `ces_session`
/// (and clears the `tessera_2fa` cookie). Wrong codes count toward the
/// account lockout.
#[utoipa::path(post, path = "/api/v1/auth/2fa/verify", tag = "2fa", request_body = VerifyBody,
    responses((status = 200, body = super::auth::LoginResponse),
        (status = 422, description = "Wrong or reused code, or a bad challenge", body = ErrorBody),
        (status = 429, description = "ACCOUNT_LOCKED or RATE_LIMITED", body = ErrorBody)))]
pub async fn verify(
    State(core): State<Arc<Tessera>>,
    _limit: CredentialLimit,
    client: ClientInfo,
    headers: HeaderMap,
    AppJson(body): AppJson<VerifyBody>,
) -> AppResult<Response> {
    let challenge = cookies::two_factor_challenge(body.challenge.as_deref(), &headers);
    let factor = SecondFactor {
        passkey: match (&body.ceremony_id, &body.credential) {
            (Some(ceremony_id), Some(credential)) => Some(PasskeyAssertion {
                ceremony_id,
                credential,
            }),
            _ => None,
        },
        ..SecondFactor::codes(body.code.as_deref(), body.backup_code.as_deref())
    };
    let outcome = core.verify_two_factor(&challenge, factor, &client).await?;
    let answer = login_answer(&core, outcome).await?;
    Ok(cookies::clear_two_factor_on_success(
        &core, &headers, answer,
    ))
}

#[derive(Deserialize, ToSchema)]
pub struct ChallengeBody {
    /// When absent, the `tessera_2fa` cookie a social sign-in set.
    #[serde(default)]
    pub challenge: Option<String>,
}

/// Options for using a passkey as the second step of a login.
#[utoipa::path(post, path = "/api/v1/auth/2fa/passkey/start", tag = "2fa", request_body = ChallengeBody,
    responses((status = 200, body = super::passkeys::CeremonyView),
        (status = 409, description = "The account has no passkey", body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn passkey_start(
    State(core): State<Arc<Tessera>>,
    _limit: CredentialLimit,
    headers: HeaderMap,
    AppJson(body): AppJson<ChallengeBody>,
) -> AppResult<Json<super::passkeys::CeremonyView>> {
    let challenge = cookies::two_factor_challenge(body.challenge.as_deref(), &headers);
    let ceremony = core.passkey_second_factor_start(&challenge).await?;
    Ok(Json(ceremony.into()))
}
