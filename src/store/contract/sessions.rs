//! [`SessionStore`]: sessions and their refresh tokens.

use chrono::{Duration, Utc};
use uuid::Uuid;

use super::{new_user, stores};
use crate::clock::{Clock, SystemClock};
use crate::store::*;

/// A session of an hour for `user_id`, its token `secret`.
fn session_for(user_id: Uuid, secret: &str, now: chrono::DateTime<Utc>) -> NewSession {
    NewSession {
        id: Uuid::new_v4(),
        user_id,
        token_hash: crate::crypto::token::hash_secret(secret),
        tenant_id: None,
        ip: None,
        user_agent: None,
        now,
        expires_at: now + Duration::hours(1),
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
        let new_session = |secret: &str| session_for(user.id, secret, now);
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
            .create_session(session_for(user.id, "session", now))
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
