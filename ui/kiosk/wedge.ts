// USB "keyboard wedge" scanners, told apart from people by timing: the same
// rules as src-tauri/src/source/wedge.rs (`WedgeDetector`): every gap between
// keys, including the one before Enter, ≤ 35 ms, at least 4 characters;
// unfinished input is dropped after 1 s of silence.

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
