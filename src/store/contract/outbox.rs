//! [`OutboxStore`]: the mail outbox and the turns of periodic jobs.

use chrono::{Duration, Utc};
use uuid::Uuid;

use super::stores;
use crate::store::*;

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
