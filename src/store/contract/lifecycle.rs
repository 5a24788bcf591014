//! [`Lifecycle`]: migrations and the change feed.

use std::sync::Arc;

use chrono::{Duration, Utc};
use uuid::Uuid;

use super::{new_user, stores};
use crate::store::*;

#[tokio::test]
async fn a_schema_newer_than_the_binary_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("newer.db").display()
    );
    let store = connect(&url, 1).await.unwrap();
    store.migrate().await.unwrap();
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time) \
         VALUES (9999, 'from the future', '2030-01-01', 1, x'00', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let err = store.migrate().await.unwrap_err().to_string();
    assert!(err.contains("9999") && err.contains("newer"), "{err}");
}

#[test]
fn both_migration_trees_list_the_same_versions() {
    let versions = |dir: &str| {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let sqlite = versions(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"));
    let postgres = versions(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"));
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, postgres);
}

#[tokio::test]
async fn writes_report_the_users_they_change() {
    for (name, store, _dir) in stores().await {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        {
            let seen = seen.clone();
            store
                .changes()
                .subscribe(move |c| seen.lock().unwrap().push(c.clone()));
        }
        let (user, tenant) = new_user("c@x.test");
        let user = store
            .create_user_with_tenant(user, tenant, None)
            .await
            .unwrap();
        let now = Utc::now();
        let session = store
            .create_session(NewSession {
                id: Uuid::new_v4(),
                user_id: user.id,
                token_hash: vec![7; 32],
                tenant_id: None,
                ip: None,
                user_agent: None,
                now,
                expires_at: now + Duration::hours(1),
            })
            .await
            .unwrap();
        seen.lock().unwrap().clear();
        store
            .revoke_session(user.id, session.id, now)
            .await
            .unwrap();
        assert!(
            seen.lock().unwrap().contains(&Change::User(user.id)),
            "{name}"
        );
        store.close().await;
    }
}
