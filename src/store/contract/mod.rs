//! The store contract: the same stories against SQLite always, and against
//! PostgreSQL when `TESSERA_TEST_DATABASE_URL` names a server (a fresh
//! database is created on it for each test). One file per aggregate, named
//! like its trait (`users.rs` tests [`UserStore`], …); the helpers they
//! share are here.

use std::sync::Arc;

use uuid::Uuid;

use super::*;
use crate::clock::{Clock, SystemClock};

mod lifecycle;
mod limits;
mod outbox;
mod sessions;
mod users;

async fn stores() -> Vec<(&'static str, Arc<dyn Store>, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("contract.db").display()
    );
    let sqlite = connect(&url, 4).await.unwrap();
    sqlite.migrate().await.unwrap();
    let mut stores = vec![("sqlite", sqlite, Some(dir))];
    if let Ok(admin) = std::env::var("TESSERA_TEST_DATABASE_URL") {
        let name = format!("tessera_test_{}", Uuid::new_v4().simple());
        let admin_pool = sqlx::PgPool::connect(&admin).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin_pool)
            .await
            .unwrap();
        admin_pool.close().await;
        let mut url = url::Url::parse(&admin).unwrap();
        url.set_path(&name);
        let pg = connect(url.as_str(), 8).await.unwrap();
        pg.migrate().await.unwrap();
        stores.push(("postgres", pg, None));
    }
    stores
}

fn new_user(email: &str) -> (NewUser, NewTenant) {
    let now = SystemClock.now();
    (
        NewUser {
            id: Uuid::new_v4(),
            email: email.into(),
            password_hash: Some("$argon2id$placeholder".into()),
            name: None,
            first_name: None,
            last_name: None,
            email_verified: false,
            is_admin: false,
            now,
        },
        NewTenant {
            id: Uuid::new_v4(),
            name: "T".into(),
            slug: format!("t-{}", Uuid::new_v4().simple()),
        },
    )
}
