//! The store contract: the same stories against SQLite always, and against
//! PostgreSQL when `TESSERA_TEST_DATABASE_URL` names a server (a fresh
//! database is created on it for each test).

use std::sync::Arc;

use chrono::{Duration, Utc};
use uuid::Uuid;

use super::*;
use crate::clock::{Clock, SystemClock};

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

fn token_mail(user_id: Uuid, secret: &str, purpose: TokenPurpose) -> TokenMail {
    let now = SystemClock.now();
    TokenMail {
        token: NewOneTimeToken {
            id: Uuid::new_v4(),
            user_id,
            purpose,
            token_hash: crate::crypto::token::hash_secret(secret),
            now,
            expires_at: now + Duration::hours(1),
        },
        mail: NewMail {
            id: Uuid::new_v4(),
            recipient: "a@x.test".into(),
            subject: "s".into(),
            body_text: "b".into(),
            now,
        },
    }
}

#[tokio::test]
async fn users_are_unique_by_email_and_get_an_owned_tenant() {
    for (name, store, _dir) in stores().await {
        let (user, tenant) = new_user("a@x.test");
        let created = store
            .create_user_with_tenant(user, tenant.clone(), None)
            .await
            .unwrap();
        let tenants = store.memberships(created.id).await.unwrap();
        assert_eq!(tenants.len(), 1, "{name}");
        assert_eq!(tenants[0].role, Role::Owner, "{name}");
        assert_eq!(tenants[0].id, tenant.id, "{name}");

        let (again, tenant2) = new_user("a@x.test");
        let err = store
            .create_user_with_tenant(again, tenant2.clone(), None)
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Conflict("email")),
            "{name}: {err:?}"
        );
        // The failed sign-up left no tenant behind.
        assert!(store
            .find_user_by_email("a@x.test")
            .await
            .unwrap()
            .is_some());
        store.close().await;
    }
}

#[tokio::test]
async fn a_reset_token_is_redeemed_once_under_concurrency() {
    for (name, store, _dir) in stores().await {
        let (user, tenant) = new_user("r@x.test");
        let user = store
            .create_user_with_tenant(user, tenant, None)
            .await
            .unwrap();
        store
            .issue_token(
                token_mail(user.id, "secret-1", TokenPurpose::PasswordReset),
                5,
            )
            .await
            .unwrap();
        let hash = crate::crypto::token::hash_secret("secret-1");
        let mut tasks = Vec::new();
        for i in 0..12 {
            let store = store.clone();
            let hash = hash.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .redeem_reset_token(&hash, &format!("hash-{i}"), Utc::now())
                    .await
                    .unwrap()
            }));
        }
        let mut wins = 0;
        for task in tasks {
            if task.await.unwrap().is_some() {
                wins += 1;
            }
        }
        assert_eq!(wins, 1, "{name}");
        store.close().await;
    }
}

#[tokio::test]
async fn a_newer_token_retires_older_ones_and_mail_is_queued() {
    for (name, store, _dir) in stores().await {
        let (user, tenant) = new_user("n@x.test");
        let user = store
            .create_user_with_tenant(user, tenant, None)
            .await
            .unwrap();
        store
            .issue_token(token_mail(user.id, "old", TokenPurpose::PasswordReset), 5)
            .await
            .unwrap();
        store
            .issue_token(token_mail(user.id, "new", TokenPurpose::PasswordReset), 5)
            .await
            .unwrap();
        let now = Utc::now();
        let peek = |s: &str| {
            let store = store.clone();
            let hash = crate::crypto::token::hash_secret(s);
            async move {
                store
                    .peek_token(TokenPurpose::PasswordReset, &hash, now)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(peek("old").await, None, "{name}");
        assert_eq!(peek("new").await, Some(user.id), "{name}");
        let claim = |node: &'static str, at: chrono::DateTime<Utc>| {
            let store = store.clone();
            async move {
                store
                    .claim_mail(node, at, at + Duration::seconds(60), 5, 10)
                    .await
                    .unwrap()
            }
        };
        let due = claim("a", now + Duration::seconds(1)).await;
        assert_eq!(due.len(), 2, "{name}");
        // Claimed by a: nothing for b until the claim runs out.
        assert!(
            claim("b", now + Duration::seconds(2)).await.is_empty(),
            "{name}"
        );
        store
            .mail_failed(due[0].id, now + Duration::hours(1), "down")
            .await
            .unwrap();
        store.mail_sent(due[1].id).await.unwrap();
        // Failed: released, but not due until its retry time.
        assert!(
            claim("b", now + Duration::seconds(70)).await.is_empty(),
            "{name}"
        );
        let retried = claim("b", now + Duration::hours(2)).await;
        assert_eq!(retried.len(), 1, "{name}");
        assert_eq!(retried[0].attempts, 1, "{name}");
        // b dies holding it: after the claim runs out, c gets it.
        assert!(claim("c", now + Duration::hours(2) + Duration::seconds(30))
            .await
            .is_empty());
        assert_eq!(
            claim("c", now + Duration::hours(2) + Duration::seconds(61))
                .await
                .len(),
            1,
            "{name}"
        );
        store.close().await;
    }
}

#[tokio::test]
async fn concurrent_claims_share_the_outbox_without_overlap() {
    for (name, store, _dir) in stores().await {
        let now = Utc::now();
        for i in 0..40 {
            store
                .enqueue_mail(NewMail {
                    id: Uuid::new_v4(),
                    recipient: format!("r{i}@x.test"),
                    subject: "s".into(),
                    body_text: "b".into(),
                    now,
                })
                .await
                .unwrap();
        }
        let mut tasks = Vec::new();
        for node in 0..4 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let node = format!("n{node}");
                let mut mine = Vec::new();
                loop {
                    let at = Utc::now() + Duration::seconds(1);
                    let got = store
                        .claim_mail(&node, at, at + Duration::seconds(60), 5, 3)
                        .await
                        .unwrap();
                    if got.is_empty() {
                        return mine;
                    }
                    mine.extend(got.into_iter().map(|m| m.id));
                }
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        let unique: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(all.len(), 40, "{name}: every message claimed");
        assert_eq!(unique.len(), 40, "{name}: none claimed twice");
        store.close().await;
    }
}

#[tokio::test]
async fn a_job_turn_goes_to_one_node() {
    for (name, store, _dir) in stores().await {
        let now = Utc::now();
        let next = now + Duration::seconds(60);
        let mut tasks = Vec::new();
        for node in 0..6 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .claim_job("sweep", &format!("n{node}"), now, next)
                    .await
                    .unwrap()
            }));
        }
        let mut won = 0;
        for task in tasks {
            won += usize::from(task.await.unwrap());
        }
        assert_eq!(won, 1, "{name}: one node takes the first turn");
        assert!(!store
            .claim_job("sweep", "n9", now + Duration::seconds(30), next)
            .await
            .unwrap());
        assert!(store
            .claim_job("sweep", "n9", next, next + Duration::seconds(60))
            .await
            .unwrap());
        store.close().await;
    }
}

#[tokio::test]
async fn hits_count_per_window_and_the_sweep_clears_old_ones() {
    for (name, store, _dir) in stores().await {
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .count_hit("credentials:192.0.2.1", 1000)
                    .await
                    .unwrap()
            }));
        }
        let mut counts = Vec::new();
        for task in tasks {
            counts.push(task.await.unwrap());
        }
        counts.sort_unstable();
        assert_eq!(
            counts,
            (1..=10).collect::<Vec<_>>(),
            "{name}: each hit counted once"
        );
        // A lagging node cannot reopen an older window.
        assert_eq!(
            store.count_hit("credentials:192.0.2.1", 999).await.unwrap(),
            11
        );
        assert_eq!(
            store
                .count_hit("credentials:192.0.2.1", 1001)
                .await
                .unwrap(),
            1
        );
        assert_eq!(store.sweep(Utc::now(), 1002).await.unwrap(), 1, "{name}");
        assert_eq!(
            store
                .count_hit("credentials:192.0.2.1", 1002)
                .await
                .unwrap(),
            1
        );
        store.close().await;
    }
}

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

#[tokio::test]
async fn rotating_a_session_kills_the_old_one_once() {
    for (name, store, _dir) in stores().await {
        let (user, tenant) = new_user("s@x.test");
        let user = store
            .create_user_with_tenant(user, tenant, None)
            .await
            .unwrap();
        let now = SystemClock.now();
        let new_session = |secret: &str| NewSession {
            id: Uuid::new_v4(),
            user_id: user.id,
            token_hash: crate::crypto::token::hash_secret(secret),
            tenant_id: None,
            ip: None,
            user_agent: None,
            now,
            expires_at: now + Duration::hours(1),
        };
        let old = store.create_session(new_session("one")).await.unwrap();
        let rotated = store
            .rotate_session(old.id, new_session("two"))
            .await
            .unwrap();
        assert!(rotated.is_some(), "{name}");
        assert!(
            store
                .rotate_session(old.id, new_session("three"))
                .await
                .unwrap()
                .is_none(),
            "{name}"
        );
        let one = crate::crypto::token::hash_secret("one");
        let two = crate::crypto::token::hash_secret("two");
        assert!(
            store
                .find_session_with_user(&one, now)
                .await
                .unwrap()
                .is_none(),
            "{name}"
        );
        let (session, owner) = store
            .find_session_with_user(&two, now)
            .await
            .unwrap()
            .expect("the rotated session");
        assert_eq!(session.user_id, owner.id, "{name}");
        assert_eq!(session.id, rotated.unwrap().id, "{name}");
        store.close().await;
    }
}

#[tokio::test]
async fn a_refresh_token_is_spent_once_under_concurrency() {
    for (name, store, _dir) in stores().await {
        let (user, tenant) = new_user("r@x.test");
        let user = store
            .create_user_with_tenant(user, tenant, None)
            .await
            .unwrap();
        let now = SystemClock.now();
        let session = store
            .create_session(NewSession {
                id: Uuid::new_v4(),
                user_id: user.id,
                token_hash: crate::crypto::token::hash_secret("session"),
                tenant_id: None,
                ip: None,
                user_agent: None,
                now,
                expires_at: now + Duration::hours(1),
            })
            .await
            .unwrap();
        let hash = |s: &str| crate::crypto::token::hash_secret(s);
        store
            .add_refresh_token(session.id, &hash("r1"), now)
            .await
            .unwrap();
        let (r1, r2) = (hash("r1"), hash("r2"));
        let present = |at: chrono::DateTime<Utc>| RefreshPresented {
            hash: &r1,
            successor_hash: &r2,
            now: at,
            idle_since: at - Duration::hours(1),
            replay_since: at - Duration::seconds(5),
        };
        // Eight at once: exactly one rotates, the rest are replays.
        let uses =
            futures::future::join_all((0..8).map(|_| store.use_refresh_token(present(now)))).await;
        let rotated = uses
            .iter()
            .filter(|u| matches!(u, Ok(RefreshUse::Rotated(_))))
            .count();
        let replayed = uses
            .iter()
            .filter(|u| matches!(u, Ok(RefreshUse::Replayed { .. })))
            .count();
        assert_eq!((rotated, replayed), (1, 7), "{name}: {uses:?}");
        // The successor is current now.
        let next = RefreshPresented {
            hash: &r2,
            successor_hash: &hash("r3"),
            ..present(now)
        };
        assert!(
            matches!(
                store.use_refresh_token(next).await,
                Ok(RefreshUse::Rotated(_))
            ),
            "{name}"
        );
        // Long after, the first one again: the session ends.
        let late = now + Duration::seconds(30);
        assert!(
            matches!(
                store.use_refresh_token(present(late)).await,
                Ok(RefreshUse::Reused { .. })
            ),
            "{name}"
        );
        assert!(
            store
                .find_session(session.id, late)
                .await
                .unwrap()
                .is_none(),
            "{name}"
        );
        let r3 = RefreshPresented {
            hash: &hash("r3"),
            successor_hash: &hash("r4"),
            ..present(late)
        };
        assert!(
            matches!(store.use_refresh_token(r3).await, Ok(RefreshUse::Unknown)),
            "{name}"
        );
        store.close().await;
    }
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
async fn token_issues_are_capped_per_user_per_hour_even_in_a_burst() {
    for (name, store, _dir) in stores().await {
        let (user, tenant) = new_user("cap@x.test");
        let user = store
            .create_user_with_tenant(user, tenant, None)
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mail = token_mail(user.id, &format!("burst-{i}"), TokenPurpose::PasswordReset);
                store.issue_token(mail, 3).await.unwrap()
            }));
        }
        let mut issued = 0;
        for task in tasks {
            issued += usize::from(task.await.unwrap());
        }
        assert_eq!(issued, 3, "{name}");
        // Another purpose has its own budget.
        let verify = token_mail(user.id, "v", TokenPurpose::EmailVerification);
        assert!(store.issue_token(verify, 3).await.unwrap(), "{name}");
        // An hour later the budget is back.
        let mut later = token_mail(user.id, "later", TokenPurpose::PasswordReset);
        later.token.now += Duration::minutes(61);
        assert!(store.issue_token(later, 3).await.unwrap(), "{name}");
        store.close().await;
    }
}

#[tokio::test]
async fn one_stored_hash_per_costly_kind_is_sampled() {
    const OUT: &str = "$c2FsdHNhbHRzYWx0c2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    for (name, store, _dir) in stores().await {
        let hashes = [
            format!("$2b$10${}", "a".repeat(53)),
            format!("$2b$10${}", "b".repeat(53)),
            format!("$2y$12${}", "c".repeat(53)),
            format!("$argon2id$v=19$m=65536,t=3,p=4{OUT}"),
            format!("$argon2id$v=19$m=65536,t=3,p=4{}", OUT.replace('c', "d")),
            format!("$argon2id$v=19$m=19456,t=2,p=1{OUT}"),
            "ab".repeat(32),
        ];
        for (i, hash) in hashes.iter().enumerate() {
            let (mut user, tenant) = new_user(&format!("kind{i}@x.test"));
            user.password_hash = Some(hash.clone());
            store
                .create_user_with_tenant(user, tenant, None)
                .await
                .unwrap();
        }
        let (mut user, tenant) = new_user("nopassword@x.test");
        user.password_hash = None;
        store
            .create_user_with_tenant(user, tenant, None)
            .await
            .unwrap();
        let mut samples = store.password_hash_samples().await.unwrap();
        samples.sort();
        // bcrypt 10, bcrypt 12, and the two argon2 parameter sets; SHA-256
        // and no password cost nothing to time.
        let kinds: Vec<String> = samples
            .iter()
            .map(|s| s.split('$').take(4).collect::<Vec<_>>().join("$"))
            .collect();
        assert_eq!(
            kinds,
            vec![
                format!("$2b$10${}", "a".repeat(53)),
                format!("$2y$12${}", "c".repeat(53)),
                "$argon2id$v=19$m=19456,t=2,p=1".to_owned(),
                "$argon2id$v=19$m=65536,t=3,p=4".to_owned(),
            ],
            "{name}: {samples:?}"
        );
        assert!(samples.iter().all(|s| hashes.contains(s)), "{name}");
        store.close().await;
    }
}

#[tokio::test]
async fn only_mail_given_up_before_the_cutoff_is_purged() {
    for (name, store, _dir) in stores().await {
        let now = Utc::now();
        let mut ids = Vec::new();
        for i in 0..3 {
            let id = Uuid::new_v4();
            store
                .enqueue_mail(NewMail {
                    id,
                    recipient: format!("r{i}@x.test"),
                    subject: "s".into(),
                    body_text: "https://x.test/?token=t".into(),
                    now,
                })
                .await
                .unwrap();
            ids.push(id);
        }
        // 0: given up long ago; 1: given up just now; 2: never tried.
        store
            .mail_failed(ids[0], now - Duration::days(10), "refused")
            .await
            .unwrap();
        store.mail_failed(ids[1], now, "refused").await.unwrap();
        let purged = store
            .purge_given_up_mail(1, now - Duration::days(7))
            .await
            .unwrap();
        assert_eq!(purged, 1, "{name}");
        assert_eq!(store.outbox_stats().await.unwrap().depth, 2, "{name}");
        // Still being retried (attempts under the limit): kept.
        let purged = store
            .purge_given_up_mail(5, now + Duration::days(1))
            .await
            .unwrap();
        assert_eq!(purged, 0, "{name}");
        store.close().await;
    }
}
