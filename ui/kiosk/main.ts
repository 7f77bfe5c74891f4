// Entrada Gate: the kiosk screens (scanner, sign-in, slots, lookup, sync)
// over the Tauri commands. Every rule lives in Rust; this file shows what
// the GateService answers and sends what the operator does.

import './style.css';
import type { CameraStatus } from './bindings/CameraStatus';
import type { AppInfo } from './bindings/AppInfo';
import type { CommandError } from './bindings/CommandError';
import type { ConflictView } from './bindings/ConflictView';
import type { OperatorView } from './bindings/OperatorView';
import type { ScanOutcome } from './bindings/ScanOutcome';
import type { ScanSource } from './bindings/ScanSource';
import type { SettingsView } from './bindings/SettingsView';
import type { SlotView } from './bindings/SlotView';
import type { SyncView } from './bindings/SyncView';
import type { TicketLookupView } from './bindings/TicketLookupView';
import type { VerdictView } from './bindings/VerdictView';
import { playTone, unlockAudioOnGesture } from './sound';
import { S, todayIso } from './strings';
import { api, asCommandError, inTauri, on } from './tauri';
import { WedgeDetector } from './wedge';

/** How long a verdict stays on screen before "Ready" (a new scan replaces it at once). */
const VERDICT_MS = 4000;
/** An amber verdict stays until the operator decides, or this long. */
const DECIDE_MS = 60000;
const SLOT_DAYS = 6;

type Screen = 'scan' | 'slots' | 'lookup' | 'sync' | 'settings';
const SCREENS: Screen[] = ['scan', 'slots', 'lookup', 'sync', 'settings'];
/** Screens only a supervisor opens. */
const SUPERVISOR_SCREENS: Screen[] = ['settings'];

const state = {
  info: null as AppInfo | null,
  operator: null as OperatorView | null,
  operators: [] as OperatorView[],
  screen: 'scan' as Screen,
  sync: null as SyncView | null,
  last: null as ScanOutcome | null,
  recent: [] as { outcome: ScanOutcome; at: Date }[],
  verdictTimer: 0,
  slots: [] as SlotView[],
  conflicts: [] as ConflictView[],
  settings: null as SettingsView | null,
  lockedByTimeout: false,
};

// ------------------------------------------------------------------ DOM helpers

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | ((e: Event) => void)>;

function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
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

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

function fmtTime(iso: string | null | undefined, withSeconds = false): string {
  if (!iso) return S.none;
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', ...(withSeconds ? { second: '2-digit' } : {}), hour12: false });
  const day = `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
  return day === todayIso() ? `today ${time}` : `${day} ${time}`;
}

const operatorName = (id: number | null | undefined) =>
  id == null ? S.none : S.operatorName(id, state.operators.find((o) => o.id === id)?.display_name);

function errorText(e: CommandError): string {
  return S.errors[e.code] ?? (e.message || S.errorUnknown);
}

let toastTimer = 0;
function toast(text: string, kind: 'error' | 'ok' = 'error') {
  const t = $('toast');
  t.textContent = text;
  t.dataset.kind = kind;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = window.setTimeout(() => (t.hidden = true), kind === 'ok' ? 2500 : 5000);
}

/** Runs a command; a LOCKED answer shows the sign-in screen. */
async function run<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (raw) {
    const e = asCommandError(raw);
    if (e.code === 'LOCKED') locked(true);
    throw e;
  }
}

// ------------------------------------------------------------------ shell

function renderBar() {
  $('bar').hidden = !state.operator;
  $('venue').textContent = state.info?.venue_name ?? S.appName;
  const tabs = $('tabs');
  tabs.replaceChildren(
    ...SCREENS.filter((s) => state.operator?.is_supervisor || !SUPERVISOR_SCREENS.includes(s)).map((s) =>
      h('button', { type: 'button', id: `nav-${s}`, class: 'tab', 'aria-current': state.screen === s ? 'page' : null, onclick: () => show(s) }, S.nav[s]),
    ),
  );
  const who = $('who');
  who.replaceChildren(
    state.operator ? h('span', { class: 'who-name' }, state.operator.display_name) : '',
    state.operator ? h('span', { class: 'who-role' }, S.roles[state.operator.role] ?? state.operator.role) : '',
  );
  $('lock').textContent = S.lock;
  renderSyncPill();
}

function renderSyncPill() {
  const pill = $('sync-pill');
  const s = state.sync;
  pill.dataset.mode = s?.mode ?? '';
  pill.replaceChildren(
    h('span', { class: 'dot' }),
    h('span', { id: 'sync-pill-mode' }, s ? (S.modes[s.mode] ?? s.mode) : '…'),
    s && s.pending > 0 ? h('span', { class: 'pill-pending', id: 'sync-pill-pending' }, S.pendingPill(s.pending)) : '',
    s?.clock_suspect ? h('span', { class: 'pill-warn' }, '⚠') : '',
  );
}

function show(screen: Screen) {
  if (SUPERVISOR_SCREENS.includes(screen) && !state.operator?.is_supervisor) screen = 'scan';
  if (screen !== state.screen) $('toast').hidden = true;
  state.screen = screen;
  for (const s of SCREENS) $(`screen-${s}`).hidden = s !== screen;
  renderBar();
  if (screen === 'slots') void loadSlots();
  if (screen === 'sync') void loadSync(true);
  if (screen === 'settings') void loadSettings();
  if (screen === 'lookup') $<HTMLInputElement>('lookup-q')?.focus();
}

// ------------------------------------------------------------------ sign-in

let pinFor: OperatorView | null = null;
let pin = '';

/** Operators locked by wrong PINs: id → when (Date.now()) they may try again.
 *  Fed by the gate (which keeps the lock in its database, across restarts). */
const pinLocks = new Map<number, number>();
let lockTicker = 0;

function setOperators(ops: OperatorView[]) {
  state.operators = ops;
  for (const o of ops) if (o.locked_secs) noteLock(o.id, o.locked_secs);
}

function noteLock(id: number, secs: number) {
  pinLocks.set(id, Date.now() + secs * 1000);
  if (lockTicker) return;
  // One ticker updates every countdown on screen while any lock runs.
  lockTicker = window.setInterval(() => {
    let running = false;
    for (const id of [...pinLocks.keys()]) running = lockedSecs(id) > 0 || running;
    for (const el of document.querySelectorAll<HTMLElement>('[data-lock-for]')) {
      const left = lockedSecs(Number(el.dataset.lockFor));
      el.textContent = left > 0 ? S.pinLocked(countdown(left)) : '';
    }
    if (!running) {
      clearInterval(lockTicker);
      lockTicker = 0;
      if (!state.operator) renderSignIn();
    }
  }, 1000);
}

function lockedSecs(id: number): number {
  const until = pinLocks.get(id);
  if (until == null) return 0;
  const left = Math.ceil((until - Date.now()) / 1000);
  if (left <= 0) pinLocks.delete(id);
  return Math.max(0, left);
}

const countdown = (secs: number) => `${Math.floor(secs / 60)}:${String(secs % 60).padStart(2, '0')}`;

function locked(byTimeout: boolean) {
  if (!state.operator && !$('signin').hidden) return;
  state.operator = null;
  state.lockedByTimeout = byTimeout;
  pinFor = null;
  pin = '';
  void api.operators().then((ops) => {
    setOperators(ops);
    renderSignIn();
  }, () => renderSignIn());
  renderSignIn();
  renderBar();
}

async function refreshOperators() {
  const ops = await api.operators().catch(() => null);
  if (!ops || JSON.stringify(ops) === JSON.stringify(state.operators)) return;
  setOperators(ops);
  if (!state.operator && !pinFor) renderSignIn();
}

function renderSignIn(error = '') {
  const root = $('signin');
  const signedIn = !!state.operator;
  root.hidden = signedIn;
  $('screens').hidden = !signedIn;
  document.body.dataset.signedIn = signedIn ? '1' : '0';
  if (signedIn) return;
  const head = h('div', { class: 'signin-head' },
    h('div', { class: 'brand big' }, h('span', { class: 'logo' }, 'E'), S.appName),
    state.info?.venue_name ? h('div', { class: 'venue-big' }, state.info.venue_name) : '',
    h('div', { class: 'clock', 'data-clock': '' }, clockText()),
  );
  if (!pinFor) {
    root.replaceChildren(
      head,
      h('h1', {}, S.signInTitle),
      h('p', { class: 'hint' }, state.lockedByTimeout ? S.lockedReason : S.signInHint),
      state.operators.length
        ? h('div', { class: 'operators' }, ...state.operators.map((o) =>
            h('button', { type: 'button', class: 'op', 'data-id': o.id, onclick: () => { pinFor = o; pin = ''; renderSignIn(); } },
              h('span', { class: 'avatar' }, o.display_name.slice(0, 1).toUpperCase()),
              h('span', { class: 'op-name' }, o.display_name),
              h('span', { class: 'op-role' }, S.roles[o.role] ?? o.role),
              lockedSecs(o.id) > 0 ? h('span', { class: 'op-lock', 'data-lock-for': o.id }, S.pinLocked(countdown(lockedSecs(o.id)))) : null)))
        : h('p', { class: 'hint' }, S.noOperators),
    );
    return;
  }
  const dots = h('div', { class: 'pin-dots', id: 'pin-dots', 'aria-label': `${pin.length} digits` },
    ...Array.from({ length: Math.max(4, pin.length) }, (_, i) => h('span', { class: i < pin.length ? 'on' : '' })));
  // Locked by wrong PINs: the pad waits out the countdown.
  const wait = lockedSecs(pinFor.id);
  const key = (k: string, label = k, cls = '') =>
    h('button', { type: 'button', class: `pin-key ${cls}`, 'data-key': k, disabled: wait > 0, onclick: () => pinKey(k) }, label);
  root.replaceChildren(
    head,
    h('h1', {}, S.pinTitle(pinFor.display_name)),
    dots,
    h('p', { class: 'pin-error', id: 'pin-error', role: 'alert', 'data-lock-for': wait > 0 ? pinFor.id : null },
      wait > 0 ? S.pinLocked(countdown(wait)) : error),
    h('div', { class: 'pin-pad' },
      ...'123456789'.split('').map((d) => key(d)),
      key('clear', S.pinClear, 'soft'), key('0'), key('ok', S.pinOk, 'go')),
    h('button', { type: 'button', class: 'btn ghost', id: 'pin-back', onclick: () => { pinFor = null; renderSignIn(); } }, `← ${S.pinBack}`),
  );
}

function pinKey(k: string) {
  if (!pinFor || lockedSecs(pinFor.id) > 0) return;
  if (k === 'clear') pin = '';
  else if (k === 'back') pin = pin.slice(0, -1);
  else if (k === 'ok') return void submitPin();
  else if (pin.length < 8) pin += k;
  renderSignIn();
}

async function submitPin() {
  if (!pinFor || pin.length === 0) return;
  try {
    state.operator = await api.signIn(pinFor.id, pin);
    state.lockedByTimeout = false;
    pinFor = null;
    pin = '';
    renderSignIn();
    show(state.screen);
    renderScanner();
  } catch (raw) {
    pin = '';
    const e = asCommandError(raw);
    if (e.code === 'PIN_LOCKED' && pinFor) noteLock(pinFor.id, e.retry_after_secs ?? 30);
    renderSignIn(errorText(e));
  }
}

// ------------------------------------------------------------------ scanner

function buildScanner() {
  const root = $('screen-scan');
  const manual = h('form', { class: 'manual', id: 'manual-form', autocomplete: 'off' },
    h('label', { for: 'manual-code' }, S.manualLabel),
    h('div', { class: 'manual-row' },
      h('input', { id: 'manual-code', type: 'text', placeholder: S.manualPlaceholder, spellcheck: 'false', autocapitalize: 'characters' }),
      h('button', { type: 'submit', class: 'btn primary', id: 'manual-submit' }, S.manualSubmit)));
  manual.addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $<HTMLInputElement>('manual-code');
    const code = input.value.trim();
    if (!code) return;
    input.value = '';
    input.blur();
    void scan(code, 'manual');
  });
  root.replaceChildren(
    h('div', { class: 'verdict', id: 'verdict', 'data-tone': 'ready', 'aria-live': 'assertive' }),
    h('aside', { class: 'side' },
      h('div', { class: 'preview' },
        h('img', { id: 'preview', alt: '' }),
        h('div', { class: 'cam-status', id: 'cam-status', 'data-ok': '' }, S.cameraWaiting)),
      h('div', { class: 'counter', id: 'counter' }),
      manual,
      h('div', { class: 'recent' }, h('h2', {}, S.recent), h('ol', { id: 'recent' }))),
  );
}

function verdictDetail(v: VerdictView): string[] {
  const lines: string[] = [];
  const slot = S.slotLine(v.slot_date, v.slot_start_time, v.slot_end_time);
  switch (v.verdict) {
    case 'ADMIT':
      if (slot) lines.push(slot);
      if (v.overruled) lines.push(S.overruledLine(S.reasons[v.overruled] ?? v.overruled));
      break;
    case 'ALREADY_VERIFIED':
      lines.push(S.verifiedAt(fmtTime(v.verified_at, true), operatorName(v.verified_by)));
      break;
    case 'WRONG_DATE':
    case 'OUTSIDE_SLOT_WINDOW':
      if (slot) lines.push(S.reservedFor(slot));
      break;
    case 'EXPIRED':
      if (v.expires_at) lines.push(S.expiredAt(fmtTime(v.expires_at)));
      break;
  }
  const hint = S.hints[v.verdict];
  if (hint) lines.push(hint);
  if (v.tone === 'decide') lines.push(S.decideHint);
  return lines;
}

function renderScanner() {
  const box = $('verdict');
  if (!box) return;
  const o = state.last;
  if (!o) {
    box.dataset.tone = 'ready';
    box.replaceChildren(
      h('div', { class: 'v-icon ready-icon', 'aria-hidden': 'true' }, h('span', {})),
      h('div', { class: 'v-title', id: 'verdict-title' }, S.ready),
      h('div', { class: 'v-sub' }, S.readyHint),
    );
  } else {
    const v = o.verdict;
    box.dataset.tone = v.tone;
    box.dataset.verdict = v.verdict;
    // Amber keeps its headline short: the decision buttons must fit below it.
    const title = v.admit ? S.admit : v.tone === 'decide' ? (S.reasons[v.verdict] ?? v.message) : (v.message || S.reasons[v.verdict] || v.verdict);
    box.replaceChildren(
      h('div', { class: 'v-icon', 'aria-hidden': 'true' }, v.tone === 'admit' ? '✓' : v.tone === 'refuse' ? '✕' : '!'),
      h('div', { class: 'v-title', id: 'verdict-title' }, title),
      v.admit ? h('div', { class: 'v-sub' }, S.reasons.ADMIT) : '',
      h('div', { class: 'v-details', id: 'verdict-details' }, ...verdictDetail(v).map((l) => h('div', {}, l))),
      v.tone === 'decide' && o.payload
        ? h('div', { class: 'decide-actions' },
            h('button', { type: 'button', class: 'btn decide-admit', id: 'decide-admit', onclick: (e: Event) => void admitAnyway(o, e) }, S.decideAdmit),
            h('button', { type: 'button', class: 'btn decide-refuse', id: 'decide-refuse', onclick: (e: Event) => refuseDecided(o, e) }, S.decideRefuse))
        : '',
      h('div', { class: 'v-code' }, v.ticket_code ?? '', h('span', { class: 'v-src' }, ` · ${S.sources[o.source] ?? o.source} · ${o.ms.toFixed(1)} ms`)),
    );
  }
  const counter = $('counter');
  // The slot of the latest admission (a refusal for another day says little about this gate's slot).
  const withSlot = state.recent.filter((r) => r.outcome.admitted_in_slot != null);
  const c = (withSlot.find((r) => r.outcome.verdict.admit) ?? withSlot[0])?.outcome;
  counter.replaceChildren(
    h('div', { class: 'counter-label' }, S.counterLabel),
    c
      ? h('div', { class: 'counter-row' },
          h('span', { class: 'counter-n', id: 'counter-n' }, c.admitted_in_slot ?? 0),
          h('span', { class: 'counter-slot' }, S.slotLine(c.verdict.slot_date, c.verdict.slot_start_time, c.verdict.slot_end_time)))
      : h('div', { class: 'counter-none' }, S.counterNone),
  );
  $('recent').replaceChildren(
    ...state.recent.slice(0, 5).map(({ outcome, at }) =>
      h('li', { 'data-tone': outcome.verdict.tone },
        h('span', { class: 'r-dot' }),
        h('span', { class: 'r-what' }, outcome.verdict.admit ? S.admit : (S.reasons[outcome.verdict.verdict] ?? outcome.verdict.verdict)),
        h('span', { class: 'r-code' }, outcome.verdict.ticket_code ?? ''),
        h('span', { class: 'r-at' }, at.toLocaleTimeString([], { hour12: false })))),
  );
}

function showOutcome(o: ScanOutcome) {
  state.last = o;
  state.recent.unshift({ outcome: o, at: new Date() });
  state.recent.length = Math.min(state.recent.length, 20);
  playTone(o.verdict.tone);
  if (state.screen !== 'scan') show('scan');
  renderScanner();
  clearTimeout(state.verdictTimer);
  // An amber verdict waits for the operator's call (the next scan replaces it).
  state.verdictTimer = window.setTimeout(dismissVerdict, o.verdict.tone === 'decide' ? DECIDE_MS : VERDICT_MS);
}

function dismissVerdict() {
  clearTimeout(state.verdictTimer);
  state.last = null;
  renderScanner();
}

/** One decision per amber verdict: a double tap must not send a second one. */
function decided(e: Event): boolean {
  const buttons = (e.currentTarget as HTMLElement).parentElement?.querySelectorAll('button') ?? [];
  if ([...buttons].some((b) => b.disabled)) return false;
  for (const b of buttons) b.disabled = true;
  return true;
}

/** The operator does not let the holder in: nothing is recorded. */
function refuseDecided(o: ScanOutcome, e: Event) {
  if (!o.payload || !decided(e)) return;
  void api.dismissScan(o.payload).catch(() => undefined);
  dismissVerdict();
}

/** The operator lets the holder of an amber verdict in: recorded like an ADMIT. */
async function admitAnyway(o: ScanOutcome, e: Event) {
  if (!o.payload || !decided(e)) return;
  const buttons = (e.currentTarget as HTMLElement | null)?.parentElement?.querySelectorAll('button');
  try {
    showOutcome(await run(api.admitAnyway(o.payload, o.source, o.verdict.verdict)));
    void refreshSync();
  } catch (raw) {
    const err = asCommandError(raw);
    if (err.code === 'LOCKED') return;
    toast(errorText(err));
    // Nothing was recorded: the operator may decide again.
    for (const b of buttons ?? []) b.disabled = false;
  }
}

async function scan(payload: string, source: ScanSource) {
  if (!state.operator) {
    toast(S.signInFirst);
    return;
  }
  try {
    showOutcome(await run(api.scanCode(payload, source)));
    void refreshSync();
  } catch (raw) {
    const e = asCommandError(raw);
    if (e.code !== 'LOCKED') toast(errorText(e));
  }
}

// ------------------------------------------------------------------ USB scanner (keyboard wedge)

const wedge = new WedgeDetector();

function onKey(e: KeyboardEvent) {
  if (e.ctrlKey || e.altKey || e.metaKey) return;
  const ch = e.key === 'Enter' ? '\n' : e.key.length === 1 ? e.key : '';
  if (!ch) return;
  // The sign-in screen's PIN pad also takes digits from a keyboard.
  if (!state.operator && pinFor && ch !== '\n' && /\d/.test(ch)) pinKey(ch);
  // Fields that take long pasted or scanned text (a device token, a folder)
  // keep it: a fast burst there is not a ticket.
  if (document.activeElement instanceof HTMLElement && document.activeElement.dataset.wedge === 'off') return;
  // The event's own time when it is on the page's clock (synthetic events,
  // e.g. WebDriver's, can carry another time base), else the time now.
  const now = performance.now();
  const t = e.timeStamp > 0 && Math.abs(now - e.timeStamp) < 1000 ? e.timeStamp : now;
  const got = wedge.feed(ch, t);
  if (got) document.body.dataset.lastLine = `${got.kind}:${got.text}`;
  if (ch === '\n' && !state.operator && pinFor && got?.kind !== 'scan') {
    e.preventDefault();
    void submitPin();
    return;
  }
  if (got?.kind !== 'scan') return;
  // A scanner typed into whatever has focus: take its text back out and scan it.
  e.preventDefault();
  e.stopPropagation();
  const target = document.activeElement;
  if (target instanceof HTMLInputElement && target.value.endsWith(got.text)) {
    target.value = target.value.slice(0, -got.text.length);
  }
  void scan(got.text.trim(), 'wedge');
}

// ------------------------------------------------------------------ slots (supervisor)

function buildSlots() {
  $('screen-slots').replaceChildren(
    h('div', { class: 'page-head' },
      h('h1', {}, S.slotsTitle),
      h('p', { class: 'hint', id: 'slots-hint' }, S.slotsHint)),
    h('div', { class: 'banner error', id: 'slot-error', role: 'alert', hidden: true }),
    h('div', { class: 'table-wrap' }, h('table', { class: 'slots', id: 'slots-table' })),
  );
}

async function loadSlots() {
  try {
    state.slots = await run(api.slots(SLOT_DAYS));
  } catch (raw) {
    showSlotError(asCommandError(raw));
  }
  renderSlots();
}

function showSlotError(e: CommandError | null, slot?: SlotView) {
  const box = $('slot-error');
  if (!e) {
    box.hidden = true;
    return;
  }
  const where = slot ? `${slot.date === todayIso() ? 'Today' : slot.date} ${slot.start_time}–${slot.end_time}: ` : '';
  box.replaceChildren(
    h('strong', {}, where + errorText(e)),
    e.message && S.errors[e.code] ? h('div', { class: 'err-detail' }, e.message) : '',
  );
  box.dataset.code = e.code;
  box.hidden = false;
}

function renderSlots() {
  const sup = !!state.operator?.is_supervisor;
  $('slots-hint').textContent = sup ? S.slotsHint : `${S.slotsHint} ${S.slotsReadOnly}`;
  const table = $('slots-table');
  const c = S.slotCols;
  const head = h('thead', {}, h('tr', {}, h('th', {}, c.when), h('th', {}, c.booked), h('th', {}, c.capacity), h('th', {}, c.admitted), h('th', {}, c.status), sup ? h('th', {}, c.actions) : ''));
  if (!state.slots.length) {
    table.replaceChildren(head, h('tbody', {}, h('tr', {}, h('td', { colspan: 6, class: 'empty' }, S.noSlots))));
    return;
  }
  const rows = state.slots.map((s) => {
    const pct = s.total_capacity > 0 ? Math.min(100, Math.round((s.booked_count / s.total_capacity) * 100)) : 100;
    const cap = h('input', { type: 'number', class: 'cap-input', min: s.booked_count, value: s.total_capacity, inputmode: 'numeric', 'aria-label': c.capacity });
    const step = (d: number) => () => (cap.value = String(Math.max(0, Number(cap.value || 0) + d)));
    return h('tr', { 'data-slot-id': s.id, 'data-status': s.status, class: s.date === todayIso() ? 'today' : '' },
      h('td', { class: 'when' }, h('div', { class: 'when-day' }, s.date === todayIso() ? 'Today' : s.date), h('div', { class: 'when-time' }, `${s.start_time}–${s.end_time}`)),
      h('td', { class: 'booked' },
        h('div', { class: 'num' }, h('span', { class: 'booked-n' }, s.booked_count), ` / `, h('span', { class: 'cap-n' }, s.total_capacity)),
        h('div', { class: 'bar-track' }, h('div', { class: 'bar-fill', style: `width:${pct}%` })),
        h('div', { class: 'small' }, S.free(s.available_count))),
      h('td', { class: 'cap' }, sup
        ? h('div', { class: 'stepper' },
            h('button', { type: 'button', class: 'btn step', 'aria-label': '−10', onclick: step(-10) }, '−'),
            cap,
            h('button', { type: 'button', class: 'btn step', 'aria-label': '+10', onclick: step(10) }, '+'),
            h('button', { type: 'button', class: 'btn primary cap-save', onclick: () => void changeSlot(s, Number(cap.value), null) }, S.save))
        : h('span', { class: 'num' }, s.total_capacity)),
      h('td', { class: 'num admitted' }, s.admitted),
      h('td', {}, h('span', { class: `badge ${s.status.toLowerCase()}` }, S.slotStatus[s.status] ?? s.status)),
      sup ? h('td', {}, h('button', {
        type: 'button', class: `btn ${s.status === 'CLOSED' ? '' : 'danger'} status-toggle`,
        onclick: () => void changeSlot(s, null, s.status === 'CLOSED' ? 'ACTIVE' : 'CLOSED'),
      }, s.status === 'CLOSED' ? S.reopen : S.close)) : '',
    );
  });
  table.replaceChildren(head, h('tbody', {}, ...rows));
}

async function changeSlot(slot: SlotView, capacity: number | null, status: string | null) {
  showSlotError(null);
  try {
    const changed = await run(api.changeSlot(slot.id, capacity, status));
    state.slots = state.slots.map((s) => (s.id === changed.id ? changed : s));
    renderSlots();
    toast(S.slotSaved(`${changed.date} ${changed.start_time}–${changed.end_time}: ${changed.total_capacity}, ${S.slotStatus[changed.status] ?? changed.status}`), 'ok');
    void refreshSync();
  } catch (raw) {
    showSlotError(asCommandError(raw), slot);
  }
}

// ------------------------------------------------------------------ lookup

function buildLookup() {
  const form = h('form', { class: 'search', autocomplete: 'off' },
    h('input', { id: 'lookup-q', type: 'search', placeholder: S.lookupPlaceholder, spellcheck: 'false' }),
    h('button', { type: 'submit', class: 'btn primary', id: 'lookup-go' }, S.lookupGo));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void doLookup($<HTMLInputElement>('lookup-q').value.trim());
  });
  $('screen-lookup').replaceChildren(
    h('div', { class: 'page-head' }, h('h1', {}, S.lookupTitle)),
    form,
    h('div', { class: 'results', id: 'lookup-results' }),
  );
}

async function doLookup(q: string) {
  if (!q) return;
  const out = $('lookup-results');
  try {
    const found = await run(api.lookup(q));
    out.replaceChildren(...(found.length ? found.map(lookupCard) : [h('p', { class: 'hint', id: 'lookup-none' }, S.lookupNone)]));
  } catch (raw) {
    const e = asCommandError(raw);
    out.replaceChildren(h('div', { class: 'banner error' }, errorText(e)));
  }
}

function lookupCard(t: TicketLookupView) {
  const f = S.lookupFields;
  const admit = t.gate_verdict === 'ADMIT';
  const row = (k: string, v: Child, cls = '') => h('div', { class: `kv ${cls}` }, h('dt', {}, k), h('dd', {}, v ?? S.none));
  return h('article', { class: 'lookup-result', 'data-code': t.ticket_code },
    h('header', {},
      h('span', { class: 'code' }, t.ticket_code),
      h('span', { class: `badge ${admit ? 'admit' : 'refuse'}`, 'data-verdict': t.gate_verdict }, `${f.gate}: ${admit ? S.admit : (S.reasons[t.gate_verdict] ?? t.gate_verdict)}`)),
    h('dl', {},
      row(f.status, t.status),
      row(f.activation, t.activation_status),
      row(f.email, t.customer_email),
      row(f.phone, t.customer_phone),
      row(f.reservation, t.reservation_status),
      row(f.slot, t.slot_date ? S.slotLine(t.slot_date, t.slot_start_time, t.slot_end_time) : null),
      row(f.verified, t.verified_at ? S.verifiedAt(fmtTime(t.verified_at, true), operatorName(t.verified_by)) : S.notYet, t.verified_at ? 'warn' : '')),
  );
}

// ------------------------------------------------------------------ sync

function buildSync() {
  $('screen-sync').replaceChildren(
    h('div', { class: 'page-head' }, h('h1', {}, S.syncTitle)),
    h('div', { id: 'sync-body' }),
  );
}

async function refreshSync() {
  try {
    state.sync = await api.syncStatus();
  } catch {
    return;
  }
  renderSyncPill();
  if (state.screen === 'sync') renderSync();
}

async function loadSync(withConflicts: boolean) {
  await refreshSync();
  if (withConflicts) {
    try {
      state.conflicts = await api.conflicts();
    } catch {
      /* shown as none */
    }
  }
  renderSync();
}

function renderSync() {
  const s = state.sync;
  const body = $('sync-body');
  if (!s || !body) return;
  const f = S.syncFields;
  const stat = (id: string, label: string, value: Child, tone = '') =>
    h('div', { class: `stat ${tone}`, id }, h('div', { class: 'stat-v' }, value), h('div', { class: 'stat-k' }, label));
  const conflicts = state.conflicts;
  const next = h('div', {},
    h('div', { class: 'mode-card', 'data-mode': s.mode },
      h('span', { class: 'mode-dot' }),
      h('div', {}, h('div', { class: 'mode-name', id: 'sync-mode' }, S.modes[s.mode] ?? s.mode), h('div', { class: 'mode-hint' }, S.modeHints[s.mode] ?? '')),
      s.mode === 'standalone'
        ? state.operator?.is_supervisor
          ? h('button', { type: 'button', class: 'btn primary pair-link', id: 'sync-pair', onclick: () => show('settings') }, S.pairFromSync)
          : h('div', { class: 'small pair-link' }, S.pairAskSupervisor)
        : ''),
    s.clock_suspect ? h('div', { class: 'banner warn', id: 'clock-warning' }, S.clockWarning(s.clock_offset_ms)) : '',
    s.stopped
      ? h('div', { class: 'banner error', id: 'sync-stopped', role: 'alert' }, S.syncStopped)
      : s.retry
        ? h('div', { class: 'banner warn', id: 'sync-retry', 'data-code': s.retry.error_code },
            h('strong', {}, S.retry.title),
            h('div', { id: 'sync-retry-code' }, `${s.retry.error_code} · ${S.retry.attempts(s.retry.attempts)}`),
            s.retry.next_attempt_at ? h('div', { id: 'sync-retry-next' }, S.retry.nextAt(fmtTime(s.retry.next_attempt_at, true))) : '',
            h('div', { class: 'small' }, S.retry.hints[s.retry.error_code] ?? S.retry.hint))
        : '',
    h('div', { class: 'stats' },
      stat('sync-last', f.lastSync, s.last_sync_at ? fmtTime(s.last_sync_at, true) : S.never),
      stat('sync-pending', f.pending, s.pending, s.pending > 0 ? 'warn' : ''),
      stat('sync-rejected', f.rejected, s.rejected, s.rejected > 0 ? 'bad' : ''),
      stat('sync-conflicts', f.conflicts, s.conflicts, s.conflicts > 0 ? 'bad' : '')),
    h('dl', { class: 'facts' },
      h('div', { class: 'kv' }, h('dt', {}, f.server), h('dd', {}, s.server_url ?? S.none)),
      h('div', { class: 'kv' }, h('dt', {}, f.device), h('dd', {}, s.device_id ?? S.none)),
      h('div', { class: 'kv' }, h('dt', {}, f.clock), h('dd', {}, s.clock_offset_ms == null ? S.none : s.clock_suspect ? S.clockWarning(s.clock_offset_ms) : S.clockOk(s.clock_offset_ms))),
      s.last_error ? h('div', { class: 'kv warn' }, h('dt', {}, f.lastError), h('dd', { id: 'sync-error' }, s.last_error)) : ''),
    h('h2', {}, S.conflictsTitle),
    conflicts.length
      ? h('table', { class: 'conflicts', id: 'conflicts' },
          h('thead', {}, h('tr', {}, h('th', {}, S.conflictCols.ticket), h('th', {}, S.conflictCols.first), h('th', {}, S.conflictCols.second))),
          h('tbody', {}, ...conflicts.map((c) => h('tr', {},
            h('td', { class: 'code' }, c.ticket_code),
            h('td', {}, c.kind === 'DOUBLE_ENTRY'
              ? S.conflictScan(fmtTime(c.first_at, true), c.first_device_id, c.first_operator_id, state.operators.find((o) => o.id === c.first_operator_id)?.display_name)
              : S.conflictServerSide(c.kind)),
            h('td', {}, S.conflictScan(fmtTime(c.second_at, true), c.second_device_id, c.second_operator_id, state.operators.find((o) => o.id === c.second_operator_id)?.display_name))))))
      : h('p', { class: 'hint', id: 'conflicts-none' }, S.conflictsNone),
  );
  // Sync events arrive every few seconds; replacing an unchanged screen
  // would swallow a press that lands between mousedown and mouseup (the
  // button is a new node) and repaint for nothing.
  if (next.innerHTML === body.innerHTML) return;
  body.replaceChildren(...next.childNodes);
}

// ------------------------------------------------------------------ settings (supervisor)

function buildSettings() {
  $('screen-settings').replaceChildren(
    h('div', { class: 'page-head' }, h('h1', {}, S.settingsTitle), h('p', { class: 'hint' }, S.settingsHint)),
    h('div', { class: 'banner error', id: 'settings-error', role: 'alert', hidden: true }),
    h('div', { class: 'settings', id: 'settings-body' }),
  );
}

async function loadSettings() {
  showSettingsError(null);
  try {
    state.settings = await run(api.settings());
  } catch (raw) {
    showSettingsError(asCommandError(raw));
    return;
  }
  renderSettings();
}

function showSettingsError(e: CommandError | null) {
  const box = $('settings-error');
  if (!e) {
    box.hidden = true;
    return;
  }
  box.replaceChildren(
    h('strong', {}, errorText(e)),
    e.message && S.errors[e.code] ? h('div', { class: 'err-detail' }, e.message) : '',
  );
  box.dataset.code = e.code;
  box.hidden = false;
}

const fixedNote = (v: SettingsView, key: string) =>
  v.fixed.includes(key) ? h('p', { class: 'small fixed-note' }, S.fixedByFlag) : '';

function renderSettings() {
  const v = state.settings;
  if (!v) return;
  // --- server
  const url = h('input', { id: 'pair-url', 'data-wedge': 'off', type: 'text', placeholder: S.serverUrlPlaceholder, value: v.server_url ?? '', spellcheck: 'false', autocapitalize: 'off', inputmode: 'url' });
  const token = h('input', { id: 'pair-token', 'data-wedge': 'off', type: 'password', placeholder: S.deviceTokenPlaceholder, spellcheck: 'false', autocomplete: 'off' });
  // The venue's own CA: a PEM file's path, or its text pasted; empty keeps the one in use.
  const caCert = h('textarea', { id: 'pair-ca', 'data-wedge': 'off', rows: 2, placeholder: S.caCertPlaceholder, spellcheck: 'false', autocapitalize: 'off', autocomplete: 'off' });
  const pairForm = h('form', { class: 'settings-form', id: 'pair-form', autocomplete: 'off' },
    h('label', { for: 'pair-url' }, S.serverUrl), url,
    h('label', { for: 'pair-token' }, S.deviceToken), token,
    h('label', { for: 'pair-ca' }, S.caCert), caCert,
    h('p', { class: 'small', id: 'pair-ca-hint' }, S.caCertHint),
    h('div', { class: 'form-actions' },
      h('button', { type: 'submit', class: 'btn primary', id: 'pair-submit' }, S.pairButton),
      h('span', { class: 'form-status', id: 'pair-status', 'aria-live': 'polite' })));
  pairForm.addEventListener('submit', (e) => {
    e.preventDefault();
    void pairDevice(url.value.trim(), token.value.trim(), caCert.value.trim());
  });
  // --- camera
  const select = h('select', { id: 'camera-select', 'aria-label': S.cameraSelect });
  const options = [...v.camera_options];
  const inFolder = v.camera.startsWith('folder:');
  if (!inFolder && !options.some((o) => o.value === v.camera)) options.push({ value: v.camera, label: v.camera });
  for (const o of options) select.append(h('option', { value: o.value }, o.label));
  select.append(h('option', { value: 'folder' }, S.cameraFolder));
  select.value = inFolder ? 'folder' : v.camera;
  const folder = h('input', { id: 'camera-folder', 'data-wedge': 'off', type: 'text', placeholder: S.cameraFolderPlaceholder, value: inFolder ? v.camera.slice('folder:'.length) : '', spellcheck: 'false' });
  const folderRow = h('div', { class: 'folder-row', hidden: !inFolder }, h('label', { for: 'camera-folder' }, S.cameraFolderPath), folder);
  select.addEventListener('change', () => (folderRow.hidden = select.value !== 'folder'));
  const cameraForm = h('form', { class: 'settings-form', id: 'camera-form', autocomplete: 'off' },
    h('label', { for: 'camera-select' }, S.cameraSelect), select, folderRow,
    h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'btn primary', id: 'camera-use' }, S.cameraUse)));
  cameraForm.addEventListener('submit', (e) => {
    e.preventDefault();
    void useCamera(select.value === 'folder' ? `folder:${folder.value.trim()}` : select.value);
  });
  // --- screen
  const kiosk = h('input', { id: 'kiosk-toggle', type: 'checkbox', checked: v.kiosk });
  kiosk.addEventListener('change', () => void saveSetting(api.setKiosk(kiosk.checked)));
  const lock = h('select', { id: 'auto-lock', 'aria-label': S.autoLockLabel });
  const choices = S.autoLockChoices.some(([n]) => n === v.auto_lock_secs) ? S.autoLockChoices : [...S.autoLockChoices, [v.auto_lock_secs, `${v.auto_lock_secs} s`] as [number, string]];
  for (const [n, label] of choices) lock.append(h('option', { value: n }, label));
  lock.value = String(v.auto_lock_secs);
  lock.addEventListener('change', () => void saveSetting(api.setAutoLock(Number(lock.value))));

  const cam = v.camera_status;
  $('settings-body').replaceChildren(
    h('section', { class: 'card', id: 'settings-server' },
      h('h2', {}, S.pairTitle),
      h('div', { class: 'mode-card', 'data-mode': state.sync?.mode ?? (v.paired ? 'online' : 'standalone') },
        h('span', { class: 'mode-dot' }),
        h('div', { id: 'pair-summary' }, v.paired ? S.pairPaired(v.venue_name, v.device_name) : S.pairStandalone)),
      v.paired ? '' : h('p', { class: 'hint' }, S.pairReplaces),
      pairForm),
    h('section', { class: 'card', id: 'settings-camera' },
      h('h2', {}, S.cameraTitle),
      h('div', { class: 'cam-now', 'data-ok': cam ? String(cam.ok) : '' },
        h('div', { class: 'cam-now-k' }, S.cameraInUse),
        h('div', { id: 'settings-cam-status' }, cam ? cam.description : v.camera)),
      v.cameras_error ? h('p', { class: 'small' }, S.cameraListError(v.cameras_error)) : '',
      cameraForm,
      fixedNote(v, 'camera')),
    h('section', { class: 'card', id: 'settings-screen' },
      h('h2', {}, S.screenTitle),
      h('label', { class: 'check' }, kiosk, S.kioskLabel),
      fixedNote(v, 'kiosk'),
      h('label', { class: 'inline', for: 'auto-lock' }, S.autoLockLabel, lock),
      fixedNote(v, 'auto_lock')),
    h('section', { class: 'card', id: 'settings-about' },
      h('h2', {}, S.aboutTitle),
      h('dl', { class: 'facts' },
        h('div', { class: 'kv' }, h('dt', {}, S.syncFields.device), h('dd', {}, v.device_id == null ? S.none : `#${v.device_id} ${v.device_name ?? ''}`)),
        h('div', { class: 'kv' }, h('dt', {}, S.database), h('dd', { id: 'settings-db' }, v.database)),
        h('div', { class: 'kv' }, h('dt', {}, S.version), h('dd', {}, v.version)))),
  );
}

async function pairDevice(url: string, token: string, caCert: string) {
  showSettingsError(null);
  const status = $('pair-status');
  const button = $<HTMLButtonElement>('pair-submit');
  status.textContent = S.pairing;
  status.dataset.state = 'busy';
  button.disabled = true;
  try {
    const out = await run(api.pairDevice(url, token, caCert || null));
    status.dataset.state = 'ok';
    const msg = [S.paired(out.venue_name, out.operators), out.first_sync_error ? S.pairedSyncLater(out.first_sync_error) : ''].filter(Boolean).join(' ');
    status.textContent = msg;
    state.info = await api.appInfo();
    state.sync = state.info.sync;
    document.body.dataset.paired = String(out.device_id);
    if (!state.info.operator) {
      // A first pairing ends the session: sign in as one of the venue's operators.
      state.screen = 'scan';
      locked(false);
      toast(`${msg} ${S.pairedSignIn}`, 'ok');
      return;
    }
    toast(msg, 'ok');
    renderBar();
    await loadSettings();
  } catch (raw) {
    status.textContent = '';
    status.dataset.state = 'error';
    showSettingsError(asCommandError(raw));
  } finally {
    button.disabled = false;
  }
}

async function useCamera(source: string) {
  showSettingsError(null);
  try {
    const now = await run(api.setCamera(source));
    toast(S.cameraSwitched(now), 'ok');
    await loadSettings();
  } catch (raw) {
    showSettingsError(asCommandError(raw));
  }
}

async function saveSetting(p: Promise<unknown>) {
  showSettingsError(null);
  try {
    await run(p);
    toast(S.saved, 'ok');
    state.info = await api.appInfo();
  } catch (raw) {
    showSettingsError(asCommandError(raw));
    await loadSettings();
  }
}

// ------------------------------------------------------------------ clock

function clockText() {
  return new Date().toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}

/** The time on every screen (slots are about time). It also means the page
 * repaints every second, which WebKit's WebDriver screenshots wait for. */
function tickClock() {
  const t = clockText();
  for (const el of document.querySelectorAll<HTMLElement>('[data-clock]')) el.textContent = t;
}

// ------------------------------------------------------------------ start

async function start() {
  if (!inTauri) {
    document.body.replaceChildren(h('p', { class: 'no-tauri' }, S.noTauri));
    return;
  }
  unlockAudioOnGesture();
  buildScanner();
  buildSlots();
  buildLookup();
  buildSync();
  buildSettings();
  window.addEventListener('keydown', onKey, { capture: true });
  // Keys typed before a touch (a capacity, a search) are not the start of a scan.
  window.addEventListener('pointerdown', () => wedge.reset(), { capture: true });
  // Any touch or key on any screen keeps the session open (at most one call per 10 s).
  let lastTouch = 0;
  const keepAlive = () => {
    const now = Date.now();
    if (state.operator && now - lastTouch > 10_000) {
      lastTouch = now;
      void api.touch().catch(() => undefined);
    }
  };
  window.addEventListener('pointerdown', keepAlive, { capture: true, passive: true });
  window.addEventListener('keydown', keepAlive, { capture: true, passive: true });
  $('lock').addEventListener('click', () => void api.signOut().finally(() => locked(false)));
  $('sync-pill').addEventListener('click', () => show('sync'));

  on('preview', (p) => {
    // Only while the scanner is on screen: nobody sees a hidden preview, and
    // WebKit keeps a hidden image that changes five times a second "loading".
    if (!state.operator || state.screen !== 'scan') return;
    $<HTMLImageElement>('preview').src = p.data_url;
    const cam = $('cam-status');
    if (cam.dataset.ok === '') {
      cam.dataset.ok = 'true';
      cam.textContent = '';
    }
  });
  const showCamera = (c: CameraStatus) => {
    const cam = $('cam-status');
    cam.dataset.ok = String(c.ok);
    cam.textContent = c.ok ? c.description : `${S.cameraOff}: ${c.description}`;
    // A frozen last frame would look like a working camera.
    if (!c.ok) $('preview').removeAttribute('src');
    const inSettings = document.getElementById('settings-cam-status');
    if (inSettings) {
      inSettings.textContent = c.description;
      if (inSettings.parentElement) inSettings.parentElement.dataset.ok = String(c.ok);
    }
  };
  on('camera', showCamera);
  // The camera may have reported before this page listened.
  void api.cameraStatus().then((c) => { if (c) showCamera(c); }).catch(() => undefined);
  on('scan', (o) => {
    if (state.operator) showOutcome(o);
    void refreshSync();
  });
  on('scan-error', (e) => {
    if (e.code === 'LOCKED') locked(true);
    else toast(errorText(e));
  });
  on('sync', (s) => {
    state.sync = s;
    renderSyncPill();
    // Operators added on the server (or a first download that came late)
    // appear on the sign-in screen without a restart.
    if (!state.operator) void refreshOperators();
    if (state.screen === 'sync') void loadSync(s.conflicts !== state.conflicts.length);
  });

  const [info, ops] = await Promise.all([api.appInfo(), api.operators().catch(() => [] as OperatorView[])]);
  state.info = info;
  state.sync = info.sync;
  setOperators(ops);
  state.operator = info.operator;
  renderSignIn();
  show('scan');
  renderScanner();
  // A verdict of the last seconds, if the page (re)loaded just after it.
  const recent = await api.lastScan().catch(() => null);
  if (recent && state.operator) showOutcome(recent);
  document.body.dataset.ready = '1';
  tickClock();
  setInterval(tickClock, 1000);

  // Auto-lock happens in Rust after inactivity; notice it without waiting for
  // the next command, and keep the status fresh in standalone mode too.
  setInterval(async () => {
    try {
      const i = await api.appInfo();
      state.sync = i.sync;
      if (i.venue_name !== state.info?.venue_name) {
        state.info = i;
        renderBar();
        if (!state.operator && !pinFor) renderSignIn();
      }
      renderSyncPill();
      if (state.operator && !i.operator) locked(true);
    } catch {
      /* next round */
    }
  }, 3000);
}

void start().catch((e) => toast(errorText(asCommandError(e))));
