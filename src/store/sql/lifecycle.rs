//! The SQL of [`Lifecycle`], compiled once per backend.

use super::*;

#[async_trait]
impl Lifecycle for Backend {
    async fn migrate(&self) -> StoreResult<()> {
        // A schema newer than this binary knows (a newer node migrated it):
        // refuse to start rather than run against tables we do not know.
        // (No table yet, on a fresh database, reads as no version.)
        let newest_known = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
        let applied: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
            .fetch_one(&self.writer)
            .await
            .ok()
            .flatten();
        if let Some(applied) = applied.filter(|v| *v > newest_known) {
            return Err(StoreError::Other(anyhow::anyhow!(
                "the database schema is at version {applied}, newer than this binary knows \
                 ({newest_known}): run a tessera at least as new as the one that migrated it"
            )));
        }
        // sqlx holds an advisory lock while it migrates (PostgreSQL), so
        // nodes starting together apply each migration once.
        MIGRATOR
            .run(&self.writer)
            .await
            .map_err(|e| StoreError::Other(e.into()))
    }

    fn changes(&self) -> &ChangeFeed {
        &self.changes
    }

    async fn follow_changes(&self, stop: tokio::sync::watch::Receiver<bool>) {
        self.follow_remote_changes(stop).await
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        self.pools()
            .into_iter()
            .map(|(pool, p)| PoolStats {
                pool,
                size: p.size(),
                idle: u32::try_from(p.num_idle()).unwrap_or(u32::MAX),
                max: p.options().get_max_connections(),
            })
            .collect()
    }

    async fn ready(&self) -> StoreResult<()> {
        let applied: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.reader)
                .await?;
        let known = MIGRATOR.iter().count() as i64;
        if applied < known {
            return Err(StoreError::Other(anyhow::anyhow!(
                "{applied} of {known} migrations applied"
            )));
        }
        Ok(())
    }

    async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }
}
