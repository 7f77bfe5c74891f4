//! Per-token and per-address request limits for the endpoints that look up
//! ticket codes or check PINs, so codes and PINs cannot be enumerated.
//! A fixed one-minute window per key: simple, and enough to turn a
//! brute-force run of millions into years.
//!
//! An IPv6 client is counted by its /64 (one subscriber's prefix: it can
//! pick any address inside), and the table holds at most [`MAX_KEYS`]
//! windows: past that, expired windows go first, then the oldest half.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::error::ApiError;
use crate::store::Principal;

const WINDOW: Duration = Duration::from_secs(60);
/// Most windows kept at once (about 100 bytes each).
pub const MAX_KEYS: usize = 50_000;

/// The key an address is counted under: an IPv4 address (also when written
/// as IPv4-mapped IPv6), or the /64 of an IPv6 address.
pub fn address_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let prefix = Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("{prefix}/64")
        }
    }
}

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
        if windows.len() >= MAX_KEYS && !windows.contains_key(&key) {
            make_room(&mut windows, now);
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

    /// How many windows are kept.
    pub fn len(&self) -> usize {
        self.windows.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
            self.hit(format!("{bucket}:ip:{}", address_key(ip)), now)?;
        }
        Ok(())
    }
}

/// Drops the expired windows; if that frees less than a quarter of the
/// table, the older half too (amortised: one sort-free pass per
/// `MAX_KEYS / 4` new keys at most).
fn make_room(windows: &mut HashMap<String, (Instant, u32)>, now: Instant) {
    windows.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
    if windows.len() < MAX_KEYS - MAX_KEYS / 4 {
        return;
    }
    let mut starts: Vec<Instant> = windows.values().map(|(start, _)| *start).collect();
    let middle = starts.len() / 2;
    let (_, cutoff, _) = starts.select_nth_unstable(middle);
    let cutoff = *cutoff;
    windows.retain(|_, (start, _)| *start > cutoff);
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

    #[test]
    fn address_keys_case_table() {
        let cases = [
            ("192.0.2.7", "192.0.2.7"),
            ("::ffff:192.0.2.7", "192.0.2.7"),
            ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
            ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
            ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
            ("::1", "::/64"),
        ];
        for (ip, key) in cases {
            assert_eq!(address_key(ip.parse().unwrap()), key, "{ip}");
        }
    }

    #[test]
    fn two_addresses_of_one_64_share_a_bucket() {
        let limiter = RateLimiter::new(2);
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        limiter.check("pin", None, ip("2001:db8:7:7::1")).unwrap();
        limiter.check("pin", None, ip("2001:db8:7:7::2")).unwrap();
        assert!(matches!(
            limiter.check("pin", None, ip("2001:db8:7:7:abcd::3")),
            Err(ApiError::RateLimited { .. })
        ));
        // The next /64 and another bucket are counted apart.
        limiter.check("pin", None, ip("2001:db8:7:8::1")).unwrap();
        limiter
            .check("lookup", None, ip("2001:db8:7:7::1"))
            .unwrap();
    }

    #[test]
    fn a_hundred_thousand_keys_stay_under_the_cap() {
        let limiter = RateLimiter::new(5);
        for i in 0..100_000u32 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            limiter.check("lookup", None, Some(ip)).unwrap();
            assert!(
                limiter.len() <= MAX_KEYS,
                "{} keys after {i}",
                limiter.len()
            );
        }
        assert!(limiter.len() >= MAX_KEYS / 4, "{}", limiter.len());
        // The newest keys are the ones kept: the last address is still counted.
        let last = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + 99_999));
        for _ in 0..4 {
            limiter.check("lookup", None, Some(last)).unwrap();
        }
        assert!(matches!(
            limiter.check("lookup", None, Some(last)),
            Err(ApiError::RateLimited { .. })
        ));
    }
}
