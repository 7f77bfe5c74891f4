// USB "keyboard wedge" scanners, told apart from people by timing. Handheld
// scanners in keyboard mode type the code followed by Enter much faster than a
// person (typically 2–15 ms per key; people rarely go below ~60 ms), on the
// same keyboard input the kiosk page receives. A line is a scan when every gap
// between keys, including the one before Enter, is ≤ 35 ms (a clock going
// backwards proves nothing) and it has at least 4 characters; unfinished input
// is dropped after 1 s of silence, and a runaway line (stuck key) past 4096.
// Pure: keystroke times are passed in. The one detector the app runs; its
// cases are in wedge.test.ts (`npm test` in ui/, run by scripts/test.sh).

export const WEDGE = { maxGapMs: 35, minLen: 4, idleResetMs: 1000, maxLen: 4096 };

export type WedgeInput = { kind: 'scan' | 'human'; text: string };

export class WedgeDetector {
  private buf = '';
  private last: number | null = null;
  private allFast = true;

  /** Feed one key ('\n' for Enter) at time `t` (ms). Returns the line on Enter. */
  feed(ch: string, t: number): WedgeInput | null {
    const gapFast = this.last != null && t >= this.last && t - this.last <= WEDGE.maxGapMs;
    const idle = this.last == null || t - this.last > WEDGE.idleResetMs;
    this.last = t;
    const enter = ch === '\n' || ch === '\r';
    if (idle && this.buf.length > 0 && !enter) this.clear();
    if (enter) {
      if (this.buf.length === 0) return null;
      const text = this.buf;
      const scan = this.allFast && gapFast && [...text].length >= WEDGE.minLen;
      this.clear();
      return { kind: scan ? 'scan' : 'human', text };
    }
    if (ch.length !== 1 || ch < ' ') return null;
    if (this.buf.length === 0) this.allFast = true;
    else this.allFast &&= gapFast;
    this.buf += ch;
    if (this.buf.length > WEDGE.maxLen) this.clear();
    return null;
  }

  /** Forget unfinished input (e.g. a touch: a person is using the screen). */
  reset() {
    this.clear();
    this.last = null;
  }

  private clear() {
    this.buf = '';
    this.allFast = true;
  }
}
