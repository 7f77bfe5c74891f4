// Dates as the venue writes them: `YYYY-MM-DD` and `HH:MM:SS`, local to the
// venue. Formatting and month arithmetic only: whether a time is over,
// started or bookable is the server's answer (`bookable`, `actions`).

export const pad = (n: number) => String(n).padStart(2, '0');

export function monthKey(y: number, m: number): string {
  return `${y}-${pad(m + 1)}`;
}

export function addMonths(key: string, n: number): string {
  const [y, m] = key.split('-').map(Number);
  const d = new Date(y, m - 1 + n, 1);
  return monthKey(d.getFullYear(), d.getMonth());
}

/** Today on this phone: only to mark "today" and to open the calendar on a month. */
export function todayKey(): string {
  const d = new Date();
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

export function thisMonth(): string {
  const d = new Date();
  return monthKey(d.getFullYear(), d.getMonth());
}

/** A calendar date at local noon (safe against DST edges), for formatting. */
export function dateOf(iso: string): Date {
  const [y, m, d] = iso.split('-').map(Number);
  return new Date(y, m - 1, d, 12);
}

export function hhmm(t: string): string {
  return t.slice(0, 5);
}
