// The console's Tickets page (issue 16, track "16t"): search by code, order,
// e-mail or phone (keyset pages of GET /api/admin/tickets/search), and cancel
// a ticket (refund) with POST /api/admin/tickets/{code}/cancel, after an
// explicit confirmation. The server decides who may: a supervisor searches,
// only an admin cancels (a refusal is shown as it comes).

import { ApiError, call } from './api';
import type { ConsoleSession } from './bindings/ConsoleSession';
import { fileLine, IMPORT_PART_ROWS, SERVER_BODY_LIMIT, splitCsv, wentIn, type CsvPart } from './csv';
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
  /** INVALID, REPEATED_IN_FILE or EXISTS. */
  problem?: string;
  message: string;
  /** A code repeated in the part: the line (of the part) it is first on. */
  duplicate_of?: number;
}

/** POST a CSV part (XHR: fetch reports no upload progress); `onProgress`
 * gets the fraction of this request sent. */
function upload(url: string, body: string, onProgress: (sent: number) => void): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', url);
    xhr.setRequestHeader('Content-Type', 'text/csv');
    xhr.setRequestHeader('X-Entrada-Console', '1');
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.upload.onprogress = (ev) => {
      if (ev.lengthComputable) onProgress(ev.loaded / ev.total);
    };
    xhr.onload = () => {
      let answer: unknown = null;
      try {
        answer = JSON.parse(xhr.responseText);
      } catch {
        // not JSON: reported by status below
      }
      resolve({ status: xhr.status, body: answer });
    };
    xhr.onerror = () => reject(new Error('network error'));
    xhr.send(body);
  });
}

const IMPORT_URL = '/api/admin/tickets/import/checked';

type ApiErrorBody = {
  error?: { code: string; message: string; details: { rows?: RowError[]; ticket_codes?: (string | null)[] } | null };
} | null;

/** The outcome of a big import, for the report. */
type ImportOutcome =
  | { kind: 'imported'; imported: number }
  | { kind: 'bad-rows'; rows: RowError[] }
  | { kind: 'refused'; status: number; error: NonNullable<ApiErrorBody>['error'] }
  | { kind: 'partial'; imported: number; lastImportedLine: number; firstNotImported: number; lastLine: number; rows: RowError[]; reason: string }
  | { kind: 'uncertain'; imported: number; lastImportedLine: number; from: number; to: number; rest: [number, number] | null };

/** Tries of a part's import whose answer was lost (the connection dropped). */
const IMPORT_TRIES = 3;

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

type Answer = { status: number; body: unknown };

/** A part's import as it ended: imported (by the answer, or found in by a
 * check), refused by a real answer, every answer lost while checks said it
 * was not in, or not known. */
type PartOutcome =
  | { kind: 'imported'; imported: number }
  | { kind: 'refused'; answer: Answer }
  | { kind: 'lost' }
  | { kind: 'uncertain' };

/** No answer from Entrada itself: the connection dropped, the request timed
 * out (408: the server's timeout stops the answer, not a transaction already
 * running), or a proxy answered (5xx, or a body with no Entrada error). */
const answerLost = (r: Answer) =>
  r.status === 0 || r.status === 408 || r.status >= 500 || !(r.body as ApiErrorBody)?.error?.code;

/**
 * Imports one part. A part is one transaction of unique codes, so sending it
 * again is safe: it goes in, or is refused because it already did. Once an
 * answer was lost, every later non-201 answer is checked with a dry run
 * (`wentIn`) rather than believed: a "duplicate" may be this part's own
 * first try, which committed after all.
 */
async function importPart(part: CsvPart, sending: (f: number) => void, starting: () => void): Promise<PartOutcome> {
  let lost = false;
  let last: 'no' | 'unknown' = 'unknown';
  for (let attempt = 0; attempt < IMPORT_TRIES; attempt++) {
    starting();
    const r: Answer = await upload(IMPORT_URL, part.body, sending).catch(() => ({ status: 0, body: null }));
    if (r.status === 201) return { kind: 'imported', imported: (r.body as { imported: number }).imported };
    const lostNow = answerLost(r);
    if (!lostNow && !lost) return { kind: 'refused', answer: r };
    lost = true;
    await pause(1000 * (attempt + 1));
    const check: Answer = await upload(`${IMPORT_URL}?dry_run=true`, part.body, () => {}).catch(() => ({ status: 0, body: null }));
    const details = (check.body as ApiErrorBody)?.error?.details;
    const state = wentIn({ status: check.status, rows: details?.rows, ticket_codes: details?.ticket_codes });
    if (state.went === 'yes') return { kind: 'imported', imported: state.imported };
    // A real refusal that the check confirms: the part is not in.
    if (state.went === 'no' && !lostNow) return { kind: 'refused', answer: r };
    last = state.went;
  }
  return last === 'no' ? { kind: 'lost' } : { kind: 'uncertain' };
}

/**
 * Imports a CSV of any size, all or nothing as far as checking goes: every
 * part is first checked with `?dry_run=true` (rows, duplicates against the
 * org's tickets; a code repeated across parts is found here, by comparing
 * the codes the server read in each part), and nothing is imported if any
 * row anywhere is bad. Only then the parts are imported one by one, each in
 * one transaction; if one is refused then (a code created meanwhile), the
 * outcome says which lines were imported and which were not. A part whose
 * answer was lost is checked again: every row `EXISTS` means it went in (its
 * transaction committed), a clean check means it did not and it is sent
 * again; if the server cannot be asked, the outcome says those lines are
 * uncertain rather than "not imported".
 */
async function importInParts(
  text: string,
  progress: (done: number, step: string) => void,
  t: Strings,
): Promise<ImportOutcome> {
  const { parts } = splitCsv(text, IMPORT_PART_ROWS);
  if (parts.length === 0) parts.push({ body: text, rows: 0, fileLines: [], endLine: 1, bytes: text.length, partLines: [] }); // the server says why
  // A single row over the server's body limit would be a bare 413: name it.
  const tooLong = parts.filter((p) => p.bytes > SERVER_BODY_LIMIT && p.rows === 1);
  if (tooLong.length > 0) {
    progress(1, '');
    return { kind: 'bad-rows', rows: tooLong.map((p) => ({ line: p.fileLines[0], ticket_code: null, problem: 'INVALID', message: t.importRowTooLong })) };
  }
  const steps = parts.length * 2;
  const shift = (rows: RowError[], part: CsvPart): RowError[] =>
    rows.map((r) => {
      const line = fileLine(part, r.line);
      if (r.duplicate_of === undefined) return { ...r, line };
      const first = fileLine(part, r.duplicate_of);
      return { ...r, line, duplicate_of: first, message: t.importDuplicate(first) };
    });
  const bad: RowError[] = [];
  const firstLine = new Map<string, number>();
  for (const [i, part] of parts.entries()) {
    const step = t.importChecking(i + 1, parts.length);
    progress(i / steps, step);
    const r = await upload(`${IMPORT_URL}?dry_run=true`, part.body, (f) => progress((i + f) / steps, step));
    const error = (r.body as ApiErrorBody)?.error;
    // Each good row's code as the server read it (null: a bad row, already
    // reported): a code seen in an earlier part is a bad row of this one.
    const compare = (codes: (string | null)[]) =>
      codes.forEach((code, k) => {
        if (code === null) return;
        const line = part.fileLines[k] ?? k + 2;
        const first = firstLine.get(code);
        if (first === undefined) firstLine.set(code, line);
        else bad.push({ line, ticket_code: code, problem: 'REPEATED_IN_FILE', message: t.importDuplicate(first), duplicate_of: first });
      });
    if (r.status === 200) {
      compare((r.body as { ticket_codes: string[] }).ticket_codes);
    } else if (error?.code === 'INVALID_ROWS' && error.details?.rows) {
      bad.push(...shift(error.details.rows, part));
      compare(error.details.ticket_codes ?? []);
    } else {
      return { kind: 'refused', status: r.status, error };
    }
  }
  if (bad.length > 0) {
    progress(1, '');
    return { kind: 'bad-rows', rows: bad.sort((a, b) => a.line - b.line) };
  }
  const last = parts[parts.length - 1];
  const lastLine = last.endLine;
  let imported = 0;
  for (const [i, part] of parts.entries()) {
    const step = t.importImporting(i + 1, parts.length);
    const at = parts.length + i;
    const from = part.fileLines[0] ?? 2;
    const to = part.endLine;
    const sent = await importPart(part, (f) => progress((at + f) / steps, step), () => progress(at / steps, step));
    if (sent.kind === 'imported') {
      imported += sent.imported;
      continue;
    }
    progress(1, '');
    if (sent.kind === 'uncertain') return { kind: 'uncertain', imported, lastImportedLine: from - 1, from, to, rest: i + 1 < parts.length ? [parts[i + 1].fileLines[0], lastLine] : null };
    const r = sent.kind === 'refused' ? sent.answer : { status: 0, body: null };
    const error = (r.body as ApiErrorBody)?.error;
    if (i === 0 && sent.kind === 'refused') {
      if (error?.code === 'INVALID_ROWS' && error.details?.rows) return { kind: 'bad-rows', rows: shift(error.details.rows, part) };
      return { kind: 'refused', status: r.status, error };
    }
    return {
      kind: 'partial',
      imported,
      lastImportedLine: from - 1,
      firstNotImported: from,
      lastLine,
      rows: error?.code === 'INVALID_ROWS' && error.details?.rows ? shift(error.details.rows, part) : [],
      // lost: every try lost its answer, and a check said it did not go in.
      reason: sent.kind === 'lost' ? t.importLost(IMPORT_TRIES) : (error?.message ?? String(r.status)),
    };
  }
  progress(1, '');
  return { kind: 'imported', imported };
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
    const rowTable = (rows: RowError[]) =>
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
      );
    try {
      const text = await f.text();
      const outcome = await importInParts(
        text,
        (done, step) => {
          progress.value = done;
          if (step) report.replaceChildren(el('p', {}, step));
        },
        t,
      );
      if (outcome.kind === 'imported') {
        report.replaceChildren(el('p', {}, t.imported(outcome.imported)));
      } else if (outcome.kind === 'bad-rows') {
        report.replaceChildren(el('p', {}, t.importRefused(outcome.rows.length)), rowTable(outcome.rows));
      } else if (outcome.kind === 'partial') {
        report.replaceChildren(
          el('p', {}, t.importPartial(outcome.imported, outcome.lastImportedLine, outcome.firstNotImported, outcome.lastLine, outcome.reason)),
          ...(outcome.rows.length > 0 ? [rowTable(outcome.rows)] : []),
        );
      } else if (outcome.kind === 'uncertain') {
        report.replaceChildren(
          el('p', {}, t.importUncertain(outcome.imported, outcome.lastImportedLine, outcome.from, outcome.to, outcome.rest)),
        );
      } else if (outcome.error?.code === 'ORG_ADMIN_ONLY') {
        report.replaceChildren(el('p', {}, t.orgAdminOnly));
      } else if (outcome.status === 403) {
        report.replaceChildren(el('p', {}, t.forbidden));
      } else {
        report.replaceChildren(el('p', {}, t.failed(outcome.error?.message ?? String(outcome.status))));
      }
    } catch (e) {
      report.replaceChildren(el('p', {}, describe(e)));
    }
  });
  return form;
}
