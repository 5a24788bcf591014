//! The export of an account: everything Tessera holds about a person, in
//! one document (the right of access and to portability, GDPR articles 15
//! and 20). Secrets (password hashes, session and token secrets, TOTP
//! secrets, backup codes, passkey keys) are never in it.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::audit::{Audit, AuditAction};
use super::mfa::TwoFactorStatus;
use super::{ClientInfo, Principal, Tessera};
use crate::error::AppResult;
use crate::store::{
    AuditEvent, AuditFilter, Identity, Invite, Membership, Pat, Session, StoredPasskey, User,
};

/// The most audit events of a person an export carries (the newest).
const MAX_AUDIT_EVENTS: i64 = 10_000;

/// What an export holds, as the store has it.
pub struct AccountExport {
    pub user: User,
    pub tenants: Vec<Membership>,
    pub pending_invites: Vec<Invite>,
    pub sessions: Vec<Session>,
    pub tokens: Vec<Pat>,
    pub passkeys: Vec<StoredPasskey>,
    pub identities: Vec<Identity>,
    pub two_factor: TwoFactorStatus,
    /// The person's own events: what they did and what was done to their
    /// account, oldest first.
    pub audit: Vec<AuditEvent>,
}

impl Tessera {
    /// Everything about the caller; recorded as `account.export`.
    pub async fn export_account(
        &self,
        principal: &Principal,
        client: &ClientInfo,
    ) -> AppResult<AccountExport> {
        let user = principal.user.clone();
        let export = AccountExport {
            tenants: self.store.memberships(user.id).await?,
            pending_invites: self
                .store
                .pending_invites(&user.email, self.clock.now())
                .await?,
            sessions: self.list_sessions(principal).await?,
            tokens: self.store.list_pats(user.id).await?,
            passkeys: self.store.passkeys(user.id).await?,
            identities: self.store.identities(user.id).await?,
            two_factor: self.two_factor_status(&user).await?,
            audit: self.own_events(user.id).await?,
            user,
        };
        self.record(
            Audit::new(AuditAction::AccountExport)
                .actor(export.user.id)
                .client(client),
        )
        .await;
        Ok(export)
    }

    /// The events a person is the actor or the target of, oldest first.
    async fn own_events(&self, user_id: Uuid) -> AppResult<Vec<AuditEvent>> {
        let filter = AuditFilter {
            limit: MAX_AUDIT_EVENTS,
            ..AuditFilter::default()
        };
        let mut events = BTreeMap::new();
        for filter in [
            AuditFilter {
                actor_id: Some(user_id),
                ..filter.clone()
            },
            AuditFilter {
                target_id: Some(user_id),
                ..filter
            },
        ] {
            for event in self.store.list_audit(&filter).await? {
                events.insert((event.at, event.id), event);
            }
        }
        Ok(events.into_values().collect())
    }
}
