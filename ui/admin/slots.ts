// The console's Slots page (issue 16): a venue's month as a calendar with
// booked / capacity / admitted per slot (one call: GET /api/admin/slots/month),
// a weekly pattern previewed then created (POST /api/admin/slots/pattern),
// one slot's capacity / close / reopen / delete, and bulk edits over a
// selection. Refusals show the API's code and message.

import { ApiError, call, type Venue } from './api';
import type { BoardSlot } from './bindings/BoardSlot';
import type { PatternAnswer } from './bindings/PatternAnswer';
import type { PatternBody } from './bindings/PatternBody';
import type { Slot } from './bindings/Slot';
import type { Strings } from './strings';

/** What the shell (main.ts) lends this page. */
export interface PageContext {
  t: Strings;
  status: HTMLElement;
  page(heading: string, ...body: Node[]): void;
  describe(e: unknown): string;
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

const hm = (time: string) => time.slice(0, 5);
const pad = (n: number) => String(n).padStart(2, '0');
const monthOf = (d: Date) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}`;

function shiftMonth(month: string, by: number): string {
  const [y, m] = month.split('-').map(Number);
  return monthOf(new Date(y, m - 1 + by, 1));
}

/** The API's refusal as the console shows it: code and message. */
function refusal(ctx: PageContext, e: unknown): string {
  if (e instanceof ApiError && e.status !== 403) return ctx.t.slotRefused(e.code, e.message);
  return ctx.describe(e);
}

interface State {
  venues: Venue[];
  venue: number;
  month: string;
  selected: Set<string>;
}

let state: State | null = null;

export async function slotsPage(ctx: PageContext, note = '') {
  const { t, status } = ctx;
  status.textContent = t.loading;
  let venues: Venue[];
  try {
    venues = await call<Venue[]>('GET', '/api/admin/venues');
  } catch (e) {
    ctx.page(t.slotsHeading);
    status.textContent = ctx.describe(e);
    return;
  }
  if (!venues.length) {
    ctx.page(t.slotsHeading, el('p', {}, t.slotsNoVenue));
    status.textContent = '';
    return;
  }
  const keep = state && venues.some((v) => v.id === state?.venue);
  state = {
    venues,
    venue: keep && state ? state.venue : venues[0].id,
    month: state?.month ?? monthOf(new Date()),
    selected: new Set(),
  };
  const calendar = el('section', { id: 'calendar', 'aria-labelledby': 'month-heading' });
  const editor = el('section', { id: 'slot-editor' });
  ctx.page(t.slotsHeading, controls(ctx, calendar), calendar, editor, patternForm(ctx));
  status.textContent = note;
  await drawMonth(ctx, calendar);
}

function controls(ctx: PageContext, calendar: HTMLElement): HTMLElement {
  const { t } = ctx;
  const s = state as State;
  const select = el('select', { id: 'slot-venue', name: 'slot-venue' });
  for (const v of s.venues) {
    const o = el('option', { value: String(v.id) }, v.name);
    o.selected = v.id === s.venue;
    select.append(o);
  }
  select.addEventListener('change', () => {
    s.venue = Number(select.value);
    s.selected.clear();
    void drawMonth(ctx, calendar);
  });
  const prev = el('button', { type: 'button', class: 'secondary', id: 'month-prev' }, t.prevMonth);
  const next = el('button', { type: 'button', class: 'secondary', id: 'month-next' }, t.nextMonth);
  prev.addEventListener('click', () => {
    s.month = shiftMonth(s.month, -1);
    s.selected.clear();
    void drawMonth(ctx, calendar);
  });
  next.addEventListener('click', () => {
    s.month = shiftMonth(s.month, 1);
    s.selected.clear();
    void drawMonth(ctx, calendar);
  });
  return el(
    'div',
    { class: 'toolbar' },
    el('div', { class: 'field' }, el('label', { for: 'slot-venue' }, t.venueLabel), select),
    el('div', { class: 'actions' }, prev, next),
  );
}

async function drawMonth(ctx: PageContext, calendar: HTMLElement) {
  const { t, status } = ctx;
  const s = state as State;
  const venue = s.venues.find((v) => v.id === s.venue) as Venue;
  let slots: BoardSlot[];
  try {
    slots = await call<BoardSlot[]>('GET', `/api/admin/slots/month?venue_id=${s.venue}&month=${s.month}`);
  } catch (e) {
    status.textContent = ctx.describe(e);
    return;
  }
  const [y, m] = s.month.split('-').map(Number);
  const first = new Date(y, m - 1, 1);
  const days = new Date(y, m, 0).getDate();
  const monthName = new Intl.DateTimeFormat(t.locale, { month: 'long', year: 'numeric' }).format(first);
  const heading = el('h2', { id: 'month-heading', tabindex: '-1' }, t.monthHeading(monthName, venue.name));
  const byDay = new Map<number, BoardSlot[]>();
  for (const b of slots) {
    const d = Number(b.slot.date.slice(8, 10));
    byDay.set(d, [...(byDay.get(d) ?? []), b]);
  }
  const weekdays = t.weekdaysShort.map((w) => el('th', { scope: 'col' }, w));
  const rows: HTMLTableRowElement[] = [];
  let row = el('tr');
  // Monday first: getDay() is 0 for Sunday.
  const lead = (first.getDay() + 6) % 7;
  for (let i = 0; i < lead; i++) row.append(el('td', { class: 'empty' }));
  for (let d = 1; d <= days; d++) {
    const date = `${s.month}-${pad(d)}`;
    const cell = el('td', { 'data-date': date }, el('span', { class: 'daynum' }, String(d)));
    const list = el('ul', { class: 'slots' });
    for (const b of byDay.get(d) ?? []) list.append(slotItem(ctx, b, calendar));
    if (list.childElementCount) cell.append(list);
    row.append(cell);
    if ((lead + d) % 7 === 0) {
      rows.push(row);
      row = el('tr');
    }
  }
  if (row.childElementCount) {
    while (row.childElementCount < 7) row.append(el('td', { class: 'empty' }));
    rows.push(row);
  }
  const table = el(
    'table',
    { class: 'month' },
    el('caption', { class: 'visually-hidden' }, monthName),
    el('thead', {}, el('tr', {}, ...weekdays)),
    el('tbody', {}, ...rows),
  );
  const empty = slots.length ? '' : t.monthEmpty;
  calendar.replaceChildren(heading, el('p', { class: 'legend' }, t.slotLegend), table, bulkBar(ctx, calendar), el('p', {}, empty));
  status.textContent = '';
}

function slotItem(ctx: PageContext, b: BoardSlot, calendar: HTMLElement): HTMLLIElement {
  const { t } = ctx;
  const s = state as State;
  const sl = b.slot;
  const when = t.slotWhen(sl.date, hm(sl.start_time), hm(sl.end_time));
  const box = el('input', { type: 'checkbox', id: `sel-${sl.id}`, 'aria-label': t.selectSlot(when) });
  box.checked = s.selected.has(sl.id);
  box.addEventListener('change', () => {
    if (box.checked) s.selected.add(sl.id);
    else s.selected.delete(sl.id);
    const count = document.getElementById('bulk-count');
    if (count) count.textContent = t.selectedCount(s.selected.size);
  });
  const label = `${hm(sl.start_time)}–${hm(sl.end_time)} ${sl.booked_count}/${sl.total_capacity} · ${b.admitted_count}✓`;
  // The short form is what the eye reads; the whole sentence is the name.
  const open = el(
    'button',
    { type: 'button', class: `slot ${sl.status.toLowerCase()}` },
    el('span', { 'aria-hidden': 'true' }, label),
    el('span', { class: 'visually-hidden' }, t.slotSummary(when, sl.booked_count, sl.total_capacity, b.admitted_count, t.statusNames[sl.status])),
  );
  open.addEventListener('click', () => openSlot(ctx, b, open, calendar));
  return el('li', {}, box, open);
}

function openSlot(ctx: PageContext, b: BoardSlot, opener: HTMLElement, calendar: HTMLElement) {
  const { t, status } = ctx;
  const sl = b.slot;
  const editor = document.getElementById('slot-editor') as HTMLElement;
  const when = t.slotWhen(sl.date, hm(sl.start_time), hm(sl.end_time));
  const heading = el('h2', { tabindex: '-1' }, when);
  const facts = el('p', {}, t.slotFacts(sl.booked_count, sl.total_capacity, b.admitted_count, t.statusNames[sl.status]));
  const capacity = el('input', { type: 'number', id: 'slot-capacity', name: 'slot-capacity', min: '1', max: '1000000', inputmode: 'numeric', value: String(sl.total_capacity) });
  capacity.required = true;
  const save = el('button', { type: 'submit' }, t.saveCapacity);
  const toggle = el('button', { type: 'button', class: 'secondary' }, sl.status === 'CLOSED' ? t.reopenSlot : t.closeSlot);
  const remove = el('button', { type: 'button', class: 'secondary' }, t.deleteSlot);
  const close = el('button', { type: 'button', class: 'secondary' }, t.cancelButton);
  const done = () => {
    editor.replaceChildren();
    opener.focus();
  };
  const act = async (f: () => Promise<string>) => {
    try {
      const note = await f();
      editor.replaceChildren();
      await drawMonth(ctx, calendar);
      status.textContent = note;
      (document.getElementById('month-heading') as HTMLElement | null)?.focus();
    } catch (e) {
      status.textContent = refusal(ctx, e);
    }
  };
  const form = el(
    'form',
    {},
    el('div', { class: 'field' }, el('label', { for: 'slot-capacity' }, t.capacityLabel), capacity),
    el('div', { class: 'actions' }, save, toggle, remove, close),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    void act(async () => {
      await call<Slot>('PUT', `/api/operator/slots/${sl.id}`, { total_capacity: Number(capacity.value) });
      return t.slotSaved(when);
    });
  });
  toggle.addEventListener('click', () =>
    act(async () => {
      const next = sl.status === 'CLOSED' ? 'ACTIVE' : 'CLOSED';
      await call<Slot>('PUT', `/api/operator/slots/${sl.id}`, { status: next });
      return next === 'CLOSED' ? t.slotClosed(when) : t.slotReopened(when);
    }),
  );
  remove.addEventListener('click', () =>
    act(async () => {
      const r = await call<{ result: 'deleted' | 'closed' }>('DELETE', `/api/operator/slots/${sl.id}`);
      // A slot with reservations is closed instead of deleted: say so.
      return r.result === 'deleted' ? t.slotDeleted(when) : t.slotKeptClosed(when);
    }),
  );
  close.addEventListener('click', done);
  form.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') done();
  });
  editor.replaceChildren(heading, facts, form);
  heading.focus();
}

function bulkBar(ctx: PageContext, calendar: HTMLElement): HTMLElement {
  const { t, status } = ctx;
  const s = state as State;
  const count = el('p', { id: 'bulk-count' }, t.selectedCount(s.selected.size));
  const capacity = el('input', { type: 'number', id: 'bulk-capacity', name: 'bulk-capacity', min: '1', max: '1000000', inputmode: 'numeric' });
  const setCap = el('button', { type: 'button' }, t.bulkCapacity);
  const closeAll = el('button', { type: 'button', class: 'secondary' }, t.bulkClose);
  const reopenAll = el('button', { type: 'button', class: 'secondary' }, t.bulkReopen);
  const run = async (body: Record<string, unknown>) => {
    const ids = [...s.selected];
    if (!ids.length) {
      status.textContent = t.selectFirst;
      return;
    }
    let ok = 0;
    const refused: string[] = [];
    for (const id of ids) {
      try {
        await call<Slot>('PUT', `/api/operator/slots/${id}`, body);
        ok++;
      } catch (e) {
        const label = document.getElementById(`sel-${id}`)?.getAttribute('aria-label') ?? id;
        refused.push(`${label}: ${refusal(ctx, e)}`);
      }
    }
    s.selected.clear();
    await drawMonth(ctx, calendar);
    status.textContent = t.bulkDone(ok, refused);
  };
  setCap.addEventListener('click', () => {
    if (!capacity.reportValidity() || capacity.value === '') {
      capacity.focus();
      return;
    }
    void run({ total_capacity: Number(capacity.value) });
  });
  closeAll.addEventListener('click', () => run({ status: 'CLOSED' }));
  reopenAll.addEventListener('click', () => run({ status: 'ACTIVE' }));
  return el(
    'div',
    { class: 'bulk', role: 'group', 'aria-label': t.bulkLabel },
    count,
    el('div', { class: 'field' }, el('label', { for: 'bulk-capacity' }, t.capacityLabel), capacity),
    el('div', { class: 'actions' }, setCap, closeAll, reopenAll),
  );
}

/** "09:00-12:00, 12:00-15:00" -> ranges; null when malformed. */
export function parseRanges(raw: string): { start_time: string; end_time: string }[] | null {
  const parts = raw.split(/[,;\n]/).map((p) => p.trim()).filter(Boolean);
  const out = [];
  for (const p of parts) {
    const m = /^(\d{1,2}:\d{2})\s*[-–]\s*(\d{1,2}:\d{2})$/.exec(p);
    if (!m) return null;
    out.push({ start_time: m[1].padStart(5, '0'), end_time: m[2].padStart(5, '0') });
  }
  return out.length ? out : null;
}

function patternForm(ctx: PageContext): HTMLElement {
  const { t, status } = ctx;
  const s = state as State;
  const input = (id: string, type: string, value = '') => {
    const i = el('input', { type, id, name: id, value });
    i.required = true;
    return i;
  };
  const from = input('pattern-from', 'date');
  const to = input('pattern-to', 'date');
  const times = input('pattern-times', 'text', '09:00-12:00, 12:00-15:00, 15:00-18:00');
  const capacity = input('pattern-capacity', 'number', '200');
  capacity.min = '1';
  capacity.max = '1000000';
  const boxes = t.weekdaysLong.map((name, i) => {
    const b = el('input', { type: 'checkbox', id: `wd-${i + 1}`, name: 'weekday', value: String(i + 1) });
    b.checked = i >= 1; // Tuesday to Sunday
    return el('div', { class: 'field check' }, b, el('label', { for: `wd-${i + 1}` }, name));
  });
  const result = el('div', { id: 'pattern-result', 'aria-live': 'polite' });
  const create = el('button', { type: 'button', id: 'pattern-create', disabled: '' }, t.patternCreate(0));
  const body = (): PatternBody | null => {
    const ranges = parseRanges(times.value);
    if (!ranges) {
      status.textContent = t.timesInvalid;
      times.focus();
      return null;
    }
    const weekdays = boxes
      .map((b) => b.querySelector('input') as HTMLInputElement)
      .filter((b) => b.checked)
      .map((b) => Number(b.value));
    return {
      venue_id: s.venue,
      date_from: from.value,
      date_to: to.value,
      weekdays,
      times: ranges,
      total_capacity: Number(capacity.value),
      create: false,
    };
  };
  const form = el(
    'form',
    { 'aria-labelledby': 'pattern-heading', id: 'pattern-form' },
    el('h2', { id: 'pattern-heading' }, t.patternHeading),
    el('p', {}, t.patternHelp),
    el('div', { class: 'row' }, el('div', { class: 'field' }, el('label', { for: 'pattern-from' }, t.fromLabel), from), el('div', { class: 'field' }, el('label', { for: 'pattern-to' }, t.toLabel), to)),
    el('fieldset', { class: 'weekdays' }, el('legend', {}, t.weekdaysLegend), ...boxes),
    el('div', { class: 'field' }, el('label', { for: 'pattern-times' }, t.timesLabel), times),
    el('div', { class: 'field' }, el('label', { for: 'pattern-capacity' }, t.capacityLabel), capacity),
    el('div', { class: 'actions' }, el('button', { type: 'submit', id: 'pattern-preview' }, t.patternPreview), create),
    result,
  );
  let previewed: PatternBody | null = null;
  const show = (a: PatternAnswer) => {
    const notCreated = a.slots.filter((x) => x.outcome !== 'create');
    const list = el('ul', {}, ...notCreated.slice(0, 50).map((x) => el('li', {}, `${t.slotWhen(x.date, hm(x.start_time), hm(x.end_time))}: ${t.outcomeNames[x.outcome]}`)));
    result.replaceChildren(
      el('p', { class: 'summary' }, (a.created ? t.patternCreated : t.patternPreviewed)(a.create_count, a.exists_count, a.clash_count, a.nonexistent_time_count)),
      ...(notCreated.length ? [list] : []),
    );
  };
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const b = body();
    if (!b) return;
    try {
      const a = await call<PatternAnswer>('POST', '/api/admin/slots/pattern', b);
      show(a);
      previewed = a.create_count > 0 ? b : null;
      create.disabled = previewed === null;
      create.textContent = t.patternCreate(a.create_count);
      status.textContent = '';
    } catch (e) {
      result.replaceChildren();
      create.disabled = true;
      status.textContent = refusal(ctx, e);
    }
  });
  // Editing the form after a preview needs a new preview.
  form.addEventListener('input', () => {
    previewed = null;
    create.disabled = true;
  });
  create.addEventListener('click', async () => {
    if (!previewed) return;
    try {
      const a = await call<PatternAnswer>('POST', '/api/admin/slots/pattern', { ...previewed, create: true });
      s.month = previewed.date_from.slice(0, 7);
      previewed = null;
      create.disabled = true;
      const calendar = document.getElementById('calendar') as HTMLElement;
      await drawMonth(ctx, calendar);
      show(a);
      status.textContent = t.patternCreated(a.create_count, a.exists_count, a.clash_count, a.nonexistent_time_count);
      (document.getElementById('month-heading') as HTMLElement | null)?.focus();
    } catch (e) {
      status.textContent = refusal(ctx, e);
    }
  });
  return form;
}
