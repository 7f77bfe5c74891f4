// The sign-in screen: the operator list, the PIN pad, PIN lock countdowns, locking.

import type { OperatorView } from './bindings/OperatorView';
import { $, clockText, errorText, h } from './dom';
import { renderScanner } from './scan';
import { renderBar, show, state } from './state';
import { S } from './strings';
import { api, asCommandError } from './tauri';

// ------------------------------------------------------------------ sign-in

export let pinFor: OperatorView | null = null;
let pin = '';

/** Operators locked by wrong PINs: id → when (Date.now()) they may try again.
 *  Fed by the gate (which keeps the lock in its database, across restarts). */
const pinLocks = new Map<number, number>();
let lockTicker = 0;

export function setOperators(ops: OperatorView[]) {
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

export function locked(byTimeout: boolean) {
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

export async function refreshOperators() {
  const ops = await api.operators().catch(() => null);
  if (!ops || JSON.stringify(ops) === JSON.stringify(state.operators)) return;
  setOperators(ops);
  if (!state.operator && !pinFor) renderSignIn();
}

export function renderSignIn(error = '') {
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

export function pinKey(k: string) {
  if (!pinFor || lockedSecs(pinFor.id) > 0) return;
  if (k === 'clear') pin = '';
  else if (k === 'back') pin = pin.slice(0, -1);
  else if (k === 'ok') return void submitPin();
  else if (pin.length < 8) pin += k;
  renderSignIn();
}

export async function submitPin() {
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
