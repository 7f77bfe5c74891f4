// The console's live dashboard (issue 16): one EventSource on
// GET /api/admin/dashboard/stream (server-sent events; the session cookie
// authenticates it). Each `dashboard` event replaces the figures in place,
// without a reload: admissions per 5 minutes per gate today (uPlot), each of
// today's slots (booked / admitted / no-shows), gates online or offline with
// their last sync, today's conflicts, and people inside against the limit.
// Below the live figures (outside what each event redraws, so focus and a
// half-answered question survive), a supervisor checks everyone out of a
// venue: POST /api/admin/venues/{id}/checkout, after a confirmation.

import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { Dashboard } from './bindings/Dashboard';
import type { VenueToday } from './bindings/VenueToday';
import type { PageContext } from './slots';
import { ApiError, call, type Venue } from './api';
import type { Checkout } from './bindings/Checkout';

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

let source: EventSource | null = null;
let charts: uPlot[] = [];

/** Closes the stream (leaving the page). */
export function stopDashboard() {
  source?.close();
  source = null;
  for (const c of charts) c.destroy();
  charts = [];
}

const SERIES_COLOURS = ['#12403c', '#b35c00', '#5b3a8c', '#1f5fa8', '#8c2f39', '#3d6b21'];

export function dashboardPage(ctx: PageContext) {
  const { t, status } = ctx;
  stopDashboard();
  const updated = el('p', { class: 'updated', id: 'dash-updated' }, t.loading);
  const body = el('div', { id: 'dash-body' });
  ctx.page(t.dashHeading, updated, body, closingSection(ctx));
  status.textContent = t.dashConnecting;
  // Figures known before any event: the page says it is connecting.
  const es = new EventSource('/api/admin/dashboard/stream');
  source = es;
  es.addEventListener('dashboard', (ev) => {
    const d = JSON.parse((ev as MessageEvent<string>).data) as Dashboard;
    draw(ctx, body, d);
    const at = new Date(d.as_of);
    updated.textContent = t.dashUpdated(at.toLocaleTimeString(t.locale));
    updated.dataset.asOf = d.as_of;
    if (status.textContent !== t.dashLive) status.textContent = t.dashLive;
  });
  es.addEventListener('error', () => {
    // EventSource reconnects by itself; closed means the server refused.
    status.textContent = es.readyState === EventSource.CLOSED ? t.dashClosed : t.dashReconnecting;
  });
}

/** "Check everyone out": a venue, a confirmation, the answer. */
function closingSection(ctx: PageContext): HTMLElement {
  const { t } = ctx;
  const select = el('select', { id: 'checkout-venue', name: 'checkout-venue' });
  const open = el('button', { type: 'button', id: 'checkout-open' }, t.dashCheckoutButton);
  const question = el('p', { id: 'checkout-question', tabindex: '-1' });
  const yes = el('button', { type: 'button', class: 'danger' }, t.dashCheckoutYes);
  const no = el('button', { type: 'button', class: 'secondary' }, t.dashCheckoutNo);
  const confirmBox = el('div', { class: 'confirm', role: 'group', 'aria-labelledby': 'checkout-question' }, question, el('div', { class: 'actions' }, yes, no));
  confirmBox.hidden = true;
  const said = el('p', { class: 'status', role: 'status', id: 'checkout-status' });
  const section = el(
    'section',
    { 'aria-labelledby': 'checkout-heading', class: 'closing' },
    el('h2', { id: 'checkout-heading' }, t.dashCheckoutHeading),
    el('p', { class: 'note' }, t.dashCheckoutHelp),
    el('div', { class: 'field' }, el('label', { for: 'checkout-venue' }, t.venueLabel), select),
    el('div', { class: 'actions' }, open),
    confirmBox,
    said,
  );
  call<Venue[]>('GET', '/api/admin/venues')
    .then((venues) => select.replaceChildren(...venues.map((v) => el('option', { value: String(v.id) }, v.name))))
    .catch((e) => {
      said.textContent = ctx.describe(e);
    });
  // The venue the question names is the one checked out: taken when the
  // question opens, and the list is locked until it is answered.
  let asked: { id: string; name: string } | null = null;
  const close = () => {
    asked = null;
    confirmBox.hidden = true;
    select.disabled = false;
    open.focus();
  };
  const say = (text: string) => {
    // Cleared first, so the same words twice are announced twice.
    said.textContent = '';
    requestAnimationFrame(() => {
      said.textContent = text;
    });
  };
  open.addEventListener('click', () => {
    if (!select.value) {
      say(t.dashCheckoutNoVenue);
      return;
    }
    asked = { id: select.value, name: select.selectedOptions[0]?.textContent ?? '' };
    question.textContent = t.dashCheckoutConfirm(asked.name);
    select.disabled = true;
    confirmBox.hidden = false;
    question.focus();
  });
  no.addEventListener('click', close);
  confirmBox.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') close();
  });
  yes.addEventListener('click', async () => {
    if (!asked || confirmBox.getAttribute('aria-busy') === 'true') return;
    const { id, name } = asked;
    // Busy, not disabled: the focused button keeps the focus meanwhile.
    confirmBox.setAttribute('aria-busy', 'true');
    let text: string;
    try {
      const done = await call<Checkout>('POST', `/api/admin/venues/${id}/checkout`);
      text = t.dashCheckedOut(name, done.checked_out);
    } catch (e) {
      text = e instanceof ApiError && e.status === 403 ? t.forbidden : ctx.describe(e);
    }
    confirmBox.removeAttribute('aria-busy');
    close();
    say(text);
  });
  return section;
}

function draw(ctx: PageContext, body: HTMLElement, d: Dashboard) {
  const { t } = ctx;
  for (const c of charts) c.destroy();
  charts = [];
  const gateName = new Map(d.gates.map((g) => [g.device_id, g.name]));
  const summary = el(
    'ul',
    { class: 'cards' },
    // The venues shown (a venue-bound session: its own), today.
    el('li', { id: 'dash-conflicts' }, el('span', { class: 'figure' }, String(d.venues.reduce((n, v) => n + v.conflicts, 0))), t.dashConflicts),
    ...d.venues.map((v) =>
      el(
        'li',
        { 'data-venue': String(v.venue_id), class: v.occupancy_limit !== null && v.inside >= v.occupancy_limit ? 'over' : '' },
        el('span', { class: 'figure' }, v.occupancy_limit === null ? String(v.inside) : `${v.inside} / ${v.occupancy_limit}`),
        t.dashInside(v.name),
      ),
    ),
  );
  const venues = d.venues.map((v) => venueSection(ctx, v, gateName));
  const gates = el(
    'section',
    { 'aria-labelledby': 'dash-gates' },
    el('h2', { id: 'dash-gates' }, t.dashGates),
    d.gates.length
      ? el(
          'table',
          {},
          el('thead', {}, el('tr', {}, ...[t.dashGate, t.colName, t.dashState, t.dashLastSync].slice(0).map((c, i) => el('th', { scope: 'col' }, i === 1 ? t.venueLabel : c)))),
          el(
            'tbody',
            {},
            ...d.gates.map((g) =>
              el(
                'tr',
                { 'data-gate': String(g.device_id) },
                el('th', { scope: 'row' }, g.name),
                el('td', {}, d.venues.find((v) => v.venue_id === g.venue_id)?.name ?? String(g.venue_id)),
                el('td', { class: g.online ? 'online' : 'offline' }, g.online ? t.dashOnline : t.dashOffline),
                el('td', {}, g.last_seen_at ? new Date(g.last_seen_at).toLocaleString(t.locale) : t.dashNever),
              ),
            ),
          ),
        )
      : el('p', {}, t.dashNoGates),
  );
  body.replaceChildren(summary, ...venues, gates);
  // Charts need their containers in the document to measure them.
  for (const v of d.venues) chart(ctx, v, gateName);
}

function venueSection(ctx: PageContext, v: VenueToday, gateName: Map<number, string>): HTMLElement {
  const { t } = ctx;
  const total = v.admissions.reduce((n, b) => n + b.count, 0);
  const perGate = new Map<string, number>();
  for (const b of v.admissions) {
    const name = b.device_id === null ? t.dashServer : gateName.get(b.device_id) ?? `#${b.device_id}`;
    perGate.set(name, (perGate.get(name) ?? 0) + b.count);
  }
  const described = [...perGate].map(([g, n]) => `${g}: ${n}`).join(', ');
  const chartBox = el('div', {
    class: 'chart',
    id: `chart-${v.venue_id}`,
    role: 'img',
    'aria-label': t.dashChartLabel(v.name, total, described),
  });
  const slots = v.slots.length
    ? el(
        'table',
        { class: 'today' },
        el('caption', {}, t.dashSlotsCaption(v.name, v.date)),
        el('thead', {}, el('tr', {}, ...[t.dashSlot, t.dashBooked, t.dashAdmitted, t.dashNoShows].map((c) => el('th', { scope: 'col' }, c)))),
        el(
          'tbody',
          {},
          ...v.slots.map((s) =>
            el(
              'tr',
              { 'data-slot': s.slot_id },
              el('th', { scope: 'row' }, `${s.start_time.slice(0, 5)}–${s.end_time.slice(0, 5)}`),
              el('td', {}, `${s.booked_count} / ${s.total_capacity}`),
              el('td', { class: 'admitted' }, String(s.admitted_count)),
              el('td', {}, String(s.no_show_count)),
            ),
          ),
        ),
      )
    : el('p', {}, t.dashNoSlots);
  return el(
    'section',
    { 'aria-labelledby': `dash-venue-${v.venue_id}`, class: 'venue-today' },
    el('h2', { id: `dash-venue-${v.venue_id}` }, t.dashVenueHeading(v.name, v.date)),
    el('p', { class: 'total', id: `dash-total-${v.venue_id}` }, t.dashAdmissionsToday(total)),
    chartBox,
    slots,
  );
}

function chart(ctx: PageContext, v: VenueToday, gateName: Map<number, string>) {
  const box = document.getElementById(`chart-${v.venue_id}`);
  if (!box || !v.admissions.length) return;
  const times = [...new Set(v.admissions.map((b) => Date.parse(b.bucket_start) / 1000))].sort((a, b) => a - b);
  // One bucket so far (the day's first admissions): uPlot would stretch a
  // zero-width time range over years; the empty buckets either side of it
  // are true (no admissions then) and give the axis its scale.
  if (times.length === 1) {
    const only = times[0];
    times.unshift(only - 300);
    times.push(only + 300);
  }
  const gates = [...new Set(v.admissions.map((b) => b.device_id))];
  const data: uPlot.AlignedData = [
    times,
    ...gates.map((g) =>
      times.map((x) => v.admissions.find((b) => b.device_id === g && Date.parse(b.bucket_start) / 1000 === x)?.count ?? 0),
    ),
  ];
  const width = Math.max(280, Math.min(box.clientWidth || 640, 1100));
  const opts: uPlot.Options = {
    width,
    height: 220,
    scales: { x: { time: true } },
    axes: [{ stroke: '#1b1f23' }, { stroke: '#1b1f23', label: ctx.t.dashPerFive }],
    series: [
      {},
      ...gates.map((g, i) => ({
        label: g === null ? ctx.t.dashServer : gateName.get(g) ?? `#${g}`,
        stroke: SERIES_COLOURS[i % SERIES_COLOURS.length],
        width: 2,
        paths: uPlot.paths.stepped?.({ align: 1 }),
        points: { show: true },
      })),
    ],
  };
  charts.push(new uPlot(opts, data, box));
}
