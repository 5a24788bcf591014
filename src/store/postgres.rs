//! PostgreSQL: one pool serves reads and writes.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use uuid::Uuid;

use super::*;
use crate::crypto::jwt::StoredKey;

type Db = sqlx::Postgres;
type Backend = PostgresStore;
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");
/// Serialise single-use token issues of one user, and membership changes of
/// one tenant (so two owners demoting each other at once cannot leave it
/// without one).
const LOCK_USER: &str = "SELECT id FROM users WHERE id = $1 FOR UPDATE";
const LOCK_TENANT: &str = "SELECT id FROM tenants WHERE id = $1 FOR UPDATE";
/// Claims pass over rows another node's claim is locking.
const SKIP_LOCKED: &str = " FOR UPDATE SKIP LOCKED";
/// A pooled connection idle this long is pinged before it is used.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(5);
/// The channel the `0006` migration's triggers notify.
const CHANGES_CHANNEL: &str = "tessera_changes";

pub struct PostgresStore {
    writer: PgPool,
    reader: PgPool,
    changes: ChangeFeed,
    /// For the LISTEN connection, which is the store's own, outside the pool.
    url: String,
    /// How long connecting waits (the pool's, and the LISTEN connection's).
    timeout: Duration,
}

impl PostgresStore {
    /// `timeout` bounds the wait for a connection, and so how long a
    /// request waits while the server is down or restarting (sqlx retries a
    /// refused connection until then) before it answers `503`.
    pub async fn connect(
        url: &str,
        max_connections: u32,
        timeout: Duration,
    ) -> anyhow::Result<PostgresStore> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(timeout)
            // A connection in steady use is known to work; one that sat idle
            // (the server may have restarted or a proxy dropped it), or was
            // put back before another connection broke, is pinged before
            // use. Pinging every use cost a round trip per query. A
            // connection that fails a query is closed when put back (sqlx
            // pings it then), so the pool reconnects by itself.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for < IDLE_BEFORE_PING && !broken::since_idle(meta.idle_for) {
                        return Ok(true);
                    }
                    Ok(sqlx::Connection::ping(conn).await.is_ok())
                })
            })
            .connect(url)
            .await?;
        Ok(PostgresStore {
            writer: pool.clone(),
            reader: pool,
            changes: ChangeFeed::default(),
            url: url.to_owned(),
            timeout,
        })
    }

    fn pools(&self) -> Vec<(&'static str, &PgPool)> {
        vec![("main", &self.writer)]
    }

    /// `LISTEN`s on a connection of its own (not one of the pool's, so
    /// queries keep the whole pool). Caches are trusted only while
    /// it is connected: when it drops, `Following(false)` empties them and
    /// sets them aside, and `Following(true)` after reconnecting resumes
    /// them (anything written in between cannot have been cached).
    async fn follow_remote_changes(&self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut delay = Duration::from_millis(100);
        loop {
            if *stop.borrow() {
                return;
            }
            let listening = async {
                // A pool of one, as `PgListener::connect` makes, but giving
                // up on a server that is down as soon as queries do.
                let pool = PgPoolOptions::new()
                    .max_connections(1)
                    .max_lifetime(None)
                    .idle_timeout(None)
                    .acquire_timeout(self.timeout)
                    .connect(&self.url)
                    .await?;
                let mut listener = PgListener::connect_with(&pool).await?;
                // Report a lost connection at once, so caches stand aside
                // now, instead of first reconnecting inside `try_recv`
                // (which, with the server down, waits out the timeout
                // while caches go on as if nothing were missed).
                listener.eager_reconnect(false);
                listener.listen(CHANGES_CHANNEL).await?;
                Ok::<_, sqlx::Error>(listener)
            };
            // Connecting waits out a server that is down; shutting down
            // must not.
            let listening = tokio::select! {
                listening = listening => listening,
                _ = stop.changed() => return,
            };
            let mut listener = match listening {
                Ok(listener) => listener,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot LISTEN for other nodes' changes; caches stay off");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stop.changed() => return,
                    }
                    delay = (delay * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            delay = Duration::from_millis(100);
            self.changes.emit(Change::Following(true));
            loop {
                tokio::select! {
                    received = listener.try_recv() => match received {
                        Ok(Some(notification)) => {
                            self.changes.emit(Change::from_payload(notification.payload()));
                        }
                        Ok(None) | Err(_) => {
                            tracing::warn!("lost the connection that follows other nodes' changes; caches are off until it is back");
                            break;
                        }
                    },
                    _ = stop.changed() => {
                        self.changes.emit(Change::Following(false));
                        return;
                    }
                }
            }
            self.changes.emit(Change::Following(false));
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
