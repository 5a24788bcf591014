//! The database itself: migrations, readiness, pools, the change feed.

use super::*;

#[async_trait]
pub trait Lifecycle: Send + Sync {
    /// Applies pending migrations, one node at a time (an advisory lock on
    /// PostgreSQL); refuses a database whose schema is newer than this
    /// binary knows.
    async fn migrate(&self) -> StoreResult<()>;

    /// Where committed changes are reported.
    fn changes(&self) -> &ChangeFeed;

    /// Follows the other nodes' changes until `stop` turns true. On
    /// PostgreSQL: `LISTEN`s for what the triggers send, reporting
    /// `Following(false)` when the connection drops and `Following(true)`
    /// once it is back. SQLite has no other nodes: `Following(true)` at once.
    async fn follow_changes(&self, stop: tokio::sync::watch::Receiver<bool>);

    fn pool_stats(&self) -> Vec<PoolStats>;

    /// Succeeds when the database answers and every migration is applied.
    async fn ready(&self) -> StoreResult<()>;

    /// Closes the connections (used by shutdown and by tests).
    async fn close(&self);
}
