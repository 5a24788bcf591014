//! [`UserStore`]: accounts, their one-time tokens and password hashes.

use chrono::{Duration, Utc};
use uuid::Uuid;

use super::{new_user, stores};
use crate::clock::{Clock, SystemClock};
use crate::domain::Role;
use crate::store::*;

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
