// Shared DOM helpers of the customer page: element builder, live regions,
// focus, form fields with their errors, busy buttons, date formatters.

import { pickStrings } from './strings';

export const S = pickStrings();

export type Attrs = Record<string, string | number | boolean | undefined | ((e: Event) => void)>;
type Child = Node | string | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
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

export const $ = <T extends HTMLElement = HTMLElement>(sel: string, root: ParentNode = document) => root.querySelector<T>(sel);
export const app = $('#app')!;
const alertBox = $('#alert')!;
const statusBox = $('#status')!;

export function say(msg: string) {
  // Clear first so that the same message twice is announced twice.
  statusBox.textContent = '';
  requestAnimationFrame(() => (statusBox.textContent = msg));
}
export function showError(msg: string) {
  alertBox.textContent = '';
  requestAnimationFrame(() => (alertBox.textContent = msg));
}
export function clearMessages() {
  alertBox.textContent = '';
  statusBox.textContent = '';
}
export function focus(el: HTMLElement | null) {
  if (!el) return;
  if (!el.hasAttribute('tabindex') && !/^(BUTTON|INPUT|A|SELECT|TEXTAREA)$/.test(el.tagName)) el.tabIndex = -1;
  el.focus();
}

/** Date formatters, made on first use (each costs a few ms on a slow phone). */
function lazyFormat(options: Intl.DateTimeFormatOptions) {
  let f: Intl.DateTimeFormat | null = null;
  return { format: (d: Date) => (f ??= new Intl.DateTimeFormat(S.locale, options)).format(d) };
}
export const fmtDay = lazyFormat({ weekday: 'long', day: 'numeric', month: 'long' });
export const fmtFullDay = lazyFormat({ weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' });
export const fmtMonth = lazyFormat({ month: 'long', year: 'numeric' });
export const fmtWeekday = lazyFormat({ weekday: 'short' });
export const fmtDateTime = lazyFormat({ dateStyle: 'long', timeStyle: 'short' });

// ---------------------------------------------------------------- form fields

export function field(id: string, label: string, hint: string, input: Attrs): HTMLElement {
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
export function report(errors: [string, string | null][]): boolean {
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

/** The server's 422 reasons, shown at the form's fields (`fieldIds` maps the
 *  server's field names to the inputs' ids; fields it does not name are cleared). */
export function reportServer(fields: Record<string, string>, fieldIds: Record<string, string>, labels: Record<string, string>): boolean {
  const shown = Object.keys(fields).filter((f) => f in fieldIds);
  if (shown.length === 0) return false;
  report(Object.entries(fieldIds).map(([f, id]) => [id, f in fields ? S.fieldReason(labels[f] ?? f, fields[f]) : null]));
  return true;
}

/** The "is required" check of a form (what to check is the server's job). */
export function required(id: string, label: string): [string, string | null] {
  const v = $<HTMLInputElement>(`#${id}`)?.value.trim() ?? '';
  return [id, v ? null : S.required(label)];
}

let busy = false;
export const isBusy = () => busy;
export function setBusy(btn: HTMLButtonElement, on: boolean, busyText: string) {
  busy = on;
  if (on) {
    btn.dataset.label = btn.textContent ?? '';
    btn.textContent = busyText;
    btn.setAttribute('aria-disabled', 'true');
    say(busyText);
  } else {
    btn.textContent = btn.dataset.label ?? btn.textContent;
    btn.removeAttribute('aria-disabled');
  }
}
export function notBusy() {
  busy = false;
}
