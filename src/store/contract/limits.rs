//! [`LimitStore`]: rate-limit windows.

use chrono::Utc;

use super::stores;

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
