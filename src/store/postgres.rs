//! PostgreSQL: one pool serves reads and writes.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgPool, PgPoolOptions};
use uuid::Uuid;

use super::*;
use crate::crypto::jwt::StoredKey;

type Db = sqlx::Postgres;
type Backend = PostgresStore;
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");
/// Serialises membership changes of one tenant (so two owners demoting each
/// other at once cannot leave it without one).
/// Serialises single-use token issues of one user.
const LOCK_USER: &str = "SELECT id FROM users WHERE id = $1 FOR UPDATE";
const LOCK_TENANT: &str = "SELECT id FROM tenants WHERE id = $1 FOR UPDATE";

pub struct PostgresStore {
    writer: PgPool,
    reader: PgPool,
}

impl PostgresStore {
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<PostgresStore> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(PostgresStore {
            writer: pool.clone(),
            reader: pool,
        })
    }
}

include!("sql.rs");
