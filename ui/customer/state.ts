// The page's one state object, the session (kept in sessionStorage), and the
// server's error codes in words.

import { ApiError, type Session, type SlotOffer, type TicketState } from './api';
import { thisMonth } from './dates';
import { $, S } from './dom';

const SESSION_KEY = 'entrada.customer.session';

interface State {
  session: Session | null;
  ts: TicketState | null;
  month: string;
  slots: SlotOffer[];
  selectedDate: string | null;
  selectedSlot: SlotOffer | null;
  mode: 'reserve' | 'reschedule';
}

export const st: State = {
  session: null,
  ts: null,
  month: thisMonth(),
  slots: [],
  selectedDate: null,
  selectedSlot: null,
  mode: 'reserve',
};

const signOutBtn = $<HTMLButtonElement>('#sign-out')!;

export function saveSession(s: Session | null) {
  st.session = s;
  try {
    if (s) sessionStorage.setItem(SESSION_KEY, JSON.stringify(s));
    else sessionStorage.removeItem(SESSION_KEY);
  } catch {
    /* private mode: keep it in memory */
  }
  signOutBtn.hidden = !s;
}

export function loadSession(): Session | null {
  try {
    const raw = sessionStorage.getItem(SESSION_KEY);
    if (!raw) return null;
    const s = JSON.parse(raw) as Session;
    // A stale copy costs one 401, which brings the sign-in form back.
    if (s.expires_at && Date.parse(s.expires_at) < Date.now()) return null;
    return s;
  } catch {
    return null;
  }
}

/** A server error code in the page's words. */
export function errorText(e: unknown, context: 'session' | 'other' = 'other'): string {
  if (!(e instanceof ApiError)) return S.errors.GENERIC as string;
  if (e.code === 'NOT_FOUND' && context === 'session') return S.errors.NOT_FOUND_SESSION as string;
  return reasonText(e.code, Number(e.details?.retry_after) || 60) ?? (e.message || (S.errors.GENERIC as string));
}

/** The words for a reason code the server gives (error or `actions`). */
export function reasonText(code: string, retryAfter = 60): string | null {
  const m = S.errors[code];
  if (typeof m === 'function') return m(retryAfter);
  return typeof m === 'string' ? m : null;
}

/** Where a screen goes next. main.ts wires these, so that screens do not
 *  import each other in a circle. */
export const nav = {
  signIn: (_code: string, _error?: string): void => undefined,
  /** Re-reads the ticket's status, then shows it (`after` is announced). */
  openTicket: async (_after?: string): Promise<void> => undefined,
  /** Shows the ticket's status as last read. */
  renderTicket: async (): Promise<void> => undefined,
};

/** A 401/404 on the ticket means the session is no good: back to sign-in. */
export function sessionLost(e: unknown): boolean {
  if (e instanceof ApiError && (e.status === 401 || (e.status === 404 && e.details?.entity === 'ticket'))) {
    const code = st.session?.ticket_code ?? '';
    saveSession(null);
    st.ts = null;
    nav.signIn(code, errorText(e));
    return true;
  }
  return false;
}
