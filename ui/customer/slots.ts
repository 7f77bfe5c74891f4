// Slots screen: month calendar → times of a day → contact form → reserve
// (or move, when rescheduling). Which time can be chosen is the server's
// `bookable`, decided on the venue's clock; the page only draws it.

import { api, ApiError, read, type SlotOffer } from './api';
import { addMonths, dateOf, hhmm, pad, thisMonth, todayKey } from './dates';
import {
  $, clearMessages, field, fmtDay, fmtMonth, fmtWeekday, focus, h, isBusy, notBusy, report, reportServer, required, S, say,
  setBusy, showError, app,
} from './dom';
import { errorText, nav, sessionLost, st } from './state';

let monthViewMarked = false;
const timeRange = (s: SlotOffer) => `${hhmm(s.start_time)}–${hhmm(s.end_time)}`;
/** Over for good (not just full): no day button, no time button. */
const isOver = (s: SlotOffer) => s.reason === 'SLOT_IN_PAST';

/** Months asked for early (with the ticket's status, in parallel), each used once. */
const prefetched = new Map<string, Promise<SlotOffer[]>>();

/** Requests index.html's inline script started before this code loaded. */
interface Early {
  token: string;
  ticket: string;
  status: Promise<Response>;
  months: Record<string, Promise<Response>>;
}

/** Takes the early requests, once, if they were made for this session. */
export function takeEarly(): Early | null {
  const w = window as unknown as { __entrada?: Early };
  const early = w.__entrada;
  delete w.__entrada;
  if (!early || !st.session || early.token !== st.session.token || early.ticket !== st.session.ticket_code) return null;
  return early;
}

export function prefetchMonths(early: Early | null) {
  prefetched.clear();
  if (early) {
    for (const [m, res] of Object.entries(early.months)) {
      const p = read<SlotOffer[]>(res);
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

async function fetchMonth(month: string): Promise<SlotOffer[]> {
  const early = prefetched.get(month);
  prefetched.delete(month);
  const slots = await (early ?? api.available(st.session!.token, month));
  return [...slots].sort((a, b) => (a.date + a.start_time).localeCompare(b.date + b.start_time));
}

export async function renderCalendar() {
  const resched = st.mode === 'reschedule';
  const current = resched ? st.ts!.slot : null;
  const section = h('section', { class: 'card', id: 'booking', 'aria-labelledby': 'panel-heading' },
    h('h2', { id: 'panel-heading' }, resched ? S.rescheduleHeading : S.pickHeading),
  );
  if (resched) {
    const keep = h('button', { type: 'button', class: 'link', id: 'keep' }, S.backToConfirmation);
    keep.addEventListener('click', () => {
      st.mode = 'reserve';
      clearMessages();
      void nav.renderTicket();
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
  let month = current ? current.date.slice(0, 7) : thisMonth();
  try {
    let slots = await fetchMonth(month);
    if (!current) {
      for (let i = 1; i <= 2 && !slots.some((s) => s.bookable); i++) {
        const next = await fetchMonth(addMonths(thisMonth(), i));
        if (next.some((s) => s.bookable)) {
          month = addMonths(thisMonth(), i);
          slots = next;
        }
      }
    }
    st.month = month;
    st.slots = slots;
  } catch (e) {
    if (!sessionLost(e)) {
      $('#calendar')!.replaceChildren(h('p', { class: 'loading' }, errorText(e)));
      showError(errorText(e));
    }
    return;
  }
  drawMonth();
}

async function goMonth(delta: number) {
  const month = addMonths(st.month, delta);
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
  const byDay = new Map<string, SlotOffer[]>();
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
    const isToday = iso === today ? ' today' : '';
    if (!slots || slots.every(isOver)) {
      grid.append(h('li', {}, h('span', { class: `day none${isToday}` }, String(d))));
      continue;
    }
    const open = slots.filter((s) => s.bookable).length;
    anyOpen ||= open > 0;
    const label = S.dayLabel(fmtDay.format(dateOf(iso)), open);
    const btn = h(
      'button',
      {
        type: 'button',
        class: `day has-slots${open ? '' : ' full'}${isToday}`,
        'data-date': iso,
        'aria-label': label,
        'aria-pressed': String(st.selectedDate === iso),
      },
      h('span', { class: 'num', 'aria-hidden': 'true' }, String(d)),
      // "Full" is drawn by CSS (attr(data-mark)), not written as text: the
      // button's name is its aria-label ("…: fully booked"), and a visible
      // word the name does not contain is an axe label-content-name-mismatch.
      open
        ? h('span', { class: 'mark', 'aria-hidden': 'true' }, '•')
        : h('span', { class: 'mark', 'aria-hidden': 'true', 'data-mark': S.dayFull }),
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

/** The note under a time: the server's reason in words, or the places left. */
function slotNote(s: SlotOffer, isCurrent: boolean): string {
  if (isCurrent) return S.slotCurrent;
  if (s.bookable) return S.placesLeft(s.available_count);
  return S.slotReasons[s.reason ?? ''] ?? S.slotUnavailable;
}

function drawTimes() {
  const box = $('#times');
  if (!box) return;
  box.replaceChildren();
  const iso = st.selectedDate;
  if (!iso) return;
  const current = st.mode === 'reschedule' ? st.ts!.slot?.id : undefined;
  const list = h('ul', { class: 'times' });
  for (const s of st.slots.filter((x) => x.date === iso)) {
    const isCurrent = s.id === current;
    const can = s.bookable && !isCurrent;
    const full = s.reason === 'SLOT_FULL';
    const btn = h(
      'button',
      {
        type: 'button',
        class: `slot${full ? ' full' : ''}${isOver(s) ? ' over' : ''}${isCurrent ? ' current' : ''}`,
        'data-slot-id': s.id,
        'data-reason': s.reason ?? undefined,
        'aria-pressed': String(st.selectedSlot?.id === s.id),
        disabled: !can,
        'aria-disabled': !can ? 'true' : undefined,
      },
      h('span', { class: 'time' }, timeRange(s)),
      h('span', { class: 'note' }, slotNote(s, isCurrent)),
    );
    if (can) btn.addEventListener('click', () => selectSlot(s));
    list.append(h('li', {}, btn));
  }
  box.append(h('h3', { id: 'times-heading', tabindex: '-1' }, S.timesHeading(fmtDay.format(dateOf(iso)))), list);
}

function selectSlot(s: SlotOffer) {
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
  if (isBusy() || !st.selectedSlot) return;
  if (!report([required('customer_email', S.emailLabel), required('customer_phone', S.phoneLabel)])) return;
  const customer_email = $<HTMLInputElement>('#customer_email')!.value.trim();
  const customer_phone = $<HTMLInputElement>('#customer_phone')!.value.trim();
  const btn = $<HTMLButtonElement>('#reserve')!;
  const slot = st.selectedSlot;
  setBusy(btn, true, S.reserving);
  try {
    const body = { ticket_id: st.session!.ticket_code, slot_id: slot.id, customer_email, customer_phone };
    await api.reserve(st.session!.token, body);
    notBusy();
    clearMessages();
    st.mode = 'reserve';
    await nav.openTicket(S.confirmedStatus);
  } catch (err) {
    notBusy();
    setBusy(btn, false, '');
    await handleBookingError(err);
  }
}

async function onMove(btn: HTMLButtonElement) {
  const r = st.ts!.reservation;
  if (isBusy() || !st.selectedSlot || !r) return;
  const slot = st.selectedSlot;
  setBusy(btn, true, S.moving);
  try {
    await api.reschedule(st.session!.token, r.id, { slot_id: slot.id });
    notBusy();
    clearMessages();
    st.mode = 'reserve';
    await nav.openTicket(S.movedStatus);
  } catch (err) {
    notBusy();
    setBusy(btn, false, '');
    await handleBookingError(err);
  }
}

const CONTACT_FIELDS = { customer_email: 'customer_email', customer_phone: 'customer_phone' };

async function handleBookingError(err: unknown) {
  if (sessionLost(err)) return;
  if (err instanceof ApiError && err.status === 422) {
    // The server's own reasons, next to the fields it names.
    const labels = { customer_email: S.emailLabel, customer_phone: S.phoneLabel };
    if (reportServer(err.fields, CONTACT_FIELDS, labels)) return;
  }
  if (err instanceof ApiError && ['SLOT_FULL', 'SLOT_CLOSED', 'SLOT_IN_PAST', 'OUTSIDE_VALIDITY'].includes(err.code)) {
    showError(errorText(err));
    await refreshMonth();
    say(S.calendarRefreshed);
    focus($('#times-heading') ?? $('#month-heading'));
    return;
  }
  if (
    err instanceof ApiError &&
    ['ALREADY_RESERVED', 'TICKET_NOT_ACTIVE', 'RESERVATION_CANCELLED', 'RESERVATION_VERIFIED', 'SLOT_ALREADY_STARTED'].includes(err.code)
  ) {
    // The ticket is not where this page thought (another tab, the clock): show its real state.
    st.mode = 'reserve';
    await nav.openTicket();
    showError(errorText(err));
    return;
  }
  showError(errorText(err));
}
