// Client-side checks that mirror the server's (crates/domain): the
// server stays the judge; these only give faster, clearer messages.

/** Ticket codes: printable ASCII without spaces, at most 64 characters. */
export function validTicketCode(raw: string): boolean {
  const c = raw.trim();
  return c.length > 0 && c.length <= 64 && /^[\x21-\x7e]+$/.test(c);
}

/** One `@`, a dotted domain of letters/digits/hyphens, no spaces. */
export function validEmail(raw: string): boolean {
  const e = raw.trim();
  if (e.length === 0 || e.length > 254) return false;
  const at = e.lastIndexOf('@');
  if (at <= 0) return false;
  const local = e.slice(0, at);
  const domain = e.slice(at + 1);
  if (local.length > 64 || /[\s@]/.test(local)) return false;
  if (!domain.includes('.')) return false;
  return domain
    .split('.')
    .every((l) => l.length > 0 && l.length <= 63 && !l.startsWith('-') && !l.endsWith('-') && /^[\p{L}\p{N}-]+$/u.test(l));
}

/** Spaces, dots, dashes and brackets people type are dropped. */
export function compactPhone(raw: string): string {
  return raw.trim().replace(/[\s.\-()]/g, '');
}

/** E.164: `+`, country code not starting with 0, 7 to 15 digits in all
 *  (the server accepts 2–15; no real number is that short). */
export function validPhone(raw: string): boolean {
  return /^\+[1-9]\d{6,14}$/.test(compactPhone(raw));
}
