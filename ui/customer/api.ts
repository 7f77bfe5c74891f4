// The few server endpoints the customer page uses (see /api/openapi.json).

export interface Ticket {
  ticket_code: string;
  status: string;
  activation_status: 'inactive' | 'active' | 'redeemed' | 'cancelled';
  activation_mode: 'immediate' | 'deferred';
  expires_at: string | null;
  customer_email: string | null;
  customer_phone: string | null;
  purchase_email: string | null;
}

export interface Reservation {
  id: string;
  ticket_id: string;
  slot_id: string;
  customer_email: string;
  customer_phone: string;
  status: 'RESERVED' | 'CANCELLED' | 'VERIFIED';
}

export interface Slot {
  id: string;
  date: string; // YYYY-MM-DD
  start_time: string; // HH:MM:SS
  end_time: string;
  venue_id: number;
  total_capacity: number;
  booked_count: number;
  available_count: number;
  status: 'ACTIVE' | 'FULL' | 'CLOSED';
}

export interface TicketState {
  ticket: Ticket;
  reservation: Reservation | null;
  signed_code: string;
}

export interface Session {
  token: string;
  ticket_code: string;
  expires_at?: string;
}

/** A failed call: `code` is the server's stable error code (or NETWORK). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> | null,
  ) {
    super(message);
  }
  get field(): string | undefined {
    const f = this.details?.field;
    return typeof f === 'string' ? f : undefined;
  }
}

/** Reads a response (or a request already under way) into data or an ApiError. */
export async function read<T>(pending: Promise<Response>): Promise<T> {
  let res: Response;
  try {
    res = await pending;
  } catch {
    throw new ApiError(0, 'NETWORK', 'network error', null);
  }
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    const e = data?.error ?? {};
    let details = e.details && typeof e.details === 'object' ? e.details : null;
    if (res.status === 429 && !details) {
      details = { retry_after: Number(res.headers.get('Retry-After')) || 60 };
    }
    throw new ApiError(res.status, e.code ?? `HTTP_${res.status}`, e.message ?? res.statusText, details);
  }
  return data as T;
}

function call<T>(method: string, path: string, token: string | null, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  return read<T>(
    fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    }),
  );
}

const enc = encodeURIComponent;

export const api = {
  session: (ticket_code: string, email: string) =>
    call<Session>('POST', '/api/customer/session', null, { ticket_code, email }),
  status: (token: string, code: string) => call<TicketState>('GET', `/api/tickets/${enc(code)}/status`, token),
  activate: (token: string, code: string) => call<Ticket>('POST', `/api/tickets/${enc(code)}/activate`, token),
  available: (token: string, month: string) =>
    call<Slot[]>('GET', `/api/reservation-slots/available?month=${enc(month)}`, token),
  reserve: (token: string, ticket_id: string, slot_id: string, customer_email: string, customer_phone: string) =>
    call<Reservation>('POST', '/api/reservations/create', token, { ticket_id, slot_id, customer_email, customer_phone }),
  reschedule: (token: string, id: string, slot_id: string) =>
    call<Reservation>('PUT', `/api/reservations/${enc(id)}`, token, { slot_id }),
  cancel: (token: string, id: string) => call<Reservation>('DELETE', `/api/reservations/${enc(id)}`, token),
  /** Signs out: the server revokes the session token (204). */
  signOut: (token: string) => call<null>('DELETE', '/api/customer/session', token),
};
