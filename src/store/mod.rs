//! Persistence, split by aggregate. Each aggregate has a small trait here
//! (`users.rs`: [`UserStore`], `sessions.rs`: [`SessionStore`], …) and its
//! SQL in `sql/` under the same name. The SQL is portable and compiled once
//! per backend: `sqlite.rs` and `postgres.rs` each include every `sql/`
//! file as a module of their own, with their own `Db` and `Backend`.
//! Callers hold one [`Store`], which is all of the traits. Methods are use
//! cases; each one that must be atomic opens its own transaction.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::crypto::jwt::StoredKey;
use crate::domain::{Role, Scopes};

mod audit;
mod changes;
mod error;
mod factors;
mod identities;
mod keys;
mod lifecycle;
mod limits;
mod model;
mod outbox;
mod postgres;
mod sessions;
mod sqlite;
mod tenants;
mod users;

pub use audit::AuditStore;
pub use changes::{Change, ChangeFeed};
pub(crate) use error::broken;
pub use error::{is_unavailable, StoreError, StoreResult};
pub use factors::FactorStore;
pub use identities::IdentityStore;
pub use keys::KeyStore;
pub use lifecycle::Lifecycle;
pub use limits::LimitStore;
pub use model::*;
pub use outbox::OutboxStore;
pub use postgres::PostgresStore;
pub use sessions::SessionStore;
pub use sqlite::SqliteStore;
pub use tenants::TenantStore;
pub use users::UserStore;

/// The whole store: every aggregate's trait, implemented by both backends.
pub trait Store:
    Lifecycle
    + UserStore
    + IdentityStore
    + SessionStore
    + TenantStore
    + FactorStore
    + OutboxStore
    + AuditStore
    + KeyStore
    + LimitStore
    + 'static
{
}

impl<T> Store for T where
    T: Lifecycle
        + UserStore
        + IdentityStore
        + SessionStore
        + TenantStore
        + FactorStore
        + OutboxStore
        + AuditStore
        + KeyStore
        + LimitStore
        + 'static
{
}

/// How long a query waits for the database unless configured otherwise
/// (`database_timeout_ms`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens the store a database URL names; refuses schemes it does not know.
pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Arc<dyn Store>> {
    connect_with(url, max_connections, DEFAULT_TIMEOUT).await
}

/// [`connect`], waiting at most `timeout` for the database: for a pooled
/// connection on PostgreSQL (also while the server is unreachable), for
/// another process's write lock on SQLite.
pub async fn connect_with(
    url: &str,
    max_connections: u32,
    timeout: Duration,
) -> anyhow::Result<Arc<dyn Store>> {
    let scheme = url.split(':').next().unwrap_or_default();
    match scheme {
        "sqlite" => Ok(Arc::new(
            SqliteStore::connect(url, max_connections, timeout).await?,
        )),
        "postgres" | "postgresql" => Ok(Arc::new(
            PostgresStore::connect(url, max_connections, timeout).await?,
        )),
        other => anyhow::bail!(
            "unsupported database URL scheme {other:?}: use sqlite://… or postgres://…"
        ),
    }
}

#[cfg(test)]
mod contract;
