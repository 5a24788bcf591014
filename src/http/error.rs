//! The one place where failures become HTTP answers, and where they are
//! logged.
//!
//! Every error body is `{"code": "...", "message": "...", "fields": {...}?}`.
//! [`status`] is an exhaustive match, so adding a code forces a decision
//! about its status. Turning an error into a response has no side effect:
//! it leaves a [`Failure`] in the response's extensions, and the
//! [`log_failures`] layer logs it (with its cause, which is never sent).

use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::{AppError, ErrorCode, FieldErrors};

/// The status of each code.
pub fn status(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
        ErrorCode::ValidationFailed => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden
        | ErrorCode::CsrfFailed
        | ErrorCode::CaptchaFailed
        | ErrorCode::EmailNotVerified => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::UserExists | ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::AccountLocked | ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// The error body as documented in the OpenAPI document.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<FieldErrors>,
}

/// What an error response carries for the log (a response extension).
#[derive(Clone)]
pub struct Failure {
    code: ErrorCode,
    message: String,
    retried_after: bool,
    source: Option<Arc<anyhow::Error>>,
}

impl Failure {
    /// Takes what the log needs out of `err`, leaving its client-facing parts.
    /// What the log needs of a 5xx (the only answers it logs); nothing is
    /// copied for the client errors most requests that fail end in.
    fn worth_logging(err: &mut AppError) -> Option<Failure> {
        status(err.code).is_server_error().then(|| Failure::of(err))
    }

    fn of(err: &mut AppError) -> Failure {
        Failure {
            code: err.code,
            message: err.message.clone(),
            retried_after: err.retry_after.is_some(),
            source: err.source.take().map(Arc::new),
        }
    }

    /// Logs a 5xx (with its cause); anything else is the client's business.
    fn log(&self) {
        if !status(self.code).is_server_error() {
            return;
        }
        match &self.source {
            // A dependency down (a database restart) is an outage to see,
            // not a bug of ours.
            Some(source) if self.code == ErrorCode::Unavailable => {
                tracing::warn!(code = ?self.code, error = %format!("{source:#}"), "dependency unavailable")
            }
            Some(source) => {
                tracing::error!(code = ?self.code, error = %format!("{source:#}"), "request failed")
            }
            // Shedding load (a full hash queue) is expected under a
            // flood: one line per refusal would flood the log too.
            None if self.retried_after => {
                tracing::debug!(code = ?self.code, message = %self.message, "request refused")
            }
            None => {
                tracing::warn!(code = ?self.code, message = %self.message, "request failed")
            }
        }
    }
}

/// Adds what the log needs about `err` to a response drawn for it some
/// other way (the pages draw their own).
pub fn note(response: &mut Response, err: &mut AppError) {
    if let Some(failure) = Failure::worth_logging(err) {
        response.extensions_mut().insert(failure);
    }
}

impl IntoResponse for AppError {
    fn into_response(mut self) -> Response {
        let failure = Failure::worth_logging(&mut self);
        let body = ErrorBody {
            code: self.code,
            message: self.message,
            fields: self.fields,
        };
        let mut response = (status(self.code), axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(failure) = failure {
            response.extensions_mut().insert(failure);
        }
        response
    }
}

/// The layer that logs failed requests, from what their responses carry.
pub fn log_failures<B>(response: Response<B>) -> Response<B> {
    if let Some(failure) = response.extensions().get::<Failure>() {
        failure.log();
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::RETRY_AFTER_DEPENDENCY;

    #[test]
    fn a_database_down_answers_503_with_retry_after_and_keeps_the_cause_for_the_log() {
        use crate::store::StoreError;
        let err = AppError::from(StoreError::Unavailable(anyhow::anyhow!(
            "pool timed out at 10.0.0.5"
        )));
        let response = err.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response.headers()[header::RETRY_AFTER],
            RETRY_AFTER_DEPENDENCY.to_string().as_str()
        );
        let failure = response.extensions().get::<Failure>().expect("noted");
        assert!(failure.source.is_some());
    }

    #[test]
    fn every_code_has_a_client_or_server_status() {
        for code in [
            ErrorCode::BadRequest,
            ErrorCode::Unauthorized,
            ErrorCode::Internal,
            ErrorCode::Unavailable,
        ] {
            let s = status(code);
            assert!(s.is_client_error() || s.is_server_error(), "{code:?}");
        }
    }
}
