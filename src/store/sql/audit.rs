//! The SQL of [`AuditStore`], compiled once per backend.

use super::*;

#[async_trait]
impl AuditStore for Backend {
    async fn append_audit(&self, event: &AuditEvent) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO audit_events (id, at, action, actor_id, target_id, tenant_id, ip, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(event.id)
        .bind(event.at)
        .bind(&event.action)
        .bind(event.actor_id)
        .bind(event.target_id)
        .bind(event.tenant_id)
        .bind(&event.ip)
        .bind(&event.detail)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn list_audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEvent>> {
        sqlx::query_as(
            "SELECT id, at, action, actor_id, target_id, tenant_id, ip, detail FROM audit_events \
             WHERE ($1 IS NULL OR action = $1) AND ($2 IS NULL OR actor_id = $2) \
             AND ($3 IS NULL OR target_id = $3) AND ($4 IS NULL OR tenant_id = $4) \
             AND ($5 IS NULL OR at >= $5) AND ($6 IS NULL OR at < $6) \
             ORDER BY at DESC, id LIMIT $7 OFFSET $8",
        )
        .bind(&filter.action)
        .bind(filter.actor_id)
        .bind(filter.target_id)
        .bind(filter.tenant_id)
        .bind(filter.since)
        .bind(filter.until)
        .bind(filter.limit)
        .bind(filter.offset)
        .fetch_all(&self.reader)
        .await
        .map_err(StoreError::from)
    }
}
