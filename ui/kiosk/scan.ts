// The scanner screen: verdict, preview, counter, recent scans, manual entry, amber decisions;
// the direction toggle, people inside, walk-up booking and undo (venue operations).

import type { OccupancyView } from './bindings/OccupancyView';
import type { ScanOutcome } from './bindings/ScanOutcome';
import type { ScanSource } from './bindings/ScanSource';
import type { VerdictView } from './bindings/VerdictView';
import { $, errorText, fmtTime, h, toast } from './dom';
import { playTone } from './sound';
import { operatorName, run, show, state } from './state';
import { S } from './strings';
import { refreshSync } from './sync';
import { api, asCommandError } from './tauri';

/** How long a verdict stays on screen before "Ready" (a new scan replaces it at once). */
const VERDICT_MS = 4000;
/** An amber verdict stays until the operator decides, or this long. */
const DECIDE_MS = 60000;

// ------------------------------------------------------------------ scanner

export function buildScanner() {
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
    h('div', { class: 'verdict', id: 'verdict', 'data-tone': 'ready', 'aria-live': 'assertive', onclick: tapVerdict }),
    h('aside', { class: 'side' },
      h('div', { class: 'ops' },
        h('button', { type: 'button', class: 'btn direction', id: 'direction-toggle', onclick: () => void toggleDirection() }),
        h('div', { class: 'occupancy', id: 'occupancy', hidden: true })),
      h('div', { class: 'undo-last', id: 'undo-last', hidden: true }),
      h('div', { class: 'preview' },
        h('img', { id: 'preview', alt: '' }),
        // Where to hold the code (shown on a handheld, whose preview is the viewfinder).
        h('div', { class: 'aim', 'aria-hidden': 'true' }),
        h('div', { class: 'cam-status', id: 'cam-status', 'data-ok': '' }, S.cameraWaiting)),
      h('div', { class: 'counter', id: 'counter' }),
      manual,
      h('div', { class: 'recent' }, h('h2', {}, S.recent), h('ol', { id: 'recent' }))),
  );
}

function verdictDetail(v: VerdictView, walkupBooked = false): string[] {
  const lines: string[] = [];
  const slot = S.slotLine(v.slot_date, v.slot_start_time, v.slot_end_time);
  switch (v.verdict) {
    case 'ADMIT':
      if (walkupBooked) lines.push(S.walkupBooked);
      if (slot) lines.push(slot);
      if (v.overruled) lines.push(S.overruledLine(S.reasons[v.overruled] ?? v.overruled));
      break;
    case 'ALREADY_VERIFIED':
      lines.push(v.verified_gate
        ? S.admittedAtGate(v.verified_gate, operatorName(v.verified_by), fmtTime(v.verified_at, true))
        : S.verifiedAt(fmtTime(v.verified_at, true), operatorName(v.verified_by)));
      break;
    case 'WRONG_DATE':
    case 'OUTSIDE_SLOT_WINDOW':
    case 'NO_SHOW_RELEASED':
      if (slot) lines.push(S.reservedFor(slot));
      break;
    case 'EXPIRED':
      if (v.expires_at) lines.push(S.expiredAt(fmtTime(v.expires_at)));
      break;
    case 'NOT_INSIDE':
    case 'REENTRY_NOT_ALLOWED':
      if (v.left_at) lines.push(S.leftAt(fmtTime(v.left_at)));
      break;
  }
  if (v.verdict === 'ADMIT' && v.reentry && v.left_at) lines.unshift(S.reentry(fmtTime(v.left_at)));
  if (v.walkup) lines.push(S.walkupHint);
  const hint = S.hints[v.verdict];
  if (hint) lines.push(hint);
  if (v.tone === 'decide') lines.push(S.decideHint);
  return lines;
}

export function renderScanner() {
  const box = $('verdict');
  if (!box) return;
  const o = state.last;
  const screen = $('screen-scan');
  if (screen.dataset.direction !== direction) screen.dataset.direction = direction;
  // A verdict covers the side panel on an upright screen: its buttons hide meanwhile.
  const covered = o || undone ? '1' : '0';
  if (screen.dataset.verdictUp !== covered) screen.dataset.verdictUp = covered;
  renderDirection();
  renderUndo();
  if (!o && undone) {
    box.dataset.tone = 'undone';
    box.dataset.verdict = 'UNDONE';
    box.replaceChildren(
      h('div', { class: 'v-icon', 'aria-hidden': 'true' }, '↺'),
      h('div', { class: 'v-title', id: 'verdict-title' }, S.undone),
      h('div', { class: 'v-details', id: 'verdict-details' }, h('div', {}, S.undoneReason(undone.reason)), h('div', {}, S.undoneHint)),
      h('div', { class: 'v-code' }, undone.code),
    );
  } else if (!o) {
    box.dataset.tone = 'ready';
    delete box.dataset.verdict;
    box.replaceChildren(
      h('div', { class: 'v-icon ready-icon', 'aria-hidden': 'true' }, h('span', {})),
      h('div', { class: 'v-title', id: 'verdict-title' }, direction === 'out' ? S.readyOut : S.ready),
      h('div', { class: 'v-sub' }, direction === 'out' ? S.readyOutHint : S.readyHint),
    );
  } else {
    const v = o.verdict;
    box.dataset.tone = v.tone;
    box.dataset.verdict = v.verdict;
    // Amber keeps its headline short: the decision buttons must fit below it.
    const title = v.verdict === 'EXIT' ? S.exit : v.admit ? S.admit : v.tone === 'decide' ? (S.reasons[v.verdict] ?? v.message) : (v.message || S.reasons[v.verdict] || v.verdict);
    box.replaceChildren(
      h('div', { class: 'v-icon', 'aria-hidden': 'true' }, v.verdict === 'EXIT' ? '→' : v.tone === 'admit' ? '✓' : v.tone === 'refuse' ? '✕' : '!'),
      h('div', { class: 'v-title', id: 'verdict-title' }, title),
      v.admit ? h('div', { class: 'v-sub', id: 'verdict-sub' }, v.verdict === 'EXIT' ? S.exitSub : v.reentry ? S.reentry(fmtTime(v.left_at)) : S.reasons.ADMIT) : '',
      h('div', { class: 'v-details', id: 'verdict-details' }, ...verdictDetail(v, o.walkup_booked).map((l) => h('div', {}, l))),
      v.tone === 'decide' && o.payload
        ? h('div', { class: 'decide-actions' },
            h('button', { type: 'button', class: 'btn decide-admit', id: 'decide-admit', onclick: (e: Event) => void admitAnyway(o, e) }, S.decideAdmit),
            h('button', { type: 'button', class: 'btn decide-refuse', id: 'decide-refuse', onclick: (e: Event) => refuseDecided(o, e) }, S.decideRefuse))
        : '',
      v.walkup && o.payload && o.direction === 'in'
        ? h('div', { class: 'decide-actions walkup-actions' },
            h('button', { type: 'button', class: 'btn walkup-book', id: 'walkup-book', onclick: (e: Event) => void bookWalkup(o, e) }, S.walkupBook))
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
        h('span', { class: 'r-what' }, outcome.verdict.verdict === 'EXIT' ? S.exit : outcome.verdict.admit ? S.admit : (S.reasons[outcome.verdict.verdict] ?? outcome.verdict.verdict)),
        h('span', { class: 'r-code' }, outcome.verdict.ticket_code ?? ''),
        h('span', { class: 'r-at' }, at.toLocaleTimeString([], { hour12: false })))),
  );
}

export function showOutcome(o: ScanOutcome) {
  state.last = o;
  undone = null;
  // The undo offer follows the latest scan: a new ADMIT replaces it, anything else ends it.
  clearTimeout(undoTimer);
  undoFor = o.undo_secs != null && o.verdict.ticket_code ? { code: o.verdict.ticket_code, choosing: false } : null;
  if (undoFor) undoTimer = window.setTimeout(() => { undoFor = null; renderUndo(); }, o.undo_secs! * 1000);
  void refreshOccupancy();
  state.recent.unshift({ outcome: o, at: new Date() });
  state.recent.length = Math.min(state.recent.length, 20);
  playTone(o.verdict.tone);
  if (state.screen !== 'scan') show('scan');
  renderScanner();
  clearTimeout(state.verdictTimer);
  // An amber verdict (or a walk-up offer) waits for the operator's call (the next scan replaces it).
  state.verdictTimer = window.setTimeout(dismissVerdict, o.verdict.tone === 'decide' || o.verdict.walkup ? DECIDE_MS : VERDICT_MS);
}

/** A tap on a red or green verdict puts the scanner back (on a handheld the
 *  verdict covers the screen); an amber one waits for its buttons. */
function tapVerdict(e: Event) {
  const tone = (e.currentTarget as HTMLElement).dataset.tone;
  // Only a green one: a refused holder who can reach the screen must not
  // clear the refusal before the operator has seen it.
  if (tone === 'admit') dismissVerdict();
}

function dismissVerdict() {
  clearTimeout(state.verdictTimer);
  state.last = null;
  undone = null;
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

export async function scan(payload: string, source: ScanSource) {
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

// ------------------------------------------------------------------ venue operations

/** Which way this gate scans (the gate holds it; the page shows it). */
let direction: 'in' | 'out' = 'in';
/** The admission the operator may still undo (own, within the window), and whether the reasons are open. */
let undoFor: { code: string; choosing: boolean } | null = null;
let undoTimer = 0;
/** The last undo, shown until the next scan or a few seconds. */
let undone: { code: string; reason: string } | null = null;

/** Reads the gate's direction (a page reloaded while scanning exits). */
export async function loadDirection() {
  try {
    direction = (await api.direction(null)) === 'out' ? 'out' : 'in';
  } catch {
    return;
  }
  renderScanner();
}

function renderDirection() {
  const b = $('direction-toggle');
  if (!b) return;
  const other = direction === 'in' ? 'out' : 'in';
  if (b.dataset.direction === direction) return;
  b.dataset.direction = direction;
  b.setAttribute('aria-label', S.directionSwitch(S.direction[other]));
  b.replaceChildren(
    h('span', { class: 'dir-label' }, S.directionLabel),
    h('span', { class: 'dir-now', id: 'direction-now' }, S.direction[direction]),
    h('span', { class: 'dir-switch' }, S.directionSwitch(S.direction[other])),
  );
}

async function toggleDirection() {
  if (!state.operator) {
    toast(S.signInFirst);
    return;
  }
  try {
    direction = (await run(api.direction(direction === 'in' ? 'out' : 'in'))) === 'out' ? 'out' : 'in';
  } catch (raw) {
    const e = asCommandError(raw);
    if (e.code !== 'LOCKED') toast(errorText(e));
    return;
  }
  dismissVerdict();
}

/** What the occupancy box shows now: rebuilt only when this changes (it is polled). */
let occupancyShows = '';

function freshness(o: OccupancyView): string {
  if (state.sync?.mode === 'standalone' || !o.as_of) return S.occupancyLocal;
  const age = Date.now() - new Date(o.as_of).getTime();
  return age < 60000 ? S.occupancyLive : S.occupancyAsOf(fmtTime(o.as_of));
}

export async function refreshOccupancy() {
  let o: OccupancyView | null;
  try {
    o = await api.occupancy();
  } catch {
    return;
  }
  const box = $('occupancy');
  if (!box) return;
  const fresh = o ? freshness(o) : '';
  const shows = JSON.stringify([o?.inside, o?.limit, o?.level, fresh]);
  if (shows === occupancyShows) return;
  occupancyShows = shows;
  box.hidden = !o;
  if (!o) return;
  box.dataset.level = o.level;
  box.replaceChildren(
    h('div', { class: 'occ-label' }, S.occupancyLabel),
    h('div', { class: 'occ-n', id: 'occupancy-n' }, S.occupancyOf(Number(o.inside), o.limit == null ? null : Number(o.limit))),
    h('div', { class: 'occ-note', id: 'occupancy-note' }, S.occupancyLevels[o.level] || (o.limit == null ? S.occupancyNoLimit : '')),
    h('div', { class: 'occ-fresh', id: 'occupancy-fresh' }, fresh),
  );
}

function renderUndo() {
  const box = $('undo-last');
  if (!box) return;
  box.hidden = !undoFor;
  if (!undoFor) {
    box.replaceChildren();
    return;
  }
  const u = undoFor;
  box.replaceChildren(
    u.choosing
      ? h('div', { class: 'undo-panel', id: 'undo-panel' },
          h('div', { class: 'undo-title' }, S.undoTitle),
          ...S.undoReasons.map(([key, label]) =>
            h('button', { type: 'button', class: 'btn undo-reason', 'data-reason': key, id: `undo-reason-${key}`, onclick: (e: Event) => void undoAdmission(u.code, label, e) }, label)),
          h('button', { type: 'button', class: 'btn ghost', id: 'undo-cancel', onclick: () => { u.choosing = false; renderUndo(); } }, S.undoCancel))
      : h('button', { type: 'button', class: 'btn danger undo-open', id: 'undo-open', onclick: () => { u.choosing = true; renderUndo(); } },
          `${S.undo} · ${u.code}`),
  );
}

async function undoAdmission(code: string, reason: string, e: Event) {
  const buttons = (e.currentTarget as HTMLElement).parentElement?.querySelectorAll('button') ?? [];
  if ([...buttons].some((b) => b.disabled)) return;
  for (const b of buttons) b.disabled = true;
  try {
    await run(api.undoAdmission(code, reason));
    clearTimeout(undoTimer);
    undoFor = null;
    clearTimeout(state.verdictTimer);
    state.last = null;
    undone = { code, reason };
    state.verdictTimer = window.setTimeout(dismissVerdict, VERDICT_MS);
    if (state.screen !== 'scan') show('scan');
    renderScanner();
    void refreshOccupancy();
    void refreshSync();
  } catch (raw) {
    const err = asCommandError(raw);
    if (err.code !== 'LOCKED') toast(errorText(err));
    undoFor = null;
    renderUndo();
  }
}

/** The operator books the walk-up holder into the current slot: ADMIT or NO_PLACE_LEFT. */
async function bookWalkup(o: ScanOutcome, e: Event) {
  const b = e.currentTarget as HTMLButtonElement;
  if (!o.payload || b.disabled) return;
  b.disabled = true;
  try {
    showOutcome(await run(api.bookWalkup(o.payload, o.source)));
    void refreshSync();
  } catch (raw) {
    const err = asCommandError(raw);
    if (err.code === 'LOCKED') return;
    toast(errorText(err));
    b.disabled = false;
  }
}
