// Every word the kiosk shows, in one place (English; a translation replaces this file).

export const S = {
  appName: 'Entrada Gate',
  nav: { scan: 'Scan', slots: 'Slots', lookup: 'Lookup', sync: 'Sync' },
  lock: 'Lock',
  switchOperator: 'Switch operator',

  // Sign-in
  signInTitle: 'Who is at the gate?',
  signInHint: 'Tap your name, then enter your PIN.',
  pinTitle: (name: string) => `PIN for ${name}`,
  pinBack: 'Back',
  pinClear: 'Clear',
  pinOk: 'OK',
  noOperators: 'No operators on this gate yet. Pair it with the server or add operators there.',
  lockedReason: 'The gate locked itself after a while without activity. Sign in again.',
  signInFirst: 'Sign in to scan tickets.',
  roles: { operator: 'Operator', supervisor: 'Supervisor', admin: 'Admin' } as Record<string, string>,

  // Scanner
  ready: 'Ready',
  readyHint: 'Show the ticket QR code to the camera or scan it.',
  admit: 'ADMIT',
  manualLabel: 'Ticket code',
  manualPlaceholder: 'Type a code, e.g. TKT-2025-ABC123',
  manualSubmit: 'Check',
  counterLabel: 'Admitted in this slot',
  counterNone: 'Scan a ticket to see its slot',
  slotLine: (date: string | null, start: string | null, end: string | null) =>
    [date && (date === todayIso() ? 'Today' : date), start && end ? `${start}–${end}` : start].filter(Boolean).join(' · '),
  recent: 'Recent scans',
  cameraWaiting: 'Waiting for the camera…',
  cameraOff: 'No camera',
  sources: { camera: 'camera', wedge: 'scanner', manual: 'typed' } as Record<string, string>,
  decideHint: 'Operator decision: check the ticket and let them in or not.',
  verifiedAt: (when: string, who: string) => `Verified ${when} by ${who}`,
  reservedFor: (slot: string) => `Reserved for ${slot}`,
  expiredAt: (when: string) => `Expired ${when}`,
  operatorName: (id: number, name: string | undefined) => (name ? `${name} (#${id})` : `operator #${id}`),

  // Verdict reasons, by code: the headline in large words when the server's
  // message is not enough, and a short hint for the operator.
  reasons: {
    ADMIT: 'Welcome',
    UNKNOWN_TICKET: 'Unknown ticket',
    TICKET_CANCELLED: 'Ticket cancelled',
    ALREADY_VERIFIED: 'Already verified',
    EXPIRED: 'Ticket expired',
    NOT_ACTIVATED: 'Not activated',
    NOT_RESERVED: 'No reservation',
    RESERVATION_CANCELLED: 'Reservation cancelled',
    WRONG_VENUE: 'Wrong venue',
    WRONG_DATE: 'Wrong date',
    OUTSIDE_SLOT_WINDOW: 'Outside the time slot',
    ALREADY_RESERVED: 'Already reserved',
    UNREADABLE: 'Unreadable code',
    FORGED: 'Forged code',
    REVOKED: 'Code revoked',
    AUTHENTIC_NOT_SYNCED: 'Authentic, not synced yet',
  } as Record<string, string>,
  hints: {
    UNKNOWN_TICKET: 'This code is not a ticket of this venue.',
    TICKET_CANCELLED: 'The ticket was cancelled. Send the visitor to the ticket desk.',
    NOT_ACTIVATED: 'The ticket must be activated before it can be used.',
    NOT_RESERVED: 'The visitor must reserve a time slot first.',
    RESERVATION_CANCELLED: 'The reservation was cancelled.',
    WRONG_VENUE: 'This ticket is for another venue.',
    UNREADABLE: 'Scan again, or type the code.',
    FORGED: 'The signature does not match. Do not admit.',
    REVOKED: 'This code was replaced by a newer one.',
    AUTHENTIC_NOT_SYNCED: 'The code is genuine but this gate has not received the ticket yet.',
    OUTSIDE_SLOT_WINDOW: 'The visitor is early or late for the reserved time.',
  } as Record<string, string>,

  // Supervisor
  slotsTitle: 'Slots',
  slotsHint: 'Today and the next 6 days at this venue.',
  slotsReadOnly: 'Only a supervisor can change slots. Sign in as a supervisor to change capacity or close a slot.',
  slotCols: { when: 'When', booked: 'Booked', capacity: 'Capacity', admitted: 'Admitted', status: 'Status', actions: '' },
  save: 'Save',
  close: 'Close',
  reopen: 'Reopen',
  noSlots: 'No slots in the next days.',
  slotStatus: { ACTIVE: 'Open', FULL: 'Full', CLOSED: 'Closed' } as Record<string, string>,
  slotSaved: (when: string) => `Saved: ${when}`,
  free: (n: number) => `${n} free`,

  // Lookup
  lookupTitle: 'Find a ticket',
  lookupPlaceholder: 'Code, e-mail or phone',
  lookupGo: 'Find',
  lookupNone: 'Nothing found.',
  lookupFields: {
    status: 'Ticket',
    activation: 'Activation',
    email: 'E-mail',
    phone: 'Phone',
    reservation: 'Reservation',
    slot: 'Slot',
    verified: 'Verified',
    gate: 'At this gate now',
  },
  notYet: 'not yet',
  none: '—',

  // Sync
  syncTitle: 'Sync',
  modes: { standalone: 'Standalone', online: 'Online', offline: 'Offline' } as Record<string, string>,
  modeHints: {
    standalone: 'Not paired with a server: demo data, nothing is uploaded.',
    online: 'Connected: scans reach the server within seconds.',
    offline: 'The server cannot be reached. The gate keeps working; scans upload when it is back.',
  } as Record<string, string>,
  syncFields: {
    lastSync: 'Last sync',
    pending: 'Waiting to upload',
    rejected: 'Rejected by the server',
    conflicts: 'Double entries',
    server: 'Server',
    device: 'Device',
    lastError: 'Last error',
    clock: 'Clock',
  },
  never: 'never',
  clockOk: (ms: number) => `within ${Math.abs(Math.round(ms / 1000))} s of the server`,
  clockWarning: (ms: number | null) =>
    ms == null
      ? 'This PC’s clock may be wrong. Verdicts depend on the date and time: ask IT to fix it.'
      : `This PC’s clock is ${Math.abs(Math.round(ms / 1000))} s ${ms > 0 ? 'ahead of' : 'behind'} the server. Verdicts depend on the date and time: ask IT to fix it.`,
  conflictsTitle: 'Double entries (the first scan wins)',
  conflictsNone: 'No double entries.',
  conflictCols: { ticket: 'Ticket', first: 'First scan', second: 'Second scan' },
  conflictScan: (at: string, device: number | null, operator: number | null, name: string | undefined) =>
    `${at} · device ${device ?? '?'} · ${operator == null ? 'operator ?' : S.operatorName(operator, name)}`,
  pendingPill: (n: number) => (n === 1 ? '1 to upload' : `${n} to upload`),

  // Errors by code
  errors: {
    LOCKED: 'Sign in with your PIN.',
    WRONG_PIN: 'Wrong PIN. Try again.',
    FORBIDDEN: 'Only a supervisor can do this.',
    CAPACITY_BELOW_BOOKED: 'Capacity can’t be lower than the places already booked.',
    NOT_FOUND: 'Not found.',
  } as Record<string, string>,
  errorUnknown: 'Something went wrong',
  noTauri: 'This page runs inside the Entrada Gate app.',
};

export function todayIso(): string {
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}
