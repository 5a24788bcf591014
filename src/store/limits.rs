//! Limits: rate-limit windows and the lockout budgets of logins.

use super::*;

#[async_trait]
pub trait LimitStore: Send + Sync {
    /// Counts one hit of `bucket` in the fixed window that starts at
    /// `window` (a number the caller derives from the time); returns the
    /// hits in that window so far, this one included.
    async fn count_hit(&self, bucket: &str, window: i64) -> StoreResult<i64>;

    /// Counts one attempt against the budget `key` (an email, or a device
    /// cookie's id) before the attempt is checked, in one atomic statement,
    /// so parallel attempts each see their own count. A run older than
    /// `window_start` (and not locked), or whose lock has run out, starts
    /// over; reaching `max` sets the lock until `lock_until`. The caller
    /// refuses the attempt when the returned count is above `max`.
    async fn spend_login_attempt(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window_start: DateTime<Utc>,
        max: i32,
        lock_until: DateTime<Utc>,
    ) -> StoreResult<LoginAttempt>;

    /// Gives back one attempt that turned out right but does not end the
    /// run (a right password before the second factor, a re-check).
    async fn refund_login_attempt(&self, key: &str, max: i32) -> StoreResult<()>;

    /// Forgets failures and any lock (successful login, reset, admin unlock).
    async fn clear_login_failures(&self, email: &str) -> StoreResult<()>;
}
