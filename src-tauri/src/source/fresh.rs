//! Frames the driver queued while nobody read them are old news.
//!
//! A V4L2 camera fills a small ring of buffers (nokhwa asks for 4) and
//! hands out the oldest filled one. While the scan loop reads seldom (power
//! save reads a frame every 500 ms) the ring fills and the driver drops the
//! newer frames, so each read returns a frame captured several reads ago: a
//! ticket held up to a dimmed gate would be seen 1.5–2 s late. [`freshest`]
//! skips the queued frames: it reads until it gets one captured within the
//! last few frame times (by the driver's capture timestamp), or — where the
//! backend gives no timestamp — until a read has to wait for the camera.
//! Skipping costs a buffer copy, not a decode.
//!
//! Pure: the caller passes in how old each frame is and how long each read
//! waited; nothing here reads a clock or a device.

use std::time::Duration;

/// How one read went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Read {
    /// Time since the driver captured the frame, if the backend says.
    pub age: Option<Duration>,
    /// How long the read blocked before the frame came.
    pub waited: Duration,
}

/// At most this many queued frames are skipped per frame read (nokhwa's
/// V4L2 ring has 4 buffers, one of them held by the reader): the read after
/// them waits for a new capture, so the bound is never the limit in practice.
pub const MAX_SKIPPED: usize = 4;

/// A frame older than this many frame times was queued, not just captured.
const STALE_FRAMES: u32 = 3;
/// ... and never younger than this (a 60 fps camera's 3 frames are 50 ms:
/// the scheduler's jitter alone could exceed that).
const STALE_AT_LEAST: Duration = Duration::from_millis(100);

/// Whether a frame read `read` is one the driver had queued.
///
/// With a capture time: older than 3 frame times (at least 100 ms). Without
/// one, only when the reader was `away` (it last read more than 2 frame times
/// ago, or is skipping already): a read that returned at once (in under a
/// quarter of a frame time) found a frame waiting in the queue.
pub fn is_queued(read: Read, frame: Duration, away: bool) -> bool {
    match read.age {
        Some(age) => age > (frame * STALE_FRAMES).max(STALE_AT_LEAST),
        None => away && read.waited < frame / 4,
    }
}

/// Reads until a frame that is not a queued one (at most [`MAX_SKIPPED`]
/// skipped) and returns it. `since_last` is the time since the previous
/// frame was returned (`None`: the first read of a stream).
pub fn freshest<T, E>(
    mut read: impl FnMut() -> Result<(T, Read), E>,
    frame: Duration,
    since_last: Option<Duration>,
) -> Result<T, E> {
    let mut away = since_last.is_some_and(|d| d > frame * 2);
    let mut skipped = 0;
    loop {
        let (item, how) = read()?;
        if skipped >= MAX_SKIPPED || !is_queued(how, frame, away) {
            return Ok(item);
        }
        skipped += 1;
        // A queued frame came: the next one may be queued too.
        away = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: Duration = Duration::from_millis(33);

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn which_reads_were_queued() {
        // (age ms, waited ms, reader away, frame time ms, queued, case)
        type Case = (Option<u64>, u64, bool, u64, bool, &'static str);
        let cases: &[Case] = &[
            (Some(10), 20, false, 33, false, "just captured"),
            (Some(100), 0, true, 33, false, "3 frames ago at 30 fps"),
            (Some(101), 0, false, 33, true, "over 3 frames at 30 fps"),
            (Some(500), 0, true, 33, true, "0.5 s ago"),
            (Some(1500), 0, true, 33, true, "1.5 s ago"),
            (Some(550), 0, true, 200, false, "5 fps: 3 frames are 600 ms"),
            (Some(700), 0, true, 200, true, "5 fps: 700 ms"),
            (Some(80), 0, true, 16, false, "60 fps: never under 100 ms"),
            (None, 0, false, 33, false, "untimed, reader kept up"),
            (None, 2, true, 33, true, "untimed, away, came at once"),
            (None, 20, true, 33, false, "untimed, away, had to wait"),
        ];
        for &(age, waited, away, frame, queued, name) in cases {
            let read = Read {
                age: age.map(ms),
                waited: ms(waited),
            };
            assert_eq!(is_queued(read, ms(frame), away), queued, "{name}");
        }
    }

    /// A scripted camera: each read hands out the next (name, read).
    fn run(
        script: &[(&'static str, Option<u64>, u64)],
        since_last: Option<u64>,
    ) -> (&'static str, usize) {
        let mut reads = 0;
        let got = freshest(
            || {
                let (name, age, waited) = script[reads];
                reads += 1;
                Ok::<_, ()>((
                    name,
                    Read {
                        age: age.map(ms),
                        waited: ms(waited),
                    },
                ))
            },
            FRAME,
            since_last.map(ms),
        )
        .unwrap();
        (got, reads)
    }

    #[test]
    fn a_dimmed_gate_sees_the_frame_of_now() {
        // Read every 500 ms: the ring holds frames of 1.5 s, 1 s and 0.5 s
        // ago; the ticket held up now is in the next capture.
        let ring = [
            ("1.5 s ago", Some(1500), 0),
            ("1 s ago", Some(1000), 0),
            ("0.5 s ago", Some(500), 0),
            ("now: the ticket", Some(5), 28),
        ];
        assert_eq!(run(&ring, Some(500)), ("now: the ticket", 4));
        // The same without capture times: the reads that returned at once
        // were queued; the one that waited is new.
        let untimed = ring.map(|(n, _, w)| (n, None, w));
        assert_eq!(run(&untimed, Some(500)), ("now: the ticket", 4));
        // A reader keeping up at full rate takes the frame it gets.
        assert_eq!(
            run(&[("next", None, 0), ("after", None, 30)], Some(33)),
            ("next", 1)
        );
        assert_eq!(run(&[("first", None, 0)], None), ("first", 1));
    }

    #[test]
    fn skipping_is_bounded() {
        let old = [("old", Some(9000), 0); 6];
        let (_, reads) = run(&old, Some(500));
        assert_eq!(reads, MAX_SKIPPED + 1);
    }

    #[test]
    fn a_read_error_ends_the_skipping() {
        let mut n = 0;
        let got: Result<&str, &str> = freshest(
            || {
                n += 1;
                if n == 1 {
                    Ok((
                        "queued",
                        Read {
                            age: Some(ms(2000)),
                            waited: ms(0),
                        },
                    ))
                } else {
                    Err("device gone")
                }
            },
            FRAME,
            Some(ms(500)),
        );
        assert_eq!(got, Err("device gone"));
    }
}
