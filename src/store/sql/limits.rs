//! The SQL of [`LimitStore`], compiled once per backend.

use super::*;

#[async_trait]
impl LimitStore for Backend {
    async fn count_hit(&self, bucket: &str, window: i64) -> StoreResult<i64> {
        // A node whose clock lags cannot move a window back.
        let hits: i32 = sqlx::query_scalar(
            "INSERT INTO rate_limits (bucket, window_start, hits) VALUES ($1, $2, 1) \
             ON CONFLICT (bucket) DO UPDATE SET \
               hits = CASE WHEN rate_limits.window_start < $2 THEN 1 ELSE rate_limits.hits + 1 END, \
               window_start = CASE WHEN rate_limits.window_start < $2 THEN $2 ELSE rate_limits.window_start END \
             RETURNING hits",
        )
        .bind(bucket)
        .bind(window)
        .fetch_one(&self.writer)
        .await?;
        Ok(i64::from(hits))
    }

    async fn spend_login_attempt(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window_start: DateTime<Utc>,
        max: i32,
        lock_until: DateTime<Utc>,
    ) -> StoreResult<LoginAttempt> {
        // One statement: the increment and the count it returns are one
        // step, so twenty parallel guesses get twenty different counts.
        // A run starts over when it is older than the window and not
        // locked, or when its lock has run out.
        const FRESH: &str =
            "((login_failures.locked_until IS NULL AND login_failures.window_start <= $3) \
             OR login_failures.locked_until <= $2)";
        let (count, locked_until): (i32, Option<DateTime<Utc>>) = sqlx::query_as(&format!(
            "INSERT INTO login_failures (email, failures, window_start, locked_until) \
             VALUES ($1, 1, $2, CASE WHEN $4 <= 1 THEN $5 END) \
             ON CONFLICT (email) DO UPDATE SET \
               failures = CASE WHEN {FRESH} THEN 1 ELSE login_failures.failures + 1 END, \
               window_start = CASE WHEN {FRESH} THEN $2 ELSE login_failures.window_start END, \
               locked_until = CASE \
                 WHEN {FRESH} THEN CASE WHEN $4 <= 1 THEN $5 END \
                 WHEN login_failures.locked_until IS NOT NULL THEN login_failures.locked_until \
                 WHEN login_failures.failures + 1 >= $4 THEN $5 \
                 ELSE NULL END \
             RETURNING failures, locked_until"
        ))
        .bind(key)
        .bind(now)
        .bind(window_start)
        .bind(max)
        .bind(lock_until)
        .fetch_one(&self.writer)
        .await?;
        Ok(LoginAttempt {
            count,
            locked_until: locked_until.filter(|t| *t > now),
        })
    }

    async fn refund_login_attempt(&self, key: &str, max: i32) -> StoreResult<()> {
        sqlx::query(
            "UPDATE login_failures SET failures = failures - 1, \
             locked_until = CASE WHEN failures - 1 >= $2 THEN locked_until END \
             WHERE email = $1 AND failures > 0",
        )
        .bind(key)
        .bind(max)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn clear_login_failures(&self, email: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM login_failures WHERE email = $1")
            .bind(email)
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}
