//! The gate's clock, injected: the app reads the system's, tests one they
//! set and advance, so no test waits for a timeout (auto-lock, a verdict's
//! freshness) to pass on the wall clock.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

/// What time it is, for the gate.
pub trait Clock: Send + Sync {
    /// Monotonic time, for timeouts (auto-lock, how fresh a verdict is).
    fn instant(&self) -> Instant;
    /// Wall-clock time, for the rules (slot windows, PIN lockouts, "today").
    fn now(&self) -> DateTime<Utc>;
}

/// The system's clocks (the app).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn instant(&self) -> Instant {
        Instant::now()
    }

    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stands still until advanced (tests). Both readings move
/// together.
#[derive(Debug)]
pub struct ManualClock {
    start: (Instant, DateTime<Utc>),
    elapsed: Mutex<Duration>,
}

impl ManualClock {
    /// Stands at `now` (its monotonic reading starts at the system's).
    pub fn at(now: DateTime<Utc>) -> Self {
        Self {
            start: (Instant::now(), now),
            elapsed: Mutex::new(Duration::ZERO),
        }
    }

    pub fn advance(&self, by: Duration) {
        *self.elapsed.lock().unwrap_or_else(|p| p.into_inner()) += by;
    }

    fn elapsed(&self) -> Duration {
        *self.elapsed.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Clock for ManualClock {
    fn instant(&self) -> Instant {
        self.start.0 + self.elapsed()
    }

    fn now(&self) -> DateTime<Utc> {
        self.start.1 + chrono::Duration::from_std(self.elapsed()).unwrap_or(chrono::TimeDelta::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced() {
        let start = Utc::now();
        let clock = ManualClock::at(start);
        let (i0, t0) = (clock.instant(), clock.now());
        assert_eq!((clock.instant(), clock.now()), (i0, t0));
        assert_eq!(t0, start);
        clock.advance(Duration::from_millis(1500));
        assert_eq!(clock.instant() - i0, Duration::from_millis(1500));
        assert_eq!(clock.now() - t0, chrono::Duration::milliseconds(1500));
    }
}
