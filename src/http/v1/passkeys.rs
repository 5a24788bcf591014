//! `/api/v1/auth/passkeys*`: register, list, rename and delete passkeys, and
//! sign in with one.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::login_answer;
use crate::error::{AppError, AppResult};
use crate::http::error::ErrorBody;
use crate::http::extract::{AppJson, CredentialLimit, OptionalJson};
use crate::http::surface::{AnyPrincipal, SignedInSession};
use crate::service::{ClientInfo, PasskeyCeremony, SecondFactor, Tessera};
use crate::store::StoredPasskey;

#[derive(Serialize, ToSchema)]
pub struct CeremonyView {
    /// Send back with the authenticator's answer.
    pub ceremony_id: String,
    /// For `navigator.credentials.create()` / `.get()`.
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
}

impl From<PasskeyCeremony> for CeremonyView {
    fn from(c: PasskeyCeremony) -> Self {
        CeremonyView {
            ceremony_id: c.ceremony_id,
            options: c.options,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PasskeyView {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<&StoredPasskey> for PasskeyView {
    fn from(p: &StoredPasskey) -> Self {
        PasskeyView {
            id: p.id,
            name: p.name.clone(),
            created_at: p.created_at,
            last_used_at: p.last_used_at,
        }
    }
}

/// A malformed id names no passkey: 404, like an unknown one.
fn passkey_id(raw: &str) -> AppResult<Uuid> {
    Uuid::parse_str(raw).map_err(|_| AppError::not_found("No such passkey."))
}

/// With two-factor on, what proves the second factor before a passkey is
/// added (the body may be left out when two-factor is off).
#[derive(Deserialize, ToSchema, Default)]
#[serde(default)]
pub struct RegisterStartBody {
    pub code: Option<String>,
    pub backup_code: Option<String>,
}

/// Start registering a passkey (needs a session and a verified address;
/// with two-factor on, a current code or a backup code too).
#[utoipa::path(post, path = "/api/v1/auth/passkeys/register/start", tag = "passkeys",
    request_body(content = Option<RegisterStartBody>, description = "Needed when two-factor is on"),
    responses((status = 200, body = CeremonyView), (status = 401, body = ErrorBody),
        (status = 403, description = "EMAIL_NOT_VERIFIED, or not a session", body = ErrorBody),
        (status = 422, description = "With two-factor on: the code is missing or wrong", body = ErrorBody),
        (status = 429, description = "ACCOUNT_LOCKED", body = ErrorBody)))]
pub async fn register_start(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    SignedInSession { principal: p, .. }: SignedInSession,
    OptionalJson(body): OptionalJson<RegisterStartBody>,
) -> AppResult<Json<CeremonyView>> {
    let factor = SecondFactor::codes(body.code.as_deref(), body.backup_code.as_deref());
    Ok(Json(
        core.passkey_register_start(&p.user, factor, &client)
            .await?
            .into(),
    ))
}

#[derive(Deserialize, ToSchema)]
pub struct RegisterFinishBody {
    pub ceremony_id: String,
    /// The `PublicKeyCredential` from `navigator.credentials.create()`.
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
    pub name: Option<String>,
}

/// Finish registering a passkey.
#[utoipa::path(post, path = "/api/v1/auth/passkeys/register/finish", tag = "passkeys", request_body = RegisterFinishBody,
    responses((status = 201, body = PasskeyView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn register_finish(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    SignedInSession { principal: p, .. }: SignedInSession,
    AppJson(body): AppJson<RegisterFinishBody>,
) -> AppResult<(StatusCode, Json<PasskeyView>)> {
    let stored = core
        .passkey_register_finish(
            &p.user,
            &body.ceremony_id,
            &body.credential,
            body.name.as_deref(),
            &client,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(PasskeyView::from(&stored))))
}

/// My passkeys.
#[utoipa::path(get, path = "/api/v1/auth/passkeys", tag = "passkeys",
    responses((status = 200, body = [PasskeyView]), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(core): State<Arc<Tessera>>,
    AnyPrincipal(p): AnyPrincipal,
) -> AppResult<Json<Vec<PasskeyView>>> {
    let passkeys = core.list_passkeys(&p.user).await?;
    Ok(Json(passkeys.iter().map(PasskeyView::from).collect()))
}

#[derive(Deserialize, ToSchema)]
pub struct RenameBody {
    pub name: String,
}

/// Rename a passkey.
#[utoipa::path(patch, path = "/api/v1/auth/passkeys/{id}", tag = "passkeys", request_body = RenameBody,
    params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn rename(
    State(core): State<Arc<Tessera>>,
    Path(id): Path<String>,
    AnyPrincipal(p): AnyPrincipal,
    AppJson(body): AppJson<RenameBody>,
) -> AppResult<StatusCode> {
    let id = passkey_id(&id)?;
    core.rename_passkey(&p.user, id, &body.name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete a passkey; refused with 409 when it is the only way to sign in.
#[utoipa::path(delete, path = "/api/v1/auth/passkeys/{id}", tag = "passkeys",
    params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(
    State(core): State<Arc<Tessera>>,
    Path(id): Path<String>,
    client: ClientInfo,
    AnyPrincipal(p): AnyPrincipal,
) -> AppResult<StatusCode> {
    let id = passkey_id(&id)?;
    core.delete_passkey(&p.user, id, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub struct LoginStartBody {
    pub email: String,
}

/// Start a passwordless sign-in. Answers alike whether or not the email
/// has an account or a passkey.
#[utoipa::path(post, path = "/api/v1/auth/passkeys/login/start", tag = "passkeys", request_body = LoginStartBody,
    responses((status = 200, body = CeremonyView), (status = 422, body = ErrorBody)))]
pub async fn login_start(
    State(core): State<Arc<Tessera>>,
    _limit: CredentialLimit,
    AppJson(body): AppJson<LoginStartBody>,
) -> AppResult<Json<CeremonyView>> {
    Ok(Json(core.passkey_login_start(&body.email).await?.into()))
}

#[derive(Deserialize, ToSchema)]
pub struct LoginFinishBody {
    pub ceremony_id: String,
    /// The `PublicKeyCredential` from `navigator.credentials.get()`.
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
}

/// Finish a passwordless sign-in: answers as login does, with `ces_session`.
#[utoipa::path(post, path = "/api/v1/auth/passkeys/login/finish", tag = "passkeys", request_body = LoginFinishBody,
    responses((status = 200, body = super::auth::LoginResponse),
        (status = 401, description = "The passkey was not accepted", body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn login_finish(
    State(core): State<Arc<Tessera>>,
    _limit: CredentialLimit,
    client: ClientInfo,
    AppJson(body): AppJson<LoginFinishBody>,
) -> AppResult<Response> {
    let outcome = core
        .passkey_login_finish(&body.ceremony_id, &body.credential, &client)
        .await?;
    login_answer(&core, outcome).await
}
