//! Per-client-IP rate limits on the credential endpoints (login, sign-up,
//! forgot/reset password, resend verification, 2FA verify), one budget per
//! IP per clock minute across every surface. An IPv6 client is one /64 (see
//! [`budget_key`]).
//!
//! Where the count lives decides whether nodes share it: in Redis when
//! `redis_url` is set, else in the database on PostgreSQL (so an attacker
//! spreading requests over nodes gains nothing), else (SQLite: one node)
//! in this process. When Redis cannot count, the process's own count
//! stands in, with a warning, rather than refusing every login; when the
//! database is down, so is everything the request goes on to do, and it is
//! answered `503` at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use redis::aio::ConnectionManager;
use tokio::sync::OnceCell;

use super::Tessera;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::store::StoreError;

/// The address a per-IP budget is kept under: an IPv4 address as it is
/// (also when it arrives IPv4-mapped, `::ffff:a.b.c.d`, as on a dual-stack
/// listener), an IPv6 address as its /64. One subscriber or host gets a
/// whole /64 (RFC 6177) and may use any of its 2^64 addresses, so counting
/// single IPv6 addresses would be no budget at all.
pub fn budget_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & (u128::MAX << 64);
            IpAddr::V6(std::net::Ipv6Addr::from(prefix))
        }
    }
}

/// How a budget key is written in shared-store keys: `192.0.2.1`,
/// `2001:db8:1:2::/64`.
fn bucket_name(key: IpAddr) -> String {
    match key {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("{v6}/64"),
    }
}

/// Windows kept before old ones are swept.
const MAX_TRACKED: usize = 100_000;

/// Counts in this process: IP → (minute the window started, requests in it).
#[derive(Default)]
pub struct LocalWindows {
    windows: Mutex<HashMap<IpAddr, (i64, u32)>>,
}

impl LocalWindows {
    /// Counts one request in `minute`; returns the count so far.
    pub fn hit(&self, ip: IpAddr, minute: i64) -> i64 {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() >= MAX_TRACKED {
            windows.retain(|_, (start, _)| *start == minute);
        }
        let entry = windows.entry(ip).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        i64::from(entry.1)
    }
}

// One per process, never moved: the Redis variant's size costs nothing.
#[allow(clippy::large_enum_variant)]
enum Shared {
    /// One node: the process's own count is the count.
    None,
    /// The `rate_limits` table.
    Database,
    /// Redis, connected on first use (and reconnecting by itself).
    Redis {
        client: redis::Client,
        connection: OnceCell<ConnectionManager>,
        prefix: String,
    },
}

pub struct RateLimiter {
    shared: Shared,
    local: LocalWindows,
}

impl RateLimiter {
    /// Redis when a URL is given, else the database when it is shared
    /// (PostgreSQL), else this process.
    pub fn new(
        redis_url: Option<&str>,
        redis_prefix: &str,
        database_url: &str,
    ) -> anyhow::Result<RateLimiter> {
        let shared = match redis_url {
            Some(url) => Shared::Redis {
                client: redis::Client::open(url)
                    .map_err(|e| anyhow::anyhow!("redis_url is not a Redis URL: {e}"))?,
                connection: OnceCell::new(),
                prefix: redis_prefix.to_owned(),
            },
            None if database_url.starts_with("postgres") => Shared::Database,
            None => Shared::None,
        };
        Ok(RateLimiter {
            shared,
            local: LocalWindows::default(),
        })
    }

    /// Where counts are kept, for logs and tests.
    pub fn kind(&self) -> &'static str {
        match self.shared {
            Shared::None => "process",
            Shared::Database => "database",
            Shared::Redis { .. } => "redis",
        }
    }
}

async fn redis_hit(
    client: &redis::Client,
    connection: &OnceCell<ConnectionManager>,
    key: &str,
) -> redis::RedisResult<i64> {
    let connection = connection
        .get_or_try_init(|| async {
            let config = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(std::time::Duration::from_secs(1)))
                .set_response_timeout(Some(std::time::Duration::from_secs(1)));
            ConnectionManager::new_with_config(client.clone(), config).await
        })
        .await?;
    let mut connection = connection.clone();
    // The window's key lives two minutes, past the window's end.
    let (hits, _): (i64, i64) = redis::pipe()
        .atomic()
        .incr(key, 1)
        .expire(key, 120)
        .query_async(&mut connection)
        .await?;
    Ok(hits)
}

impl Tessera {
    /// Spends one credential request of the client's budget (its /64 for
    /// IPv6).
    pub async fn limit_credentials(&self, ip: Option<IpAddr>) -> AppResult<()> {
        let Some(ip) = ip.map(budget_key) else {
            return Ok(());
        };
        let limit = i64::from(self.config.security.rate_limit_per_minute);
        let now = self.clock.now();
        let hits = self.count_credential_hit(ip, now).await?;
        if hits <= limit {
            return Ok(());
        }
        self.metrics.rate_limited();
        let wait = (60 - now.timestamp().rem_euclid(60)).max(1) as u64;
        Err(AppError::new(
            ErrorCode::RateLimited,
            "Too many requests from this address; slow down.",
        )
        .with_retry_after(wait))
    }

    async fn count_credential_hit(&self, ip: IpAddr, now: DateTime<Utc>) -> AppResult<i64> {
        let limiter = &self.limiter;
        let minute = now.timestamp().div_euclid(60);
        let bucket = format!("credentials:{}", bucket_name(ip));
        let shared = match &limiter.shared {
            Shared::None => return Ok(limiter.local.hit(ip, minute)),
            Shared::Database => match self.store.count_hit(&bucket, minute).await {
                Ok(hits) => Ok(hits),
                // Counting elsewhere would only add a second wait for the
                // database before the same answer.
                Err(err @ StoreError::Unavailable(_)) => return Err(err.into()),
                Err(err) => Err(err.to_string()),
            },
            Shared::Redis {
                client,
                connection,
                prefix,
            } => redis_hit(
                client,
                connection,
                &format!("{prefix}:rl:{bucket}:{minute}"),
            )
            .await
            .map_err(|e| e.to_string()),
        };
        match shared {
            Ok(hits) => Ok(hits),
            Err(err) => {
                tracing::warn!(store = limiter.kind(), error = %err,
                    "cannot count a rate-limited request in the shared store; counting in this process");
                Ok(limiter.local.hit(ip, minute))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_per_ip_per_minute() {
        let windows = LocalWindows::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for n in 1..=3 {
            assert_eq!(windows.hit(a, 100), n);
        }
        assert_eq!(windows.hit(b, 100), 1);
        assert_eq!(windows.hit(a, 101), 1, "a new minute starts over");
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let key = |s: &str| budget_key(s.parse().unwrap());
        assert_eq!(
            key("2001:db8:1:2::1"),
            key("2001:db8:1:2:ffff:ffff:ffff:ffff")
        );
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(bucket_name(key("2001:db8:1:2:aa::1")), "2001:db8:1:2::/64");
        assert_eq!(key("::ffff:192.0.2.1"), key("192.0.2.1"));
        assert_eq!(bucket_name(key("::ffff:192.0.2.1")), "192.0.2.1");
        assert_ne!(key("192.0.2.1"), key("192.0.2.2"));

        let windows = LocalWindows::default();
        for n in 1..=3 {
            let ip = format!("2001:db8::{n:x}").parse().unwrap();
            assert_eq!(windows.hit(budget_key(ip), 7), n);
        }
    }

    #[test]
    fn the_backend_follows_the_configuration() {
        let kind = |redis: Option<&str>, db: &str| RateLimiter::new(redis, "t", db).unwrap().kind();
        assert_eq!(kind(None, "sqlite://x.db"), "process");
        assert_eq!(kind(None, "postgres://h/db"), "database");
        assert_eq!(
            kind(Some("redis://127.0.0.1:6379"), "sqlite://x.db"),
            "redis"
        );
        assert!(RateLimiter::new(Some("not a url"), "t", "sqlite://x.db").is_err());
    }
}
