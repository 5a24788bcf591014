//! The error every service call returns: a code from the contract's error
//! model, a message for the client, the fields at fault, and (for the log
//! only) the cause. It knows nothing of HTTP: `http/error.rs` is the one
//! place that turns it into a status and a body, and logs what failed.

use std::collections::BTreeMap;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    BadRequest,
    ValidationFailed,
    Unauthorized,
    Forbidden,
    CsrfFailed,
    CaptchaFailed,
    /// The account's address is not verified yet, and the action needs a
    /// proven address (durable credentials: PATs, passkeys, TOTP, links).
    EmailNotVerified,
    NotFound,
    MethodNotAllowed,
    UserExists,
    Conflict,
    AccountLocked,
    RateLimited,
    PayloadTooLarge,
    Internal,
    Unavailable,
}

/// `Retry-After` when a dependency is down: about what a database restart
/// takes.
pub const RETRY_AFTER_DEPENDENCY: u64 = 5;

/// Field name → reason, for `VALIDATION_FAILED`.
pub type FieldErrors = BTreeMap<String, String>;

#[derive(Debug)]
pub struct AppError {
    pub code: ErrorCode,
    pub message: String,
    pub fields: Option<FieldErrors>,
    pub retry_after: Option<u64>,
    /// The underlying cause of a 5xx; logged, never sent.
    pub source: Option<anyhow::Error>,
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        AppError {
            code,
            message: message.into(),
            fields: None,
            retry_after: None,
            source: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            ErrorCode::Unauthorized,
            "Authentication is required or has failed.",
        )
    }

    pub fn invalid_credentials() -> Self {
        Self::new(ErrorCode::Unauthorized, "Invalid email or password.")
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    /// An action that needs a verified address, asked by an account whose
    /// address is not verified yet.
    pub fn email_not_verified() -> Self {
        Self::new(
            ErrorCode::EmailNotVerified,
            "Verify your email address first: follow the link we sent you.",
        )
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }

    /// A single invalid field.
    pub fn field(field: &str, reason: impl Into<String>) -> Self {
        let mut fields = FieldErrors::new();
        fields.insert(field.to_string(), reason.into());
        Self::fields(fields)
    }

    pub fn fields(fields: FieldErrors) -> Self {
        let names: Vec<&str> = fields.keys().map(String::as_str).collect();
        let message = format!("Invalid value for: {}.", names.join(", "));
        AppError {
            fields: Some(fields),
            ..Self::new(ErrorCode::ValidationFailed, message)
        }
    }

    /// A failure of ours: `500` with a generic message. A source marked
    /// [`Overloaded`] becomes a quick `503` with `Retry-After` instead.
    /// The same error with its field names in camelCase (`new_password` →
    /// `newPassword`), for the surfaces whose bodies are camelCase.
    pub fn camel_case_fields(self) -> Self {
        let Some(fields) = self.fields else {
            return self;
        };
        let camel = |name: &str| {
            let mut out = String::new();
            let mut upper = false;
            for c in name.chars() {
                if c == '_' {
                    upper = true;
                } else if upper {
                    out.extend(c.to_uppercase());
                    upper = false;
                } else {
                    out.push(c);
                }
            }
            out
        };
        AppError::fields(fields.into_iter().map(|(k, v)| (camel(&k), v)).collect())
    }

    pub fn internal(source: impl Into<anyhow::Error>) -> Self {
        let source = source.into();
        if source.downcast_ref::<Overloaded>().is_some() {
            return AppError::unavailable("The server is busy; try again in a moment.")
                .with_retry_after(1);
        }
        // A store error that reached here through `anyhow` (a job, key
        // loading) is still the database being down, not a bug of ours.
        if source.chain().any(|e| {
            matches!(
                e.downcast_ref::<crate::store::StoreError>(),
                Some(crate::store::StoreError::Unavailable(_))
            )
        }) {
            return AppError::dependency_down(source);
        }
        AppError {
            source: Some(source),
            ..Self::new(ErrorCode::Internal, "An internal error occurred.")
        }
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, message)
    }

    /// A dependency (the database) is down or not taking work: `503` with
    /// `Retry-After` and a generic message; the source is logged, never
    /// sent.
    pub fn dependency_down(source: impl Into<anyhow::Error>) -> Self {
        AppError {
            source: Some(source.into()),
            ..AppError::unavailable(
                "The service is temporarily unavailable; try again in a moment.",
            )
            .with_retry_after(RETRY_AFTER_DEPENDENCY)
        }
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)
    }
}

impl From<crate::store::StoreError> for AppError {
    fn from(err: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match err {
            StoreError::NotFound => AppError::not_found("Not found."),
            StoreError::Conflict(what) => AppError::conflict(format!("Conflict on {what}.")),
            StoreError::Unavailable(source) => AppError::dependency_down(source),
            StoreError::Other(source) => AppError::internal(source),
        }
    }
}

/// Marks work refused because a bounded queue is full.
#[derive(Debug, thiserror::Error)]
#[error("overloaded: {0}")]
pub struct Overloaded(pub &'static str);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overload_is_a_quick_503_not_a_500() {
        let err = AppError::internal(Overloaded("queue"));
        assert_eq!(err.code, ErrorCode::Unavailable);
        assert_eq!(err.retry_after, Some(1));
        assert_eq!(
            AppError::internal(anyhow::anyhow!("boom")).code,
            ErrorCode::Internal
        );
    }

    #[test]
    fn a_database_down_is_a_503_with_retry_after_and_no_internals() {
        use crate::store::StoreError;
        let down = || StoreError::Unavailable(anyhow::anyhow!("pool timed out at 10.0.0.5"));
        let err = AppError::from(down());
        assert_eq!(err.code, ErrorCode::Unavailable);
        assert_eq!(err.retry_after, Some(RETRY_AFTER_DEPENDENCY));
        assert!(!err.message.contains("10.0.0.5"));
        assert!(err.source.is_some(), "the cause is kept for the log");
        // Also when it travelled through `anyhow` with context on top.
        let wrapped = anyhow::Error::from(down()).context("loading JWT signing keys");
        assert_eq!(AppError::internal(wrapped).code, ErrorCode::Unavailable);
        // Anything else from the store is still ours.
        let other = AppError::from(StoreError::Other(anyhow::anyhow!("bad column")));
        assert_eq!(other.code, ErrorCode::Internal);
    }

    #[test]
    fn field_names_turn_camel_case() {
        let mut fields = FieldErrors::new();
        fields.insert("current_password".into(), "is incorrect".into());
        fields.insert("email".into(), "is required".into());
        let err = AppError::fields(fields).camel_case_fields();
        let names: Vec<&str> = err
            .fields
            .as_ref()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(names, ["currentPassword", "email"]);
        assert_eq!(err.code, ErrorCode::ValidationFailed);
        assert_eq!(
            AppError::unauthorized().camel_case_fields().code,
            ErrorCode::Unauthorized
        );
    }
}
