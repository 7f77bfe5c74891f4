// The console's Tickets page (issue 16, track "16t"): search by code, order,
// e-mail or phone (keyset pages of GET /api/admin/tickets/search), and cancel
// a ticket (refund) with POST /api/admin/tickets/{code}/cancel, after an
// explicit confirmation. The server decides who may: a supervisor searches,
// only an admin cancels (a refusal is shown as it comes).

import { ApiError, call } from './api';
import type { ConsoleSession } from './bindings/ConsoleSession';
import type { Strings } from './strings';

/** A ticket as the admin API answers it (the fields this page shows). */
export interface AdminTicket {
  ticket_code: string;
  order_id: number | null;
  status: string;
  activation_status: string;
  customer_email: string | null;
  customer_phone: string | null;
  purchase_email: string | null;
  verified_at: string | null;
}

interface StoryEvent {
  at: string;
  kind: string;
  device_id?: number;
  operator_id?: number;
  detail?: string;
}

interface TicketPage {
  tickets: AdminTicket[];
  next_after: string | null;
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

const cancellable = (x: AdminTicket) => x.activation_status !== 'cancelled' && x.activation_status !== 'redeemed' && x.verified_at === null;

/** Renders the Tickets page into `main` for the signed-in `me`; `query` re-runs a search (after a cancel). */
export function ticketsPage(main: HTMLElement, t: Strings, me: ConsoleSession, query = '', note = '') {
  const describe = (e: unknown) =>
    e instanceof ApiError
      ? e.code === 'ORG_ADMIN_ONLY'
        ? t.orgAdminOnly
        : e.status === 403
          ? t.forbidden
          : t.failed(e.message)
      : t.failed(String(e));
  const h1 = el('h1', { tabindex: '-1' }, t.ticketsHeading);
  const status = el('p', { class: 'status', role: 'status', 'aria-live': 'polite' });
  const input = el('input', { type: 'search', id: 'ticket-q', name: 'q', autocomplete: 'off', maxlength: '254' });
  input.required = true;
  input.value = query;
  const form = el(
    'form',
    { role: 'search', 'aria-label': t.ticketSearchButton },
    el('div', { class: 'field' }, el('label', { for: 'ticket-q', id: 'ticket-search-label' }, t.ticketSearchLabel), input),
    el('button', { type: 'submit' }, t.ticketSearchButton),
  );
  const results = el('section', { id: 'ticket-results', 'aria-label': t.ticketResultsLabel });
  const confirm = el('section', { id: 'ticket-confirm' });
  // A venue-bound token may not issue tickets (a ticket has no venue
  // until it is reserved; the server answers 403 ORG_ADMIN_ONLY): say so
  // instead of offering an import that can only be refused.
  const importing = me.venue_id === null ? importForm(t, describe) : importOrgOnly(t, me.venue_id);
  main.replaceChildren(h1, status, form, results, confirm, importing);
  h1.focus();
  status.textContent = note;

  const rows: HTMLTableRowElement[] = [];
  const body = el('tbody');
  const more = el('button', { type: 'button', class: 'secondary' }, t.ticketMore);
  let next: string | null = null;

  const row = (x: AdminTicket) => {
    const actions = el('td', { class: 'actions' });
    const storyButton = el('button', { type: 'button', class: 'secondary', 'aria-label': t.ticketStoryOf(x.ticket_code) }, t.ticketStoryShort);
    storyButton.addEventListener('click', () => void showStory(x, storyButton));
    actions.append(storyButton);
    if (cancellable(x)) {
      const b = el('button', { type: 'button', class: 'secondary', 'aria-label': t.ticketCancelOf(x.ticket_code) }, t.ticketCancelShort);
      b.addEventListener('click', () => askCancel(x, b));
      actions.append(b);
    }
    return el(
      'tr',
      {},
      el('th', { scope: 'row' }, x.ticket_code),
      el('td', {}, t.ticketStatus(x.status)),
      el('td', {}, x.order_id === null ? '—' : String(x.order_id)),
      el('td', {}, x.customer_email ?? x.purchase_email ?? '—'),
      el('td', {}, x.customer_phone ?? '—'),
      actions,
    );
  };

  async function search(after: string | null) {
    status.textContent = t.loading;
    try {
      const params = new URLSearchParams({ q: input.value.trim(), limit: '50' });
      if (after) params.set('after', after);
      const got = await call<TicketPage>('GET', `/api/admin/tickets/search?${params}`);
      if (!after) rows.length = 0;
      for (const x of got.tickets) rows.push(body.appendChild(row(x)));
      if (!after) body.replaceChildren(...rows);
      next = got.next_after;
      more.hidden = next === null;
      results.replaceChildren(
        rows.length
          ? el(
              'table',
              {},
              el('caption', { class: 'visually-hidden' }, t.ticketResultsLabel),
              el(
                'thead',
                {},
                el(
                  'tr',
                  {},
                  ...[t.colCode, t.colStatus, t.colOrder, t.colEmail, t.colPhone, t.colActions].map((c) => el('th', { scope: 'col' }, c)),
                ),
              ),
              body,
            )
          : el('p', {}, t.ticketNone),
        more,
        el('p', {}, el('a', { href: `/api/admin/tickets/export?${new URLSearchParams({ q: input.value.trim() })}`, download: 'tickets.csv' }, t.ticketExport)),
      );
      status.textContent = t.ticketFound(rows.length, next !== null);
    } catch (e) {
      status.textContent = describe(e);
    }
  }

  async function showStory(x: AdminTicket, opener: HTMLButtonElement) {
    let story: { events: StoryEvent[] };
    try {
      story = await call<{ events: StoryEvent[] }>('GET', `/api/admin/tickets/${encodeURIComponent(x.ticket_code)}/story`);
    } catch (e) {
      status.textContent = describe(e);
      return;
    }
    const heading = el('h2', { tabindex: '-1' }, t.ticketStoryHeading(x.ticket_code));
    const close = el('button', { type: 'button', class: 'secondary' }, t.cancelButton);
    const done = () => {
      confirm.replaceChildren();
      opener.focus();
    };
    close.addEventListener('click', done);
    confirm.onkeydown = (ev) => {
      if (ev.key === 'Escape') done();
    };
    const when = new Intl.DateTimeFormat(t.locale, { dateStyle: 'medium', timeStyle: 'short' });
    const list = el(
      'ol',
      { class: 'story' },
      ...story.events.map((e) =>
        el('li', {}, el('time', { datetime: e.at }, when.format(new Date(e.at))), ' — ', t.storyEvent(e.kind, e.device_id ?? null, e.operator_id ?? null, e.detail ?? null)),
      ),
    );
    // Re-issue its signed code (admins only; a refusal shows as it comes).
    const reissued = el('div', { id: 'ticket-reissued', 'aria-live': 'polite' });
    const reissue = el('button', { type: 'button', class: 'secondary' }, t.ticketReissue);
    reissue.addEventListener('click', async () => {
      try {
        const r = await call<{ ticket_code: string; signed_code: string }>('POST', `/api/admin/tickets/${encodeURIComponent(x.ticket_code)}/reissue`);
        reissued.replaceChildren(el('p', {}, t.ticketReissued(r.ticket_code)), el('p', {}, el('code', { id: 'ticket-signed-code', class: 'signed-code' }, r.signed_code)));
      } catch (e) {
        reissued.replaceChildren(el('p', {}, describe(e)));
      }
    });
    confirm.replaceChildren(heading, list, el('p', { class: 'note' }, t.ticketStoryGaps), el('div', { class: 'actions' }, reissue, close), reissued);
    heading.focus();
  }

  function askCancel(x: AdminTicket, opener: HTMLButtonElement) {
    const heading = el('h2', { tabindex: '-1' }, t.ticketCancelHeading(x.ticket_code));
    const yes = el('button', { type: 'button' }, t.ticketCancelConfirm);
    const no = el('button', { type: 'button', class: 'secondary' }, t.ticketCancelKeep);
    const done = () => {
      confirm.replaceChildren();
      opener.focus();
    };
    no.addEventListener('click', done);
    confirm.onkeydown = (ev) => {
      if (ev.key === 'Escape') done();
    };
    yes.addEventListener('click', async () => {
      try {
        await call<AdminTicket>('POST', `/api/admin/tickets/${encodeURIComponent(x.ticket_code)}/cancel`);
        ticketsPage(main, t, me, input.value.trim(), t.ticketCancelled(x.ticket_code));
      } catch (e) {
        status.textContent = describe(e);
        done();
      }
    });
    confirm.replaceChildren(heading, el('p', {}, t.ticketCancelBody), el('div', { class: 'actions' }, yes, no));
    heading.focus();
  }

  more.addEventListener('click', () => void search(next));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    void search(null);
  });
  if (query) void search(null).then(() => (status.textContent = note || status.textContent));
}

interface RowError {
  line: number;
  ticket_code: string | null;
  message: string;
}

/** POST the file with a progress bar (XHR: fetch reports no upload progress). */
function upload(file: File, progress: HTMLProgressElement): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/api/admin/tickets/import/checked');
    xhr.setRequestHeader('Content-Type', 'text/csv');
    xhr.setRequestHeader('X-Entrada-Console', '1');
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.upload.onprogress = (ev) => {
      if (ev.lengthComputable) progress.value = ev.loaded / ev.total;
    };
    xhr.onload = () => {
      progress.value = 1;
      let body: unknown = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        // not JSON: reported by status below
      }
      resolve({ status: xhr.status, body });
    };
    xhr.onerror = () => reject(new Error('network error'));
    xhr.send(file);
  });
}

/** In place of the import form for a venue-bound token: why there is none. */
function importOrgOnly(t: Strings, venue: number): HTMLElement {
  return el(
    'section',
    { id: 'ticket-import-org-only', 'aria-labelledby': 'import-heading' },
    el('h2', { id: 'import-heading' }, t.importHeading),
    el('p', { class: 'note' }, t.importOrgOnly(venue)),
  );
}

/** The CSV import: every row is checked; any bad row imports nothing and is listed. */
function importForm(t: Strings, describe: (e: unknown) => string): HTMLElement {
  const file = el('input', { type: 'file', id: 'ticket-csv', name: 'csv', accept: '.csv,text/csv' });
  file.required = true;
  const progress = el('progress', { id: 'ticket-csv-progress', max: '1', value: '0', 'aria-label': t.importProgress });
  progress.hidden = true;
  const report = el('div', { id: 'ticket-csv-report', role: 'status', 'aria-live': 'polite' });
  const form = el(
    'form',
    { 'aria-labelledby': 'import-heading' },
    el('h2', { id: 'import-heading' }, t.importHeading),
    el('p', {}, t.importHelp),
    el('div', { class: 'field' }, el('label', { for: 'ticket-csv' }, t.importFileLabel), file),
    el('button', { type: 'submit' }, t.importButton),
    progress,
    report,
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = file.files?.[0];
    if (!f) return;
    progress.hidden = false;
    progress.value = 0;
    report.replaceChildren(t.importing);
    try {
      const { status, body } = await upload(f, progress);
      if (status === 201) {
        report.replaceChildren(el('p', {}, t.imported((body as { imported: number }).imported)));
        return;
      }
      const error = (body as { error?: { code: string; message: string; details: { rows?: RowError[] } | null } } | null)?.error;
      if (error?.code === 'ORG_ADMIN_ONLY') {
        report.replaceChildren(el('p', {}, t.orgAdminOnly));
      } else if (status === 403) {
        report.replaceChildren(el('p', {}, t.forbidden));
      } else if (error?.code === 'INVALID_ROWS' && error.details?.rows) {
        const rows = error.details.rows;
        report.replaceChildren(
          el('p', {}, t.importRefused(rows.length)),
          el(
            'table',
            {},
            el('caption', { class: 'visually-hidden' }, t.importReportCaption),
            el('thead', {}, el('tr', {}, ...[t.colLine, t.colCode, t.colProblem].map((c) => el('th', { scope: 'col' }, c)))),
            el(
              'tbody',
              {},
              ...rows.map((r) => el('tr', {}, el('th', { scope: 'row' }, String(r.line)), el('td', {}, r.ticket_code ?? '—'), el('td', {}, r.message))),
            ),
          ),
        );
      } else {
        report.replaceChildren(el('p', {}, t.failed(error?.message ?? String(status))));
      }
    } catch (e) {
      report.replaceChildren(el('p', {}, describe(e)));
    }
  });
  return form;
}
