//! Per-token and per-address request limits for the endpoints that look up
//! ticket codes or check PINs, so codes and PINs cannot be enumerated.
//! A fixed one-minute window per key: simple, and enough to turn a
//! brute-force run of millions into years.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::error::ApiError;
use crate::store::Principal;

const WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct RateLimiter {
    per_minute: u32,
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl RateLimiter {
    /// `per_minute = 0` turns limiting off (benchmarks).
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            windows: Mutex::new(HashMap::new()),
        }
    }

    fn hit(&self, key: String, now: Instant) -> Result<(), ApiError> {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() > 100_000 {
            windows.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        }
        let (start, count) = windows.entry(key).or_insert((now, 0));
        if now.duration_since(*start) >= WINDOW {
            *start = now;
            *count = 0;
        }
        *count += 1;
        if *count > self.per_minute {
            let retry_after_secs = WINDOW
                .saturating_sub(now.duration_since(*start))
                .as_secs()
                .max(1);
            return Err(ApiError::RateLimited { retry_after_secs });
        }
        Ok(())
    }

    /// Counts one request against the caller's token and address.
    pub fn check(
        &self,
        bucket: &str,
        principal: Option<&Principal>,
        ip: Option<IpAddr>,
    ) -> Result<(), ApiError> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let now = Instant::now();
        if let Some(p) = principal {
            self.hit(format!("{bucket}:token:{}", p.token_id), now)?;
        }
        if let Some(ip) = ip {
            self.hit(format!("{bucket}:ip:{ip}"), now)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_key_and_resets_after_the_window() {
        let limiter = RateLimiter::new(3);
        let t0 = Instant::now();
        for _ in 0..3 {
            limiter.hit("k".into(), t0).unwrap();
        }
        match limiter.hit("k".into(), t0 + Duration::from_secs(20)) {
            Err(ApiError::RateLimited { retry_after_secs }) => assert_eq!(retry_after_secs, 40),
            other => panic!("{other:?}"),
        }
        limiter.hit("other".into(), t0).unwrap();
        limiter.hit("k".into(), t0 + WINDOW).unwrap();
    }
}
