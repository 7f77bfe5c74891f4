// When the kiosk idles: the dimmed screen of a handheld left alone, and when
// the scan loop's preview frames are worth sending. Pure: no DOM, no clock
// (main.ts passes both in), so the node tests run them (idle.test.ts).

/** Dim after `afterSecs` without a touch, key or scan (0: never dim). */
export function shouldDim(nowMs: number, lastActivityMs: number, afterSecs: number): boolean {
  return afterSecs > 0 && nowMs - lastActivityMs >= afterSecs * 1000;
}

export interface PreviewContext {
  signedIn: boolean;
  screen: string;
  /** document.visibilityState === 'visible': not minimised, not on another desktop. */
  visible: boolean;
  dimmed: boolean;
}

/** The preview is sent only when someone can see it: the scanner screen, signed in, window shown, not dimmed. */
export function previewWanted(c: PreviewContext): boolean {
  return c.signedIn && c.screen === 'scan' && c.visible && !c.dimmed;
}

/** The CSS rules in `css` that animate forever (an idle screen must not repaint continuously). */
export function infiniteAnimations(css: string): string[] {
  const found: string[] = [];
  const noComments = css.replace(/\/\*[\s\S]*?\*\//g, '');
  for (const m of noComments.matchAll(/([^{}]+)\{([^{}]*)\}/g)) {
    const [, selector, body] = m;
    if (/(^|;)\s*animation(-iteration-count)?\s*:[^;]*\binfinite\b/i.test(body)) found.push(selector.trim());
  }
  return found;
}
