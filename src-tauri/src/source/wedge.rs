//! USB "keyboard wedge" barcode scanners.
//!
//! Handheld scanners in keyboard mode type the code as keystrokes followed by
//! Enter, much faster than a person (typically 2–15 ms per key; people rarely
//! go below ~60 ms). The gate app sees both on the same keyboard input, so it
//! tells them apart by timing: a run whose every inter-key gap (including the
//! one before Enter) is at most `max_gap_ms`, at least `min_len` characters
//! long, is a scan; anything slower is a person typing (e.g. a ticket number
//! entered by hand at the supervisor screen).
//!
//! Pure: keystroke timestamps are passed in.

/// What a completed line (ended by Enter) was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WedgeInput {
    /// Machine-speed input: treat as a scanned code.
    Scan(String),
    /// Person-speed (or too short) input.
    Human(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WedgeConfig {
    /// Largest gap between keys (and before Enter) that still counts as a scanner.
    pub max_gap_ms: u64,
    /// Shortest code a scanner sends; shorter fast bursts are key rollover.
    pub min_len: usize,
    /// After this much silence, unfinished input is dropped, so a stray key
    /// pressed a minute ago does not spoil the next scan.
    pub idle_reset_ms: u64,
    /// Longer lines are dropped (stuck key, runaway input).
    pub max_len: usize,
}

impl Default for WedgeConfig {
    fn default() -> Self {
        WedgeConfig {
            max_gap_ms: 35,
            min_len: 4,
            idle_reset_ms: 1000,
            max_len: 4096,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct WedgeDetector {
    config: WedgeConfig,
    buf: String,
    len: usize,
    last_ms: Option<u64>,
    all_fast: bool,
}

impl WedgeDetector {
    pub fn new(config: WedgeConfig) -> Self {
        WedgeDetector {
            config,
            ..WedgeDetector::default()
        }
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.len = 0;
        self.all_fast = true;
    }

    /// Feed one keystroke. Returns the classified line when `ch` is Enter
    /// (`'\n'` or `'\r'`) and something was typed before it.
    pub fn feed(&mut self, ch: char, t_ms: u64) -> Option<WedgeInput> {
        // A gap is "fast" only if time moved forward by at most max_gap:
        // a clock going backwards proves nothing about speed.
        let gap_fast = match self.last_ms {
            Some(last) if t_ms >= last => t_ms - last <= self.config.max_gap_ms,
            _ => false,
        };
        let idle = match self.last_ms {
            Some(last) => t_ms.saturating_sub(last) > self.config.idle_reset_ms,
            None => true,
        };
        self.last_ms = Some(t_ms);
        if idle && self.len > 0 && ch != '\n' && ch != '\r' {
            self.clear();
        }

        if ch == '\n' || ch == '\r' {
            if self.len == 0 {
                // "\r\n" pairs and empty Enters.
                return None;
            }
            let text = std::mem::take(&mut self.buf);
            let scan = self.all_fast && gap_fast && self.len >= self.config.min_len;
            self.clear();
            return Some(if scan {
                WedgeInput::Scan(text)
            } else {
                WedgeInput::Human(text)
            });
        }
        if ch.is_control() {
            // Shift/Tab/etc. arrive as control chars on some platforms; they
            // are not part of a ticket code.
            return None;
        }
        if self.len == 0 {
            self.all_fast = true;
        } else {
            self.all_fast &= gap_fast;
        }
        self.buf.push(ch);
        self.len += 1;
        if self.len > self.config.max_len {
            self.clear();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Type `text` starting at `t0` with the given per-key gap, then Enter
    /// after `enter_gap`; returns the keystrokes.
    fn typed(text: &str, t0: u64, gap: u64, enter_gap: u64) -> Vec<(char, u64)> {
        let mut t = t0;
        let mut keys = Vec::new();
        for (i, c) in text.chars().enumerate() {
            if i > 0 {
                t += gap;
            }
            keys.push((c, t));
        }
        keys.push(('\n', t + enter_gap));
        keys
    }

    fn run(keys: &[(char, u64)]) -> Vec<WedgeInput> {
        let mut d = WedgeDetector::new(WedgeConfig::default());
        keys.iter().filter_map(|&(c, t)| d.feed(c, t)).collect()
    }

    fn scan(s: &str) -> WedgeInput {
        WedgeInput::Scan(s.to_string())
    }

    fn human(s: &str) -> WedgeInput {
        WedgeInput::Human(s.to_string())
    }

    #[test]
    fn case_table() {
        let mut slow_in_middle = typed("TKT-2025", 0, 8, 8);
        // One 200 ms pause between the 4th and 5th key.
        for k in slow_in_middle.iter_mut().skip(4) {
            k.1 += 200;
        }
        let mut two_scans = typed("TKT-2025-ABC123", 0, 5, 5);
        two_scans.extend(typed("TKT-2025-XYZ789", 3000, 5, 5));
        let mut stray_then_scan = vec![('x', 0)];
        stray_then_scan.extend(typed("TKT-2025-ABC123", 5000, 5, 5));
        let mut crlf = typed("ENT1.abc_-XYZ", 0, 3, 3);
        crlf.push(('\r', 19 * 3));

        type Case = (&'static str, Vec<(char, u64)>, Vec<WedgeInput>);
        let cases: Vec<Case> = vec![
            (
                "scanner burst",
                typed("TKT-2025-ABC123", 1000, 8, 8),
                vec![scan("TKT-2025-ABC123")],
            ),
            (
                "exactly the threshold",
                typed("ABCD", 0, 35, 35),
                vec![scan("ABCD")],
            ),
            (
                "one ms over the threshold",
                typed("ABCD", 0, 36, 10),
                vec![human("ABCD")],
            ),
            (
                "human typing",
                typed("12345", 0, 150, 200),
                vec![human("12345")],
            ),
            (
                "too short for a code",
                typed("abc", 0, 5, 5),
                vec![human("abc")],
            ),
            (
                "slow Enter after a fast run",
                typed("ABCDEF", 0, 5, 400),
                vec![human("ABCDEF")],
            ),
            (
                "pause inside the run",
                slow_in_middle,
                vec![human("TKT-2025")],
            ),
            (
                "two scans in a row",
                two_scans,
                vec![scan("TKT-2025-ABC123"), scan("TKT-2025-XYZ789")],
            ),
            (
                "stray key long before is dropped",
                stray_then_scan,
                vec![scan("TKT-2025-ABC123")],
            ),
            (
                "Enter pair yields one line",
                crlf,
                vec![scan("ENT1.abc_-XYZ")],
            ),
            (
                "lone Enter yields nothing",
                vec![('\n', 0), ('\r', 5)],
                vec![],
            ),
            (
                "clock going backwards is not fast",
                vec![('A', 100), ('B', 90), ('C', 95), ('D', 99), ('\n', 100)],
                vec![human("ABCD")],
            ),
        ];
        for (name, keys, expected) in cases {
            assert_eq!(run(&keys), expected, "{name}");
        }
    }

    #[test]
    fn runaway_input_is_dropped() {
        let mut d = WedgeDetector::new(WedgeConfig {
            max_len: 8,
            ..WedgeConfig::default()
        });
        for i in 0..20u64 {
            assert_eq!(d.feed('A', i), None);
        }
        // The line was dropped at the 9th and 18th key; only the last two
        // keys remain, too short for a scan.
        assert_eq!(d.feed('\n', 21), Some(human("AA")));
    }
}
