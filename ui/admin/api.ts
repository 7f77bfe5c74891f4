// The console calls the same API as curl does; the session travels in the
// HttpOnly cookie the sign-in link set. Every request that changes something
// carries `X-Entrada-Console: 1` (the server refuses cookie writes without it).

import type { ConsoleSession } from './bindings/ConsoleSession';
import type { ErrorBody } from './bindings/ErrorBody';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (method !== 'GET') headers['X-Entrada-Console'] = '1';
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    cache: 'no-store',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 204) return undefined as T;
  const data: unknown = await res.json().catch(() => null);
  if (!res.ok) {
    const e = (data as ErrorBody | null)?.error;
    throw new ApiError(res.status, e?.code ?? 'HTTP_' + res.status, e?.message ?? res.statusText);
  }
  return data as T;
}

export const whoami = () => call<ConsoleSession>('GET', '/api/admin/session');
export const signOut = () => call<void>('DELETE', '/api/admin/session');

/** A venue as `GET /api/admin/venues` answers (flattened settings). */
export interface Venue {
  id: number;
  name: string;
  timezone: string;
  early_grace_minutes: number;
  late_grace_minutes: number;
  reentry_allowed: boolean;
  walkup_lease_places: number;
  no_show_release_minutes: number | null;
  occupancy_limit: number | null;
  /** `HH:MM:SS` on the venue's clock, or null. */
  closing_time?: string | null;
}
