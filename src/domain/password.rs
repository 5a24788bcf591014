use std::collections::HashSet;
use std::sync::LazyLock;

use unicode_normalization::UnicodeNormalization;

use super::Email;

pub const MIN_CHARS: usize = 8;
pub const MAX_CHARS: usize = 128;

static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../../data/common-passwords.txt")
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .collect()
});

/// A new password that passed the policy: 8–128 code points after NFKC
/// normalisation, not a common password, not containing the email's local
/// part. Holds the normalised form, which is what gets hashed.
pub struct NewPassword(String);

#[derive(Debug, PartialEq, Eq)]
pub enum PasswordError {
    TooShort,
    TooLong,
    Common,
    ContainsEmail,
}

impl PasswordError {
    pub fn reason(&self) -> String {
        match self {
            PasswordError::TooShort => format!("must be at least {MIN_CHARS} characters"),
            PasswordError::TooLong => format!("must be at most {MAX_CHARS} characters"),
            PasswordError::Common => "is too common; choose a less guessable password".into(),
            PasswordError::ContainsEmail => "must not contain your email address".into(),
        }
    }
}

/// NFKC form of a password, used both when setting and when checking one.
pub fn normalize(raw: &str) -> String {
    raw.nfkc().collect()
}

impl NewPassword {
    pub fn parse(raw: &str, email: &Email) -> Result<NewPassword, PasswordError> {
        let normalized = normalize(raw);
        let chars = normalized.chars().count();
        if chars < MIN_CHARS {
            return Err(PasswordError::TooShort);
        }
        if chars > MAX_CHARS {
            return Err(PasswordError::TooLong);
        }
        let lower = normalized.to_lowercase();
        if COMMON.contains(lower.as_str()) {
            return Err(PasswordError::Common);
        }
        let local = email.local_part();
        if local.chars().count() >= 3 && lower.contains(local) {
            return Err(PasswordError::ContainsEmail);
        }
        Ok(NewPassword(normalized))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewPassword([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> Email {
        Email::parse("alice@example.test").unwrap()
    }

    #[test]
    fn length_counts_code_points() {
        assert_eq!(
            NewPassword::parse("shørt1", &email()).unwrap_err(),
            PasswordError::TooShort
        );
        // Eight code points, sixteen bytes.
        assert!(NewPassword::parse("ééééééé9", &email()).is_ok());
        let long = "x".repeat(129);
        assert_eq!(
            NewPassword::parse(&long, &email()).unwrap_err(),
            PasswordError::TooLong
        );
        assert!(NewPassword::parse(&"xk3!".repeat(32), &email()).is_ok());
    }

    #[test]
    fn normalises_with_nfkc() {
        // U+FB01 (the "fi" ligature) becomes "fi".
        let p = NewPassword::parse("\u{FB01}rewall-horse-42", &email()).unwrap();
        assert_eq!(p.expose(), "firewall-horse-42");
    }

    #[test]
    fn refuses_common_passwords_in_any_case() {
        assert_eq!(
            NewPassword::parse("password", &email()).unwrap_err(),
            PasswordError::Common
        );
        assert_eq!(
            NewPassword::parse("PassWord1", &email()).unwrap_err(),
            PasswordError::Common
        );
        assert_eq!(
            NewPassword::parse("12345678", &email()).unwrap_err(),
            PasswordError::Common
        );
        assert!(COMMON.len() > 10_000);
    }

    #[test]
    fn refuses_the_email_local_part() {
        assert_eq!(
            NewPassword::parse("my-Alice-secret", &email()).unwrap_err(),
            PasswordError::ContainsEmail
        );
    }
}
