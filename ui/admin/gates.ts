// The console's Gates page (issue 16): the org's gate devices as the server
// recorded them (GET /api/admin/gates: version, last upload, clock offset,
// the pending uploads each reported, conflicts), revoke one after a
// confirmation (POST /api/admin/gates/{id}/revoke), and "add gate" (POST
// /api/admin/devices), which shows the new device token once, with the
// server address to pair the gate with, and the pairing QR code the server
// rendered (an SVG image: the gate's settings screen scans it). Admins only:
// the server refuses a supervisor, and the page says so.

import { ApiError, call, type Venue } from './api';
import type { Strings } from './strings';

import type { GateHealth as Device } from './bindings/GateHealth';

/** POST /api/admin/devices: the token and the pairing QR code, shown once. */
type CreatedDevice = {
  token: string;
  device: { device_id: number };
  pairing: { uri: string; server_url: string; svg: string; loopback: boolean } | null;
};

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

export async function gatesPage(main: HTMLElement, t: Strings, note = '') {
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
    [devices, venues] = await Promise.all([call<Device[]>('GET', '/api/admin/gates'), call<Venue[]>('GET', '/api/admin/venues')]);
  } catch (e) {
    status.textContent = describe(e);
    return;
  }
  const venueName = (id: number) => venues.find((v) => v.id === id)?.name ?? String(id);
  const when = new Intl.DateTimeFormat(t.locale, { dateStyle: 'medium', timeStyle: 'short' });
  const confirmBox = el('section', { id: 'gate-revoke' });
  const revokeButton = (d: Device) => {
    const b = el('button', { type: 'button', class: 'secondary', 'aria-label': t.gatesRevokeOf(d.name) }, t.gatesRevoke);
    b.addEventListener('click', () => {
      const heading = el('h2', { tabindex: '-1' }, t.gatesRevokeConfirm(d.name));
      const yes = el('button', { type: 'button', class: 'danger' }, t.gatesRevokeYes);
      const no = el('button', { type: 'button', class: 'secondary' }, t.cancelButton);
      const done = () => {
        confirmBox.replaceChildren();
        b.focus();
      };
      no.addEventListener('click', done);
      confirmBox.onkeydown = (ev) => {
        if (ev.key === 'Escape') done();
      };
      yes.addEventListener('click', async () => {
        try {
          await call<Device>('POST', `/api/admin/gates/${d.device_id}/revoke`);
          await gatesPage(main, t, t.gatesRevokedNote(d.name));
        } catch (e) {
          status.textContent = describe(e);
        }
      });
      confirmBox.replaceChildren(heading, el('p', {}, t.gatesRevokeBody), el('div', { class: 'actions' }, yes, no));
      heading.focus();
    });
    return b;
  };
  const pending = (d: Device) =>
    d.pending_uploads === null || d.pending_uploads === undefined
      ? t.gatesUnknown
      : d.pending_reported_at
        ? t.gatesPendingAsOf(Number(d.pending_uploads), when.format(new Date(d.pending_reported_at)))
        : String(d.pending_uploads);
  const table = devices.length
    ? el(
        'table',
        {},
        el('caption', { class: 'visually-hidden' }, t.gatesHeading),
        el(
          'thead',
          {},
          el(
            'tr',
            {},
            ...[t.colName, t.gatesColVenue, t.gatesColVersion, t.gatesColSeen, t.gatesColOffset, t.gatesColPending, t.gatesColConflicts, t.colStatus, t.colActions].map((c) =>
              el('th', { scope: 'col' }, c),
            ),
          ),
        ),
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
              el('td', {}, d.last_seen_at ? when.format(new Date(d.last_seen_at)) : t.gatesNever),
              el('td', {}, d.clock_offset_ms === null || d.clock_offset_ms === undefined ? '—' : t.gatesOffset(Number(d.clock_offset_ms))),
              el('td', {}, pending(d)),
              el('td', {}, String(d.conflicts)),
              el('td', {}, d.revoked ? t.gatesRevoked : t.gatesActive),
              el('td', {}, d.revoked ? '' : revokeButton(d)),
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
      const created = await call<CreatedDevice>('POST', '/api/admin/devices', {
        name: name.value.trim(),
        venue_id: Number(venue.value),
      });
      const gateName = name.value.trim();
      const heading = el('h2', { tabindex: '-1' }, t.gatesAdded(gateName));
      const server = created.pairing?.server_url ?? location.origin;
      // An <img> of the server's SVG, not its markup in the page: nothing of
      // the response becomes DOM but text.
      const qr = created.pairing
        ? el(
            'figure',
            { class: 'pairing-qr' },
            el('img', {
              id: 'gate-pairing-qr',
              src: `data:image/svg+xml;base64,${btoa(created.pairing.svg)}`,
              alt: t.gatesQrAlt(gateName, created.pairing.server_url),
              width: '320',
              height: '320',
            }),
            el('figcaption', {}, t.gatesQrCaption),
          )
        : el('p', { class: 'note' }, t.gatesNoQr);
      // A localhost address pairs a gate on this computer only: say so
      // before someone carries the QR code to a gate at the entrance.
      const loopback = created.pairing?.loopback ? [el('p', { class: 'note', id: 'gate-loopback' }, t.gatesLoopback(server))] : [];
      result.replaceChildren(
        heading,
        el('p', {}, t.gatesTokenOnce),
        ...loopback,
        qr,
        el('dl', {}, el('dt', {}, t.gatesServer), el('dd', { id: 'gate-server-value' }, server), el('dt', {}, t.gatesToken), el('dd', {}, el('code', { id: 'gate-token-value' }, created.token))),
      );
      heading.focus();
    } catch (e) {
      status.textContent = describe(e);
    }
  });
  main.replaceChildren(h1, status, table, confirmBox, form, result);
  status.textContent = note;
}
