// Every word the customer page shows, in one place. To add a language, copy
// `en`, translate the values, and pick it in `pickStrings` (by
// `navigator.language` or a `?lang=` parameter). Dates and month/weekday names
// come from `Intl` with `locale`, so they follow the language automatically.

export const en = {
  locale: 'en-GB',
  /** 0 = Sunday, 1 = Monday */
  weekStartsOn: 1,
  appName: 'Entrada',
  pageTitle: 'Reserve your visit',

  // Sign-in
  signInHeading: 'Find your ticket',
  signInIntro: 'Enter the ticket code and the e-mail address you bought it with.',
  ticketCodeLabel: 'Ticket code',
  ticketCodeHint: 'As printed on your ticket, e.g. TKT-2025-ABC123',
  emailLabel: 'E-mail address',
  purchaseEmailHint: 'The address you used when buying the ticket',
  signInButton: 'Continue',
  signingIn: 'Looking up your ticket…',
  signOut: 'Use another ticket',

  // Ticket
  ticketHeading: (code: string) => `Ticket ${code}`,
  loadingTicket: 'Loading your ticket…',
  activateHeading: 'Activate your ticket',
  activateIntro: 'This ticket has to be activated before you can pick a time.',
  activateButton: 'Activate ticket',
  activating: 'Activating…',
  activated: 'Your ticket is active. Now pick a day and time.',
  ticketCancelled: 'This ticket has been cancelled and cannot be used.',
  ticketRedeemed: 'This ticket has already been used at the entrance.',
  ticketExpired: (when: string) => `This ticket expired on ${when}.`,
  noShowReleased: (when: string) =>
    `You did not arrive in time: your reservation was released on ${when} and its place given to other visitors. You can pick a new time.`,

  // Calendar
  pickHeading: 'Pick a day and time',
  rescheduleHeading: 'Pick a new day and time',
  prevMonth: 'Previous month',
  nextMonth: 'Next month',
  loadingSlots: 'Loading available times…',
  noSlotsThisMonth: 'No times are open this month. Try the next month.',
  dayLabel: (date: string, open: number) =>
    open === 0 ? `${date}: fully booked` : `${date}: ${open} ${open === 1 ? 'time' : 'times'} available`,
  dayFull: 'Full',
  timesHeading: (date: string) => `Times on ${date}`,
  placesLeft: (n: number) => (n === 1 ? '1 place left' : `${n} places left`),
  /** A time that cannot be chosen, by the server's reason. */
  slotReasons: {
    SLOT_FULL: 'Full',
    SLOT_IN_PAST: 'Over',
    SLOT_CLOSED: 'Not offered',
    OUTSIDE_VALIDITY: 'Not valid with this ticket',
  } as Record<string, string>,
  slotUnavailable: 'Not available',
  slotCurrent: 'Your current time',
  legendOpen: 'Open',
  legendFull: 'Full',
  chosenSlot: (date: string, time: string) => `You chose ${date}, ${time}.`,
  calendarRefreshed: 'The calendar has been refreshed.',

  // Contact + reserve
  contactHeading: 'Your contact details',
  contactEmailHint: 'We send the confirmation here',
  phoneLabel: 'Mobile phone',
  phoneHint: 'International format with country code, e.g. +34600123456',
  reserveButton: 'Reserve this time',
  reserving: 'Reserving…',
  moveButton: 'Move my visit to this time',
  moving: 'Moving your visit…',
  backToConfirmation: 'Keep my current time',

  // Confirmation
  confirmedHeading: 'Your visit is booked',
  confirmedStatus: 'Reservation confirmed.',
  movedStatus: 'Your visit has been moved.',
  verifiedHeading: 'You have been admitted',
  visitWhen: 'When',
  visitTicket: 'Ticket',
  visitContact: 'Contact',
  qrCaption: 'Show this code at the entrance',
  qrAlt: (code: string) => `QR code for ticket ${code}`,
  signedCodeLabel: 'Code (if the QR cannot be scanned)',
  addToCalendar: 'Add to calendar (.ics)',
  icsTitle: (code: string) => `Visit — ticket ${code}`,
  changeButton: 'Change time',
  cancelButton: 'Cancel reservation',
  cancelConfirmQuestion: 'Cancel this reservation? Your place will be given to someone else.',
  cancelConfirmYes: 'Yes, cancel it',
  cancelConfirmNo: 'No, keep it',
  cancelling: 'Cancelling…',
  cancelledStatus: 'Your reservation is cancelled. You can pick a new time below.',
  slotUnknown: 'Reserved time',
  cannotChange: 'This reservation can no longer be changed.',

  // Validation
  required: (label: string) => `${label} is required.`,
  /** A field the server refused, with its reason (the server's words). */
  fieldReason: (label: string, reason: string) => `${label} ${reason}.`.replace(/\.\.$/, '.'),
  fixErrors: (n: number) => (n === 1 ? 'Please fix 1 field.' : `Please fix ${n} fields.`),

  // Server errors (by error.code)
  errors: {
    NOT_FOUND_SESSION: 'No ticket matches this code and e-mail address. Check both and try again.',
    NOT_FOUND: 'We could not find this ticket. Sign in again with your ticket code and e-mail.',
    RATE_LIMITED: (s: number) => `Too many attempts. Please wait ${s} seconds and try again.`,
    UNAUTHORIZED: 'Your session has expired. Please enter your ticket code and e-mail again.',
    FORBIDDEN: 'This link cannot be used to change the reservation.',
    SLOT_FULL: 'That time just filled up — please pick another one.',
    SLOT_CLOSED: 'That time is no longer offered — please pick another one.',
    SLOT_IN_PAST: 'That time has already passed — please pick another one.',
    ALREADY_RESERVED: 'This ticket already has a reservation.',
    TICKET_NOT_ACTIVE: 'Activate the ticket first.',
    TICKET_CANCELLED: 'This ticket has been cancelled.',
    TICKET_EXPIRED: 'This ticket has expired.',
    TICKET_REDEEMED: 'This ticket has already been used.',
    RESERVATION_VERIFIED: 'This reservation was already used at the entrance and can no longer be changed.',
    RESERVATION_CANCELLED: 'This reservation was cancelled.',
    SLOT_ALREADY_STARTED: 'Your visit has already started, so it can no longer be changed or cancelled.',
    OUTSIDE_VALIDITY: 'Your ticket is not valid on that day — please pick another.',
    NETWORK: 'No connection to the server. Check your connection and try again.',
    GENERIC: 'Something went wrong. Please try again.',
  } as Record<string, string | ((s: number) => string)>,
};

export type Strings = typeof en;

export function pickStrings(): Strings {
  // Only English so far; add e.g. `es` above and choose it here.
  return en;
}
