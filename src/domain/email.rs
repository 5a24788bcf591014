use std::fmt;

/// An email address: trimmed, lower-cased, one address, plausible shape.
///
/// Deliberately conservative: one `@`, a non-empty local part of printable
/// ASCII without separators, a domain of dot-separated labels. Lists such as
/// `a@x.test,b@y.test` and display forms such as `Name <a@x.test>` are refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(raw: &str) -> Result<Email, String> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err("is required".into());
        }
        if email.len() > Self::MAX_LEN {
            return Err(format!("must be at most {} characters", Self::MAX_LEN));
        }
        let invalid = || Err("is not a valid email address".to_string());
        let Some((local, domain)) = email.split_once('@') else {
            return invalid();
        };
        if local.is_empty() || local.len() > 64 || domain.contains('@') {
            return invalid();
        }
        let local_ok = local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c))
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..");
        if !local_ok {
            return invalid();
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !domain_ok {
            return invalid();
        }
        Ok(Email(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn local_part(&self) -> &str {
        self.0.split('@').next().unwrap_or_default()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::Email;

    #[test]
    fn normalises_case_and_whitespace() {
        let email = Email::parse("  Alice.Smith@Example.TEST ").unwrap();
        assert_eq!(email.as_str(), "alice.smith@example.test");
        assert_eq!(email.local_part(), "alice.smith");
    }

    #[test]
    fn refuses_lists_display_forms_and_junk() {
        for bad in [
            "",
            "   ",
            "a@x.test,b@y.test",
            "a@x.test;b@y.test",
            "a@x.test b@y.test",
            "Alice <a@x.test>",
            "a@@x.test",
            "a@b@x.test",
            "@x.test",
            "a@",
            "a@localhost",
            "a@-x.test",
            "a@x..test",
            ".a@x.test",
            "a..b@x.test",
            "a\n@x.test",
            "a@x.test\r\nBcc: c@z.test",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn bounds_length() {
        let long = format!("{}@x.test", "a".repeat(65));
        assert!(Email::parse(&long).is_err());
        let domain = format!("a@{}.test", vec!["b".repeat(60); 5].join("."));
        assert!(Email::parse(&domain).is_err());
    }

    #[test]
    fn accepts_plus_addressing_and_subdomains() {
        assert!(Email::parse("a+tag@mail.x.test").is_ok());
        assert!(Email::parse("o'brien@x-y.test").is_ok());
    }
}
