//! One verdict per presentation of a code, not one per frame.
//!
//! A ticket held in front of a 30 fps camera is decoded dozens of times; the
//! gate must check it once. A code becomes emittable again only after it has
//! been *absent* (not decoded) for `rearm_after_ms`, so a holder who keeps the
//! phone up does not re-trigger, but one who walks away and comes back does.
//! Single missed frames (motion blur) do not count as absence as long as the
//! gap is shorter than the window, and time alone is not absence: a frame must
//! have been read without the code (a slow frame is not a walk-away).
//!
//! Pure: time is passed in, nothing reads a clock.

use std::collections::HashMap;

/// How long a code not yet seen missing (only frames cut short by their
/// budget since) is still taken as in view.
const PARTIAL_HOLD_MS: u64 = 10_000;

#[derive(Debug, Clone)]
pub struct RepeatSuppressor {
    rearm_after_ms: u64,
    /// payload → when it was last seen, and whether a frame has been read
    /// without it since.
    last_seen: HashMap<String, Seen>,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    at: u64,
    /// A frame was decoded without this code after `at`. Time alone is not
    /// absence: on a loaded machine one frame can take longer than the
    /// window, and a holder who kept the phone up must not be checked twice.
    missed: bool,
}

impl RepeatSuppressor {
    /// `rearm_after_ms`: how long a code must be absent before it is emitted
    /// again (2000 ms suits a gate: longer than a missed-frame streak, shorter
    /// than a deliberate second presentation).
    pub fn new(rearm_after_ms: u64) -> Self {
        RepeatSuppressor {
            rearm_after_ms,
            last_seen: HashMap::new(),
        }
    }

    /// Feed the payloads decoded in one frame taken at `now_ms`; returns the
    /// ones to act on, in input order, each at most once.
    ///
    /// A clock that steps backwards is treated as "no time passed" (never as a
    /// long absence), so it cannot cause a duplicate verdict.
    pub fn observe<'a, I>(&mut self, now_ms: u64, payloads: I) -> Vec<String>
    where
        I: IntoIterator<Item = &'a str>,
    {
        self.observe_frame(now_ms, payloads, true)
    }

    /// Like [`observe`](Self::observe), for a frame that was not read to the
    /// end (its time budget ran out on a loaded machine): the codes it found
    /// count as seen, but a code it did not find is not taken as absent — a
    /// holder who kept the phone up must not be checked again because the
    /// machine was busy.
    pub fn observe_partial<'a, I>(&mut self, now_ms: u64, payloads: I) -> Vec<String>
    where
        I: IntoIterator<Item = &'a str>,
    {
        self.observe_frame(now_ms, payloads, false)
    }

    fn observe_frame<'a, I>(&mut self, now_ms: u64, payloads: I, complete: bool) -> Vec<String>
    where
        I: IntoIterator<Item = &'a str>,
    {
        let mut emit = Vec::new();
        let mut in_frame: Vec<&str> = Vec::new();
        for p in payloads {
            let fresh = match self.last_seen.get(p) {
                None => true,
                Some(seen) => seen.missed && now_ms.saturating_sub(seen.at) > self.rearm_after_ms,
            };
            if fresh && !emit.iter().any(|e: &String| e == p) {
                emit.push(p.to_string());
            }
            let entry = self.last_seen.entry(p.to_string()).or_insert(Seen {
                at: now_ms,
                missed: false,
            });
            entry.missed = false;
            entry.at = entry.at.max(now_ms);
            in_frame.push(p);
        }
        if complete {
            for (code, seen) in self.last_seen.iter_mut() {
                if !in_frame.contains(&code.as_str()) {
                    seen.missed = true;
                }
            }
        }
        // Forget codes absent for longer than the window: they are emittable
        // again anyway, and the map must not grow with every ticket of the day.
        // A code not yet missed stays (it is in the last complete frame, so
        // the map holds at most one frame's codes beyond the window).
        // Under sustained overload (every frame cut short) a code is kept at
        // most PARTIAL_HOLD_MS, so memory stays bounded and a code shown again
        // after that gets its verdict.
        let window = self.rearm_after_ms;
        self.last_seen.retain(|_, seen| {
            let age = now_ms.saturating_sub(seen.at);
            age <= window || (!seen.missed && age <= PARTIAL_HOLD_MS.max(window))
        });
        emit
    }

    /// Number of codes currently being suppressed.
    pub fn tracked(&self) -> usize {
        self.last_seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (name, rearm window, frames as (time, payloads), expected emissions per frame)
    type Case = (
        &'static str,
        u64,
        &'static [(u64, &'static [&'static str])],
        &'static [&'static [&'static str]],
    );

    const CASES: &[Case] = &[
        (
            "thirty consecutive frames give one verdict",
            2000,
            &[
                (0, &["A"]),
                (33, &["A"]),
                (66, &["A"]),
                (100, &["A"]),
                (133, &["A"]),
            ],
            &[&["A"], &[], &[], &[], &[]],
        ),
        (
            "short dropout does not re-arm",
            2000,
            &[(0, &["A"]), (33, &[]), (66, &[]), (1500, &["A"])],
            &[&["A"], &[], &[], &[]],
        ),
        (
            "absent longer than the window re-arms",
            2000,
            &[(0, &["A"]), (100, &[]), (2101, &["A"])],
            &[&["A"], &[], &["A"]],
        ),
        (
            "exactly the window is still suppressed",
            2000,
            &[(0, &["A"]), (2000, &["A"])],
            &[&["A"], &[]],
        ),
        (
            "continuous presence never re-arms even past the window",
            100,
            &[(0, &["A"]), (90, &["A"]), (180, &["A"]), (270, &["A"])],
            &[&["A"], &[], &[], &[]],
        ),
        (
            "two codes in one frame both emit, once each",
            2000,
            &[(0, &["A", "B", "A"]), (33, &["B", "A"])],
            &[&["A", "B"], &[]],
        ),
        (
            "a new code next to a suppressed one emits",
            2000,
            &[(0, &["A"]), (33, &["A", "B"])],
            &[&["A"], &["B"]],
        ),
        (
            "clock stepping backwards does not duplicate",
            2000,
            &[(5000, &["A"]), (100, &["A"]), (5050, &["A"])],
            &[&["A"], &[], &[]],
        ),
        (
            "zero window: one frame without the code re-arms it",
            0,
            &[(0, &["A"]), (0, &["A"]), (1, &[]), (2, &["A"])],
            &[&["A"], &[], &[], &["A"]],
        ),
        (
            "frames slower than the window, the code in each: one verdict",
            2000,
            &[(0, &["A"]), (3000, &["A"]), (6500, &["A"])],
            &[&["A"], &[], &[]],
        ),
        (
            "a slow frame without the code re-arms it",
            2000,
            &[(0, &["A"]), (3000, &[]), (3100, &["A"])],
            &[&["A"], &[], &["A"]],
        ),
    ];

    #[test]
    fn case_table() {
        for (name, window, frames, expected) in CASES {
            let mut s = RepeatSuppressor::new(*window);
            for (i, ((t, payloads), want)) in frames.iter().zip(expected.iter()).enumerate() {
                let got = s.observe(*t, payloads.iter().copied());
                assert_eq!(&got, want, "{name}: frame {i}");
            }
        }
    }

    /// (name, frames as (time, payloads, read to the end), expected emissions per frame), window 2000 ms
    type PartialCase = (
        &'static str,
        &'static [(u64, &'static [&'static str], bool)],
        &'static [&'static [&'static str]],
    );

    const PARTIAL_CASES: &[PartialCase] = &[
        (
            "frames cut short by the budget are not absence, however long",
            &[
                (0, &["A"], true),
                (500, &[], false),
                (7000, &[], false),
                (7100, &["A"], true),
            ],
            &[&["A"], &[], &[], &[]],
        ),
        (
            "a code found in a cut-short frame is seen (and emits once)",
            &[
                (0, &["A"], false),
                (100, &["A"], false),
                (200, &["A"], true),
            ],
            &[&["A"], &[], &[]],
        ),
        (
            "after 10 s of cut-short frames only, a code is forgotten and emits again",
            &[
                (0, &["A"], true),
                (5000, &[], false),
                (10_001, &[], false),
                (10_100, &["A"], true),
            ],
            &[&["A"], &[], &[], &["A"]],
        ),
        (
            "a complete frame without the code still re-arms it",
            &[
                (0, &["A"], true),
                (500, &[], false),
                (600, &[], true),
                (2700, &["A"], true),
            ],
            &[&["A"], &[], &[], &["A"]],
        ),
    ];

    #[test]
    fn partial_frames_case_table() {
        for (name, frames, expected) in PARTIAL_CASES {
            let mut s = RepeatSuppressor::new(2000);
            for (i, ((t, payloads, complete), want)) in
                frames.iter().zip(expected.iter()).enumerate()
            {
                let got = if *complete {
                    s.observe(*t, payloads.iter().copied())
                } else {
                    s.observe_partial(*t, payloads.iter().copied())
                };
                assert_eq!(&got, want, "{name}: frame {i}");
            }
        }
    }

    #[test]
    fn memory_is_bounded_under_sustained_overload() {
        let mut s = RepeatSuppressor::new(1000);
        for i in 0..500u64 {
            let code = format!("T{i}");
            s.observe_partial(i * 100, [code.as_str()]);
        }
        // Only codes seen in the last 10 s are kept.
        assert!(s.tracked() <= 101, "tracked {}", s.tracked());
    }

    #[test]
    fn memory_is_bounded_by_the_window() {
        let mut s = RepeatSuppressor::new(1000);
        for i in 0..500u64 {
            let code = format!("T{i}");
            s.observe(i * 100, [code.as_str()]);
        }
        // Only codes seen in the last 1000 ms are kept.
        assert!(s.tracked() <= 11, "tracked {}", s.tracked());
    }
}
