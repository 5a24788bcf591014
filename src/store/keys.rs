//! Server keys: JWT signing keys and the named server secrets.

use super::*;

#[async_trait]
pub trait KeyStore: Send + Sync {
    /// The named server secret, stored as `generated` on first use (every
    /// node then reads the same value).
    async fn app_secret(
        &self,
        name: &str,
        generated: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<u8>>;

    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>>;

    /// Stores a key as the newest (a rotation).
    async fn add_signing_key(&self, key: &StoredKey) -> StoreResult<()> {
        self.insert_signing_key(key, false).await
    }

    /// Stores the installation's first key, unless another node starting
    /// at the same time stored one first (then everyone uses that one).
    async fn add_first_signing_key(&self, key: &StoredKey) -> StoreResult<()> {
        self.insert_signing_key(key, true).await
    }

    /// `first`: as generation 1, so of nodes racing on an empty table one
    /// wins; otherwise as the generation after the newest.
    async fn insert_signing_key(&self, key: &StoredKey, first: bool) -> StoreResult<()>;

    /// Deletes the keys older than the newest key created at or before
    /// `successor_before` (tokens they signed have expired by then).
    async fn retire_signing_keys(&self, successor_before: DateTime<Utc>) -> StoreResult<u64>;
}
