// The admin console (issue 16): the shell (who is signed in, navigation,
// sign-out) and the Venues page. Every action calls the admin API with the
// session cookie; the server decides what the role may do.

import { ApiError, call, signOut, whoami, type Venue } from './api';
import type { ConsoleSession } from './bindings/ConsoleSession';
import { dashboardPage, stopDashboard } from './dashboard';
import { slotsPage } from './slots';
import { pickStrings } from './strings';
import { ticketsPage } from './tickets';
import { staffPage } from './staff';
import { gatesPage } from './gates';

const t = pickStrings();
document.documentElement.lang = t.locale.slice(0, 2);
document.title = t.appName;

const main = document.getElementById('main') as HTMLElement;
const nav = document.getElementById('nav') as HTMLElement;
const who = document.getElementById('who') as HTMLElement;
const signOutButton = document.getElementById('signout') as HTMLButtonElement;
(document.querySelector('.skip') as HTMLElement).textContent = t.skip;
(document.getElementById('brand') as HTMLElement).textContent = t.appName;
nav.setAttribute('aria-label', t.navLabel);
signOutButton.textContent = t.signOut;

/** `el('p', { class: 'x' }, 'text', child)` */
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

/** A status line read out by screen readers. */
const status = el('p', { class: 'status', role: 'status', 'aria-live': 'polite' });

function describe(e: unknown): string {
  if (e instanceof ApiError) return e.status === 403 ? t.forbidden : t.failed(e.message);
  return t.failed(String(e));
}

function page(heading: string, ...body: Node[]) {
  const h1 = el('h1', { tabindex: '-1' }, heading);
  main.replaceChildren(h1, status, ...body);
  h1.focus();
}

function message(heading: string, body: string) {
  nav.hidden = true;
  signOutButton.hidden = true;
  who.textContent = '';
  page(heading, el('p', {}, body));
}

// ------------------------------------------------------------------ venues

function field(id: string, label: string, input: HTMLInputElement): HTMLElement {
  input.id = id;
  input.name = id;
  return el('div', { class: 'field' }, el('label', { for: id }, label), input);
}

function numberInput(value: number | null, min: number, max: number, required = true): HTMLInputElement {
  const i = el('input', { type: 'number', min: String(min), max: String(max), inputmode: 'numeric' });
  if (value !== null) i.value = String(value);
  i.required = required;
  return i;
}

const optional = (i: HTMLInputElement) => (i.value.trim() === '' ? null : Number(i.value));

async function venuesPage(note = '') {
  status.textContent = t.loading;
  let venues: Venue[];
  try {
    venues = await call<Venue[]>('GET', '/api/admin/venues');
  } catch (e) {
    page(t.venuesHeading);
    status.textContent = describe(e);
    return;
  }
  const rows = venues.map((v) =>
    el(
      'tr',
      {},
      el('th', { scope: 'row' }, v.name),
      el('td', {}, v.timezone),
      el('td', {}, t.minutes(v.early_grace_minutes, v.late_grace_minutes)),
      el('td', {}, v.occupancy_limit === null ? t.noLimit : String(v.occupancy_limit)),
      el('td', {}, editButton(v)),
    ),
  );
  const table = venues.length
    ? el(
        'table',
        {},
        el('caption', { class: 'visually-hidden' }, t.venuesHeading),
        el(
          'thead',
          {},
          el(
            'tr',
            {},
            ...[t.colName, t.colTimezone, t.colGrace, t.colLimit, t.colActions].map((c) => el('th', { scope: 'col' }, c)),
          ),
        ),
        el('tbody', {}, ...rows),
      )
    : el('p', {}, t.venuesEmpty);

  const name = el('input', { type: 'text', autocomplete: 'off', maxlength: '200' });
  name.required = true;
  const tz = el('input', { type: 'text', autocomplete: 'off', value: Intl.DateTimeFormat().resolvedOptions().timeZone });
  tz.required = true;
  const form = el(
    'form',
    { 'aria-labelledby': 'create-heading' },
    el('h2', { id: 'create-heading' }, t.createHeading),
    field('venue-name', t.nameLabel, name),
    field('venue-timezone', t.timezoneLabel, tz),
    el('button', { type: 'submit' }, t.createButton),
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const v = await call<Venue>('POST', '/api/admin/venues', { name: name.value.trim(), timezone: tz.value.trim() });
      await venuesPage(t.created(v.name));
    } catch (e) {
      status.textContent = describe(e);
    }
  });
  const editor = el('section', { id: 'editor', 'aria-live': 'off' });
  page(t.venuesHeading, table, editor, form);
  status.textContent = note;
}

function editButton(v: Venue): HTMLButtonElement {
  const b = el('button', { type: 'button', 'aria-label': t.edit(v.name) }, t.editShort);
  b.addEventListener('click', () => openEditor(v, b));
  return b;
}

function openEditor(v: Venue, opener: HTMLButtonElement) {
  const editor = document.getElementById('editor') as HTMLElement;
  const name = el('input', { type: 'text', autocomplete: 'off', maxlength: '200', value: v.name });
  name.required = true;
  const tz = el('input', { type: 'text', autocomplete: 'off', value: v.timezone, 'aria-describedby': 'timezone-help' });
  tz.required = true;
  const early = numberInput(v.early_grace_minutes, 0, 240);
  const late = numberInput(v.late_grace_minutes, 0, 240);
  const walkup = numberInput(v.walkup_lease_places, 0, 50);
  const noShow = numberInput(v.no_show_release_minutes, 1, 1440, false);
  const limit = numberInput(v.occupancy_limit, 1, 1_000_000, false);
  // Closing time on the venue's clock: everyone still inside is checked out.
  const closing = el('input', { type: 'time', step: '60' });
  closing.value = v.closing_time ? v.closing_time.slice(0, 5) : '';
  const reentry = el('input', { type: 'checkbox', id: 'reentry', name: 'reentry' });
  reentry.checked = v.reentry_allowed;
  const heading = el('h2', { tabindex: '-1' }, t.settingsHeading(v.name));
  const close = el('button', { type: 'button', class: 'secondary' }, t.cancelButton);
  const form = el(
    'form',
    {},
    field('edit-name', t.nameLabel, name),
    field('edit-timezone', t.timezoneLabel, tz),
    el('p', { id: 'timezone-help', class: 'note' }, t.timezoneHelp),
    field('early', t.earlyLabel, early),
    field('late', t.lateLabel, late),
    el('div', { class: 'field check' }, reentry, el('label', { for: 'reentry' }, t.reentryLabel)),
    field('walkup', t.walkupLabel, walkup),
    field('noshow', t.noShowLabel, noShow),
    field('limit', t.limitLabel, limit),
    field('closing', t.closingLabel, closing),
    el('div', { class: 'actions' }, el('button', { type: 'submit' }, t.saveButton), close),
  );
  const done = () => {
    editor.replaceChildren();
    opener.focus();
  };
  close.addEventListener('click', done);
  form.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') done();
  });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      // Name and zone only when changed: a zone named again is no move, but
      // sending it only when it moves keeps the request saying what it does.
      const renamed = name.value.trim() === v.name ? {} : { name: name.value.trim() };
      const moved = tz.value.trim() === v.timezone ? {} : { timezone: tz.value.trim() };
      const saved = await call<Venue>('PATCH', `/api/admin/venues/${v.id}`, {
        ...renamed,
        ...moved,
        early_grace_minutes: Number(early.value),
        late_grace_minutes: Number(late.value),
        reentry_allowed: reentry.checked,
        walkup_lease_places: Number(walkup.value),
        no_show_release_minutes: optional(noShow),
        occupancy_limit: optional(limit),
        closing_time: closing.value === '' ? null : closing.value,
      });
      await venuesPage(t.saved(saved.name));
    } catch (e) {
      if (e instanceof ApiError && e.code === 'VENUE_HAS_BOOKINGS_AHEAD') {
        // The zone stays: put it back, so that saving again saves the rest.
        tz.value = v.timezone;
        status.textContent = t.zoneLocked(v.timezone);
      } else {
        status.textContent = describe(e);
      }
    }
  });
  editor.replaceChildren(heading, form);
  heading.focus();
}

// ------------------------------------------------------------------ shell

/** Who is signed in (set by `start`): pages adapt to its role and venue. */
let me: ConsoleSession;

async function start() {
  try {
    me = await whoami();
  } catch (e) {
    if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
      message(t.notSignedInHeading, t.notSignedInBody);
    } else {
      message(t.notSignedInHeading, describe(e));
    }
    return;
  }
  who.textContent = t.signedInAs(t.roleNames[me.role] ?? me.role, me.orq);
  const venues = el('a', { href: '#venues', 'aria-current': 'page' }, t.venuesNav);
  const tickets = el('a', { href: '#tickets' }, t.ticketsNav);
  const staff = el('a', { href: '#staff' }, t.staffNav);
  const gates = el('a', { href: '#gates' }, t.gatesNav);
  const slots = el('a', { href: '#slots' }, t.slotsNav);
  const dashboard = el('a', { href: '#dashboard' }, t.dashNav);
  nav.replaceChildren(venues, ' ', slots, ' ', dashboard, ' ', tickets, ' ', staff, ' ', gates);
  nav.hidden = false;
  signOutButton.hidden = false;
  await route();
}

/** The page the address's #fragment names (venues by default). */
async function route() {
  const name = location.hash.slice(1) || 'venues';
  for (const a of nav.querySelectorAll('a')) {
    if (a.getAttribute('href') === '#' + name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  stopDashboard();
  if (name === 'slots') await slotsPage({ t, status, page, describe });
  else if (name === 'dashboard') dashboardPage({ t, status, page, describe });
  else if (name === 'tickets') ticketsPage(main, t, me);
  else if (name === 'staff') await staffPage(main, t);
  else if (name === 'gates') await gatesPage(main, t);
  else await venuesPage();
}

window.addEventListener('hashchange', () => {
  if (!nav.hidden) void route();
});

signOutButton.addEventListener('click', async () => {
  try {
    await signOut();
  } catch {
    // Already signed out or expired: the result is the same.
  }
  stopDashboard();
  message(t.signedOutHeading, t.signedOutBody);
});

void start();
