//! The text of every mail Tessera sends.

pub struct Rendered {
    pub subject: String,
    pub body: String,
}

/// How long something lasts, as a person says it: "5 minutes", "1 hour",
/// "24 hours", "7 days" (the largest unit that divides it).
pub fn lifetime(d: chrono::Duration) -> String {
    let (n, unit) = if d.num_seconds() % 86_400 == 0 && d.num_days() != 1 {
        (d.num_days(), "day")
    } else if d.num_seconds() % 3_600 == 0 {
        (d.num_hours(), "hour")
    } else {
        (d.num_minutes(), "minute")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// The verification mail; its link works for `ttl`.
pub fn verify_email(link: &str, ttl: chrono::Duration) -> Rendered {
    let ttl = lifetime(ttl);
    Rendered {
        subject: "Confirm your email address".into(),
        body: format!(
            "Welcome!\n\nConfirm your email address by opening this link:\n\n{link}\n\n\
             The link works once and expires in {ttl}. If you did not sign up, ignore this mail.\n"
        ),
    }
}

/// The reset mail; its link works for `ttl`.
pub fn reset_password(link: &str, ttl: chrono::Duration) -> Rendered {
    let ttl = lifetime(ttl);
    Rendered {
        subject: "Reset your password".into(),
        body: format!(
            "Someone asked to reset the password of this account.\n\n\
             To choose a new password, open this link:\n\n{link}\n\n\
             The link works once and expires in {ttl}. If it was not you, ignore this mail: \
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

/// The invitation; its link works for `ttl`.
pub fn invite(
    inviter: &str,
    tenant: &str,
    role: &str,
    link: &str,
    ttl: chrono::Duration,
) -> Rendered {
    let ttl = lifetime(ttl);
    let inviter = mail_safe_name(inviter, "Someone");
    let tenant = mail_safe_name(tenant, "a workspace");
    Rendered {
        subject: format!("{inviter} invited you to {tenant}"),
        body: format!(
            "{inviter} invited you to join {tenant} as {role}.\n\n\
             To accept, open this link:\n\n{link}\n\n\
             The link works once and expires in {ttl}. If you did not expect it, ignore this mail.\n"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_read_as_people_say_them() {
        use chrono::Duration;
        assert_eq!(lifetime(Duration::minutes(5)), "5 minutes");
        assert_eq!(lifetime(Duration::hours(1)), "1 hour");
        assert_eq!(lifetime(Duration::hours(24)), "24 hours");
        assert_eq!(lifetime(Duration::days(7)), "7 days");
        assert_eq!(lifetime(Duration::minutes(90)), "90 minutes");
    }

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
            chrono::Duration::days(7),
        );
        assert_eq!(rendered.subject, "Eve invited you to Team X");
        assert!(!rendered.subject.contains("evil"));
    }
}
