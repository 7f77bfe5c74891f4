// The console's Gates page (issue 16, track "16t"): the org's gate devices
// with the version each runs and its last report (GET /api/admin/devices),
// and "add gate" (POST /api/admin/devices), which shows the new device token
// once, with the server address to pair the gate with. Admins only: the
// server refuses a supervisor, and the page says so. Not yet: the pairing QR
// code, revoke, pending uploads, clock offset, conflicts per gate.

import { ApiError, call, type Venue } from './api';
import type { Strings } from './strings';

interface Device {
  device_id: number;
  venue_id: number;
  name: string;
  revoked: boolean;
  app_version: string | null;
  reported_at: string | null;
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

export async function gatesPage(main: HTMLElement, t: Strings) {
  const describe = (e: unknown) =>
    e instanceof ApiError ? (e.status === 403 ? t.forbidden : t.failed(e.message)) : t.failed(String(e));
  const h1 = el('h1', { tabindex: '-1' }, t.gatesHeading);
  const status = el('p', { class: 'status', role: 'status', 'aria-live': 'polite' });
  main.replaceChildren(h1, status);
  h1.focus();
  status.textContent = t.loading;
  let devices: Device[];
  let venues: Venue[];
  try {
    [devices, venues] = await Promise.all([call<Device[]>('GET', '/api/admin/devices'), call<Venue[]>('GET', '/api/admin/venues')]);
  } catch (e) {
    status.textContent = describe(e);
    return;
  }
  const venueName = (id: number) => venues.find((v) => v.id === id)?.name ?? String(id);
  const when = new Intl.DateTimeFormat(t.locale, { dateStyle: 'medium', timeStyle: 'short' });
  const table = devices.length
    ? el(
        'table',
        {},
        el('caption', { class: 'visually-hidden' }, t.gatesHeading),
        el('thead', {}, el('tr', {}, ...[t.colName, t.gatesColVenue, t.gatesColVersion, t.gatesColReported, t.colStatus].map((c) => el('th', { scope: 'col' }, c)))),
        el(
          'tbody',
          {},
          ...devices.map((d) =>
            el(
              'tr',
              {},
              el('th', { scope: 'row' }, d.name),
              el('td', {}, venueName(d.venue_id)),
              el('td', {}, d.app_version ?? '—'),
              el('td', {}, d.reported_at ? when.format(new Date(d.reported_at)) : t.gatesNever),
              el('td', {}, d.revoked ? t.gatesRevoked : t.gatesActive),
            ),
          ),
        ),
      )
    : el('p', {}, t.gatesEmpty);
  const name = el('input', { type: 'text', id: 'gate-name', name: 'gate-name', autocomplete: 'off', maxlength: '200' });
  name.required = true;
  const venue = el('select', { id: 'gate-venue', name: 'gate-venue' }, ...venues.map((v) => el('option', { value: String(v.id) }, v.name)));
  const result = el('div', { id: 'gate-token' });
  const form = el(
    'form',
    { 'aria-labelledby': 'gate-add-heading' },
    el('h2', { id: 'gate-add-heading' }, t.gatesAddHeading),
    el('div', { class: 'field' }, el('label', { for: 'gate-name' }, t.nameLabel), name),
    el('div', { class: 'field' }, el('label', { for: 'gate-venue' }, t.gatesColVenue), venue),
    el('button', { type: 'submit' }, t.gatesAddButton),
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const created = await call<{ token: string; device: { device_id: number } }>('POST', '/api/admin/devices', {
        name: name.value.trim(),
        venue_id: Number(venue.value),
      });
      const heading = el('h2', { tabindex: '-1' }, t.gatesAdded(name.value.trim()));
      result.replaceChildren(
        heading,
        el('p', {}, t.gatesTokenOnce),
        el('dl', {}, el('dt', {}, t.gatesServer), el('dd', {}, location.origin), el('dt', {}, t.gatesToken), el('dd', {}, el('code', { id: 'gate-token-value' }, created.token))),
        el('p', { class: 'note' }, t.gatesNoQrYet),
      );
      heading.focus();
    } catch (e) {
      status.textContent = describe(e);
    }
  });
  main.replaceChildren(h1, status, table, form, result);
  status.textContent = '';
}
