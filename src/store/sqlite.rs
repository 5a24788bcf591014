//! SQLite: WAL, foreign keys on, a busy timeout, and a single writer.
//!
//! Writes go through a one-connection pool so they queue in the process
//! instead of failing with `SQLITE_BUSY`; reads use their own pool and see
//! every committed write (WAL).

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use uuid::Uuid;

use super::*;
use crate::crypto::jwt::StoredKey;

type Db = sqlx::Sqlite;
type Backend = SqliteStore;
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
/// Serialise single-use token issues of one user, and membership changes of
/// one tenant. SQLite has one writer, so a plain read inside the write
/// transaction is enough.
const LOCK_USER: &str = "SELECT id FROM users WHERE id = $1";
const LOCK_TENANT: &str = "SELECT id FROM tenants WHERE id = $1";
/// SQLite has one writer: a claiming `UPDATE` needs no row locks.
const SKIP_LOCKED: &str = "";

pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    changes: ChangeFeed,
}

impl SqliteStore {
    /// `timeout` is the busy timeout: how long a statement waits for a lock
    /// another process holds (a `sqlite3` shell, a backup) before failing
    /// with `SQLITE_BUSY`, which answers `503`. The pools' own waits stay
    /// long: they queue this process's writes behind its one writer.
    pub async fn connect(
        url: &str,
        max_connections: u32,
        timeout: Duration,
    ) -> anyhow::Result<SqliteStore> {
        let options = SqliteConnectOptions::from_str(url)?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(timeout);
        // No ping before each use: a local file has no connection to lose,
        // and the ping is a round trip to the connection's thread per query.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(max_connections.clamp(1, 8))
            .acquire_timeout(Duration::from_secs(30))
            .test_before_acquire(false)
            .connect_lazy_with(options.create_if_missing(false));
        Ok(SqliteStore {
            writer,
            reader,
            changes: ChangeFeed::default(),
        })
    }

    fn pools(&self) -> Vec<(&'static str, &SqlitePool)> {
        vec![("writer", &self.writer), ("reader", &self.reader)]
    }

    /// One node serves a SQLite database: every change is this node's own
    /// and is reported as it commits.
    async fn follow_remote_changes(&self, mut stop: tokio::sync::watch::Receiver<bool>) {
        self.changes.emit(Change::Following(true));
        while !*stop.borrow() {
            if stop.changed().await.is_err() {
                return;
            }
        }
    }
}

// The SQL, shared with the other backend (see `store/mod.rs`): each file
// is compiled once per backend on purpose.
#[allow(clippy::duplicate_mod)]
#[path = "sql/audit.rs"]
mod audit;
#[allow(clippy::duplicate_mod)]
#[path = "sql/common.rs"]
mod common;
#[allow(clippy::duplicate_mod)]
#[path = "sql/factors.rs"]
mod factors;
#[allow(clippy::duplicate_mod)]
#[path = "sql/identities.rs"]
mod identities;
#[allow(clippy::duplicate_mod)]
#[path = "sql/keys.rs"]
mod keys;
#[allow(clippy::duplicate_mod)]
#[path = "sql/lifecycle.rs"]
mod lifecycle;
#[allow(clippy::duplicate_mod)]
#[path = "sql/limits.rs"]
mod limits;
#[allow(clippy::duplicate_mod)]
#[path = "sql/outbox.rs"]
mod outbox;
#[allow(clippy::duplicate_mod)]
#[path = "sql/sessions.rs"]
mod sessions;
#[allow(clippy::duplicate_mod)]
#[path = "sql/tenants.rs"]
mod tenants;
#[allow(clippy::duplicate_mod)]
#[path = "sql/users.rs"]
mod users;
