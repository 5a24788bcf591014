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

pub fn invite(inviter: &str, tenant: &str, role: &str, link: &str) -> Rendered {
    Rendered {
        subject: format!("{inviter} invited you to {tenant}"),
        body: format!(
            "{inviter} invited you to join {tenant} as {role}.\n\n\
             To accept, open this link:\n\n{link}\n\n\
             The link works once and expires in 7 days. If you did not expect it, ignore this mail.\n"
        ),
    }
}
