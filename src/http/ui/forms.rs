//! The forms the pages post, read and checked before a handler runs: a
//! body that is not a form gets a page saying so, an anonymous form must
//! carry the token of its `tessera_form` cookie (and spends the client's
//! credential budget), and a signed-in form the session's CSRF token.

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::{check_anonymous_form, check_origin, error_page, SignedIn, Viewer};
use crate::error::{AppError, ErrorCode};
use crate::http::extract::CredentialLimit;
use crate::service::Tessera;

/// A posted form. A body that is not a form, or too large, gets a page
/// saying so; missing fields read as empty, so the service names them.
pub struct UiForm<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Arc<Tessera>> for UiForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, core: &Arc<Tessera>) -> Result<Self, Self::Rejection> {
        match axum::Form::<T>::from_request(req, core).await {
            Ok(axum::Form(form)) => Ok(UiForm(form)),
            Err(rejection) => {
                let code = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ErrorCode::PayloadTooLarge
                } else {
                    ErrorCode::BadRequest
                };
                Err(error_page(
                    core,
                    AppError::new(code, "The form could not be read; go back and try again."),
                ))
            }
        }
    }
}

/// A form that carries the anonymous-form token (`form_token`).
pub trait FormToken {
    fn form_token(&self) -> &str;
}

/// A form that carries the session's CSRF token (`csrf_token`).
pub trait CsrfToken {
    fn csrf_token(&self) -> &str;
}

/// Implements [`FormToken`] or [`CsrfToken`] for forms with that field.
macro_rules! form_tokens {
    ($token:ident :: $field:ident for $($form:ty),* $(,)?) => {
        $(impl $crate::http::ui::forms::$token for $form {
            fn $field(&self) -> &str {
                &self.$field
            }
        })*
    };
}
pub(crate) use form_tokens;

/// An anonymous form that passed its checks: a present `Origin` is the
/// public URL's, its token matches the form cookie, and the client's per-IP
/// credential budget allowed it (every anonymous form here signs in, signs
/// up or mails a link, so each spends one).
pub struct AnonymousForm<T>(pub T);

impl<T: DeserializeOwned + FormToken> FromRequest<Arc<Tessera>> for AnonymousForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, core: &Arc<Tessera>) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        // Spent first, whatever comes next: a flood of bad forms pays too.
        let limit = CredentialLimit::from_request_parts(&mut parts, core).await;
        let headers = parts.headers.clone();
        let UiForm(form) =
            UiForm::<T>::from_request(Request::from_parts(parts, body), core).await?;
        check_anonymous_form(core, &headers, form.form_token())
            .map_err(IntoResponse::into_response)?;
        limit.map_err(|err| error_page(core, err))?;
        Ok(AnonymousForm(form))
    }
}

/// A form posted by someone signed in, whose CSRF token is the session's
/// and whose `Origin`, when present, is the public URL's (`null` is not).
/// Nobody signed in is sent to sign in; a wrong token or a foreign origin
/// gets the refusal page.
pub struct SignedInForm<T>(pub Viewer, pub T);

impl<T: DeserializeOwned + CsrfToken> FromRequest<Arc<Tessera>> for SignedInForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, core: &Arc<Tessera>) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        check_origin(core, &parts.headers).map_err(IntoResponse::into_response)?;
        let SignedIn(viewer) = SignedIn::from_request_parts(&mut parts, core).await?;
        let UiForm(form) =
            UiForm::<T>::from_request(Request::from_parts(parts, body), core).await?;
        viewer
            .check(form.csrf_token())
            .map_err(IntoResponse::into_response)?;
        Ok(SignedInForm(viewer, form))
    }
}
