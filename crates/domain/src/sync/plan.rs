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

/// How a failed round is classified. Only a refused token ends the sync
/// loop; everything else is retried with backoff and shown on the sync
/// screen, since a fix elsewhere (the network back, the server upgraded,
/// another process done with the database file) needs no one at the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No answer (network, TLS), a 5xx/408/429, a 403, or an answer that
    /// broke the protocol. The server never answers 403 on the sync
    /// endpoints (a refused token is a 401): a 403 comes from something in
    /// between (a proxy, a WAF, a maintenance page), like a proxy's 502.
    Transient,
    /// The server refused the whole request (another 4xx): a version
    /// mismatch or a bug, fixed by an upgrade on either side.
    Refused,
    /// The device's own database failed (locked by another process:
    /// `DATABASE_BUSY`; a full disk).
    Local,
    /// The device is not paired (any more): a pairing may land at any time.
    Unpaired,
    /// 401 (`TOKEN_REFUSED`): the server refused this device's token
    /// (unknown or revoked); only pairing again helps.
    Unauthorized,
}

pub fn classify_status(status: u16) -> Failure {
    match status {
        401 => Failure::Unauthorized,
        403 | 408 | 429 => Failure::Transient,
        400..=499 => Failure::Refused,
        _ => Failure::Transient,
    }
}

/// The longest wait between two failed rounds, in sync intervals.
pub const RETRY_CAP_INTERVALS: u32 = 60;

/// What the sync loop does after a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextRound {
    /// Start the next round after this long.
    After(std::time::Duration),
    /// Stop until the device is paired again.
    Stop,
}

/// The sync loop's decision after a round: `failure` is None when the round
/// went through; `failures` counts the failed rounds in a row, this one
/// included. A good round waits one `interval`; a failed one waits
/// `interval` doubling per failure up to [`RETRY_CAP_INTERVALS`] intervals,
/// spread by `jitter` in [0, 1) over its last half (never under one
/// interval); a refused token stops the loop.
pub fn next_round(
    failure: Option<Failure>,
    failures: u32,
    interval: std::time::Duration,
    jitter: f64,
) -> NextRound {
    let Some(failure) = failure else {
        return NextRound::After(interval);
    };
    if failure == Failure::Unauthorized {
        return NextRound::Stop;
    }
    let doublings = failures.saturating_sub(1).min(31);
    let factor = (1u64 << doublings).min(u64::from(RETRY_CAP_INTERVALS)) as u32;
    let base = interval.saturating_mul(factor);
    let spread = base.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0));
    NextRound::After(spread.max(interval))
}

/// What becomes of a pairing (a new server address or token) the server
/// could not confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnconfirmedPairing {
    /// Nothing is written: the device goes on with its current pairing and
    /// data, and says why the new one was not applied.
    KeepCurrent,
    /// Nothing is written, and the caller gets the error.
    Refuse,
}

/// The one re-pairing policy (the CLI's `entrada sync --server --token`,
/// the app's start flags and its settings screen): a token is written only
/// after the server confirmed it. When it could not be asked (no answer:
/// network, TLS, 5xx, a proxy's or a WAF's 403) a paired device keeps its
/// pairing — a gate must not stop admitting and syncing because a start
/// script's new token met an outage, and an unconfirmed token could be a
/// typo that cuts the gate off; an unpaired one has nothing to keep. A
/// refused token (the server's 401), a refused address or a local failure
/// is an error in both cases.
pub fn unconfirmed_pairing(paired: bool, failure: Failure) -> UnconfirmedPairing {
    match (paired, failure) {
        (true, Failure::Transient) => UnconfirmedPairing::KeepCurrent,
        _ => UnconfirmedPairing::Refuse,
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
            (408, Failure::Transient),
            (401, Failure::Unauthorized),
            (403, Failure::Transient),
            (422, Failure::Refused),
            (400, Failure::Refused),
            (404, Failure::Refused),
        ] {
            assert_eq!(classify_status(status), expected, "{status}");
        }
    }

    #[test]
    fn only_a_refused_token_stops_the_loop_the_rest_backs_off_to_a_cap() {
        use std::time::Duration as D;
        use Failure::*;
        let s = D::from_secs;
        let ms = D::from_millis;
        let after = NextRound::After;
        // (failure, failures in a row, interval, jitter, next)
        let cases: &[(Option<Failure>, u32, D, f64, NextRound)] = &[
            (None, 0, s(1), 0.7, after(s(1))),
            (None, 0, s(5), 0.0, after(s(5))),
            (Some(Unauthorized), 1, s(1), 0.5, NextRound::Stop),
            (Some(Unauthorized), 40, s(1), 0.5, NextRound::Stop),
            // Only the server's 401 is a refused token: a 403 (a proxy's, a
            // WAF's, a maintenance page) is retried like any outage.
            (Some(classify_status(401)), 1, s(1), 0.5, NextRound::Stop),
            (Some(classify_status(403)), 1, s(1), 0.0, after(s(1))),
            (Some(classify_status(403)), 3, s(1), 1.0, after(s(4))),
            // The first failure waits one interval, whatever the jitter.
            (Some(Transient), 1, s(1), 0.0, after(s(1))),
            (Some(Transient), 1, s(1), 0.999, after(s(1))),
            (Some(Local), 1, s(1), 0.0, after(s(1))),
            // Doubling, spread over the last half.
            (Some(Local), 2, s(1), 1.0, after(s(2))),
            (Some(Local), 3, s(1), 0.0, after(s(2))),
            (Some(Local), 3, s(1), 0.5, after(ms(3000))),
            (Some(Refused), 4, s(1), 1.0, after(s(8))),
            (Some(Unpaired), 4, s(1), 0.0, after(s(4))),
            (Some(Transient), 6, ms(200), 1.0, after(ms(6400))),
            // Capped at 60 intervals, also after very many failures.
            (Some(Transient), 7, s(1), 1.0, after(s(60))),
            (Some(Local), 1000, s(1), 1.0, after(s(60))),
            (Some(Local), u32::MAX, s(5), 0.0, after(s(150))),
            (Some(Refused), 1000, s(5), 1.0, after(s(300))),
            // Jitter outside [0, 1) is clamped.
            (Some(Transient), 7, s(1), 7.0, after(s(60))),
            (Some(Transient), 7, s(1), -1.0, after(s(30))),
        ];
        for &(failure, failures, interval, jitter, expected) in cases {
            assert_eq!(
                next_round(failure, failures, interval, jitter),
                expected,
                "{failure:?} x{failures} every {interval:?}, jitter {jitter}"
            );
        }
    }

    #[test]
    fn an_unconfirmed_pairing_keeps_the_current_one_only_when_there_is_one_and_no_answer() {
        use Failure::*;
        use UnconfirmedPairing::*;
        for (paired, failure, expected) in [
            (true, Transient, KeepCurrent),
            (false, Transient, Refuse),
            (true, Unauthorized, Refuse),
            (false, Unauthorized, Refuse),
            (true, classify_status(401), Refuse),
            (false, classify_status(401), Refuse),
            // A 403 is not the server's answer: no more than an outage, it
            // does not undo a pairing the server could not be asked about.
            (true, classify_status(403), KeepCurrent),
            (false, classify_status(403), Refuse),
            (true, Refused, Refuse),
            (true, Local, Refuse),
            (false, Local, Refuse),
            (true, Unpaired, Refuse),
        ] {
            assert_eq!(
                unconfirmed_pairing(paired, failure),
                expected,
                "paired={paired} {failure:?}"
            );
        }
    }
}
