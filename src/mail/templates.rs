//! The text of every mail Tessera sends.

pub struct Rendered {
    pub subject: String,
    pub body: String,
}

pub fn verify_email(link: &str) -> Rendered {
    Rendered {
        subject: "Confirm your email address".into(),
        body: format!(
            "Welcome!\n\nConfirm your email address by opening this link:\n\n{link}\n\n\
             The link works once and expires in 24 hours. If you did not sign up, ignore this mail.\n"
        ),
    }
}

pub fn reset_password(link: &str) -> Rendered {
    Rendered {
        subject: "Reset your password".into(),
        body: format!(
            "Someone asked to reset the password of this account.\n\n\
             To choose a new password, open this link:\n\n{link}\n\n\
             The link works once and expires in 1 hour. If it was not you, ignore this mail: \
             your password stays as it is.\n"
        ),
    }
}

/// Longest name put in an invitation (longer ones are cut with "…").
const MAIL_NAME_MAX: usize = 40;

/// A name chosen by a user, fit for a mail to a stranger: no control or
/// formatting characters (no header injection, no reversed text), no links,
/// addresses or domain names (an invitation is not a way to mail someone a
/// link of one's choosing), and short.
pub fn mail_safe_name(raw: &str, fallback: &str) -> String {
    let looks_like_link = |word: &str| {
        let lower = word.to_lowercase();
        if lower.contains("://") || lower.starts_with("www.") || lower.contains('@') {
            return true;
        }
        let word = lower.trim_end_matches(|c: char| !c.is_alphanumeric());
        match word.rsplit_once('.') {
            Some((head, tld)) => {
                !head.is_empty() && tld.len() >= 2 && tld.chars().all(|c| c.is_alphabetic())
            }
            None => false,
        }
    };
    let cleaned: String = raw
        .chars()
        .map(|c| {
            if c.is_control() || is_format(c) {
                ' '
            } else {
                c
            }
        })
        .collect();
    let words: Vec<&str> = cleaned
        .split_whitespace()
        .filter(|w| !looks_like_link(w))
        .collect();
    let joined = words.join(" ");
    if joined.is_empty() {
        return fallback.to_owned();
    }
    if joined.chars().count() > MAIL_NAME_MAX {
        let cut: String = joined.chars().take(MAIL_NAME_MAX - 1).collect();
        format!("{}…", cut.trim_end())
    } else {
        joined
    }
}

/// Unicode format characters (bidirectional overrides, zero-width ones).
fn is_format(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}' | '\u{00AD}')
}

pub fn invite(inviter: &str, tenant: &str, role: &str, link: &str) -> Rendered {
    let inviter = mail_safe_name(inviter, "Someone");
    let tenant = mail_safe_name(tenant, "a workspace");
    Rendered {
        subject: format!("{inviter} invited you to {tenant}"),
        body: format!(
            "{inviter} invited you to join {tenant} as {role}.\n\n\
             To accept, open this link:\n\n{link}\n\n\
             The link works once and expires in 7 days. If you did not expect it, ignore this mail.\n"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_invitations_carry_no_links_controls_or_length() {
        assert_eq!(mail_safe_name("Acme Inc.", "x"), "Acme Inc.");
        assert_eq!(
            mail_safe_name("Win a prize at https://evil.test/x now", "x"),
            "Win a prize at now"
        );
        assert_eq!(
            mail_safe_name("visit evil.example today", "x"),
            "visit today"
        );
        assert_eq!(
            mail_safe_name("www.evil.test", "a workspace"),
            "a workspace"
        );
        assert_eq!(mail_safe_name("me@evil.test", "Someone"), "Someone");
        assert_eq!(
            mail_safe_name("Bcc: x\r\nSubject: y", "x"),
            "Bcc: x Subject: y"
        );
        assert_eq!(mail_safe_name("a\u{202E}gnp.exe", "x"), "a");
        assert_eq!(mail_safe_name("Version 1.2 team", "x"), "Version 1.2 team");
        let long = mail_safe_name(&"word ".repeat(30), "x");
        assert!(long.chars().count() <= 40 && long.ends_with('…'), "{long}");
        let rendered = invite(
            "Eve http://evil.test",
            "Team\nX",
            "member",
            "https://t/ui?token=1",
        );
        assert_eq!(rendered.subject, "Eve invited you to Team X");
        assert!(!rendered.subject.contains("evil"));
    }
}
