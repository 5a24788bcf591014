//! The mail outbox, the periodic jobs the nodes share, and the sweep of what is spent.

use super::*;

#[async_trait]
pub trait OutboxStore: Send + Sync {
    async fn enqueue_mail(&self, mail: NewMail) -> StoreResult<()>;

    /// Claims up to `limit` due messages for `node` until `lease_until`.
    /// A message another node holds is skipped (`FOR UPDATE SKIP LOCKED`,
    /// then the lease) until its lease runs out, which is how the mail of a
    /// node that died mid-send gets delivered by another.
    async fn claim_mail(
        &self,
        node: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        max_attempts: i32,
        limit: i64,
    ) -> StoreResult<Vec<OutboxMail>>;

    /// Delivered: the message (and the link it carried) is deleted.
    async fn mail_sent(&self, id: Uuid) -> StoreResult<()>;

    /// Not delivered: released, to be tried again at `retry_at`.
    async fn mail_failed(&self, id: Uuid, retry_at: DateTime<Utc>, error: &str) -> StoreResult<()>;

    /// Deletes the messages given up on (`max_attempts` failed attempts)
    /// whose last attempt was before `before`, and the links in them.
    /// Returns how many went.
    async fn purge_given_up_mail(
        &self,
        max_attempts: i32,
        before: DateTime<Utc>,
    ) -> StoreResult<u64>;

    async fn outbox_stats(&self) -> StoreResult<OutboxStats>;

    /// Takes the turn of the periodic job `name` when it is due: of all
    /// nodes asking, one gets `true`, and the next turn is due at
    /// `next_due`.
    async fn claim_job(
        &self,
        name: &str,
        node: &str,
        now: DateTime<Utc>,
        next_due: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// Deletes what can no longer be used: sessions and tokens a day after
    /// they expired or were revoked or used, finished sign-in states,
    /// challenges and ceremonies, lockout runs and rate-limit windows that
    /// are over. Returns how many rows went.
    async fn sweep(&self, now: DateTime<Utc>, window_before: i64) -> StoreResult<u64>;
}
