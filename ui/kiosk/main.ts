// Entrada Gate: the kiosk screens (scanner, sign-in, slots, lookup, sync)
// over the Tauri commands. Every rule lives in Rust; these modules show what
// the GateService answers and send what the operator does. This one holds
// start-up, the events, the bar and navigation; one module per screen (scan,
// signin, slots, lookup, sync, settings) over shared helpers (dom, state).

import './style.css';
import type { CameraStatus } from './bindings/CameraStatus';
import type { OperatorView } from './bindings/OperatorView';
import { $, errorText, h, tickClock, toast } from './dom';
import { previewWanted, shouldDim } from './idle';
import { buildLookup } from './lookup';
import { buildScanner, loadDirection, refreshOccupancy, renderScanner, scan, showOutcome } from './scan';
import { buildSettings, leaveSettings, loadSettings } from './settings';
import { locked, pinFor, pinKey, refreshOperators, renderSignIn, setOperators, submitPin } from './signin';
import { buildSlots, loadSlots } from './slots';
import { unlockAudioOnGesture } from './sound';
import { nav, SCREENS, type Screen, state, SUPERVISOR_SCREENS } from './state';
import { S } from './strings';
import { buildSync, loadSync, refreshSync, renderSyncPill } from './sync';
import { api, asCommandError, inTauri, on } from './tauri';
import { WedgeDetector } from './wedge';

nav.show = show;
nav.renderBar = renderBar;
nav.locked = locked;

// ------------------------------------------------------------------ shell

function renderBar() {
  $('bar').hidden = !state.operator;
  $('venue').textContent = state.info?.venue_name ?? S.appName;
  const tabs = $('tabs');
  tabs.replaceChildren(
    // On a handheld the tabs fold into the menu, which also names who is signed in.
    state.operator ? h('div', { class: 'menu-who', id: 'menu-who' }, state.operator.display_name, h('span', { class: 'who-role' }, S.roles[state.operator.role] ?? state.operator.role)) : '',
    ...SCREENS.filter((s) => state.operator?.is_supervisor || !SUPERVISOR_SCREENS.includes(s)).map((s) =>
      h('button', { type: 'button', id: `nav-${s}`, class: 'tab', 'aria-current': state.screen === s ? 'page' : null, onclick: () => show(s) }, S.nav[s]),
    ),
  );
  $('menu').replaceChildren(h('span', { class: 'menu-icon', 'aria-hidden': 'true' }, '☰'), h('span', { class: 'menu-label' }, S.nav[state.screen]));
  $('menu').setAttribute('aria-label', S.menu);
  const who = $('who');
  who.replaceChildren(
    state.operator ? h('span', { class: 'who-name' }, state.operator.display_name) : '',
    state.operator ? h('span', { class: 'who-role' }, S.roles[state.operator.role] ?? state.operator.role) : '',
  );
  $('lock').textContent = S.lock;
  renderSyncPill();
  updatePreview();
}

// ------------------------------------------------------------------ idling lightly

/** Preview frames only while someone can see them (the scan loop sends none otherwise). */
let previewOn: boolean | null = null;
function updatePreview() {
  const on = previewWanted({ signedIn: !!state.operator, screen: state.screen, visible: document.visibilityState === 'visible', dimmed });
  if (on === previewOn) return;
  previewOn = on;
  void api.setPreview(on).catch(() => { previewOn = null; });
}

/** Power save for handhelds: after the settings' time without a touch, key or scan, dim and scan less. */
let lastActivity = Date.now();
let dimmed = false;
function setDimmed(on: boolean) {
  if (on === dimmed) return;
  dimmed = on;
  document.body.classList.toggle('dimmed', on);
  void api.setPowerSave(on).catch(() => undefined);
  updatePreview();
}
function activity() {
  lastActivity = Date.now();
  setDimmed(false);
}
function idleTick() {
  if (shouldDim(Date.now(), lastActivity, state.info?.idle_dim_secs ?? 0)) setDimmed(true);
}

/** The handheld header's menu (the tabs, folded): open or closed. */
function setMenu(open: boolean) {
  document.body.dataset.menu = open ? 'open' : '';
  $('menu').setAttribute('aria-expanded', String(open));
}

function show(screen: Screen) {
  setMenu(false);
  if (SUPERVISOR_SCREENS.includes(screen) && !state.operator?.is_supervisor) screen = 'scan';
  if (screen !== state.screen) $('toast').hidden = true;
  if (screen !== 'settings') leaveSettings();
  state.screen = screen;
  for (const s of SCREENS) $(`screen-${s}`).hidden = s !== screen;
  renderBar();
  if (screen === 'slots') void loadSlots();
  if (screen === 'sync') void loadSync(true);
  if (screen === 'settings') void loadSettings();
  if (screen === 'lookup') $<HTMLInputElement>('lookup-q')?.focus();
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
  window.addEventListener('pointerdown', activity, { capture: true, passive: true });
  window.addEventListener('keydown', activity, { capture: true, passive: true });
  document.addEventListener('visibilitychange', updatePreview);
  $('lock').addEventListener('click', () => void api.signOut().finally(() => locked(false)));
  $('sync-pill').addEventListener('click', () => show('sync'));
  $('menu').addEventListener('click', () => setMenu(document.body.dataset.menu !== 'open'));
  // A touch outside the open menu closes it.
  window.addEventListener('pointerdown', (e) => {
    if (document.body.dataset.menu === 'open' && e.target instanceof Node && !$('tabs').contains(e.target) && !$('menu').contains(e.target)) setMenu(false);
  }, { capture: true, passive: true });

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
    activity();
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
  await loadDirection();
  void refreshOccupancy();
  // A verdict of the last seconds, if the page (re)loaded just after it.
  const recent = await api.lastScan().catch(() => null);
  if (recent && state.operator) showOutcome(recent);
  document.body.dataset.ready = '1';
  // A page (re)loaded while dimmed starts awake: say so to the scan loop.
  void api.setPowerSave(false).catch(() => undefined);
  tickClock();
  setInterval(() => {
    tickClock();
    idleTick();
  }, 1000);

  // Auto-lock happens in Rust after inactivity; notice it without waiting for
  // the next command, and keep the status fresh in standalone mode too.
  setInterval(async () => {
    try {
      const i = await api.appInfo();
      state.sync = i.sync;
      if (state.info) state.info.idle_dim_secs = i.idle_dim_secs;
      if (i.venue_name !== state.info?.venue_name) {
        state.info = i;
        renderBar();
        if (!state.operator && !pinFor) renderSignIn();
      }
      renderSyncPill();
      // People inside: other gates' passages arrive with sync (rebuilt only on a change).
      void refreshOccupancy();
      if (state.operator && !i.operator) locked(true);
    } catch {
      /* next round */
    }
  }, 3000);
}

void start().catch((e) => toast(errorText(asCommandError(e))));
