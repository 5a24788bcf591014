//! The SQL of [`KeyStore`], compiled once per backend.

use super::*;

#[async_trait]
impl KeyStore for Backend {
    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>> {
        let rows: Vec<(String, String, Vec<u8>, Vec<u8>, DateTime<Utc>)> = sqlx::query_as(
            "SELECT kid, algorithm, private_key, public_key, created_at FROM signing_keys",
        )
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(kid, algorithm, private_key, public_key, created_at)| StoredKey {
                    kid,
                    algorithm,
                    private_key,
                    public_key,
                    created_at,
                },
            )
            .collect())
    }

    async fn insert_signing_key(&self, key: &StoredKey, first: bool) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, algorithm, private_key, public_key, created_at, generation) \
             VALUES ($1, $2, $3, $4, $5, CASE WHEN $6 THEN 1 ELSE \
               (SELECT COALESCE(MAX(generation), 0) + 1 FROM signing_keys) END) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&key.kid)
        .bind(&key.algorithm)
        .bind(&key.private_key)
        .bind(&key.public_key)
        .bind(key.created_at)
        .bind(first)
        .execute(&self.writer)
        .await?;
        self.changes.emit(Change::SigningKeys);
        Ok(())
    }

    async fn retire_signing_keys(&self, successor_before: DateTime<Utc>) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM signing_keys WHERE generation < \
             (SELECT MAX(generation) FROM signing_keys WHERE created_at <= $1)",
        )
        .bind(successor_before)
        .execute(&self.writer)
        .await?;
        if done.rows_affected() > 0 {
            self.changes.emit(Change::SigningKeys);
        }
        Ok(done.rows_affected())
    }

    async fn app_secret(
        &self,
        name: &str,
        generated: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<u8>> {
        sqlx::query("INSERT INTO app_secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(generated)
            .bind(now)
            .execute(&self.writer)
            .await?;
        sqlx::query_scalar("SELECT value FROM app_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&self.writer)
            .await
            .map_err(StoreError::from)
    }
}
