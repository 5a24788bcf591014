//! The SQL of [`OutboxStore`], compiled once per backend.

use super::common::*;
use super::*;

#[async_trait]
impl OutboxStore for Backend {
    async fn enqueue_mail(&self, mail: NewMail) -> StoreResult<()> {
        insert_mail(&self.writer, &mail).await
    }

    async fn claim_mail(
        &self,
        node: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        max_attempts: i32,
        limit: i64,
    ) -> StoreResult<Vec<OutboxMail>> {
        // One statement: of nodes claiming at once, each row goes to one
        // (PostgreSQL skips rows another claim has locked; SQLite has one
        // writer).
        sqlx::query_as(&format!(
            "UPDATE mail_outbox SET claimed_by = $1, claimed_until = $3 \
             WHERE id IN (SELECT id FROM mail_outbox \
               WHERE next_attempt_at <= $2 AND attempts < $4 \
               AND (claimed_until IS NULL OR claimed_until <= $2) \
               ORDER BY next_attempt_at LIMIT $5{SKIP_LOCKED}) \
             RETURNING id, recipient, subject, body_text, attempts"
        ))
        .bind(node)
        .bind(now)
        .bind(lease_until)
        .bind(max_attempts)
        .bind(limit)
        .fetch_all(&self.writer)
        .await
        .map_err(StoreError::from)
    }

    async fn outbox_stats(&self) -> StoreResult<OutboxStats> {
        let (depth, oldest): (i64, Option<DateTime<Utc>>) =
            sqlx::query_as("SELECT COUNT(*), MIN(created_at) FROM mail_outbox")
                .fetch_one(&self.reader)
                .await?;
        Ok(OutboxStats { depth, oldest })
    }

    async fn claim_job(
        &self,
        name: &str,
        node: &str,
        now: DateTime<Utc>,
        next_due: DateTime<Utc>,
    ) -> StoreResult<bool> {
        // Inserting the first turn or moving a due one forward, in one
        // statement: a node that loses the race updates no row.
        let taken: Option<String> = sqlx::query_scalar(
            "INSERT INTO jobs (name, due_at, last_run_at, last_node) VALUES ($1, $4, $3, $2) \
             ON CONFLICT (name) DO UPDATE SET due_at = $4, last_run_at = $3, last_node = $2 \
             WHERE jobs.due_at <= $3 \
             RETURNING name",
        )
        .bind(name)
        .bind(node)
        .bind(now)
        .bind(next_due)
        .fetch_optional(&self.writer)
        .await?;
        Ok(taken.is_some())
    }

    async fn sweep(&self, now: DateTime<Utc>, window_before: i64) -> StoreResult<u64> {
        let day_ago = now - chrono::Duration::days(1);
        let mut swept = 0;
        let mut tx = self.writer.begin().await?;
        for (sql, at) in [
            (
                "DELETE FROM sessions WHERE expires_at <= $1 OR revoked_at <= $1",
                day_ago,
            ),
            (
                "DELETE FROM personal_access_tokens WHERE expires_at <= $1 OR revoked_at <= $1",
                day_ago,
            ),
            (
                "DELETE FROM one_time_tokens WHERE expires_at <= $1 OR used_at <= $1",
                day_ago,
            ),
            ("DELETE FROM oauth_states WHERE expires_at <= $1", now),
            ("DELETE FROM mfa_challenges WHERE expires_at <= $1", now),
            (
                "DELETE FROM webauthn_ceremonies WHERE expires_at <= $1",
                now,
            ),
        ] {
            swept += sqlx::query(sql)
                .bind(at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        swept += sqlx::query(
            "DELETE FROM login_failures WHERE window_start <= $1 \
             AND (locked_until IS NULL OR locked_until <= $2)",
        )
        .bind(day_ago)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        swept += sqlx::query("DELETE FROM rate_limits WHERE window_start < $1")
            .bind(window_before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(swept)
    }

    async fn mail_sent(&self, id: Uuid) -> StoreResult<()> {
        sqlx::query("DELETE FROM mail_outbox WHERE id = $1")
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn purge_given_up_mail(
        &self,
        max_attempts: i32,
        before: DateTime<Utc>,
    ) -> StoreResult<u64> {
        // A given-up row's next_attempt_at is its last attempt plus the
        // backoff (at most an hour): close enough to when it was given up.
        let purged =
            sqlx::query("DELETE FROM mail_outbox WHERE attempts >= $1 AND next_attempt_at <= $2")
                .bind(max_attempts)
                .bind(before)
                .execute(&self.writer)
                .await?
                .rows_affected();
        Ok(purged)
    }

    async fn mail_failed(&self, id: Uuid, retry_at: DateTime<Utc>, error: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE mail_outbox SET attempts = attempts + 1, next_attempt_at = $2, last_error = $3, \
             claimed_by = NULL, claimed_until = NULL \
             WHERE id = $1",
        )
        .bind(id)
        .bind(retry_at)
        .bind(error)
        .execute(&self.writer)
        .await?;
        Ok(())
    }
}
