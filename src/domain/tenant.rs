//! A tenant's name.

use super::clean_text;

/// A tenant's name: trimmed, 1 to [`TenantName::MAX_CHARS`] characters, no
/// control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantName(String);

impl TenantName {
    pub const MAX_CHARS: usize = 100;

    /// The name, or why it is refused (`is required`, too long, control
    /// characters).
    pub fn parse(raw: &str) -> Result<TenantName, String> {
        match clean_text(Some(raw), Self::MAX_CHARS)? {
            Some(name) => Ok(TenantName(name)),
            None => Err("is required".to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_bounded_and_printable() {
        assert_eq!(TenantName::parse("  Acme  ").unwrap().as_str(), "Acme");
        assert_eq!(TenantName::parse("   ").unwrap_err(), "is required");
        assert!(TenantName::parse(&"x".repeat(100)).is_ok());
        assert!(TenantName::parse(&"x".repeat(101)).is_err());
        assert!(TenantName::parse("a\u{7}b").is_err());
    }
}
