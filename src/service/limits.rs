//! Per-client-IP rate limits on the credential endpoints (login, sign-up,
//! forgot/reset password, resend verification), one budget per IP per
//! minute across every surface. Counted in this process; a shared store for
//! several nodes comes with multi-node support.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::Tessera;
use crate::error::{AppError, AppResult, ErrorCode};

/// Windows kept before old ones are swept.
const MAX_TRACKED: usize = 100_000;

#[derive(Default)]
pub struct RateLimiter {
    /// IP → (minute the window started, requests in it)
    windows: Mutex<HashMap<IpAddr, (i64, u32)>>,
}

impl RateLimiter {
    /// Counts one request; `Err(seconds to wait)` when over `limit`.
    pub fn hit(&self, ip: IpAddr, limit: u32, now: DateTime<Utc>) -> Result<(), u64> {
        let minute = now.timestamp().div_euclid(60);
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() >= MAX_TRACKED {
            windows.retain(|_, (start, _)| *start == minute);
        }
        let entry = windows.entry(ip).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        entry.1 += 1;
        if entry.1 > limit {
            Err((60 - now.timestamp().rem_euclid(60)).max(1) as u64)
        } else {
            Ok(())
        }
    }
}

impl Tessera {
    /// Spends one credential request of the client's budget.
    pub fn limit_credentials(&self, ip: Option<IpAddr>) -> AppResult<()> {
        let Some(ip) = ip else { return Ok(()) };
        let limit = self.config.security.rate_limit_per_minute;
        self.limiter
            .hit(ip, limit, self.clock.now())
            .map_err(|wait| {
                AppError::new(
                    ErrorCode::RateLimited,
                    "Too many requests from this address; slow down.",
                )
                .with_retry_after(wait)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_per_ip_per_minute() {
        let limiter = RateLimiter::default();
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:10Z")
            .unwrap()
            .to_utc();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert!(limiter.hit(a, 3, now).is_ok());
        }
        assert_eq!(limiter.hit(a, 3, now), Err(50));
        assert!(limiter.hit(b, 3, now).is_ok());
        assert!(limiter
            .hit(a, 3, now + chrono::Duration::seconds(50))
            .is_ok());
    }
}
