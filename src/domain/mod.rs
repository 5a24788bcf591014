//! Values that are valid by construction: parse, don't validate.
//! Nothing here knows about HTTP or SQL.

mod email;
mod password;
mod role;
mod tenant;

pub use email::Email;
pub use password::{
    normalize as normalize_password, NewPassword, PasswordError, MAX_CHARS as PASSWORD_MAX_CHARS,
};
pub use role::{Role, Scope, Scopes};
pub use tenant::TenantName;

/// Trims and bounds a free-text field such as a name; `None` when empty.
pub fn clean_text(value: Option<&str>, max_chars: usize) -> Result<Option<String>, String> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if value.chars().count() > max_chars {
        return Err(format!("must be at most {max_chars} characters"));
    }
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(Some(value.to_owned()))
}
