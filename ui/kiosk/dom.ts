// The kiosk's shared DOM helpers: element builder, time and error formatting, toasts, the clock.

import type { CommandError } from './bindings/CommandError';
import { S, todayIso } from './strings';

// ------------------------------------------------------------------ DOM helpers

export type Child = Node | string | number | null | undefined | false;
export type Attrs = Record<string, string | number | boolean | null | undefined | ((e: Event) => void)>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.replace(/^on/, ''), v as EventListener);
    else if (k === 'class') el.className = String(v);
    else if (k in el && typeof v !== 'string') (el as unknown as Record<string, unknown>)[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c != null && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

export const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

export function fmtTime(iso: string | null | undefined, withSeconds = false): string {
  if (!iso) return S.none;
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', ...(withSeconds ? { second: '2-digit' } : {}), hour12: false });
  const day = `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
  return day === todayIso() ? `today ${time}` : `${day} ${time}`;
}

export function errorText(e: CommandError): string {
  return S.errors[e.code] ?? (e.message || S.errorUnknown);
}

let toastTimer = 0;
export function toast(text: string, kind: 'error' | 'ok' = 'error') {
  const t = $('toast');
  t.textContent = text;
  t.dataset.kind = kind;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = window.setTimeout(() => (t.hidden = true), kind === 'ok' ? 2500 : 5000);
}

// ------------------------------------------------------------------ clock

export function clockText() {
  return new Date().toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}

/** The time on every screen (slots are about time). It also means the page
 * repaints every second, which WebKit's WebDriver screenshots wait for. */
export function tickClock() {
  const t = clockText();
  for (const el of document.querySelectorAll<HTMLElement>('[data-clock]')) el.textContent = t;
}
