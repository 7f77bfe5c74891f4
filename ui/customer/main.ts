// The customer reservation page: ticket code + e-mail (or a token link) →
// ticket state → activate → month calendar → slot → contact → reserve →
// confirmation with QR code and .ics; reschedule or cancel before the visit.
// Vanilla TypeScript, one state object, small render functions.

import './style.css';
import { api, ApiError, read, type Reservation, type Session, type Slot, type TicketState } from './api';
import { addMonths, dateOf, hhmm, isOver, pad, thisMonth, todayKey } from './dates';
import { icsFor, icsHref } from './ics';
import { qrSvg } from './qr';
import { pickStrings } from './strings';
import { compactPhone, validEmail, validPhone, validTicketCode } from './validate';

const S = pickStrings();
const SESSION_KEY = 'entrada.customer.session';
const SLOT_CACHE = 'entrada.customer.slot.';

// ---------------------------------------------------------------- DOM helpers

type Attrs = Record<string, string | number | boolean | undefined | ((e: Event) => void)>;
type Child = Node | string | null | undefined | false;

function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.slice(2), v as EventListener);
    else if (k === 'class') el.className = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

const $ = <T extends HTMLElement = HTMLElement>(sel: string, root: ParentNode = document) => root.querySelector<T>(sel);
const app = $('#app')!;
const alertBox = $('#alert')!;
const statusBox = $('#status')!;
const signOutBtn = $<HTMLButtonElement>('#sign-out')!;

function say(msg: string) {
  // Clear first so that the same message twice is announced twice.
  statusBox.textContent = '';
  requestAnimationFrame(() => (statusBox.textContent = msg));
}
function showError(msg: string) {
  alertBox.textContent = '';
  requestAnimationFrame(() => (alertBox.textContent = msg));
}
function clearMessages() {
  alertBox.textContent = '';
  statusBox.textContent = '';
}
function focus(el: HTMLElement | null) {
  if (!el) return;
  if (!el.hasAttribute('tabindex') && !/^(BUTTON|INPUT|A|SELECT|TEXTAREA)$/.test(el.tagName)) el.tabIndex = -1;
  el.focus();
}

/** Date formatters, made on first use (each costs a few ms on a slow phone). */
function lazyFormat(options: Intl.DateTimeFormatOptions) {
  let f: Intl.DateTimeFormat | null = null;
  return { format: (d: Date) => (f ??= new Intl.DateTimeFormat(S.locale, options)).format(d) };
}
const fmtDay = lazyFormat({ weekday: 'long', day: 'numeric', month: 'long' });
const fmtFullDay = lazyFormat({ weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' });
const fmtMonth = lazyFormat({ month: 'long', year: 'numeric' });
const fmtWeekday = lazyFormat({ weekday: 'short' });
const fmtDateTime = lazyFormat({ dateStyle: 'long', timeStyle: 'short' });
const timeRange = (s: Slot) => `${hhmm(s.start_time)}–${hhmm(s.end_time)}`;

function errorText(e: unknown, context: 'session' | 'other' = 'other'): string {
  if (!(e instanceof ApiError)) return S.errors.GENERIC as string;
  if (e.code === 'NOT_FOUND' && context === 'session') return S.errors.NOT_FOUND_SESSION as string;
  const m = S.errors[e.code];
  if (typeof m === 'function') return m(Number(e.details?.retry_after) || 60);
  if (typeof m === 'string') return m;
  return e.message || (S.errors.GENERIC as string);
}

// ---------------------------------------------------------------- state

interface State {
  session: Session | null;
  ts: TicketState | null;
  month: string;
  slots: Slot[];
  selectedDate: string | null;
  selectedSlot: Slot | null;
  mode: 'reserve' | 'reschedule';
  busy: boolean;
}

const st: State = {
  session: null,
  ts: null,
  month: thisMonth(),
  slots: [],
  selectedDate: null,
  selectedSlot: null,
  mode: 'reserve',
  busy: false,
};
const knownSlots = new Map<string, Slot>();
let monthViewMarked = false;

function remember(slots: Slot[]) {
  for (const s of slots) knownSlots.set(s.id, s);
}

function saveSession(s: Session | null) {
  st.session = s;
  try {
    if (s) sessionStorage.setItem(SESSION_KEY, JSON.stringify(s));
    else sessionStorage.removeItem(SESSION_KEY);
  } catch {
    /* private mode: keep it in memory */
  }
  signOutBtn.hidden = !s;
}

function loadSession(): Session | null {
  try {
    const raw = sessionStorage.getItem(SESSION_KEY);
    if (!raw) return null;
    const s = JSON.parse(raw) as Session;
    if (s.expires_at && Date.parse(s.expires_at) < Date.now()) return null;
    return s;
  } catch {
    return null;
  }
}

/** A 401/404 on the ticket means the session is no good: back to sign-in. */
function sessionLost(e: unknown): boolean {
  if (e instanceof ApiError && (e.status === 401 || (e.status === 404 && e.details?.entity === 'ticket'))) {
    const code = st.session?.ticket_code ?? '';
    saveSession(null);
    st.ts = null;
    renderSignIn(code, errorText(e));
    return true;
  }
  return false;
}

// ---------------------------------------------------------------- form fields

function field(id: string, label: string, hint: string, input: Attrs): HTMLElement {
  return h(
    'div',
    { class: 'field' },
    h('label', { for: id }, label),
    h('p', { class: 'hint', id: `${id}-hint` }, hint),
    h('input', { id, name: id, 'aria-describedby': `${id}-hint ${id}-err`, ...input }),
    h('p', { class: 'field-error', id: `${id}-err` }),
  );
}

function setFieldError(id: string, msg: string | null) {
  const input = $<HTMLInputElement>(`#${id}`);
  const err = $(`#${id}-err`);
  if (!input || !err) return;
  err.textContent = msg ? msg : '';
  if (msg) input.setAttribute('aria-invalid', 'true');
  else input.removeAttribute('aria-invalid');
}

/** Shows the errors; focuses the first bad field. True when all are fine. */
function report(errors: [string, string | null][]): boolean {
  let first: string | null = null;
  let n = 0;
  for (const [id, msg] of errors) {
    setFieldError(id, msg);
    if (msg) {
      n++;
      first ??= id;
    }
  }
  if (first) {
    showError(S.fixErrors(n));
    focus($(`#${first}`));
    return false;
  }
  return true;
}

function setBusy(btn: HTMLButtonElement, busy: boolean, busyText: string) {
  st.busy = busy;
  if (busy) {
    btn.dataset.label = btn.textContent ?? '';
    btn.textContent = busyText;
    btn.setAttribute('aria-disabled', 'true');
    say(busyText);
  } else {
    btn.textContent = btn.dataset.label ?? btn.textContent;
    btn.removeAttribute('aria-disabled');
  }
}

// ---------------------------------------------------------------- sign-in

function renderSignIn(prefillCode = '', error?: string) {
  st.ts = null;
  app.replaceChildren();
  const heading = h('h1', { id: 'view-heading' }, S.signInHeading);
  const form = h(
    'form',
    { id: 'sign-in', novalidate: true },
    field('code', S.ticketCodeLabel, S.ticketCodeHint, {
      type: 'text',
      autocomplete: 'off',
      autocapitalize: 'characters',
      spellcheck: 'false',
      required: true,
      value: prefillCode,
    }),
    field('email', S.emailLabel, S.purchaseEmailHint, {
      type: 'email',
      autocomplete: 'email',
      inputmode: 'email',
      required: true,
    }),
    h('button', { type: 'submit', class: 'primary', id: 'sign-in-button' }, S.signInButton),
  );
  form.addEventListener('submit', onSignIn);
  app.append(heading, h('p', {}, S.signInIntro), form);
  if (error) {
    showError(error);
    focus(heading);
  } else {
    focus($(prefillCode ? '#email' : '#code'));
  }
}

async function onSignIn(e: Event) {
  e.preventDefault();
  if (st.busy) return;
  const code = $<HTMLInputElement>('#code')!.value.trim();
  const email = $<HTMLInputElement>('#email')!.value.trim();
  const ok = report([
    ['code', !code ? S.required(S.ticketCodeLabel) : validTicketCode(code) ? null : S.invalidCode],
    ['email', !email ? S.required(S.emailLabel) : validEmail(email) ? null : S.invalidEmail],
  ]);
  if (!ok) return;
  const btn = $<HTMLButtonElement>('#sign-in-button')!;
  setBusy(btn, true, S.signingIn);
  try {
    const s = await api.session(code, email);
    saveSession(s);
    clearMessages();
    await openTicket();
  } catch (err) {
    setBusy(btn, false, '');
    if (err instanceof ApiError && err.status === 422 && err.field) {
      report([[err.field === 'ticket_code' ? 'code' : 'email', err.message]]);
    } else {
      showError(errorText(err, 'session'));
      focus($('#code'));
    }
  } finally {
    st.busy = false;
  }
}

// ---------------------------------------------------------------- ticket

async function openTicket(after?: string) {
  if (!st.session) return renderSignIn();
  app.replaceChildren(h('p', { class: 'loading' }, S.loadingTicket));
  const early = takeEarly();
  prefetchMonths(early);
  // The first Intl formatter loads locale data (~90 ms on a slow phone): pay
  // for it now, while the requests are in flight, not after they return.
  fmtMonth.format(new Date());
  fmtDay.format(new Date());
  try {
    st.ts = await (early ? read<TicketState>(early.status) : api.status(st.session.token, st.session.ticket_code));
    performance.mark('entrada:status');
  } catch (e) {
    if (!sessionLost(e)) {
      app.replaceChildren(h('p', { class: 'loading' }, errorText(e)));
      showError(errorText(e));
    }
    return;
  }
  await renderTicket(after);
}

function activeReservation(ts: TicketState): Reservation | null {
  const r = ts.reservation;
  return r && r.status !== 'CANCELLED' ? r : null;
}

async function renderTicket(after?: string) {
  const ts = st.ts!;
  const t = ts.ticket;
  app.replaceChildren();
  const heading = h('h1', { id: 'view-heading' }, S.ticketHeading(t.ticket_code));
  app.append(heading);
  const expired = t.expires_at && Date.parse(t.expires_at) < Date.now();
  const r = activeReservation(ts);

  if (t.activation_status === 'cancelled') {
    app.append(h('p', { class: 'notice' }, S.ticketCancelled));
  } else if (r && r.status === 'VERIFIED') {
    await renderConfirmation(r, true);
  } else if (t.activation_status === 'redeemed') {
    app.append(h('p', { class: 'notice' }, S.ticketRedeemed));
  } else if (expired) {
    app.append(h('p', { class: 'notice' }, S.ticketExpired(fmtDateTime.format(new Date(t.expires_at!)))));
  } else if (t.activation_status === 'inactive') {
    renderActivate();
  } else if (r && st.mode !== 'reschedule') {
    await renderConfirmation(r, false);
  } else {
    await renderCalendar();
  }
  if (after) say(after);
  if (!app.contains(document.activeElement) || document.activeElement === app) focus($('#panel-heading') ?? heading);
}

function renderActivate() {
  const btn = h('button', { type: 'button', class: 'primary', id: 'activate' }, S.activateButton);
  btn.addEventListener('click', async () => {
    if (st.busy) return;
    setBusy(btn, true, S.activating);
    try {
      await api.activate(st.session!.token, st.session!.ticket_code);
      st.busy = false;
      clearMessages();
      await openTicket(S.activated);
    } catch (e) {
      st.busy = false;
      setBusy(btn, false, '');
      if (!sessionLost(e)) showError(errorText(e));
    }
  });
  app.append(
    h('section', { class: 'card', 'aria-labelledby': 'panel-heading' },
      h('h2', { id: 'panel-heading' }, S.activateHeading),
      h('p', {}, S.activateIntro),
      btn,
    ),
  );
}

// ---------------------------------------------------------------- calendar

function isSelectable(s: Slot): boolean {
  return s.status === 'ACTIVE' && s.available_count > 0 && !isOver(s.date, s.end_time);
}

/** Months asked for early (with the ticket's status, in parallel), each used once. */
const prefetched = new Map<string, Promise<Slot[]>>();

/** Requests index.html's inline script started before this code loaded. */
interface Early {
  token: string;
  ticket: string;
  status: Promise<Response>;
  months: Record<string, Promise<Response>>;
}

/** Takes the early requests, once, if they were made for this session. */
function takeEarly(): Early | null {
  const w = window as unknown as { __entrada?: Early };
  const early = w.__entrada;
  delete w.__entrada;
  if (!early || !st.session || early.token !== st.session.token || early.ticket !== st.session.ticket_code) return null;
  return early;
}

function prefetchMonths(early: Early | null) {
  prefetched.clear();
  if (early) {
    for (const [m, res] of Object.entries(early.months)) {
      const p = read<Slot[]>(res);
      p.catch(() => undefined);
      prefetched.set(m, p);
    }
    return;
  }
  for (const m of [thisMonth(), addMonths(thisMonth(), 1)]) {
    const p = api.available(st.session!.token, m);
    p.catch(() => undefined); // errors are seen (and shown) when it is used
    prefetched.set(m, p);
  }
}

async function fetchMonth(month: string): Promise<Slot[]> {
  const early = prefetched.get(month);
  prefetched.delete(month);
  const slots = await (early ?? api.available(st.session!.token, month));
  remember(slots);
  return slots
    .filter((s) => s.status !== 'CLOSED')
    .sort((a, b) => (a.date + a.start_time).localeCompare(b.date + b.start_time));
}

async function renderCalendar() {
  const resched = st.mode === 'reschedule';
  const current = resched ? activeReservation(st.ts!) : null;
  const section = h('section', { class: 'card', id: 'booking', 'aria-labelledby': 'panel-heading' },
    h('h2', { id: 'panel-heading' }, resched ? S.rescheduleHeading : S.pickHeading),
  );
  if (resched) {
    const keep = h('button', { type: 'button', class: 'link', id: 'keep' }, S.backToConfirmation);
    keep.addEventListener('click', () => {
      st.mode = 'reserve';
      clearMessages();
      void renderTicket();
    });
    section.append(keep);
  }
  section.append(
    h('div', { id: 'calendar', 'data-month-view': 'loading' }, h('p', { class: 'loading' }, S.loadingSlots)),
    h('div', { id: 'times' }),
    h('div', { id: 'action' }),
  );
  app.append(section);

  // Start in the month of the current reservation (reschedule), else the
  // first month (of this and the next two) that has a time to offer.
  st.selectedDate = null;
  st.selectedSlot = null;
  let month = thisMonth();
  if (current) {
    const slot = await findSlot(current.slot_id);
    if (slot) month = slot.date.slice(0, 7);
  }
  try {
    let slots = await fetchMonth(month);
    if (!current) {
      for (let i = 1; i <= 2 && !slots.some(isSelectable); i++) {
        const next = await fetchMonth(addMonths(thisMonth(), i));
        if (next.some(isSelectable)) {
          month = addMonths(thisMonth(), i);
          slots = next;
        }
      }
    }
    st.month = month;
    st.slots = slots;
  } catch (e) {
    if (!sessionLost(e)) {
      st.month = month;
      st.slots = [];
      showError(errorText(e));
    }
  }
  drawMonth();
}

async function goMonth(delta: number) {
  const month = addMonths(st.month, delta);
  if (month < thisMonth()) return;
  const cal = $('#calendar')!;
  cal.setAttribute('aria-busy', 'true');
  try {
    st.slots = await fetchMonth(month);
    st.month = month;
    st.selectedDate = null;
    st.selectedSlot = null;
    drawMonth();
    $('#times')!.replaceChildren();
    $('#action')!.replaceChildren();
    say(fmtMonth.format(dateOf(`${month}-01`)));
  } catch (e) {
    if (!sessionLost(e)) showError(errorText(e));
  } finally {
    cal.removeAttribute('aria-busy');
  }
}

/** Re-reads the month after a refusal; keeps the chosen day. */
async function refreshMonth() {
  try {
    st.slots = await fetchMonth(st.month);
  } catch {
    /* keep what we have */
  }
  st.selectedSlot = null;
  drawMonth();
  drawTimes();
  $('#action')!.replaceChildren();
}

function drawMonth() {
  const cal = $('#calendar');
  if (!cal) return;
  const [y, m] = st.month.split('-').map(Number);
  const first = new Date(y, m - 1, 1, 12);
  const days = new Date(y, m, 0).getDate();
  const byDay = new Map<string, Slot[]>();
  for (const s of st.slots) {
    const list = byDay.get(s.date) ?? [];
    list.push(s);
    byDay.set(s.date, list);
  }
  const prevDisabled = st.month <= thisMonth();
  const prev = h('button', { type: 'button', class: 'nav', id: 'prev-month', 'aria-label': S.prevMonth, disabled: prevDisabled }, '‹');
  const next = h('button', { type: 'button', class: 'nav', id: 'next-month', 'aria-label': S.nextMonth }, '›');
  prev.addEventListener('click', () => void goMonth(-1));
  next.addEventListener('click', () => void goMonth(1));
  const title = h('h3', { id: 'month-heading' }, fmtMonth.format(first));

  const weekdays = h('div', { class: 'weekdays', 'aria-hidden': 'true' });
  for (let i = 0; i < 7; i++) {
    // 2023-01-01 was a Sunday.
    weekdays.append(h('span', {}, fmtWeekday.format(new Date(2023, 0, 1 + ((i + S.weekStartsOn) % 7), 12))));
  }
  const grid = h('ol', { class: 'days', 'aria-labelledby': 'month-heading' });
  const lead = (first.getDay() - S.weekStartsOn + 7) % 7;
  for (let i = 0; i < lead; i++) grid.append(h('li', { class: 'blank', 'aria-hidden': 'true' }));
  const today = todayKey();
  let anyOpen = false;
  for (let d = 1; d <= days; d++) {
    const iso = `${st.month}-${pad(d)}`;
    const slots = byDay.get(iso);
    if (!slots || iso < today) {
      grid.append(h('li', {}, h('span', { class: `day none${iso === today ? ' today' : ''}` }, String(d))));
      continue;
    }
    const open = slots.filter(isSelectable).length;
    anyOpen ||= open > 0;
    const label = S.dayLabel(fmtDay.format(dateOf(iso)), open);
    const btn = h(
      'button',
      {
        type: 'button',
        class: `day has-slots${open ? '' : ' full'}${iso === today ? ' today' : ''}`,
        'data-date': iso,
        'aria-label': label,
        'aria-pressed': String(st.selectedDate === iso),
      },
      h('span', { class: 'num', 'aria-hidden': 'true' }, String(d)),
      h('span', { class: 'mark', 'aria-hidden': 'true' }, open ? '•' : S.dayFull),
    );
    btn.addEventListener('click', () => selectDate(iso));
    grid.append(h('li', {}, btn));
  }
  cal.replaceChildren(
    ...([
    h('div', { class: 'month-nav' }, prev, title, next),
    weekdays,
    grid,
    h('p', { class: 'legend', 'aria-hidden': 'true' },
      h('span', { class: 'key open' }, S.legendOpen), ' ',
      h('span', { class: 'key full' }, S.legendFull)),
    anyOpen ? null : h('p', { class: 'empty', id: 'no-slots' }, S.noSlotsThisMonth),
    ] as (HTMLElement | null)[]).filter((x): x is HTMLElement => x !== null),
  );
  cal.setAttribute('data-month-view', st.month);
  if (!monthViewMarked) {
    monthViewMarked = true;
    performance.mark('entrada:month-view');
  }
}

function selectDate(iso: string) {
  st.selectedDate = iso;
  st.selectedSlot = null;
  for (const b of document.querySelectorAll<HTMLButtonElement>('#calendar button.day')) {
    b.setAttribute('aria-pressed', String(b.dataset.date === iso));
  }
  drawTimes();
  $('#action')!.replaceChildren();
  focus($('#times-heading'));
}

function drawTimes() {
  const box = $('#times');
  if (!box) return;
  box.replaceChildren();
  const iso = st.selectedDate;
  if (!iso) return;
  const current = st.mode === 'reschedule' ? activeReservation(st.ts!)?.slot_id : undefined;
  const list = h('ul', { class: 'times' });
  for (const s of st.slots.filter((x) => x.date === iso)) {
    const over = isOver(s.date, s.end_time);
    const full = s.status === 'FULL' || s.available_count <= 0;
    const isCurrent = s.id === current;
    const can = !over && !full && !isCurrent;
    const note = isCurrent ? S.slotCurrent : over ? S.slotPast : full ? S.slotFull : S.placesLeft(s.available_count);
    const btn = h(
      'button',
      {
        type: 'button',
        class: `slot${full ? ' full' : ''}${over ? ' over' : ''}${isCurrent ? ' current' : ''}`,
        'data-slot-id': s.id,
        'aria-pressed': String(st.selectedSlot?.id === s.id),
        disabled: !can,
        'aria-disabled': !can ? 'true' : undefined,
      },
      h('span', { class: 'time' }, timeRange(s)),
      h('span', { class: 'note' }, note),
    );
    if (can) btn.addEventListener('click', () => selectSlot(s));
    list.append(h('li', {}, btn));
  }
  box.append(h('h3', { id: 'times-heading', tabindex: '-1' }, S.timesHeading(fmtDay.format(dateOf(iso)))), list);
}

function selectSlot(s: Slot) {
  st.selectedSlot = s;
  for (const b of document.querySelectorAll<HTMLButtonElement>('#times button.slot')) {
    b.setAttribute('aria-pressed', String(b.dataset.slotId === s.id));
  }
  const box = $('#action')!;
  const chosen = h('p', { class: 'chosen', id: 'chosen' }, S.chosenSlot(fmtDay.format(dateOf(s.date)), timeRange(s)));
  if (st.mode === 'reschedule') {
    const btn = h('button', { type: 'button', class: 'primary', id: 'move' }, S.moveButton);
    btn.addEventListener('click', () => void onMove(btn));
    box.replaceChildren(chosen, btn);
    focus(btn);
    return;
  }
  const t = st.ts!.ticket;
  const prevEmail = ($<HTMLInputElement>('#customer_email')?.value ?? t.customer_email ?? t.purchase_email ?? '').trim();
  const prevPhone = ($<HTMLInputElement>('#customer_phone')?.value ?? t.customer_phone ?? '').trim();
  const form = h(
    'form',
    { id: 'contact', novalidate: true, 'aria-labelledby': 'contact-heading' },
    h('h3', { id: 'contact-heading' }, S.contactHeading),
    chosen,
    field('customer_email', S.emailLabel, S.contactEmailHint, {
      type: 'email',
      autocomplete: 'email',
      inputmode: 'email',
      required: true,
      value: prevEmail,
    }),
    field('customer_phone', S.phoneLabel, S.phoneHint, {
      type: 'tel',
      autocomplete: 'tel',
      inputmode: 'tel',
      required: true,
      placeholder: '+34600123456',
      value: prevPhone,
    }),
    h('button', { type: 'submit', class: 'primary', id: 'reserve' }, S.reserveButton),
  );
  form.addEventListener('submit', onReserve);
  box.replaceChildren(form);
  // First empty field (the purchase e-mail is usually filled in already).
  focus($(prevEmail && !prevPhone ? '#customer_phone' : '#customer_email'));
}

async function onReserve(e: Event) {
  e.preventDefault();
  if (st.busy || !st.selectedSlot) return;
  const email = $<HTMLInputElement>('#customer_email')!.value.trim();
  const phone = $<HTMLInputElement>('#customer_phone')!.value.trim();
  const ok = report([
    ['customer_email', !email ? S.required(S.emailLabel) : validEmail(email) ? null : S.invalidEmail],
    ['customer_phone', !phone ? S.required(S.phoneLabel) : validPhone(phone) ? null : S.invalidPhone],
  ]);
  if (!ok) return;
  const btn = $<HTMLButtonElement>('#reserve')!;
  const slot = st.selectedSlot;
  setBusy(btn, true, S.reserving);
  try {
    await api.reserve(st.session!.token, st.session!.ticket_code, slot.id, email, compactPhone(phone));
    cacheSlot(slot);
    st.busy = false;
    clearMessages();
    st.mode = 'reserve';
    await openTicket(S.confirmedStatus);
  } catch (err) {
    st.busy = false;
    setBusy(btn, false, '');
    await handleBookingError(err);
  }
}

async function onMove(btn: HTMLButtonElement) {
  const r = activeReservation(st.ts!);
  if (st.busy || !st.selectedSlot || !r) return;
  const slot = st.selectedSlot;
  setBusy(btn, true, S.moving);
  try {
    await api.reschedule(st.session!.token, r.id, slot.id);
    cacheSlot(slot);
    st.busy = false;
    clearMessages();
    st.mode = 'reserve';
    await openTicket(S.movedStatus);
  } catch (err) {
    st.busy = false;
    setBusy(btn, false, '');
    await handleBookingError(err);
  }
}

async function handleBookingError(err: unknown) {
  if (sessionLost(err)) return;
  if (err instanceof ApiError && err.status === 422 && (err.field === 'customer_email' || err.field === 'customer_phone')) {
    report([[err.field, err.field === 'customer_email' ? S.invalidEmail : S.invalidPhone]]);
    // Keep the server's words too, in case they say more than ours.
    const p = $(`#${err.field}-err`);
    if (p && err.message) p.title = err.message;
    return;
  }
  if (err instanceof ApiError && ['SLOT_FULL', 'SLOT_CLOSED', 'SLOT_IN_PAST', 'OUTSIDE_VALIDITY'].includes(err.code)) {
    showError(errorText(err));
    await refreshMonth();
    say(S.calendarRefreshed);
    focus($('#times-heading') ?? $('#month-heading'));
    return;
  }
  if (err instanceof ApiError && ['ALREADY_RESERVED', 'TICKET_NOT_ACTIVE', 'RESERVATION_CANCELLED', 'RESERVATION_VERIFIED'].includes(err.code)) {
    // Someone (another tab?) changed the ticket: show its real state.
    st.mode = 'reserve';
    await openTicket();
    showError(errorText(err));
    return;
  }
  showError(errorText(err));
}

// ---------------------------------------------------------------- confirmation

function cacheSlot(s: Slot) {
  knownSlots.set(s.id, s);
  try {
    localStorage.setItem(SLOT_CACHE + s.id, JSON.stringify(s));
  } catch {
    /* ignore */
  }
}

/** The customer API has no "slot by id": look in what we loaded, then in
 *  this browser's cache, then in the coming months' availability. */
async function findSlot(id: string): Promise<Slot | null> {
  const known = knownSlots.get(id);
  if (known) return known;
  try {
    const raw = localStorage.getItem(SLOT_CACHE + id);
    if (raw) return JSON.parse(raw) as Slot;
  } catch {
    /* ignore */
  }
  for (let i = 0; i < 12; i++) {
    try {
      const slots = await api.available(st.session!.token, addMonths(thisMonth(), i));
      remember(slots);
      const s = slots.find((x) => x.id === id);
      if (s) return s;
    } catch {
      return null;
    }
  }
  return null;
}

async function renderConfirmation(r: Reservation, verified: boolean) {
  const ts = st.ts!;
  const slot = await findSlot(r.slot_id);
  const when = slot ? `${fmtFullDay.format(dateOf(slot.date))}, ${timeRange(slot)}` : S.slotUnknown;
  const code = ts.ticket.ticket_code;
  const section = h('section', { class: 'card confirmation', id: 'confirmation', 'aria-labelledby': 'panel-heading' },
    h('h2', { id: 'panel-heading' }, verified ? S.verifiedHeading : S.confirmedHeading),
    h('dl', { class: 'facts' },
      h('dt', {}, S.visitWhen), h('dd', { 'data-slot-when': slot?.id ?? '' }, when),
      h('dt', {}, S.visitTicket), h('dd', {}, code),
      h('dt', {}, S.visitContact), h('dd', {}, `${r.customer_email} · ${r.customer_phone}`),
    ),
  );
  const figure = h('figure', { class: 'qr-box' });
  try {
    figure.append(qrSvg(ts.signed_code, S.qrAlt(code)));
  } catch {
    /* a code too long for a QR would still be shown as text below */
  }
  figure.append(h('figcaption', {}, S.qrCaption));
  section.append(
    figure,
    h('details', { class: 'signed' },
      h('summary', {}, S.signedCodeLabel),
      h('code', { id: 'signed-code' }, ts.signed_code)),
  );
  if (slot) {
    const ics = icsFor(slot, r.id, S.icsTitle(code), `${S.visitTicket}: ${code}`);
    section.append(h('a', { class: 'button', id: 'ics', href: icsHref(ics), download: `entrada-${code}.ics` }, S.addToCalendar));
  }
  if (!verified && !(slot && isOver(slot.date, slot.start_time))) {
    const change = h('button', { type: 'button', id: 'change' }, S.changeButton);
    const cancel = h('button', { type: 'button', id: 'cancel', class: 'danger' }, S.cancelButton);
    const confirmBox = h('div', { id: 'cancel-confirm' });
    change.addEventListener('click', () => {
      st.mode = 'reschedule';
      clearMessages();
      void renderTicket();
    });
    cancel.addEventListener('click', () => {
      const yes = h('button', { type: 'button', class: 'danger', id: 'cancel-yes' }, S.cancelConfirmYes);
      const no = h('button', { type: 'button', id: 'cancel-no' }, S.cancelConfirmNo);
      const q = h('p', { id: 'cancel-question', tabindex: '-1' }, S.cancelConfirmQuestion);
      no.addEventListener('click', () => {
        confirmBox.replaceChildren();
        focus(cancel);
      });
      yes.addEventListener('click', async () => {
        if (st.busy) return;
        setBusy(yes, true, S.cancelling);
        try {
          await api.cancel(st.session!.token, r.id);
          st.busy = false;
          clearMessages();
          st.mode = 'reserve';
          await openTicket(S.cancelledStatus);
        } catch (e) {
          st.busy = false;
          setBusy(yes, false, '');
          if (!sessionLost(e)) showError(errorText(e));
        }
      });
      confirmBox.replaceChildren(q, h('div', { class: 'row' }, yes, no));
      focus(q);
    });
    section.append(h('div', { class: 'row actions' }, change, cancel), confirmBox);
  }
  app.append(section);
}

// ---------------------------------------------------------------- start

signOutBtn.textContent = S.signOut;
signOutBtn.addEventListener('click', () => {
  const code = st.session?.ticket_code ?? '';
  // Revoke the token on the server too: a copy of it (a shared link, a
  // screenshot, this tab's storage) stops working. Offline, it still expires.
  if (st.session) void api.signOut(st.session.token).catch(() => undefined);
  saveSession(null);
  clearMessages();
  st.mode = 'reserve';
  renderSignIn(code);
});
document.title = `${S.appName} — ${S.pageTitle}`;
document.documentElement.lang = S.locale.slice(0, 2);

function start() {
  performance.mark('entrada:start');
  const q = new URLSearchParams(location.search);
  const token = q.get('token');
  const ticket = q.get('ticket') ?? q.get('code');
  // Keep the token (and the code that goes with it) out of the address bar,
  // history, bookmarks and screenshots once read, with or without a ticket.
  if (token !== null) history.replaceState(null, '', location.pathname);
  if (token && ticket) {
    saveSession({ token, ticket_code: ticket });
    void openTicket();
    return;
  }
  const saved = loadSession();
  if (saved && (!ticket || ticket === saved.ticket_code)) {
    saveSession(saved);
    void openTicket();
    return;
  }
  saveSession(null);
  renderSignIn(ticket ?? '');
}

start();
