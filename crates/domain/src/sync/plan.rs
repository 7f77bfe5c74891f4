//! The sync planner: pure decisions about what to upload now, how long to
//! wait after a failure, and what a result means for an outbox entry.

use chrono::{DateTime, Duration, Utc};

/// Events per push request.
pub const UPLOAD_BATCH: usize = 500;
/// A device whose clock differs from the server's by more is flagged.
pub const CLOCK_SUSPECT_MS: i64 = 5 * 60 * 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEvent {
    pub event_id: uuid::Uuid,
    pub attempts: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// The pending events to push now, oldest first (v7 ids sort by time),
/// skipping those still waiting out a backoff.
pub fn plan_upload(pending: &[PendingEvent], now: DateTime<Utc>) -> Vec<uuid::Uuid> {
    let mut due: Vec<_> = pending
        .iter()
        .filter(|e| e.next_attempt_at.is_none_or(|at| at <= now))
        .map(|e| e.event_id)
        .collect();
    due.sort();
    due.truncate(UPLOAD_BATCH);
    due
}

/// Exponential backoff, 1 s doubling to 5 min, with `jitter` in [0, 1)
/// spreading retries of many gates over the last half of the interval.
pub fn backoff(attempts: u32, jitter: f64) -> Duration {
    let base_ms = 1000i64
        .saturating_mul(1i64 << attempts.min(20))
        .min(300_000);
    let jitter = jitter.clamp(0.0, 1.0);
    Duration::milliseconds(base_ms / 2 + (base_ms as f64 / 2.0 * jitter) as i64)
}

/// The device's clock offset from the server's (positive: device ahead),
/// estimated from one request's round trip.
pub fn clock_offset_ms(sent: DateTime<Utc>, server: DateTime<Utc>, received: DateTime<Utc>) -> i64 {
    let midpoint = sent + (received - sent) / 2;
    (midpoint - server).num_milliseconds()
}

pub fn clock_suspect(offset_ms: i64) -> bool {
    offset_ms.abs() > CLOCK_SUSPECT_MS
}

/// How a failed push is classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Network error, timeout or 5xx: retry with backoff.
    Transient,
    /// 401/403: the device token was revoked; stop until re-paired.
    Unauthorized,
    /// Another 4xx for the whole request: a bug or a version mismatch.
    Permanent,
}

pub fn classify_status(status: u16) -> Failure {
    match status {
        401 | 403 => Failure::Unauthorized,
        408 | 429 => Failure::Transient,
        400..=499 => Failure::Permanent,
        _ => Failure::Transient,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap()
    }

    #[test]
    fn upload_plan_takes_due_events_oldest_first() {
        let ids: Vec<_> = (0..4).map(uuid::Uuid::from_u128).collect();
        let pending = vec![
            PendingEvent {
                event_id: ids[2],
                attempts: 0,
                next_attempt_at: None,
            },
            PendingEvent {
                event_id: ids[0],
                attempts: 1,
                next_attempt_at: Some(t(10)),
            },
            PendingEvent {
                event_id: ids[1],
                attempts: 2,
                next_attempt_at: Some(t(100)),
            },
            PendingEvent {
                event_id: ids[3],
                attempts: 0,
                next_attempt_at: Some(t(5)),
            },
        ];
        assert_eq!(plan_upload(&pending, t(10)), vec![ids[0], ids[2], ids[3]]);
        assert_eq!(plan_upload(&pending, t(0)), vec![ids[2]]);
        let many: Vec<_> = (0..2000)
            .map(|i| PendingEvent {
                event_id: uuid::Uuid::from_u128(i),
                attempts: 0,
                next_attempt_at: None,
            })
            .collect();
        assert_eq!(plan_upload(&many, t(0)).len(), UPLOAD_BATCH);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for (attempts, jitter, expected_ms) in [
            (0, 0.0, 500),
            (0, 0.999_999, 999),
            (1, 0.0, 1000),
            (3, 0.5, 6000),
            (30, 0.0, 150_000),
            (30, 1.0, 300_000),
        ] {
            assert_eq!(
                backoff(attempts, jitter).num_milliseconds(),
                expected_ms,
                "{attempts} {jitter}"
            );
        }
    }

    #[test]
    fn clock_offsets() {
        // Device 2 h ahead; 200 ms round trip.
        let sent = t(7200);
        let received = sent + Duration::milliseconds(200);
        let server = t(0) + Duration::milliseconds(100);
        assert_eq!(clock_offset_ms(sent, server, received), 7_200_000);
        assert!(clock_suspect(7_200_000));
        assert!(!clock_suspect(-2_000));
    }

    #[test]
    fn failures_are_classified() {
        for (status, expected) in [
            (500, Failure::Transient),
            (503, Failure::Transient),
            (429, Failure::Transient),
            (401, Failure::Unauthorized),
            (403, Failure::Unauthorized),
            (422, Failure::Permanent),
            (400, Failure::Permanent),
        ] {
            assert_eq!(classify_status(status), expected, "{status}");
        }
    }
}
