//! The audit log: security events, appended, never edited.

use serde_json::Value;
use uuid::Uuid;

use super::{ClientInfo, Tessera};
use crate::error::{AppError, AppResult};
use crate::store::{AuditEvent, AuditFilter};

/// An event about to be recorded. Build with [`Audit::new`] and the setters.
#[derive(Debug, Clone)]
pub struct Audit {
    action: &'static str,
    actor: Option<Uuid>,
    target: Option<Uuid>,
    tenant: Option<Uuid>,
    ip: Option<String>,
    detail: Option<Value>,
}

impl Audit {
    pub fn new(action: &'static str) -> Audit {
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
            action: audit.action.to_owned(),
            actor_id: audit.actor,
            target_id: audit.target,
            tenant_id: audit.tenant,
            ip: audit.ip,
            detail: audit.detail.map(|d| d.to_string()),
        };
        if let Err(err) = self.store.append_audit(&event).await {
            tracing::error!(action = audit.action, error = %err, "recording an audit event failed");
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
