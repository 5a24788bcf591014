//! The audit log: security events, appended, never edited.

use serde_json::Value;
use uuid::Uuid;

use super::{ClientInfo, Tessera};
use crate::error::{AppError, AppResult};
use crate::store::{AuditEvent, AuditFilter};

/// Declares [`AuditAction`] from one table, so that its stored names and
/// [`AuditAction::ALL`] cannot drift from the variants.
macro_rules! audit_actions {
    ($($(#[doc = $doc:literal])+ $variant:ident => $name:literal,)+) => {
        /// What an audit event records. The stored `action` column and the
        /// admin audit API's `action` filter use [`AuditAction::as_str`]:
        /// those names are data and must never change.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum AuditAction {
            $($(#[doc = $doc])+ $variant,)+
        }

        impl AuditAction {
            /// Every action, in declaration order.
            pub const ALL: &'static [AuditAction] = &[$(AuditAction::$variant,)+];

            /// The name stored in the audit log, e.g. `login.failure`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(AuditAction::$variant => $name,)+
                }
            }
        }
    };
}

audit_actions! {
    // Accounts and sign-in.
    /// An account was created by sign-up (with or without an invitation,
    /// dashboard sign-up too) or by a first social sign-in. Accounts made
    /// from the command line record nothing.
    Signup => "signup",
    /// An account whose address was never verified was discarded because
    /// someone else signed up with that address.
    AccountDiscarded => "account.discarded",
    /// A password reset link was redeemed (also when it replaced a never
    /// verified account with a fresh one).
    PasswordReset => "password.reset",
    /// A user changed their password, giving the current one.
    PasswordChange => "password.change",
    /// A user without a password (social sign-in) set a first one.
    PasswordSet => "password.set",
    /// A session was started after every factor passed (password, password
    /// and second factor, passkey or social sign-in).
    LoginSuccess => "login.success",
    /// A credential was refused: an unknown address or wrong password at
    /// sign-in, a wrong current password when it is checked again (as to
    /// change it), or a wrong second factor. The detail tells whether the
    /// address or device is now locked.
    LoginFailure => "login.failure",
    /// A user signed out of their current session.
    Logout => "logout",
    /// A user revoked one of their sessions, or all but the current one.
    SessionRevoke => "session.revoke",
    /// A refresh token already rotated away was presented again (outside
    /// the replay grace), a sign of theft: the session is refused.
    RefreshTokenReused => "refresh_token.reused",
    /// A user's profile was updated: by the user (their names) or by an
    /// admin (recorded on every admin patch, with the plan).
    UserUpdate => "user.update",
    /// A user downloaded everything Tessera holds about them.
    AccountExport => "account.export",

    // Second factors.
    /// A user turned on TOTP two-factor authentication.
    TwoFactorEnable => "2fa.enable",
    /// A user turned off two-factor authentication.
    TwoFactorDisable => "2fa.disable",
    /// A second factor given at sign-in was wrong (a `login.failure`
    /// follows).
    TwoFactorFailure => "2fa.failure",
    /// A backup code was spent in place of a TOTP code.
    TwoFactorBackupCodeUsed => "2fa.backup_code_used",
    /// A user replaced their backup codes with new ones.
    TwoFactorBackupCodesRegenerated => "2fa.backup_codes_regenerated",
    /// A user registered a passkey.
    PasskeyAdd => "passkey.add",
    /// A user deleted a passkey.
    PasskeyDelete => "passkey.delete",
    /// A social (OAuth/OIDC) identity was linked to an existing account.
    IdentityLink => "identity.link",
    /// A user unlinked a social identity from their account.
    IdentityUnlink => "identity.unlink",

    // Personal access tokens.
    /// A user created a personal access token.
    TokenCreate => "token.create",
    /// A user revoked one of their personal access tokens.
    TokenRevoke => "token.revoke",

    // Tenants.
    /// A user created a tenant.
    TenantCreate => "tenant.create",
    /// An owner deleted a tenant.
    TenantDelete => "tenant.delete",
    /// A member's role in a tenant was changed.
    MemberRoleChange => "member.role_change",
    /// A member was removed from a tenant.
    MemberRemove => "member.remove",
    /// An invitation to a tenant was sent.
    InviteSend => "invite.send",
    /// A pending invitation to a tenant was revoked.
    InviteRevoke => "invite.revoke",
    /// An invitation was accepted by a signed-in user.
    InviteAccept => "invite.accept",

    // Administration.
    /// An admin disabled a user (their sessions are revoked).
    UserDisable => "user.disable",
    /// An admin enabled a disabled user again.
    UserEnable => "user.enable",
    /// An admin cleared a user's failed logins and lockout.
    UserUnlock => "user.unlock",
    /// An admin deleted a user.
    UserDelete => "user.delete",
    /// An admin made a user a global admin.
    AdminGrant => "admin.grant",
    /// An admin took a user's global admin role away.
    AdminRevoke => "admin.revoke",
    /// The plan check put a user whose plan expired back on the default
    /// plan (run by the scheduled job, or by an admin as the actor).
    PlanReset => "plan.reset",
}

/// An event about to be recorded. Build with [`Audit::new`] and the setters.
#[derive(Debug, Clone)]
pub struct Audit {
    action: AuditAction,
    actor: Option<Uuid>,
    target: Option<Uuid>,
    tenant: Option<Uuid>,
    ip: Option<String>,
    detail: Option<Value>,
}

impl Audit {
    pub fn new(action: AuditAction) -> Audit {
        Audit {
            action,
            actor: None,
            target: None,
            tenant: None,
            ip: None,
            detail: None,
        }
    }

    pub fn actor(mut self, id: Uuid) -> Self {
        self.actor = Some(id);
        self
    }

    pub fn target(mut self, id: Uuid) -> Self {
        self.target = Some(id);
        self
    }

    pub fn tenant(mut self, id: Uuid) -> Self {
        self.tenant = Some(id);
        self
    }

    pub fn tenant_opt(mut self, id: Option<Uuid>) -> Self {
        self.tenant = id;
        self
    }

    pub fn client(mut self, client: &ClientInfo) -> Self {
        self.ip = client.ip.clone();
        self
    }

    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = Some(detail);
        self
    }
}

pub const MAX_PAGE: i64 = 200;

impl Tessera {
    /// Appends an event. A failure to record is logged and does not undo or
    /// fail the action it describes.
    pub async fn record(&self, audit: Audit) {
        let event = AuditEvent {
            id: Uuid::new_v4(),
            at: self.clock.now(),
            action: audit.action.as_str().to_owned(),
            actor_id: audit.actor,
            target_id: audit.target,
            tenant_id: audit.tenant,
            ip: audit.ip,
            detail: audit.detail.map(|d| d.to_string()),
        };
        if let Err(err) = self.store.append_audit(&event).await {
            tracing::error!(action = audit.action.as_str(), error = %err, "recording an audit event failed");
        }
    }

    pub async fn audit_events(&self, mut filter: AuditFilter) -> AppResult<Vec<AuditEvent>> {
        if !(1..=MAX_PAGE).contains(&filter.limit) {
            return Err(AppError::field(
                "limit",
                format!("must be between 1 and {MAX_PAGE}"),
            ));
        }
        if filter.offset < 0 {
            return Err(AppError::field("offset", "must not be negative"));
        }
        filter.action = filter.action.filter(|a| !a.is_empty());
        Ok(self.store.list_audit(&filter).await?)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::AuditAction;

    /// `word(.word)*`, each word of lowercase ASCII letters, digits (as in
    /// `2fa`) and underscores.
    fn well_formed(name: &str) -> bool {
        name.split('.').all(|word| {
            !word.is_empty()
                && word
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
    }

    #[test]
    fn action_names_are_unique_and_well_formed() {
        let mut seen = HashSet::new();
        for action in AuditAction::ALL {
            let name = action.as_str();
            assert!(well_formed(name), "{action:?} is stored as {name:?}");
            assert!(seen.insert(name), "{name:?} is used twice");
        }
    }

    #[test]
    fn well_formed_refuses_odd_names() {
        for name in [
            "",
            ".",
            "login.",
            ".login",
            "login..failure",
            "Login",
            "log-in",
            "a b",
        ] {
            assert!(!well_formed(name), "{name:?}");
        }
        for name in ["logout", "login.failure", "2fa.backup_code_used"] {
            assert!(well_formed(name), "{name:?}");
        }
    }

    #[test]
    fn stored_names_are_unchanged() {
        // Stored rows and API filters use these: a rename is a migration.
        assert_eq!(AuditAction::LoginFailure.as_str(), "login.failure");
        assert_eq!(
            AuditAction::RefreshTokenReused.as_str(),
            "refresh_token.reused"
        );
        assert_eq!(
            AuditAction::TwoFactorBackupCodesRegenerated.as_str(),
            "2fa.backup_codes_regenerated"
        );
        assert_eq!(AuditAction::MemberRoleChange.as_str(), "member.role_change");
        assert_eq!(AuditAction::Logout.as_str(), "logout");
    }
}
