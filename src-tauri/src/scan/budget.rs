//! The per-frame time budget, counted in the decoding thread's CPU time,
//! with a wall-clock cap.
//!
//! Why CPU time: the budget is there to bound the *work* spent on one frame,
//! so that a 30 fps stream keeps up: no new fallback stage starts once a
//! frame has had its share of the machine. Time the decoding thread spends
//! descheduled (another process's build, the OS, a busy second core) is not
//! work of the decoder's, and counting it gave a loaded machine's frames a
//! fraction of their budget: on 2 cores at load 7.5 a 25 ms wall budget left
//! 6–10 ms of decoding, and every frame zxing-cpp read and we did not had
//! ended past its budget in wall time (BENCHMARKS.md, session 30). In CPU
//! time the frame gets the same work whatever the load, i.e. the same reads
//! as on a quiet machine.
//!
//! Why a wall-clock cap as well: a thread that gets almost no CPU must still
//! give the frame up at some point, or the scan loop would fall seconds
//! behind the camera. Past [`WALL_CAP`] × the budget in wall time no new
//! stage starts either; then the frame is reported incomplete as before.
//!
//! Where no thread CPU clock exists (Windows), the budget is wall time, as
//! it always was.
//!
//! A budget too big to add to the clocks (a configured `Duration::MAX`)
//! never ends, and has no wall-clock cap.

use std::marker::PhantomData;
use std::time::{Duration, Instant};

/// The wall-clock cap, as a multiple of the frame's budget.
pub(crate) const WALL_CAP: u32 = 4;

/// When a frame's budget is spent.
///
/// Not `Send` (nor `Sync`): it reads the CPU clock of the thread that
/// checks it, so it must stay on the thread that made it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    /// The decoding thread's CPU time at which the budget is spent (`None`:
    /// no thread CPU clock here, the budget counts in wall time).
    cpu_end: Option<Duration>,
    /// Budget in wall time, used only without a thread CPU clock (`None`:
    /// past what an `Instant` holds, never).
    wall_end: Option<Instant>,
    /// The wall-clock cap: spent, whatever the CPU time (`None`: no cap).
    cap_end: Option<Instant>,
    _not_send: PhantomData<*const ()>,
}

impl Deadline {
    /// A budget of `budget` starting now, on the calling thread. Check it
    /// ([`Self::passed`]) on the same thread: it reads that thread's clock.
    pub(crate) fn start(budget: Duration) -> Self {
        Self::starting_at(Instant::now(), thread_cpu_time(), budget)
    }

    fn starting_at(wall: Instant, cpu: Option<Duration>, budget: Duration) -> Self {
        Deadline {
            // Saturating: `Duration::MAX` of CPU time is never reached.
            cpu_end: cpu.map(|c| c.saturating_add(budget)),
            wall_end: wall.checked_add(budget),
            cap_end: budget
                .checked_mul(WALL_CAP)
                .and_then(|cap| wall.checked_add(cap)),
            _not_send: PhantomData,
        }
    }

    /// The budget is spent: no new stage should start.
    pub(crate) fn passed(&self) -> bool {
        self.passed_at(Instant::now(), thread_cpu_time)
    }

    fn passed_at(&self, wall: Instant, cpu: impl FnOnce() -> Option<Duration>) -> bool {
        if self.cap_end.is_some_and(|cap| wall >= cap) {
            return true;
        }
        match (self.cpu_end, self.cpu_end.and_then(|_| cpu())) {
            (Some(end), Some(now)) => now >= end,
            _ => self.wall_end.is_some_and(|end| wall >= end),
        }
    }
}

/// CPU time the calling thread has used, where the OS keeps it.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "macos"))]
fn thread_cpu_time() -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call only writes it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0 && ts.tv_sec >= 0 && ts.tv_nsec >= 0)
        .then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "macos")))]
fn thread_cpu_time() -> Option<Duration> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_budget_counts_cpu_time_not_time_spent_descheduled() {
        let t0 = Instant::now();
        let d = Deadline::starting_at(t0, Some(100 * MS), 25 * MS);
        // 80 ms of wall time, 10 ms of it on the CPU: descheduled, not spent.
        assert!(!d.passed_at(t0 + 80 * MS, || Some(110 * MS)));
        // 25 ms of CPU: spent, even if only just as much wall time went by.
        assert!(d.passed_at(t0 + 25 * MS, || Some(125 * MS)));
    }

    #[test]
    fn the_wall_clock_caps_a_frame_that_gets_no_cpu() {
        let t0 = Instant::now();
        let d = Deadline::starting_at(t0, Some(100 * MS), 25 * MS);
        // 1 ms of CPU in 99 ms: still within the cap (4 × 25 ms)...
        assert!(!d.passed_at(t0 + 99 * MS, || Some(101 * MS)));
        // ...and at the cap the frame is given up, whatever the CPU time.
        assert!(d.passed_at(t0 + 100 * MS, || Some(101 * MS)));
        assert!(d.passed_at(t0 + 100 * MS, || None));
    }

    #[test]
    fn without_a_thread_clock_the_budget_is_wall_time() {
        let t0 = Instant::now();
        let d = Deadline::starting_at(t0, None, 25 * MS);
        assert!(!d.passed_at(t0 + 24 * MS, || None));
        assert!(d.passed_at(t0 + 25 * MS, || None));
        // A clock that stops answering mid-frame: wall time too.
        let d = Deadline::starting_at(t0, Some(100 * MS), 25 * MS);
        assert!(d.passed_at(t0 + 30 * MS, || None));
    }

    #[test]
    fn a_budget_too_big_for_the_clocks_never_ends_and_has_no_cap() {
        // `Instant + Duration::MAX` and `Duration::MAX * 4` would panic.
        let t0 = Instant::now();
        let d = Deadline::starting_at(t0, Some(100 * MS), Duration::MAX);
        assert!(d.cap_end.is_none() && d.wall_end.is_none());
        assert!(!d.passed_at(t0 + 3600 * 1000 * MS, || Some(Duration::MAX / 2)));
        let d = Deadline::starting_at(t0, None, Duration::MAX);
        assert!(!d.passed_at(t0 + 3600 * 1000 * MS, || None));
        // Big enough to overflow the cap only: no cap, the budget still
        // counts.
        let d = Deadline::starting_at(t0, Some(100 * MS), Duration::MAX / 3);
        assert!(d.cap_end.is_none());
        assert!(!d.passed_at(t0 + 3600 * 1000 * MS, || Some(200 * MS)));
        // Through the real clocks too.
        assert!(!Deadline::start(Duration::MAX).passed());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_thread_cpu_clock_exists_and_counts_work() {
        // Not timed: only that the clock is there and that a busy loop moves
        // it forward (a `passed` that reads a clock standing still would
        // never end a frame but for the cap).
        let first = thread_cpu_time().expect("CLOCK_THREAD_CPUTIME_ID on Linux");
        let mut last = first;
        let mut x = 1u64;
        for _ in 0..10 {
            for i in 0..1_000_000u64 {
                x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i));
            }
            let now = thread_cpu_time().expect("CLOCK_THREAD_CPUTIME_ID on Linux");
            assert!(
                now >= last,
                "the thread CPU clock went back: {last:?} -> {now:?}"
            );
            last = now;
        }
        assert!(last > first, "10 M multiplications took no CPU time");
        std::hint::black_box(x);
    }
}
